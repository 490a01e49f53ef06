"""A cleanup stopped by --time-budget or killed mid-removal leaves a journal; the next run plans afresh and
removes first the journal's pending removals today's plan removes too (a journal never widens what a run
removes). The real registry (behind a proxy that makes every request slow, ``tests.services.latency_proxy``,
where timing matters), the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
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
    proxy: LatencyProxy | None
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


SOME_STALE = STALE[:6]


@pytest.fixture
def plain(world: World, tmp_path: Path) -> Scene:
    """4 tags of branches that exist and 6 of branches deleted, on the real registry without a proxy."""
    git = GitRepo(tmp_path / "project")
    head = git.commit("one")
    for branch in KEPT:
        git.git("update-ref", f"refs/heads/{branch}", head)
    for tag in KEPT + SOME_STALE:
        world.publish("app", tag, "git-branch", git_ref=tag)
    return Scene(world, git, None, tmp_path)


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


# ------------------------------------------------------------------ a journal never widens what a run removes


def _digest(scene: Scene, repository: RepoAddress, tag: str) -> str:
    found = scene.world.client.resolve(repository.path, tag)
    assert found is not None
    return found.digest


def _honest_journal(scene: Scene, path: Path, tags: list[str], **kw: object) -> None:
    """The journal a run that planned to remove ``tags`` of app (at their digests now) would have left."""
    app = scene.world.images_repo.child("app")
    entries = [jr.Entry(str(app), tag, _digest(scene, app, tag), "tag", "app") for tag in tags]
    jr.Journal.create(path, _journal_target(scene), entries, **kw).close()  # type: ignore[arg-type]


def _resumed(report: Path) -> dict[str, str]:
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    return {f"{r['repository']}:{r['tag']}": r["outcome"] for r in document.get("resumed", ())}


def test_a_planted_journal_removes_nothing_today_s_plan_keeps_nor_another_team_s_image(plain: Scene) -> None:
    world = plain.world
    plain.git.git("update-ref", "refs/heads/main", plain.git.git("rev-parse", "HEAD"))
    world.publish("api", "main", "git-branch", git_ref="main")  # kept: its branch exists
    api = world.images_repo.child("api")
    db = RepoAddress(world.images_repo.registry, f"other-team-{uuid.uuid4().hex[:8]}/db")
    world.push(db, "prod", None)
    journal = plain.tmp / "journal.jsonl"
    header = {"schema": jr.SCHEMA, "command": "cleanup", "images_repo": str(world.images_repo),
              "stages_storage": str(world.stages), "created": datetime.now(timezone.utc).isoformat()}
    planted = [header, {"plan": {"repository": str(api), "tag": "main", "digest": _digest(plain, api, "main")}},
               {"plan": {"repository": str(db), "tag": "prod", "digest": _digest(plain, db, "prod")}}]
    fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("".join(json.dumps(line) + "\n" for line in planted))

    report = plain.tmp / "report.json"
    result = run_ci_env(*plain.args(), "--journal", str(journal), "--report", str(report), env=plain.env(),
                        cwd=plain.tmp)
    assert result.returncode == 0, result.stderr
    assert world.client.resolve(db.path, "prod") is not None
    assert world.client.resolve(api.path, "main") is not None
    assert plain.tags() == set(KEPT)  # today's plan ran as usual
    assert _resumed(report) == {f"{api}:main": "kept", f"{db}:prod": "outside"}
    assert f"journal: dropped {api}:main (kept): today's plan keeps it" in result.stderr
    assert f"journal: dropped {db}:prod (outside): not a repository of this images repo" in result.stderr
    assert not journal.exists()


def test_an_honest_journal_removes_only_what_today_s_plan_removes_after_the_history_changed(plain: Scene) -> None:
    journal = plain.tmp / "journal.jsonl"
    _honest_journal(plain, journal, SOME_STALE, now=datetime.now(timezone.utc) - timedelta(days=3))
    back = SOME_STALE[:2]  # their branches come back: today's keep policies keep their tags
    for branch in back:
        plain.git.git("update-ref", f"refs/heads/{branch}", plain.git.git("rev-parse", "HEAD"))

    report = plain.tmp / "report.json"
    result = run_ci_env(*plain.args(), "--journal", str(journal), "--report", str(report), env=plain.env(),
                        cwd=plain.tmp)
    assert result.returncode == 0, result.stderr
    assert plain.tags() == {*KEPT, *back}
    app = plain.world.images_repo.child("app")
    assert _resumed(report) == {f"{app}:{tag}": "kept" if tag in back else "removed" for tag in SOME_STALE}
    assert "2 dropped" in result.stderr and "4 of them go first" in result.stderr
    assert not journal.exists()


def _symlinked(path: Path) -> None:
    real = path.with_name("real.jsonl")
    path.rename(real)
    path.symlink_to(real)


def _open_directory(path: Path) -> None:
    path.parent.chmod(0o777)


@pytest.mark.parametrize(("spoil", "why"), [
    (_symlinked, "is a symlink"),
    (lambda path: path.chmod(0o620), "is writable by group or others (mode 0620; chmod 600 it if it is yours)"),
    (lambda path: os.chown(path, 12345, -1), "is owned by uid 12345, not by the user running cleanup"),
    (_open_directory, "which group or others can write to (mode 0777; chmod go-w it)"),
], ids=["symlink", "group-writable", "foreign-owner", "open-directory"])
def test_a_journal_others_could_have_written_is_refused_before_anything_is_removed(
        plain: Scene, spoil: object, why: str) -> None:
    if os.geteuid() != 0 and "uid" in why:
        pytest.skip("chown to another uid needs root")  # the machine's test runs are root
    directory = plain.tmp / "cache"
    journal = directory / "journal.jsonl"
    _honest_journal(plain, journal, SOME_STALE)
    spoil(journal)  # type: ignore[operator]
    before = journal.read_bytes()
    result = run_ci_env(*plain.args(), "--journal", str(journal), env=plain.env(), cwd=plain.tmp)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("cleanup: "), lines  # the target line, then the error
    assert lines[1].startswith(f"ci-env: error: the cleanup journal {journal} ") and why in lines[1], lines
    assert plain.tags() == {*KEPT, *SOME_STALE}
    assert journal.read_bytes() == before


def test_a_journal_of_another_ci_ref_is_ignored_with_a_line(plain: Scene) -> None:
    journal = plain.tmp / "journal.jsonl"
    _honest_journal(plain, journal, SOME_STALE, ref="feature-x")
    report = plain.tmp / "report.json"
    env = {**plain.env(), "GITLAB_CI": "true", "CI_COMMIT_REF_NAME": "main", "CI_COMMIT_BRANCH": "main"}
    result = run_ci_env(*plain.args(), "--journal", str(journal), "--report", str(report), env=env, cwd=plain.tmp)
    assert result.returncode == 0, result.stderr
    assert (f"cleanup: the journal {journal} was written for ref feature-x, not for main (another branch's "
            "cache?): ignored, and replaced by this run's") in result.stderr
    assert "resuming" not in result.stderr and _resumed(report) == {}
    assert plain.tags() == set(KEPT)  # today's plan, as without a journal


def test_a_journal_git_tracks_in_the_clone_is_ignored_and_left_alone(plain: Scene) -> None:
    journal = plain.git.path / ".ci-env" / "cleanup.jsonl"
    _honest_journal(plain, journal, SOME_STALE)
    plain.git.git("add", "-f", str(journal))
    plain.git.commit("a journal in the repository")
    before = journal.read_bytes()
    report = plain.tmp / "report.json"
    result = run_ci_env(*plain.args(), "--journal", str(journal), "--report", str(report), env=plain.env(),
                        cwd=plain.tmp)
    assert result.returncode == 0, result.stderr
    assert (f"ci-env: warning: the cleanup journal {journal} is a file git tracks in {plain.git.path}: ignored, "
            "and this run keeps no journal") in result.stderr
    assert _resumed(report) == {}
    assert journal.read_bytes() == before
    assert plain.tags() == set(KEPT)


def test_a_journal_is_written_0600_in_a_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ci-env" / "j.jsonl"
    jr.Journal.create(path, _target(), [jr.Entry("r/app", "t", None)]).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text().splitlines()[0])["ref"] is None


def test_a_directory_others_can_write_to_is_refused_before_the_first_journal_goes_there(tmp_path: Path) -> None:
    directory = tmp_path / "open"
    directory.mkdir()
    directory.chmod(0o777)
    with pytest.raises(UsageError, match="which group or others can write to"):
        jr.load(directory / "j.jsonl", _target())
    directory.chmod(0o1777)  # sticky, as /tmp: no one replaces another's file there
    assert jr.load(directory / "j.jsonl", _target()) is None
