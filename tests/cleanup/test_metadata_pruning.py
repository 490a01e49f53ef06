"""Metadata records do not pile up: cleanup prunes them as werf's ``pkg/cleaning`` prunes its image metadata, and
purge and ``cleanup.disable`` leave nothing behind that could not keep an image. Real registry, real git history;
each test is named after the werf code its case comes from."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from ci_env import records
from tests.cleanup.test_cleanup_e2e import SCHEMA, run_cli
from tests.cleanup.test_cleanup_history import DefaultSetup, ago
from tests.cleanup.world import World, signature_of


@pytest.fixture
def setup(world: World, tmp_path: Path) -> DefaultSetup:
    return DefaultSetup(world, tmp_path / "project")

MAIN_KEEPS_TWO = ("project: demo\nconfigVersion: 1\ncleanup:\n  keepPolicies:\n"
                  "  - references: {branch: main}\n    imagesPerReference: {last: 2}\n---\nimage: app\n")


def metadata(world: World) -> set[tuple[str, str]]:
    """(commit, signature) of every metadata record in the stages storage now (a fresh listing)."""
    store = records.open_store(world.stages, "", client=world.client)
    return {(m.commit, m.signature) for m in records.read_metadata(store)}


def record(setup: DefaultSetup, name: str, commit: str) -> None:
    """A metadata record of ``commit`` for the image published as ``name`` (a commit publishing it again)."""
    records.write_metadata(setup.world.store, records.CommitMetadata("app", commit, setup.signatures[name]))


def werf_yaml(setup: DefaultSetup, text: str) -> None:
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    (setup.git.path / "werf.yaml").write_text(text)


def test_prune_records_of_kept_image_except_keeping_commits__werf_cleanup_go(
    setup: DefaultSetup, tmp_path: Path,
) -> None:
    """werf ``cleanupImageMetadata``: for a kept image, the records of every commit but those that keep it go.
    ``a`` is kept through an OLDER commit than ``b``'s (imagesPerReference across commits): its record stays."""
    c1 = setup.commit("a", 10)
    c2 = setup.commit("b", 9)
    c3 = setup.git.commit("docs only: b again", ago(8))
    record(setup, "b", c3)
    c4 = setup.git.commit("docs only: b again", ago(7))
    record(setup, "b", c4)
    werf_yaml(setup, MAIN_KEEPS_TWO)
    sig_a, sig_b = setup.signatures["a"], setup.signatures["b"]
    assert metadata(setup.world) == {(c1, sig_a), (c2, sig_b), (c3, sig_b), (c4, sig_b)}

    report = tmp_path / "dry.json"
    dry = run_cli("cleanup", *setup.args(), "--dry-run", "--report", str(report), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "2 metadata records would be pruned" in dry.stderr
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["metadata_pruned"] == 2
    assert len(metadata(setup.world)) == 4  # a dry run prunes nothing

    done = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 metadata records pruned" in done.stderr
    assert setup.remaining() == {"a", "b"}
    assert metadata(setup.world) == {(c1, sig_a), (c4, sig_b)}  # the records that keep them

    again = run_cli("cleanup", *setup.args(), cwd=tmp_path)  # the next night: the same images, nothing to prune
    assert again.returncode == 0, again.stderr
    assert setup.remaining() == {"a", "b"} and "pruned" not in again.stderr
    assert metadata(setup.world) == {(c1, sig_a), (c4, sig_b)}


def test_records_of_every_reference_that_keeps_an_image_stay__werf_scan_references_history_hit_commits(
    setup: DefaultSetup, tmp_path: Path,
) -> None:
    """werf ``ScanReferencesHistory`` merges the hit commits of every reference: an image a git tag keeps at one
    commit and a branch at another keeps both records (a tag outlives the branch's limit)."""
    c1 = setup.commit("app", 5)
    setup.git.git("tag", "v1", c1)
    c2 = setup.git.commit("docs only", ago(4))
    record(setup, "app", c2)
    c3 = setup.commit("newer", 3)
    setup.git.commit("docs only", ago(2))
    werf_yaml(setup, "project: demo\nconfigVersion: 1\ncleanup:\n  keepPolicies:\n"
                     "  - references: {tag: /.*/}\n"
                     "  - references: {branch: main}\n    imagesPerReference: {last: 2}\n---\nimage: app\n")
    done = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert setup.remaining() == {"app", "newer"}
    sig = setup.signatures["app"]
    assert metadata(setup.world) == {(c1, sig), (c2, sig), (c3, setup.signatures["newer"])}


def test_prune_records_of_commits_no_reference_reaches__werf_process_image_metadata(
    setup: DefaultSetup, tmp_path: Path,
) -> None:
    """werf ``processImageMetadata`` (``IsCommitExists``): records of commits the repository does not have go; so
    do those of commits no reference reaches any more (a deleted branch whose objects remain). An image kept by a
    protection, not by a keep policy, keeps its records of commits still reached."""
    base = setup.commit("base", 20)
    setup.git.git("checkout", "-q", "-b", "gone")
    dropped = setup.commit("feature", 19)
    setup.git.git("checkout", "-q", "main")
    setup.git.git("branch", "-D", "gone")  # its commit stays in the object database, unreachable
    missing = "e" * 40
    record(setup, "feature", missing)
    setup.commit("head", 1)
    werf_yaml(setup, "project: demo\nconfigVersion: 1\ncleanup:\n  keepPolicies:\n"
                     "  - references: {branch: main}\n---\nimage: app\n")
    feature, base_sig = setup.signatures["feature"], setup.signatures["base"]
    done = run_cli("cleanup", *setup.args(), "--keep-tag", f"({feature}|{base_sig})", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert setup.remaining() == {"base", "feature", "head"}  # kept: the policy, --keep-tag
    assert "2 metadata records pruned" in done.stderr
    left = metadata(setup.world)
    assert (dropped, feature) not in left and (missing, feature) not in left
    assert (base, base_sig) in left  # reached from main: it could keep the image again


def test_prune_records_of_signatures_no_managed_image_carries__werf_cleanup_nonexistent_image_metadata(
    setup: DefaultSetup, world: World, tmp_path: Path,
) -> None:
    """werf ``cleanupNonexistentImageMetadata``: records of images no longer there go (here: records whose
    signature no content-signature tag of a managed image carries, as when an image left the managed images)."""
    kept = setup.commit("app", 2)
    orphan = signature_of("an image no longer managed")
    records.write_metadata(world.store, records.CommitMetadata("old", kept, orphan))
    done = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert setup.remaining() == {"app"}
    assert metadata(world) == {(kept, setup.signatures["app"])}


def test_records_written_during_a_cleanup_are_not_pruned_by_it(setup: DefaultSetup, world: World) -> None:
    """A record written after cleanup read the managed images is in no listing of that run: a build that publishes
    a new image while cleanup runs (its tag not listed by cleanup) keeps its record."""
    from datetime import datetime, timezone

    from ci_env.cleanup import pipeline, planning
    from ci_env.cleanup import target as run
    from ci_env.cleanup.policies import Policy
    from ci_env.options import resolve_repo_options

    setup.commit("app", 2)
    env = {"WERF_IMAGES_REPO": str(world.images_repo), "WERF_STAGES_STORAGE": str(world.stages)}
    settings = run.Settings(directory=setup.git.path, docker_config=Path("/nonexistent"))
    clients = run.Clients(settings, env)
    target = run.resolve_target(resolve_repo_options({}, env), env, clients, setup.git.path)
    late = setup.git.commit("published during the cleanup", ago(0))
    signature = signature_of("new image")
    pushed = world.publish("newimage", signature, "stages-signature", signature=signature)
    world.stage(signature, like=pushed)
    records.write_metadata(world.store, records.CommitMetadata("newimage", late, signature))
    work = run.Run("cleanup", target, clients, settings, env, {})
    plan, inventory = planning.make_plan(work, Policy(), datetime.now(timezone.utc))
    result = pipeline.execute(work, plan, inventory)
    assert result.metadata_pruned == 0
    assert (late, signature) in metadata(world)


def test_purge_removes_every_record_kind__werf_purge_go(setup: DefaultSetup, world: World, tmp_path: Path) -> None:
    """werf ``purge.go``: stages, managed images and image metadata all go. Here: every tag and stage, then the
    metadata records, the publication records (record tags and snapshots) and the managed images."""
    setup.commit("one", 3)
    setup.commit("two", 2)
    world.publish("web", "main", "git-branch", git_ref="main")
    cleanup = run_cli("cleanup", *setup.args(), cwd=tmp_path)  # compacts the publication records into a snapshot
    assert cleanup.returncode == 0, cleanup.stderr
    world.publish("web", "feature", "git-branch", git_ref="feature")  # a record tag beside the snapshot
    listed = set(world.client.list_tags(world.stages.path))
    assert any(t.startswith("ci-env-snapshot-") for t in listed) and any(t.startswith("ci-env-meta-") for t in listed)

    dry = run_cli("purge", *setup.args(), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "2 metadata records would be pruned" in dry.stderr and "2 managed images would be forgotten" in dry.stderr
    assert set(world.client.list_tags(world.stages.path)) == listed

    report = tmp_path / "purge.json"
    done = run_cli("purge", *setup.args(), "--force", "--report", str(report), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert world.tags("app") == set() and world.tags("web") == set()
    assert world.client.list_tags(world.stages.path) == []  # no stage, no record of any kind
    summary = json.loads(report.read_text())["summary"]
    assert summary["metadata_pruned"] == 2 and summary["managed_forgotten"] == 2
    assert summary["records_forgotten"] == 4  # app's two tags, web's main and feature
    assert "2 managed images forgotten" in done.stderr


def test_cleanup_disable_keeps_images_and_prunes_metadata__werf_cleanup_go_disable_cleanup(
    setup: DefaultSetup, tmp_path: Path,
) -> None:
    """werf ``cleanupManager.run`` with ``DisableCleanup``: no image is removed, metadata is cleaned up. ci-env
    prunes what a cleanup would prune (not every record: see docs/werf-compatibility.md), so cleanup works as
    before once enabled again."""
    c1 = setup.commit("a", 10)
    c2 = setup.commit("b", 9)
    c3 = setup.git.commit("docs only: b again", ago(8))
    record(setup, "b", c3)
    setup.commit("c", 7)  # main keeps two: c and b; a is beyond
    werf_yaml(setup, MAIN_KEEPS_TWO.replace("cleanup:\n", "cleanup:\n  disable: true\n"))
    sig_a, sig_b = setup.signatures["a"], setup.signatures["b"]

    dry = run_cli("cleanup", *setup.args(), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "no image is removed; 1 metadata record would be pruned" in dry.stderr
    off = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert off.returncode == 0, off.stderr
    assert "no image is removed; 1 metadata record pruned" in off.stderr
    assert setup.remaining() == {"a", "b", "c"}
    left = metadata(setup.world)
    assert (c2, sig_b) not in left and (c3, sig_b) in left and (c1, sig_a) in left

    werf_yaml(setup, MAIN_KEEPS_TWO)  # enabled again: it decides as if it had never been off
    on = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert on.returncode == 0, on.stderr
    assert setup.remaining() == {"b", "c"}
    assert (c1, sig_a) not in metadata(setup.world)  # a's records went with it


def test_cleanup_disable_with_a_clone_cleanup_cannot_read_still_succeeds(
    setup: DefaultSetup, world: World, tmp_path: Path,
) -> None:
    import subprocess

    setup.commit("a", 2)
    werf_yaml(setup, "project: demo\nconfigVersion: 1\ncleanup:\n  disable: true\n---\nimage: app\n")
    setup.git.git("add", "-A")
    setup.git.commit("werf.yaml")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{setup.git.path}", str(clone)], check=True)
    result = run_cli("cleanup", "-i", str(world.images_repo), "-s", str(world.stages), "--dir", str(clone),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no image is removed; metadata records not pruned:" in result.stderr and "shallow" in result.stderr
    assert setup.remaining() == {"a"} and len(metadata(world)) == 1


def test_a_run_out_of_time_prunes_nothing(setup: DefaultSetup, world: World) -> None:
    """Pruning is the last step: a run the time budget stops (or whose budget is spent by then) leaves every record
    for the next run."""
    from datetime import datetime, timezone

    from ci_env.cleanup import pipeline, planning
    from ci_env.cleanup import target as run
    from ci_env.cleanup.policies import Policy
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.options import resolve_repo_options

    c1 = setup.commit("a", 3)
    c2 = setup.git.commit("docs only", ago(2))
    record(setup, "a", c2)  # a record a cleanup prunes (main keeps "a" at c2)
    setup.commit("orphan", 1, metadata=False)
    records.write_metadata(world.store, records.CommitMetadata("app", c1, signature_of("no image")))
    env = {"WERF_IMAGES_REPO": str(world.images_repo), "WERF_STAGES_STORAGE": str(world.stages)}
    settings = run.Settings(directory=setup.git.path, docker_config=Path("/nonexistent"))
    clients = run.Clients(settings, env)
    target = run.resolve_target(resolve_repo_options({}, env), env, clients, setup.git.path)
    work = run.Run("cleanup", target, clients, settings, env, {})
    plan, inventory = planning.make_plan(work, Policy(), datetime.now(timezone.utc))
    assert plan.metadata is not None and len(plan.metadata.keys()) == 2
    before = metadata(world)
    spent = TimeBudget(1.0)  # below the margin from the start
    result = pipeline.execute(dataclasses.replace(work, budget=spent), plan, inventory)
    assert result.metadata_pruned == 0 and metadata(world) == before
    result = pipeline.execute(work, plan, inventory)
    assert result.metadata_pruned == 2 and metadata(world) == before - {(c1, setup.signatures["a"]),
                                                                       (c1, signature_of("no image"))}
