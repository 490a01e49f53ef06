"""Run ``ci-env`` as a user does: ``python -m ci_env ARGS`` in a fresh process, output captured."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Variables of CI systems and of ci-env itself: tests that build on the developer's environment drop them,
#: so that a developer's own WERF_* or CI variables never change what a test observes.
CI_PREFIXES = ("WERF_", "GITHUB_", "GITLAB_", "CI_", "DOCKER_")


def environ_without(prefixes: Sequence[str] = CI_PREFIXES) -> dict[str, str]:
    """This process's environment without the variables whose names start with ``prefixes``."""
    return {k: v for k, v in os.environ.items() if not k.startswith(tuple(prefixes))}


def run_ci_env(
    *args: str,
    env: Mapping[str, str],
    cwd: str | Path | None = None,
    stdin: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m ci_env ARGS`` with exactly ``env`` (``PATH`` added when missing); never raises on exit codes."""
    full = {"PATH": os.environ["PATH"], **env}
    return subprocess.run(
        [sys.executable, "-m", "ci_env", *args],
        env=full, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
    )
