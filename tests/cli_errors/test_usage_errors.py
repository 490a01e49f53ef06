"""Every usage error is one line `ci-env: error: ...` with exit 2; -v wherever --verbose is; plurals right."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli import environ_without, run_ci_env


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["setup", "--bogus"], "ci-env: error: no such option '--bogus'. Did you mean '--verbose'? "
         "(see 'ci-env setup --help')"),
        (["registry", "info"], "ci-env: error: missing argument 'ADDRESS' (see 'ci-env registry info --help')"),
        (["registry", "untag", "--parallel", "0", "x/y:z"],
         "ci-env: error: invalid value for '--parallel': 0 is not in the range 1<=x<=64 "
         "(see 'ci-env registry untag --help')"),
        (["setup", "--shell", "bash"], "ci-env: error: invalid value for '--shell': 'bash' is not one of 'posix', "
         "'fish', 'powershell', 'cmdexe', 'dotenv', 'github-env', 'json' (see 'ci-env setup --help')"),
        (["no-such-command"], "ci-env: error: no such command 'no-such-command' (see 'ci-env --help')"),
        (["cleanup", "--git-tag-strategy-limit", "x"], "ci-env: error: invalid value for "
         "'--git-tag-strategy-limit': 'x' is not a valid integer range (see 'ci-env cleanup --help')"),
    ],
)
def test_click_usage_errors_are_one_line_with_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    result = run_ci_env(*args, env={**environ_without(), "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr == expected + "\n"


def test_setup_usage_error_still_stops_the_job(tmp_path: Path) -> None:
    result = run_ci_env("setup", "--bogus", env={**environ_without(), "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stdout == (
        "echo 'ci-env setup failed: see the error above' >&2; case $- in *i*) false ;; *) exit 1 ;; esac\n"
    )


@pytest.mark.parametrize("command", ["setup", "login", "teardown"])
def test_short_verbose_flag_everywhere(command: str) -> None:
    help_text = run_ci_env(command, "--help", env=environ_without()).stdout
    assert "-v, --verbose" in help_text


def test_setup_v_says_what_it_does(tmp_path: Path) -> None:
    env = {**environ_without(), "HOME": str(tmp_path), "WERF_TMP_DIR": str(tmp_path / "jobs"),
           "PATH": os.environ["PATH"]}
    result = run_ci_env("setup", "-v", "--no-login", env=env)
    assert result.returncode == 0, result.stderr
    assert "ci-env: job directory: " in result.stderr


@pytest.mark.parametrize(("refs", "line"), [
    (["docker.io/acme/app:one"], "dry run: 1 tag would be removed; nothing was changed"),
    (["docker.io/acme/app:one", "docker.io/acme/app:two"], "dry run: 2 tags would be removed; nothing was changed"),
])
def test_counts_are_plural_only_when_more_than_one(refs: list[str], line: str) -> None:
    result = run_ci_env("registry", "untag", "--dry-run", *refs, env=environ_without())
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == line
