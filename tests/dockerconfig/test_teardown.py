"""`ci-env teardown` from a new shell, and garbage collection of old job directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ci_env.configjson import BaseConfig
from ci_env.dockerconfig import MARKER, collect_garbage, create_job_dir, find_job_dirs, remove_job_dir
from ci_env.errors import ConfigError
from tests.dockerconfig.conftest import REPO, run_cli, tree_state


def _gitlab_job_dir(root: Path, job_id: str) -> Path:
    return create_job_dir(BaseConfig(None), root, f"gitlab-{job_id}", [])


def test_teardown_in_a_new_shell_finds_the_job_from_its_identity(base_config: Path, tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    mine = [_gitlab_job_dir(root, "100"), _gitlab_job_dir(root, "100")]
    other = _gitlab_job_dir(root, "1000")  # a job id with ours as a prefix
    other_state = tree_state(other)
    stranger = root / "ci-env.gitlab-100.notours"  # our name pattern but not made by ci-env
    stranger.mkdir()
    (stranger / "data").write_text("keep")
    # after_script: a new shell, none of the job's exports, only the CI's variables
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
           "GITLAB_CI": "true", "CI": "true", "CI_JOB_ID": "100", "WERF_TMP_DIR": str(root)}
    out = subprocess.run(["sh", "-c", f'exec "{sys.executable}" -m ci_env teardown'], env=env,
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert not any(path.exists() for path in mine)
    assert tree_state(other) == other_state
    assert (stranger / "data").read_text() == "keep"


def test_teardown_with_only_ci_job_id_and_the_ci_named(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    mine = _gitlab_job_dir(root, "5")
    out = run_cli(["teardown", "gitlab"], {"CI_JOB_ID": "5", "WERF_TMP_DIR": str(root)})
    assert out.returncode == 0, out.stderr
    assert not mine.exists()


def test_teardown_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    _gitlab_job_dir(root, "8")
    env = {"GITLAB_CI": "true", "CI_JOB_ID": "8", "WERF_TMP_DIR": str(root)}
    assert run_cli(["teardown"], env).returncode == 0
    again = run_cli(["teardown"], env)
    assert again.returncode == 0
    assert "nothing" in again.stderr or "no ci-env directory" in again.stderr


def test_teardown_removes_the_exported_docker_config(tmp_path: Path) -> None:
    job = create_job_dir(BaseConfig(None), tmp_path / "elsewhere", None, [])
    out = run_cli(["teardown"], {"DOCKER_CONFIG": str(job), "WERF_TMP_DIR": str(tmp_path / "tmp")})
    assert out.returncode == 0, out.stderr
    assert not job.exists()


def test_teardown_leaves_a_shared_docker_config_alone(tmp_path: Path) -> None:
    shared = tmp_path / ".docker"
    shared.mkdir()
    (shared / "config.json").write_text("{}")
    out = run_cli(["teardown", "-v"], {"DOCKER_CONFIG": str(shared), "WERF_TMP_DIR": str(tmp_path / "tmp")})
    assert out.returncode == 0
    assert (shared / "config.json").read_text() == "{}"
    refused = run_cli(["teardown", "--docker-config", str(shared)], {"WERF_TMP_DIR": str(tmp_path / "tmp")})
    assert refused.returncode == 2 and "not a ci-env job directory" in refused.stderr
    assert (shared / "config.json").exists()


def test_teardown_unlinks_plugins_without_touching_the_base(base_config: Path, tmp_path: Path) -> None:
    before = tree_state(base_config)
    job = create_job_dir(BaseConfig(base_config), tmp_path / "tmp", "gitlab-3", [])
    remove_job_dir(job)
    assert not job.exists()
    assert tree_state(base_config) == before


def test_remove_job_dir_refuses_other_directories(tmp_path: Path) -> None:
    other = tmp_path / "ci-env.x.y"
    other.mkdir()
    with pytest.raises(ConfigError, match="not a ci-env job directory"):
        remove_job_dir(other)
    (other / MARKER).write_text(json.dumps({"tool": "something-else"}))
    with pytest.raises(ConfigError):
        remove_job_dir(other)
    assert other.exists()


def test_find_job_dirs_matches_the_exact_key(tmp_path: Path) -> None:
    odd = "github-1-1-build/linux.x64"
    mine = create_job_dir(BaseConfig(None), tmp_path, odd, [])
    create_job_dir(BaseConfig(None), tmp_path, "github-1-1-build_linux_x64", [])
    assert find_job_dirs(tmp_path, odd) == [mine]


def _age(path: Path, hours: float) -> None:
    stamp = time.time() - hours * 3600
    os.utime(path / "config.json", (stamp, stamp))
    os.utime(path, (stamp, stamp))


def test_garbage_collection_removes_only_old_ci_env_dirs(tmp_path: Path) -> None:
    old = _gitlab_job_dir(tmp_path, "1")
    fresh = _gitlab_job_dir(tmp_path, "2")
    recently_used = _gitlab_job_dir(tmp_path, "3")
    _age(old, 7)
    _age(recently_used, 7)
    os.utime(recently_used / "config.json")  # a login an hour ago keeps it alive
    lookalike = tmp_path / "ci-env.gitlab-4.abcdefgh"  # no marker
    lookalike.mkdir()
    (lookalike / "config.json").write_text("{}")
    unrelated = tmp_path / "build-cache"
    unrelated.mkdir()
    (unrelated / MARKER).write_text(json.dumps({"tool": "ci-env", "job_key": "x"}))
    for path in (lookalike, unrelated):
        stamp = time.time() - 100 * 3600
        os.utime(path, (stamp, stamp))
    assert collect_garbage(tmp_path, max_age_hours=6) == [old]
    assert not old.exists()
    assert fresh.exists() and recently_used.exists() and lookalike.exists() and unrelated.exists()
    assert collect_garbage(tmp_path, max_age_hours=6) == []


def test_setup_then_teardown_in_a_new_shell(tmp_path: Path) -> None:
    """End to end with `ci-env setup` (helper A): only CI_JOB_ID and the tmp root survive into after_script."""
    root = tmp_path / "tmp"
    made = {}
    for job_id in ("321", "3210"):
        env = {"HOME": str(tmp_path), "WERF_TMP_DIR": str(root), "CI_JOB_ID": job_id}
        out = run_cli(["setup", "gitlab", "--shell", "json", "--no-login"], env)
        assert out.returncode == 0, out.stderr
        printed = json.loads(out.stdout)
        made[job_id] = Path(printed.get("exports", printed)["DOCKER_CONFIG"])
        assert made[job_id].is_dir()
    other_state = tree_state(made["3210"])
    out = run_cli(["teardown", "gitlab"], {"CI_JOB_ID": "321", "WERF_TMP_DIR": str(root)})
    assert out.returncode == 0, out.stderr
    assert not made["321"].exists()
    assert tree_state(made["3210"]) == other_state
