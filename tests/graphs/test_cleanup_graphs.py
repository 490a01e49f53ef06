"""`ci-env cleanup` on the real registry with signed multi-platform images: a removed image leaves nothing behind,
a kept one keeps its platforms and signatures."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from ci_env.registry.client import RegistryClient
from tests.cleanup.conftest import world
from tests.cleanup.test_cleanup_e2e import SCHEMA, run_cli
from tests.cleanup.world import World, publish_scenario, signature_of
from tests.graphs.shapes import cosign_tag, push_artifact, push_buildx, push_cosign
from tests.registry_client.images import PushedImage, pulls

__all__ = ["world"]


def _publish_index(w: World, tag: str, branch: str) -> tuple[str, list[str], list[str]]:
    path = w.images_repo.child("api").path
    index, platforms, attestations = push_buildx(w.client, path)
    _body, info = w.client.get_manifest(path, index)
    w.publish("api", tag, "git-branch", git_ref=branch, signature=signature_of(tag),
              like=PushedImage(path, index, info.media_type, ()))
    return index, platforms, attestations


def test_cleanup_removes_a_signed_multi_platform_image_with_everything_and_keeps_the_kept_ones(
    world: World, tmp_path: Path,
) -> None:
    scenario = publish_scenario(world, tmp_path / "project")
    client: RegistryClient = world.client
    path = world.images_repo.child("api").path
    gone, gone_platforms, gone_attestations = _publish_index(world, "feature-b", "feature-b")
    gone_signature = push_cosign(client, path, gone)
    gone_sbom = push_artifact(client, path, gone)
    kept, kept_platforms, _ = _publish_index(world, "main-multi", "main")
    kept_signature = push_cosign(client, path, kept)
    kept_child_signature = push_cosign(client, path, kept_platforms[0])
    report = tmp_path / "report.json"
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory]

    dry = run_cli("cleanup", *args, "--dry-run", "--report", str(report), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert client.resolve(path, gone_signature) is not None
    assert "+ signature" in dry.stdout

    done = run_cli("cleanup", *args, "--report", str(report), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tags = set(client.list_tags(path))
    assert "feature-b" not in tags and cosign_tag(gone, "sig") not in tags and gone.replace(":", "-") not in tags
    for digest in (gone, *gone_platforms, *gone_attestations, gone_signature, gone_sbom):
        assert client.resolve(path, digest) is not None, digest  # untagged: the garbage collector's, not ours
    assert pulls(client, path, "main-multi")
    for digest in (kept_signature, kept_child_signature, *kept_platforms):
        assert client.resolve(path, digest) is not None
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    entry = next(d for d in document["decisions"] if d["tag"] == "feature-b")
    assert entry["outcome"] == "removed"
    assert sorted(a["kind"] for a in entry["accessories"]) == sorted(
        ["platform", "platform", "attestation-manifest", "attestation-manifest", "signature", "sbom",
         "referrers-index"])
    outcomes = {a["kind"]: a["outcome"] for a in entry["accessories"]}
    assert outcomes == {"signature": "removed", "referrers-index": "removed",  # their tags went
                        "platform": "left", "attestation-manifest": "left", "sbom": "left"}  # untagged: GC's
    assert not any("accessories" in d for d in document["decisions"] if d["action"] == "keep")


def test_cleanup_keep_signatures_leaves_them(world: World, tmp_path: Path) -> None:
    scenario = publish_scenario(world, tmp_path / "project")
    path = world.images_repo.child("api").path
    gone, platforms, _ = _publish_index(world, "feature-b", "feature-b")
    signature = push_cosign(world.client, path, gone)
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory]
    done = run_cli("cleanup", *args, "--keep-signatures", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tags = set(world.client.list_tags(path))
    assert "feature-b" not in tags and world.client.resolve(path, platforms[0]) is not None  # left to the GC
    assert world.client.resolve(path, signature) is not None and cosign_tag(gone, "sig") in tags
