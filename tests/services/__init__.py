"""Real services for the tests: started by fixtures, stopped afterwards.

Under ``CI=true`` a missing service fails the run (``require`` calls ``pytest.fail``);
elsewhere the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable

import pytest


def in_ci() -> bool:
    """True when the tests run in CI, where every service must be present."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(program: str, why: str) -> str:
    """Return the path of ``program``; skip (laptop) or fail (CI) when it is not installed."""
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed ({why}); scripts/test installs it"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def unavailable(message: str) -> None:
    """Skip (laptop) or fail (CI) because a service could not be started."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it returns True; raise RuntimeError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout}s")
