"""Untag through 429s, 500s and dropped connections: each tag ends removed or reported failed, nothing else goes."""

from __future__ import annotations

from ci_env.registry.client import RegistryClient
from ci_env.registry.http import make_session
from ci_env.registry.reference import RepoAddress
from ci_env.registry.untag import untag_all
from tests.registry_client.faultproxy import FaultProxy
from tests.registry_client.images import pulls, push_image
from tests.services.registry import RegistryService


class _Remover:
    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def preflight(self, repo: RepoAddress) -> None:
        self.client.can_delete(repo.path)

    def untag(self, repo: RepoAddress, tag: str) -> str:
        return self.client.untag(repo.path, tag)


def test_untag_through_faults_removes_only_what_was_asked(registry_open: RegistryService, repo: str) -> None:
    direct = RegistryClient(registry_open.host)
    kept = {}
    drops = []
    for number in range(10):  # shared: one kept tag and one dropped tag on each digest
        kept[f"keep-{number}"] = push_image(direct, repo, [f"keep-{number}", f"drop-shared-{number}"]).digest
        drops.append(f"drop-shared-{number}")
    for number in range(10):
        push_image(direct, repo, [f"drop-lone-{number}"])
        drops.append(f"drop-lone-{number}")
    proxy = FaultProxy(registry_open.host, seed=11)
    try:
        faulty = RegistryClient(proxy.host, session=make_session(retries=4, backoff=0.01))
        remover = _Remover(faulty)
        address = RepoAddress(proxy.host, repo)
        summary = untag_all([(address, tag) for tag in drops], lambda _: remover, parallel=4)
    finally:
        proxy.stop()
    assert proxy.faults, "the proxy injected no fault: the test would prove nothing"
    statuses = {o.tag: o.status for o in summary.outcomes}
    assert set(statuses) == set(drops)
    assert set(statuses.values()) <= {"removed", "failed"}
    assert all(o.reason for o in summary.failed)
    remaining = set(direct.list_tags(repo))
    for tag, digest in kept.items():
        assert tag in remaining and direct.resolve(repo, tag).digest == digest  # type: ignore[union-attr]
        assert pulls(direct, repo, tag)
    for tag, status in statuses.items():
        if status == "removed":
            assert tag not in remaining
