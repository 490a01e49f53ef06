"""`ci-env setup` with CI variables or outputs it cannot use: one message, exit 2, no traceback, nothing left."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.cli import run_ci_env

PYTHON = sys.executable
SECRET = "S3CR3T-setup-bad-input"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_ci_env(*args, env=env, timeout=60)


def github_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "9",
        "GITHUB_JOB": "b",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_TOKEN": SECRET,
        "GITHUB_ACTOR": "me",
        "RUNNER_TEMP": str(tmp_path / "jobs"),
        **extra,
    }


def test_github_env_that_is_a_directory_is_a_usage_error_and_leaves_no_job_dir(tmp_path: Path) -> None:
    target = tmp_path / "not-a-file"
    target.mkdir()
    result = run(["github", "--no-login", "--shell", "github-env"], github_env(tmp_path, GITHUB_ENV=str(target)))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ci-env: error: cannot append to $GITHUB_ENV")
    assert SECRET not in result.stderr and SECRET not in result.stdout
    assert not list((tmp_path / "jobs").iterdir())


def test_gitlab_registry_address_that_is_not_a_host_is_a_config_error(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "WERF_TMP_DIR": str(tmp_path / "jobs"),
        "GITLAB_CI": "true",
        "CI_JOB_ID": "1",
        "CI_REGISTRY": "registry example.com",
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": SECRET,
    }
    result = run(["setup"], env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ci-env: error: 'registry example.com' is not a usable registry address")
    assert result.stdout == (
        "echo 'ci-env setup failed: see the error above' >&2; case $- in *i*) false ;; *) exit 1 ;; esac\n"
    )
    assert SECRET not in result.stderr
    assert not (tmp_path / "jobs").exists() or not list((tmp_path / "jobs").iterdir())


def test_output_file_readable_by_others_is_narrowed_to_0600_before_the_token_is_written(tmp_path: Path) -> None:
    target = tmp_path / "exports.sh"
    target.write_text("old\n")
    target.chmod(0o644)
    result = run(["github", "--no-login", "-o", str(target)], github_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"export WERF_REPO_GITHUB_TOKEN='{SECRET}'" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
