"""No credentials in what ci-env publishes or prints: ``https://user:token@host/...`` from CI variables, git
remotes or registry addresses reaches exports, annotations, labels, progress and error lines without its
``user:token@``. Every test runs ``ci-env`` as a user does and looks for the secret in everything it wrote."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from ci_env.output import Output
from tests.cli import environ_without, run_ci_env

SECRET = "tok3n-s3cret"
URL = f"https://ci-user:{SECRET}@git.example.com/group/project.git"
CLEAN = "https://git.example.com/group/project.git"

#: (system, the variables naming it, the variable holding the repository URL)
SYSTEMS = [
    ("jenkins", {"JENKINS_URL": "https://jenkins.example.com/", "BUILD_TAG": "jenkins-p-7"}, "GIT_URL"),
    ("woodpecker", {"CI": "woodpecker", "CI_REPO": "group/project", "CI_PIPELINE_NUMBER": "7"}, "CI_REPO_URL"),
    ("buildkite", {"BUILDKITE": "true", "BUILDKITE_JOB_ID": "j-7"}, "BUILDKITE_REPO"),
    ("codebuild", {"CODEBUILD_BUILD_ID": "proj:7"}, "CODEBUILD_SOURCE_REPO_URL"),
]


def _everything(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


@pytest.mark.parametrize(("system", "variables", "url_variable"), SYSTEMS)
def test_repository_url_credentials_never_reach_exports_or_detect(
    tmp_path: Path, system: str, variables: dict[str, str], url_variable: str
) -> None:
    env = {**environ_without(), "HOME": str(tmp_path), "WERF_TMP_DIR": str(tmp_path / "jobs"),
           **variables, url_variable: URL}
    setup = run_ci_env("setup", "--shell", "json", "--no-login", env=env)
    assert setup.returncode == 0, setup.stderr
    assert SECRET not in _everything(setup) and "ci-user" not in _everything(setup)
    exports = json.loads(setup.stdout)["exports"]
    assert exports["WERF_ADD_ANNOTATION_PROJECT_GIT"] == f"project.werf.io/git={CLEAN}"
    detect = run_ci_env("detect", "--json", env=env)
    assert detect.returncode == 0, detect.stderr
    assert json.loads(detect.stdout)["system"] == system
    assert json.loads(detect.stdout)["project_url"] == CLEAN
    assert SECRET not in _everything(detect)


@pytest.mark.parametrize("address", [f"ci-user:{SECRET}@registry.example.com/group/app",
                                     f"https://ci-user:{SECRET}@registry.example.com/group/app",
                                     f"{SECRET}@registry.example.com/group/app"])
def test_registry_address_with_credentials_is_refused_without_repeating_them(tmp_path: Path, address: str) -> None:
    result = run_ci_env("registry", "tags", address, env={**environ_without(), "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.startswith("ci-env: error: ") and result.stderr.count("\n") == 1
    assert "credentials" in result.stderr and "registry.example.com/group/app" in result.stderr
    assert SECRET not in _everything(result)


def test_progress_and_log_lines_never_show_url_credentials() -> None:
    stream = io.StringIO()
    out = Output("generic", stream)
    out.status(f"fetching {URL}")
    with out.section("build") as section:
        section.line(f"Step 2/3 : RUN git clone {URL}")
    assert SECRET not in stream.getvalue() and CLEAN in stream.getvalue()
