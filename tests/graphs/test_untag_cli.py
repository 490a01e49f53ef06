"""`ci-env registry untag` on the real registry: a removed image takes its accessories and platforms with it;
nothing a remaining tag reaches goes."""

from __future__ import annotations

import json
from pathlib import Path

from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.graphs.shapes import cosign_tag, push_artifact, push_buildx, push_cosign, push_index_of, push_nested
from tests.registry_client.images import pulls, push_image
from tests.services.referrers_front import ReferrersFront
from tests.services.registry import RegistryService


def _untag(host: str, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none")}
    done = run_ci_env("registry", "untag", *args, env=env, cwd=tmp_path)
    return done.returncode, done.stdout, done.stderr


def test_untag_removes_the_signed_multi_platform_image_with_everything_of_it(
    registry_open: RegistryService, open_client: RegistryClient, repo: str, tmp_path: Path,
) -> None:
    index, platforms, attestations = push_buildx(open_client, repo, ["old"])
    keep = push_image(open_client, repo, ["keep"])
    signatures = [push_cosign(open_client, repo, index, "sig"), push_cosign(open_client, repo, index, "att")]
    keep_signature = push_cosign(open_client, repo, keep.digest)
    sbom = push_artifact(open_client, repo, index)
    code, out, err = _untag(registry_open.host, tmp_path, f"{registry_open.host}/{repo}:old", "--json")
    assert code == 0, err + out
    assert sorted(open_client.list_tags(repo)) == sorted(["keep", cosign_tag(keep.digest, "sig")])
    for digest in (index, *platforms, *attestations, *signatures, sbom):  # untagged, left to the garbage collector
        assert open_client.resolve(repo, digest) is not None, digest
    assert open_client.resolve(repo, keep_signature) is not None and pulls(open_client, repo, "keep")
    entry = json.loads(out)["tags"][0]
    assert entry["status"] == "removed" and entry["digest"] == index
    kinds = sorted(a["kind"] for a in entry["accessories"])
    assert kinds == sorted(["platform", "platform", "attestation-manifest", "attestation-manifest", "signature",
                            "attestation", "sbom", "referrers-index"])
    assert {a["kind"]: a["outcome"] for a in entry["accessories"] if a["tags"]} == {
        "signature": "removed", "attestation": "removed", "referrers-index": "removed"}
    assert {a["outcome"] for a in entry["accessories"] if not a["tags"]} == {"left"}


def test_untag_keeps_what_a_kept_tag_reaches_through_a_nested_index(
    registry_open: RegistryService, open_client: RegistryClient, repo: str, tmp_path: Path,
) -> None:
    _outer, _inner, image = push_nested(open_client, repo, ["A"])
    body, info = open_client.get_manifest(repo, image.digest)
    open_client.put_manifest(repo, "B", body, info.media_type)
    signature = push_cosign(open_client, repo, image.digest)
    code, out, err = _untag(registry_open.host, tmp_path, f"{registry_open.host}/{repo}:B")
    assert code == 0, err
    assert pulls(open_client, repo, "A")
    assert open_client.resolve(repo, signature) is not None  # A still reaches M: its signature stays
    assert "with" not in out


def test_untag_keep_signatures_leaves_them_and_dry_run_lists_them(
    registry_open: RegistryService, open_client: RegistryClient, repo: str, tmp_path: Path,
) -> None:
    image = push_image(open_client, repo, ["old"])
    signature = push_cosign(open_client, repo, image.digest)
    push_image(open_client, repo, ["other"])
    code, out, _ = _untag(registry_open.host, tmp_path, f"{registry_open.host}/{repo}:old", "--dry-run")
    assert code == 0 and f"with signature {signature[:19]} ({cosign_tag(image.digest, 'sig')}): would-remove" in out
    assert open_client.resolve(repo, signature) is not None
    code, _, err = _untag(registry_open.host, tmp_path, f"{registry_open.host}/{repo}:old", "--keep-signatures")
    assert code == 0, err
    assert sorted(open_client.list_tags(repo)) == sorted(["other", cosign_tag(image.digest, "sig")])


def test_untag_of_one_index_keeps_the_child_it_shares_with_a_kept_index(
    registry_open: RegistryService, open_client: RegistryClient, repo: str, tmp_path: Path,
) -> None:
    shared, own, other = (push_image(open_client, repo) for _ in range(3))
    push_index_of(open_client, repo, [shared.digest, other.digest], ["kept"])
    push_index_of(open_client, repo, [shared.digest, own.digest], ["gone"])
    code, _, err = _untag(registry_open.host, tmp_path, f"{registry_open.host}/{repo}:gone")
    assert code == 0, err
    assert pulls(open_client, repo, "kept")
    assert open_client.list_tags(repo) == ["kept"]


def test_untag_through_the_referrers_api_leaves_untagged_referrers_to_the_garbage_collector(
    front: ReferrersFront, front_client: RegistryClient, repo: str, tmp_path: Path,
) -> None:
    image = push_image(front_client, repo, ["old"])
    push_image(front_client, repo, ["keep"])
    signature = push_artifact(front_client, repo, image.digest, "application/vnd.dev.cosign.artifact.sig.v1+json",
                              fallback=False)
    code, out, err = _untag(front.host, tmp_path, f"{front.host}/{repo}:old")
    assert code == 0, err
    assert front_client.list_tags(repo) == ["keep"]
    assert f"with signature {signature[:19]}: left" in out
