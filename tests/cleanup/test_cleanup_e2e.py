"""`python -m ci_env cleanup` / `purge` end to end: the real registry, a real git repository, records."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from tests.cleanup.world import MISSING_COMMIT, World, publish_scenario, signature_of
from tests.cli import environ_without, run_ci_env
from tests.registry_client.images import pulls
from tests.services.registry import RegistryService

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "cleanup-report.schema.json").read_text())


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {**environ_without(), "DOCKER_CONFIG": str(cwd / "no-docker-config"), **(env or {})}
    return run_ci_env(*args, env=base, cwd=cwd)


@pytest.fixture
def project(tmp_path: Path, world: World) -> dict[str, str]:
    """The shared scenario (see ``publish_scenario``): tags for branches, git tags and commits, then a branch and a
    git tag deleted."""
    scenario = publish_scenario(world, tmp_path / "project")
    return {"dir": scenario.directory, "first": scenario.first, "second": scenario.second}


def _args(world: World, project: dict[str, str]) -> list[str]:
    return ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", project["dir"]]


def test_cleanup_removes_exactly_the_stale_tags(world: World, project: dict[str, str], tmp_path: Path) -> None:
    before_api, before_web, before_stages = world.tags("api"), world.tags("web"), world.stage_tags()
    report = tmp_path / "dry.json"
    dry = run_cli("cleanup", *_args(world, project), "--dry-run", "--report", str(report), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert (world.tags("api"), world.tags("web"), world.stage_tags()) == (before_api, before_web, before_stages)
    assert "feature-a" in dry.stdout and "delete" in dry.stdout
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["dry_run"] is True and document["summary"]["removed"] == 0

    report = tmp_path / "report.json"
    result = run_cli("cleanup", *_args(world, project), "--report", str(report), cwd=tmp_path,
                     env={"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")})
    assert result.returncode == 0, result.stderr
    first, second = project["first"], project["second"]
    assert world.tags("api") == {"main", "latest", "v2", first, second}
    assert world.tags("web") == {"brand-new"}
    # latest shared its image with the deleted feature-a tag: it still pulls
    assert pulls(world.client, world.images_repo.child("api").path, "latest")
    assert world.stage_tags() == {signature_of(n) for n in ("main", "feat", "v2", "c1", "c2")}
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    outcomes = {(d["image"], d["tag"]): (d["action"], d["outcome"])
                for d in document["decisions"] if d["kind"] == "tag"}
    assert outcomes[("api", "feature-a")] == ("delete", "removed")
    assert outcomes[("web", "brand-new")] == ("keep", "kept")
    assert document["summary"]["failed"] == 0
    summary = (tmp_path / "summary.md").read_text()
    api = summary.split("<details><summary><b>api</b>", 1)[1].split("</details>", 1)[0]
    assert re.search(r"^\| feature-a \| `[0-9a-f]{12}` \| removed \|", api, re.MULTILINE)
    assert "freed once the registry's garbage collection runs" in summary
    assert document["bytes"]["freed"] > 0 and "freed once the registry's garbage collection runs" in result.stderr
    assert not any(name.endswith((":feature-a", ":v1", f":{MISSING_COMMIT}")) for name in world.record_names())

    again = run_cli("cleanup", *_args(world, project), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert world.tags("api") == {"main", "latest", "v2", first, second}


def test_limits_and_keep_tag_from_variables(world: World, project: dict[str, str], tmp_path: Path) -> None:
    env = {"WERF_GIT_COMMIT_STRATEGY_LIMIT": "1", "WERF_KEEP_TAG": "feature-.*", "WERF_KEEP_PUBLISHED_WITHIN": "0"}
    result = run_cli("cleanup", *_args(world, project), cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert world.tags("api") == {"main", "latest", "feature-a", "v2", project["second"]}
    assert world.tags("web") == {"feature-a"}


def test_purge_needs_force(world: World, project: dict[str, str], tmp_path: Path) -> None:
    before = world.tags("api")
    plan = run_cli("purge", *_args(world, project), cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert "--force" in plan.stderr and world.tags("api") == before
    done = run_cli("purge", *_args(world, project), "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert world.tags("api") == set() and world.tags("web") == set() and world.stage_tags() == set()


def test_shallow_clone_is_refused(world: World, project: dict[str, str], tmp_path: Path) -> None:
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{project['dir']}", str(clone)], check=True)
    result = run_cli("cleanup", "-i", str(world.images_repo), "-s", str(world.stages), "--dir", str(clone),
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "shallow clone" in result.stderr and "Traceback" not in result.stderr


def test_a_single_branch_clone_is_refused_and_synchronisation_keeps_the_live_branch(
    world: World, project: dict[str, str], tmp_path: Path,
) -> None:
    origin = Path(project["dir"])
    subprocess.run(["git", "-C", str(origin), "branch", "live"], check=True)
    world.publish("api", "live", "git-branch", git_ref="live", signature=signature_of("live"))
    clone = tmp_path / "single-branch"
    subprocess.run(["git", "clone", "-q", "--single-branch", "--branch", "main", f"file://{origin}", str(clone)],
                   check=True)
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", str(clone)]
    before = world.tags("api")

    refused = run_cli("cleanup", *args, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    error = refused.stderr.split("ci-env: error: ", 1)[1]
    assert error.startswith(f"{clone} is a clone that hides branches of origin") and "Traceback" not in error
    assert "--git-history-synchronization" in error and "fetch-depth: 0" in error
    assert world.tags("api") == before  # nothing removed

    synchronised = run_cli("cleanup", *args, "--git-history-synchronization", cwd=tmp_path)
    assert synchronised.returncode == 0, synchronised.stderr
    assert "live" in world.tags("api")  # its branch exists on origin
    assert "feature-a" not in world.tags("api")  # its branch was deleted


@pytest.mark.parametrize(("clone_args", "why", "kept"), [
    (["--no-tags"], "hides the git tags of origin (remote.origin.tagOpt --no-tags)", "v2"),
    (["--origin", "upstream"], "names its remote upstream, not origin", "live"),
], ids=["no-tags", "remote-not-origin"])
def test_a_clone_that_hides_git_tags_or_names_its_remote_otherwise_is_refused(
    world: World, project: dict[str, str], tmp_path: Path, clone_args: list[str], why: str, kept: str,
) -> None:
    """``git clone --no-tags`` shows no git tag (every git tag's image would look stale), and a clone whose remote
    is not called origin shows no origin/* branch (every branch but the checked-out one would look deleted)."""
    origin = Path(project["dir"])
    subprocess.run(["git", "-C", str(origin), "branch", "live"], check=True)
    world.publish("api", "live", "git-branch", git_ref="live", signature=signature_of("live"))
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", *clone_args, f"file://{origin}", str(clone)], check=True)
    before = world.tags("api")
    assert kept in before

    refused = run_cli("cleanup", "-i", str(world.images_repo), "-s", str(world.stages), "--dir", str(clone),
                      cwd=tmp_path)
    assert world.tags("api") == before  # nothing removed
    assert refused.returncode == 2, refused.stderr
    error = refused.stderr.split("ci-env: error: ", 1)[1]
    assert why in error and "Traceback" not in error
    assert "--git-history-synchronization" in error


@pytest.mark.parametrize(("args", "message"), [
    (["--keep-published-within", "2 hours"], "is not a duration"),
    (["--keep-tag", "("], "is not a valid regular expression"),
    (["--keep-list", "/nonexistent/keep"], "cannot be read"),
])
def test_bad_options_exit_2(world: World, project: dict[str, str], tmp_path: Path, args: list[str],
                            message: str) -> None:
    result = run_cli("cleanup", *_args(world, project), *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_missing_images_repo_exit_2(tmp_path: Path) -> None:
    result = run_cli("cleanup", cwd=tmp_path)
    assert result.returncode == 2 and "--images-repo" in result.stderr


def test_gitlab_dry_run_plan_is_a_collapsed_section_and_progress_goes_to_stderr(
    world: World, project: dict[str, str], tmp_path: Path
) -> None:
    before = world.tags("api")
    result = run_cli("cleanup", *_args(world, project), "--dry-run", cwd=tmp_path,
                     env={"GITLAB_CI": "true", "CI": "true"})
    assert result.returncode == 0, result.stderr
    assert world.tags("api") == before
    # (text mode reads GitLab's "\r" as a line end)
    start, _, rest = result.stdout.partition("[collapsed=true]\n\x1b[0Kcleanup plan: 8 to remove (dry run")
    assert start.startswith("\x1b[0Ksection_start:") and "\x1b[0Ksection_end:" in rest
    inside = rest.split("\x1b[0Ksection_end:")[0]
    assert "feature-a" in inside and "would-remove" in inside
    progress = [line for line in result.stderr.splitlines() if line.startswith("ci-env: ")]
    assert progress[0].startswith("ci-env: kubernetes: no kubeconfig found")  # before planning
    assert progress[1].startswith("ci-env: reading the publication records in ")
    # only the tags the plan removes are resolved (3 in api), never the tags it keeps
    assert any(line.startswith("ci-env: resolving the tags to remove in ") and line.endswith("/3") for line in progress)
    # bytes: one GET per digest removed (8 tags, 5 distinct images)
    assert "ci-env: measuring the manifests to remove: 5/5" in progress
    assert len(progress) <= 11 and "section_start" not in result.stderr


def test_removal_reuses_the_listing_and_records_are_deleted_without_listing(
    world: World, project: dict[str, str], tmp_path: Path, registry_open: RegistryService
) -> None:
    records_before = world.record_names()
    before = len(registry_open.requests())
    result = run_cli("cleanup", *_args(world, project), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    made = [(method, path.split("?")[0]) for method, path, _status in registry_open.requests()[before:]]
    api, stages = world.images_repo.child("api").path, world.stages.path
    # the images repository is listed once: the removal starts from the plan's tag map
    assert made.count(("GET", f"/v2/{api}/tags/list")) == 1
    # the stages repository: once for every record kind (publications, managed images, metadata), once for
    # the stages, once for the removal of stages, once right before the removals (the records published again
    # since the plan); forgetting the records lists nothing: each record's tag is resolved, then its manifest
    # deleted by digest
    assert made.count(("GET", f"/v2/{stages}/tags/list")) == 4
    forgotten = records_before - world.record_names()
    assert any(name.endswith(":feature-a") for name in forgotten)
