"""scripts/build-zipapp: one file that any supported python3 runs, the same bytes for the same inputs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.integrations.conftest import ROOT
from tests.integrations.runnerenv import find_python, runner_env


def test_archive_holds_pure_python_only(zipapp: Path) -> None:
    with zipfile.ZipFile(zipapp) as archive:
        names = archive.namelist()
    assert zipapp.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    assert "__main__.py" in names and "ci_env/templates/posix.sh.j2" in names
    assert {n.split("/")[0] for n in names} >= {"ci_env", "click", "yaml", "jinja2", "markupsafe", "requests",
                                                 "urllib3", "idna", "charset_normalizer", "certifi", "filelock",
                                                 "docker"}
    assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc")) or n.startswith(("bin/", "_yaml/"))]


def test_same_inputs_give_the_same_bytes(tmp_path: Path, zipapp: Path, wheelhouse: Path, ci_env_wheel: Path) -> None:
    again = tmp_path / "again.pyz"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build-zipapp"), "-o", str(again), "--wheel", str(ci_env_wheel),
         "--resolve", "--python-version", version, "--", "--no-index", "--find-links", str(wheelhouse)],
        check=True, capture_output=True,
    )
    assert again.read_bytes() == zipapp.read_bytes()


def test_setup_runs_from_the_archive_itself(tmp_path: Path, zipapp: Path) -> None:
    """Run straight from the zip (not unpacked): the shell templates are read from inside it."""
    env = runner_env(tmp_path / "home", uv=False)
    env.update(GITHUB_ACTIONS="true", GITHUB_REPOSITORY="Octo/Repo", GITHUB_RUN_ID="5", GITHUB_JOB="j",
               RUNNER_TEMP=str(tmp_path))
    result = subprocess.run([sys.executable, str(zipapp), "setup", "--no-login", "--shell", "posix"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "export WERF_IMAGES_REPO=" in result.stdout and "ghcr.io/octo/repo" in result.stdout


def test_another_supported_python_runs_it(tmp_path: Path, zipapp: Path) -> None:
    python = find_python("3.10")
    result = subprocess.run([python, str(zipapp), "--version"], env=runner_env(tmp_path / "home", uv=False),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ci-env, version ")


def test_extras_that_cannot_run_from_a_zip_are_refused(tmp_path: Path, ci_env_wheel: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build-zipapp"), "-o", str(tmp_path / "x.pyz"),
         "--wheel", str(ci_env_wheel), "--extras", "docker,aws"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "extras ['aws'] cannot run from a zip; the zipapp carries only ['docker']" in result.stderr
    assert not (tmp_path / "x.pyz").exists()
