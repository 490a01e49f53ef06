"""What a nightly cleanup reads grows with what changed, end to end (``python -m ci_env cleanup``, the real
registry): the second run reads the snapshot and the records published since, resolves no tag it keeps, and
still never removes an image another tag now points at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ci_env.records import snapshots
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.test_cleanup_e2e import run_cli
from tests.cleanup.world import World
from tests.registry_client.images import pulls
from tests.services.registry import RegistryService


def _publish_branches(world: World, git: GitRepo, names: list[str]) -> None:
    head = git.git("rev-parse", "HEAD").strip()
    for name in names:
        git.git("branch", "-f", name, head)
        world.publish("api", name, "git-branch", git_ref=name)


def _cleanup(world: World, git: GitRepo, tmp_path: Path, *extra: str) -> dict[str, Any]:
    report = tmp_path / "report.json"
    result = run_cli("cleanup", "-i", str(world.images_repo), "-s", str(world.stages), "--dir", str(git.path),
                     "--without-kube", "--report", str(report), *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(report.read_text())
    return document


def _requests(registry: RegistryService, since: int) -> list[tuple[str, str]]:
    return [(method, path.split("?")[0]) for method, path, _status in registry.requests()[since:]]


def test_the_second_cleanup_reads_only_the_records_published_since(
    world: World, tmp_path: Path, registry_open: RegistryService,
) -> None:
    git = GitRepo(tmp_path / "project")
    git.commit("one")
    _publish_branches(world, git, [f"b{n}" for n in range(30)])
    _cleanup(world, git, tmp_path)  # keeps everything, compacts the 30 records into one snapshot
    stage_records = [t for t in world.client.list_tags(world.stages.path) if t.startswith("ci-env-")]
    assert sum(snapshots.is_snapshot_tag(t) for t in stage_records) == 1
    assert not any(t.startswith(snapshots.RECORD_PREFIX) for t in stage_records)

    _publish_branches(world, git, ["new1", "new2", "new3"])
    before = len(registry_open.requests())
    document = _cleanup(world, git, tmp_path, "--dry-run")
    made = _requests(registry_open, before)
    api = world.images_repo.child("api").path
    record_reads = [p for m, p in made if m == "GET" and "/manifests/ci-env-pub-" in p]
    assert len(record_reads) == 3  # only the records published since the last cleanup
    assert not [p for m, p in made if m == "HEAD" and p.startswith(f"/v2/{api}/manifests/")]  # no tag resolved
    decisions = document["decisions"]
    assert isinstance(decisions, list)
    kept = {d["tag"] for d in decisions if d["kind"] == "tag" and d["action"] == "keep"}
    assert kept == {f"b{n}" for n in range(30)} | {"new1", "new2", "new3"}


def test_a_tag_moved_onto_the_image_of_a_removed_tag_still_pulls(
    world: World, tmp_path: Path, registry_open: RegistryService,
) -> None:
    git = GitRepo(tmp_path / "project")
    git.commit("one")
    _publish_branches(world, git, ["release", "feature", "other"])
    _cleanup(world, git, tmp_path)  # records compacted: the next plan takes digests from the snapshot
    api = world.images_repo.child("api")
    # someone promotes feature's image to release by hand (its record still names its old image) ...
    body, info = world.client.get_manifest(api.path, "feature")
    world.client.put_manifest(api.path, "release", body, info.media_type)
    # ... and moves "other" to a new image, then the feature branch is deleted
    moved = world.push(api, "other", None)
    git.git("branch", "-D", "feature")
    git.git("branch", "-D", "other")
    document = _cleanup(world, git, tmp_path)
    assert world.tags("api") == {"release"}
    assert pulls(world.client, api.path, "release")  # feature's manifest was not deleted under it
    decisions = {d["tag"]: d for d in document["decisions"] if d["kind"] == "tag"}
    assert decisions["other"]["digest"] == moved.digest  # the digest it had when removed, not as published
    assert decisions["other"]["outcome"] == "removed" and decisions["feature"]["outcome"] == "removed"


def test_a_second_dry_run_that_removes_tags_reads_two_objects_per_new_and_removed_tag(
    world: World, tmp_path: Path, registry_open: RegistryService,
) -> None:
    git = GitRepo(tmp_path / "project")
    git.commit("one")
    _publish_branches(world, git, [f"b{n}" for n in range(60)])
    _cleanup(world, git, tmp_path)  # the first night: keeps everything, compacts the records
    _publish_branches(world, git, [f"new{n}" for n in range(20)])
    for n in range(10):
        git.git("branch", "-D", f"b{n}")
    before = len(registry_open.requests())
    document = _cleanup(world, git, tmp_path, "--dry-run")
    made = _requests(registry_open, before)
    reads = [(m, p) for m, p in made if m in ("GET", "HEAD") and p != "/v2/" and not p.endswith("/tags/list")]
    assert len(reads) <= 2 * 20 + 2 * 10, reads  # not one per tag of the repository (80)
    decisions = document["decisions"]
    assert isinstance(decisions, list)
    assert {d["tag"] for d in decisions if d["outcome"] == "would-remove"} == {f"b{n}" for n in range(10)}


def test_measure_kept_reads_each_kept_manifest_once_and_the_default_reads_none(
    world: World, tmp_path: Path, registry_open: RegistryService,
) -> None:
    git = GitRepo(tmp_path / "project")
    git.commit("one")
    _publish_branches(world, git, [f"b{n}" for n in range(12)])
    for n in range(2):
        git.git("branch", "-D", f"b{n}")
    api = world.images_repo.child("api").path
    reads: dict[str, list[str]] = {}
    figures: dict[str, dict[str, object]] = {}
    for mode, extra in (("default", ()), ("measure-kept", ("--measure-kept",))):
        before = len(registry_open.requests())
        document = _cleanup(world, git, tmp_path, "--dry-run", *extra)
        reads[mode] = [p for m, p in _requests(registry_open, before)
                       if m == "GET" and p.startswith(f"/v2/{api}/manifests/sha256:")]
        figures[mode] = document["bytes"]
    assert len(reads["default"]) == len(set(reads["default"])) == 2  # the removed images only
    assert len(reads["measure-kept"]) == len(set(reads["measure-kept"])) == 12  # and each kept one, once
    assert figures["default"]["at_most"] is True and figures["default"]["kept"] is None
    assert figures["measure-kept"]["at_most"] is False and figures["measure-kept"]["kept_unread"] == 0
    assert figures["measure-kept"]["freed"] == figures["default"]["freed"]  # the images share nothing
