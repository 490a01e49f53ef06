"""`ci-env setup` end to end: the CLI in a subprocess, a controlled environment, real registries."""

from __future__ import annotations

import base64
import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run_ci_env
from tests.conftest import USERS
from tests.services import require
from tests.services.registry import RegistryService

pytestmark = pytest.mark.services
PYTHON = sys.executable
SETUP = f"{shlex.quote(PYTHON)} -m ci_env setup"


def gitlab_env(tmp_path: Path, registry: RegistryService, user: str, password: str) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "WERF_TMP_DIR": str(tmp_path / "jobs"),
        "GITLAB_CI": "true",
        "CI_JOB_ID": "4242",
        "CI_PIPELINE_ID": "17",
        "CI_COMMIT_SHA": "abc123",
        "CI_COMMIT_REF_NAME": "main",
        "CI_COMMIT_BRANCH": "main",
        "CI_REGISTRY": registry.host,
        "CI_REGISTRY_IMAGE": f"{registry.host}/group/project",
        "CI_REGISTRY_USER": user,
        "CI_REGISTRY_PASSWORD": password,
        "CI_JOB_TOKEN": "job-token-never-shown",
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_ci_env(*args, env=env, timeout=60)


def job_dirs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "jobs"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


@pytest.fixture(params=["registry_htpasswd", "registry_token"])
def registry(request: pytest.FixtureRequest) -> RegistryService:
    service: RegistryService = request.getfixturevalue(request.param)
    return service


def test_setup_logs_in_and_exports_the_private_config(tmp_path: Path, registry: RegistryService) -> None:
    env = gitlab_env(tmp_path, registry, "bob", USERS["bob"])
    result = run(["setup", "--verbose"], env)
    assert result.returncode == 0, result.stderr
    [job_dir] = job_dirs(tmp_path)
    assert f"export DOCKER_CONFIG='{job_dir}'" in result.stdout
    assert f"export WERF_IMAGES_REPO='{registry.host}/group/project'" in result.stdout
    assert "export WERF_IMAGES_REPO_IMPLEMENTATION='gitlab'" in result.stdout
    auths = json.loads((job_dir / "config.json").read_text())["auths"]
    assert base64.b64decode(auths[registry.host]["auth"]).decode() == f"bob:{USERS['bob']}"
    assert USERS["bob"] not in result.stderr and "job-token-never-shown" not in result.stderr
    assert ("GET", "/v2/", 200) in registry.requests()


def test_bad_password_fails_with_registry_and_status_and_leaves_nothing(
    tmp_path: Path, registry: RegistryService
) -> None:
    env = gitlab_env(tmp_path, registry, "alice", "wrong-secret-pw")
    result = run(["setup", "--verbose"], env)
    assert result.returncode == 1
    assert registry.host in result.stderr and "401" in result.stderr
    assert "wrong-secret-pw" not in result.stderr and "wrong-secret-pw" not in result.stdout
    assert "export" not in result.stdout and "exit 1" in result.stdout
    assert job_dirs(tmp_path) == []


def test_no_verify_login_writes_credentials_without_asking_the_registry(
    tmp_path: Path, registry_htpasswd: RegistryService
) -> None:
    env = gitlab_env(tmp_path, registry_htpasswd, "alice", "not-checked")
    before = len(registry_htpasswd.requests())
    result = run(["setup", "--no-verify-login", "--shell", "json"], env)
    assert result.returncode == 0, result.stderr
    assert len(registry_htpasswd.requests()) == before
    config = Path(json.loads(result.stdout)["exports"]["DOCKER_CONFIG"]) / "config.json"
    assert registry_htpasswd.host in json.loads(config.read_text())["auths"]


def test_as_file_writes_a_private_script_and_prints_only_its_path(tmp_path: Path, registry: RegistryService) -> None:
    env = gitlab_env(tmp_path, registry, "alice", USERS["alice"])
    result = run(["setup", "--as-file"], env)
    assert result.returncode == 0, result.stderr
    script = Path(result.stdout.strip())
    assert result.stdout == f"{script}\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o600
    assert stat.S_IMODE(script.parent.stat().st_mode) == 0o700
    assert "export DOCKER_CONFIG=" in script.read_text()


SHELLS = [
    ("bash", 'eval "$({setup})"'),
    ("bash", '. "$({setup} --as-file)"'),
    ("dash", 'eval "$({setup})"'),
    ("dash", '. "$({setup} --as-file)"'),
    ("zsh", 'eval "$({setup})"'),
    ("zsh", '. "$({setup} --as-file)"'),
]


@pytest.mark.parametrize(
    ("program", "line"), SHELLS, ids=[f"{p}-{'file' if 'as-file' in x else 'eval'}" for p, x in SHELLS]
)
def test_job_continues_with_exports_when_setup_succeeds(
    tmp_path: Path, registry_htpasswd: RegistryService, program: str, line: str
) -> None:
    shell = require(program, "setup's output is evaluated by the real shell")
    env = gitlab_env(tmp_path, registry_htpasswd, "alice", USERS["alice"])
    script = f'set -e\n{line.format(setup=SETUP)}\nprintf \'%s\\n\' "$DOCKER_CONFIG" "$REGISTRY_AUTH_FILE"\n'
    result = subprocess.run([shell, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    [job_dir] = job_dirs(tmp_path)
    assert result.stdout.splitlines() == [str(job_dir), str(job_dir / "config.json")]


@pytest.mark.parametrize(
    ("program", "line"), SHELLS, ids=[f"{p}-{'file' if 'as-file' in x else 'eval'}" for p, x in SHELLS]
)
def test_job_stops_under_set_e_when_setup_fails(
    tmp_path: Path, registry_htpasswd: RegistryService, program: str, line: str
) -> None:
    shell = require(program, "setup's output is evaluated by the real shell")
    env = gitlab_env(tmp_path, registry_htpasswd, "alice", "bad-password")
    script = f"set -e\n{line.format(setup=SETUP)}\necho job-continued\n"
    result = subprocess.run([shell, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "job-continued" not in result.stdout
    assert "401" in result.stderr and "bad-password" not in result.stderr
    assert job_dirs(tmp_path) == []


@pytest.mark.parametrize("program", ["bash", "dash", "zsh"])
def test_a_mistyped_option_also_stops_eval(tmp_path: Path, registry_htpasswd: RegistryService, program: str) -> None:
    shell = require(program, "setup's output is evaluated by the real shell")
    env = gitlab_env(tmp_path, registry_htpasswd, "alice", USERS["alice"])
    script = f'set -e\neval "$({SETUP} --shel posix)"\necho job-continued\n'
    result = subprocess.run([shell, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "job-continued" not in result.stdout


def test_output_file_is_truncated_and_written(tmp_path: Path, registry_htpasswd: RegistryService) -> None:
    env = gitlab_env(tmp_path, registry_htpasswd, "alice", USERS["alice"])
    target = tmp_path / "env.fish"
    target.write_text("x" * 10000)
    result = run(["setup", "--shell", "fish", "-o", str(target)], env)
    assert result.returncode == 0 and result.stdout == ""
    assert target.read_text().count("set -gx DOCKER_CONFIG ") == 1 and "xxx" not in target.read_text()


def test_github_env_appends_and_masks(tmp_path: Path) -> None:
    github_env = tmp_path / "github_env"
    github_env.write_text("EARLIER=1\n")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GITHUB_ACTIONS": "true",
        "GITHUB_RUN_ID": "9",
        "GITHUB_JOB": "b",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_TOKEN": "ghs_tok",
        "GITHUB_ACTOR": "me",
        "RUNNER_TEMP": str(tmp_path / "jobs"),
        "GITHUB_ENV": str(github_env),
    }
    result = run(["github", "--no-login", "--shell", "github-env", "--verbose"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "::add-mask::ghs_tok\n"
    text = github_env.read_text()
    assert text.startswith("EARLIER=1\n") and "WERF_REPO_GITHUB_TOKEN=ghs_tok\n" in text
    assert "WERF_IMAGES_REPO=ghcr.io/o/r\n" in text and "ghs_tok" not in result.stderr


def test_kept_variable_is_reported_in_a_comment(tmp_path: Path, registry_htpasswd: RegistryService) -> None:
    env = {**gitlab_env(tmp_path, registry_htpasswd, "alice", USERS["alice"]),
           "WERF_IMAGES_REPO": "registry.example.com/mine/app"}
    result = run(["setup", "--no-login"], env)
    assert "# WERF_IMAGES_REPO is already set: kept" in result.stdout
    assert "export WERF_STAGES_STORAGE='registry.example.com/mine/app/stages'" in result.stdout
    assert "WERF_IMAGES_REPO='" not in result.stdout
    replaced = run(["setup", "--no-login", "--override"], env)
    assert f"export WERF_IMAGES_REPO='{registry_htpasswd.host}/group/project'" in replaced.stdout


def test_dotenv_value_it_cannot_hold_is_an_error_without_exports(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "WERF_TMP_DIR": str(tmp_path / "jobs"),
        "GITLAB_CI": "true",
        "CI_JOB_ID": "1",
        "CI_ENVIRONMENT_SLUG": " padded ",
    }
    result = run(["setup", "--shell", "dotenv", "--override"], env)
    assert result.returncode == 2 and result.stdout == ""
    assert "WERF_ENV" in result.stderr and "Traceback" not in result.stderr
    assert job_dirs(tmp_path) == []
