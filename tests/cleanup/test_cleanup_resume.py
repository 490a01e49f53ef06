"""A cleanup stopped by --time-budget or killed mid-removal leaves a journal; the next run finishes it (only the
planned removals whose tag still points at the planned digest), then plans afresh. The real registry behind a
proxy that makes every request slow (``tests.services.latency_proxy``), the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from ci_env.cleanup import journal as jr
from ci_env.errors import UsageError
from ci_env.registry.reference import RepoAddress
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.world import World
from tests.cli import environ_without, run_ci_env
from tests.services.latency_proxy import LatencyProxy
from tests.services.registry import RegistryService

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "cleanup-report.schema.json").read_text())
KEPT = [f"keep-{n}" for n in range(4)]
STALE = [f"gone-{n:02d}" for n in range(30)]


@dataclass
class Scene:
    world: World
    git: GitRepo
    proxy: LatencyProxy
    tmp: Path

    def args(self) -> list[str]:
        return ["cleanup", "-i", str(self.world.images_repo), "-s", str(self.world.stages), "--dir",
                str(self.git.path), "--keep-published-within", "0", "--without-kube"]

    def env(self) -> dict[str, str]:
        return {"PATH": os.environ["PATH"], **environ_without(), "DOCKER_CONFIG": str(self.tmp / "no-docker-config")}

    def tags(self) -> set[str]:
        return self.world.tags("app")


@pytest.fixture
def scene(world: World, registry_open: RegistryService, tmp_path: Path) -> Iterator[Scene]:
    """4 tags of branches that exist and 30 of branches deleted (each its own image) in repositories addressed
    through a proxy that adds 150 ms to every request (the test's own pushes go directly)."""
    proxy = LatencyProxy(registry_open.host, delay=0.15)
    world = World(world.client, RepoAddress(proxy.host, world.images_repo.path),
                  RepoAddress(proxy.host, world.stages.path))
    git = GitRepo(tmp_path / "project")
    head = git.commit("one")
    for branch in KEPT:
        git.git("update-ref", f"refs/heads/{branch}", head)
    for tag in KEPT + STALE:
        world.publish("app", tag, "git-branch", git_ref=tag)
    yield Scene(world, git, proxy, tmp_path)
    proxy.stop()


def _journal_target(scene: Scene) -> jr.Target:
    return jr.Target("cleanup", str(scene.world.images_repo), str(scene.world.stages))


def _done_lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text().splitlines() if line.startswith('{"done"'))
    except FileNotFoundError:
        return 0


def test_a_killed_cleanup_is_finished_by_the_next_run_and_a_moved_tag_stays(scene: Scene) -> None:
    journal = scene.tmp / "journal.jsonl"
    command = [sys.executable, "-m", "ci_env", *scene.args(), "--parallel", "1", "--journal", str(journal)]
    process = subprocess.Popen(command, env=scene.env(), cwd=scene.tmp, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _done_lines(journal) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, stderr

    state = jr.load(journal, _journal_target(scene))
    assert state is not None
    assert sorted(e.tag for e in state.entries) == STALE  # every planned removal, with its digest
    assert all(e.digest and e.digest.startswith("sha256:") for e in state.entries)
    finished = {tag for (_, tag), outcome in state.done.items() if outcome == "removed"}
    assert 3 <= len(finished) < len(STALE)
    left = scene.tags()
    assert set(KEPT) <= left and not finished & left  # what it finished is gone, what it kept is there

    # meanwhile a branch of a pending tag comes back with a new image under the same tag
    moved = next(e for e in state.pending if e.tag in left)
    scene.git.git("update-ref", f"refs/heads/{moved.tag}", scene.git.git("rev-parse", "HEAD"))
    repository = scene.world.images_repo.child("app")
    new_image = scene.world.push(repository, moved.tag, None)
    assert new_image.digest != moved.digest

    report = scene.tmp / "report.json"
    again = run_ci_env(*scene.args(), "--journal", str(journal), "--report", str(report),
                       env=scene.env(), cwd=scene.tmp, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "resuming the journal" in again.stderr
    assert not journal.exists()
    # the same end as a clean run on this repository: the stale tags gone, the kept ones and the moved one there
    assert scene.tags() == {*KEPT, moved.tag}
    assert scene.world.client.resolve(repository.path, moved.tag).digest == new_image.digest  # type: ignore[union-attr]
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    resumed = {r["tag"]: r["outcome"] for r in document["resumed"]}
    assert set(resumed) == {e.tag for e in state.pending}  # the journal's pending removals and nothing else
    assert resumed[moved.tag] == "moved"
    assert {outcome for tag, outcome in resumed.items() if tag != moved.tag} <= {"removed", "absent"}


def test_a_time_budget_stops_in_time_with_exit_3_and_the_next_run_continues(scene: Scene) -> None:
    journal = scene.tmp / "journal.jsonl"
    report = scene.tmp / "report.json"
    started = time.monotonic()
    first = run_ci_env(*scene.args(), "--parallel", "1", "--time-budget", "20s", "--journal", str(journal),
                       "--report", str(report), env=scene.env(), cwd=scene.tmp, timeout=300)
    elapsed = time.monotonic() - started
    assert first.returncode == 3, first.stderr
    assert elapsed < 20 + 3  # the budget, and the interpreter's start, which it does not count
    assert "stopped by --time-budget" in first.stderr and "exit code 3" in first.stderr
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["partial"] == {"stopped_by": "time-budget", "journal": str(journal)}
    not_started = document["summary"]["not_attempted"]
    assert 0 < not_started <= len(STALE) and document["summary"]["removed"] == len(STALE) - not_started
    assert set(KEPT) <= scene.tags()
    state = jr.load(journal, _journal_target(scene))
    assert state is not None and len(state.pending) == not_started

    second = run_ci_env(*scene.args(), "--journal", str(journal), env=scene.env(), cwd=scene.tmp,
                        timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{not_started} removed" in second.stderr  # the journal's line
    assert scene.tags() == set(KEPT)
    assert not journal.exists()


def test_a_time_budget_that_is_not_a_duration_is_a_usage_error(scene: Scene) -> None:
    result = run_ci_env(*scene.args(), "--time-budget", "soon", env=scene.env(), cwd=scene.tmp)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ci-env: error: --time-budget 'soon' is not a duration: write a number with a unit, e.g. 50m, 2h or 1h30m "
        "(s, m, h, d), below the CI job's timeout"]
    assert scene.tags() == {*KEPT, *STALE}


def test_a_journal_of_another_images_repo_is_refused_before_anything_is_removed(scene: Scene) -> None:
    journal = scene.tmp / "journal.jsonl"
    other = jr.Target("cleanup", "registry.example.com/other", None)
    jr.Journal.create(journal, other, [jr.Entry("registry.example.com/other/app", "x", "sha256:" + "1" * 64)]).close()
    result = run_ci_env(*scene.args(), "--journal", str(journal), env=scene.env(), cwd=scene.tmp)
    assert result.returncode == 2
    assert "belongs to `cleanup` of registry.example.com/other" in result.stderr
    assert scene.tags() == {*KEPT, *STALE}


# ------------------------------------------------------------------ the journal file


def _target() -> jr.Target:
    return jr.Target("cleanup", "registry.example.com/app", "registry.example.com/stages")


def test_a_journal_line_cut_short_by_a_kill_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    entries = [jr.Entry("registry.example.com/app/api", f"t{n}", "sha256:" + f"{n:064x}") for n in range(3)]
    writer = jr.Journal.create(path, _target(), entries)
    writer.record("registry.example.com/app/api", "t0", "removed")
    writer.close()
    with path.open("a") as handle:
        handle.write('{"done": ["registry.example.com/app/api", "t1"], "outc')  # the kill came mid-line
    state = jr.load(path, _target())
    assert state is not None
    assert [e.tag for e in state.pending] == ["t1", "t2"]


def test_a_finished_journal_is_deleted_and_an_old_one_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    writer = jr.Journal.create(path, _target(), [jr.Entry("r/app", "t", None)],
                               now=datetime.now(timezone.utc) - jr.MAX_AGE - timedelta(hours=1))
    writer.close()
    assert jr.load(path, _target()) is None  # too old: the run plans afresh
    jr.Journal.create(path, _target(), []).finish()
    assert not path.exists()


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text("hello\n")
    with pytest.raises(UsageError, match="is not a ci-env cleanup journal"):
        jr.load(path, _target())


def test_the_default_journal_lives_in_the_state_directory() -> None:
    path = jr.default_path({"XDG_STATE_HOME": "/state"}, _target())
    assert path.parent == Path("/state/ci-env/journal") and path.name.startswith("cleanup-")
    assert jr.default_path({"HOME": "/home/u"}, _target()).parent == Path("/home/u/.local/state/ci-env/journal")
