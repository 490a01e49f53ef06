"""Where job directories may live, and job keys that two jobs running at once never share.

A tmp dir writable by every user without the sticky bit, or owned by another user, is refused (exit 2,
nothing created). Jobs of one GitHub matrix share ``$GITHUB_JOB`` and jobs of one GitLab ``parallel:`` share
their name: their keys differ by runner name, matrix index or node index, so one's teardown never removes
the other's directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.dockerconfig.conftest import run_cli

GITHUB_MATRIX = {"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_RUN_ID": "900", "GITHUB_RUN_ATTEMPT": "1",
                 "GITHUB_JOB": "build", "GITHUB_REPOSITORY": "acme/app"}
GITLAB_PARALLEL = {"GITLAB_CI": "true", "CI": "true", "CI_JOB_ID": "77", "CI_NODE_TOTAL": "2"}


def _setup(env: dict[str, str]) -> Path:
    out = run_cli(["setup", "--no-login", "--shell", "json"], env)
    assert out.returncode == 0, out.stderr
    return Path(json.loads(out.stdout)["exports"]["DOCKER_CONFIG"])


def _teardown(env: dict[str, str]) -> None:
    out = run_cli(["teardown"], env)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(("first", "second"), [
    ({**GITHUB_MATRIX, "RUNNER_NAME": "runner-1"}, {**GITHUB_MATRIX, "RUNNER_NAME": "runner-2"}),
    ({**GITHUB_MATRIX, "CI_ENV_JOB_INDEX": "0"}, {**GITHUB_MATRIX, "CI_ENV_JOB_INDEX": "1"}),
    ({**GITLAB_PARALLEL, "CI_NODE_INDEX": "1"}, {**GITLAB_PARALLEL, "CI_NODE_INDEX": "2"}),
], ids=["github-matrix-runners", "github-matrix-index", "gitlab-parallel"])
def test_one_jobs_teardown_never_removes_a_sibling_jobs_directory(
    tmp_path: Path, first: dict[str, str], second: dict[str, str]
) -> None:
    shared = {"HOME": str(tmp_path), "WERF_TMP_DIR": str(tmp_path / "jobs")}
    mine, sibling = _setup({**first, **shared}), _setup({**second, **shared})
    assert mine != sibling and mine.is_dir() and sibling.is_dir()
    _teardown({**first, **shared})
    assert not mine.exists()
    assert (sibling / "config.json").is_file()


@pytest.mark.parametrize("mode", [0o777, 0o773])
def test_tmp_dir_writable_by_everyone_without_sticky_bit_is_refused(tmp_path: Path, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    out = run_cli(["setup", "--no-login", "--tmp-dir", str(shared)], {"HOME": str(tmp_path), **GITLAB_PARALLEL})
    assert out.returncode == 2
    assert out.stderr == (f"ci-env: error: the tmp dir {shared} is writable by every user without the sticky bit "
                          f"(mode {mode:04o}): another user could replace this job's files there; set --tmp-dir or "
                          "$WERF_TMP_DIR to a directory of your own (mode 0700), or add the sticky bit (chmod +t)\n")
    assert list(shared.iterdir()) == []


def test_tmp_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    out = run_cli(["setup", "--no-login"], {"HOME": str(tmp_path), "WERF_TMP_DIR": str(theirs), **GITLAB_PARALLEL})
    assert out.returncode == 2 and "belongs to another user (uid 65534)" in out.stderr
    assert list(theirs.iterdir()) == []


def test_sticky_world_writable_tmp_dir_like_tmp_is_fine(tmp_path: Path) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    job = _setup({"HOME": str(tmp_path), "WERF_TMP_DIR": str(sticky), **GITLAB_PARALLEL})
    assert job.parent == sticky and (job.stat().st_mode & 0o777) == 0o700
