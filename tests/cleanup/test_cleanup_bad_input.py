"""cleanup/purge options that cannot work are refused before any registry is contacted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli import run_ci_env
from tests.services import free_port


@pytest.mark.parametrize("command", [["cleanup", "--dry-run"], ["purge", "--force"]])
def test_unwritable_report_is_refused_before_the_registry_is_contacted(tmp_path: Path, command: list[str]) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens: a late check would fail with "cannot reach" (exit 1)
    report = tmp_path / "missing-dir" / "report.json"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "WERF_IMAGES_REPO": f"{closed}/proj",
        "WERF_STAGES_STORAGE": f"{closed}/proj/stages",
    }
    result = run_ci_env(*command, "--report", str(report), "--dir", str(tmp_path), env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (f"ci-env: error: --report {str(report)!r} cannot be written: No such file or directory; "
                             "give a file in a writable directory\n")
    assert not report.parent.exists()


@pytest.mark.parametrize("command", [["cleanup"], ["purge", "--force"]])
def test_a_stages_storage_that_cannot_hold_stages_is_refused_before_the_registry_is_contacted(
    tmp_path: Path, command: list[str]
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WERF_IMAGES_REPO": f"{closed}/proj",
           "WERF_STAGES_STORAGE": "docker.io/acme", "KUBECONFIG": str(tmp_path / "none")}
    result = run_ci_env(*command, "--dir", str(tmp_path), env=env, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("ci-env: error: stages storage docker.io/acme (from WERF_STAGES_STORAGE) is a ")
    assert "not a repository" in result.stderr and len(result.stderr.splitlines()) == 1
