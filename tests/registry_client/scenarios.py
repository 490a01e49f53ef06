"""The fault scenario shared by the single-tag and batch untag tests: what is pushed and what must hold after."""

from __future__ import annotations

from ci_env.registry.client import RegistryClient
from ci_env.registry.untag import Summary
from tests.registry_client.images import pulls, push_image


def push_kept_and_dropped(client: RegistryClient, repo: str) -> tuple[dict[str, str], list[str]]:
    """Ten digests with a kept and a dropped tag each, and ten dropped tags alone: (kept tag -> digest, drops)."""
    kept = {f"keep-{n}": push_image(client, repo, [f"keep-{n}", f"drop-shared-{n}"]).digest for n in range(10)}
    drops = [f"drop-shared-{n}" for n in range(10)]
    for n in range(10):
        push_image(client, repo, [f"drop-lone-{n}"])
        drops.append(f"drop-lone-{n}")
    return kept, drops


def assert_only_the_asked_went(
    client: RegistryClient, repo: str, kept: dict[str, str], drops: list[str], summary: Summary
) -> None:
    """Every dropped tag ended removed or failed with a reason; removed ones are gone; every kept tag still pulls."""
    statuses = {o.tag: o.status for o in summary.outcomes}
    assert set(statuses) == set(drops)
    assert set(statuses.values()) <= {"removed", "failed"}
    assert all(o.reason for o in summary.failed)
    remaining = set(client.list_tags(repo))
    for tag, digest in kept.items():
        assert tag in remaining and client.resolve(repo, tag).digest == digest  # type: ignore[union-attr]
        assert pulls(client, repo, tag)
    for tag, status in statuses.items():
        if status == "removed":
            assert tag not in remaining
