"""Which build of ci-env this is: the version and the commit its code comes from (for ``--version``).

Imported only when ``--version`` is asked: the commit comes from the stamp ``scripts/build-zipapp``
writes into the zipapp (``ci_env/_build.py``), else, in a git checkout, from git.
"""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

from ci_env import __version__


def source_commit() -> str:
    """The commit this code was built from: the zipapp's stamp, a checkout's ``HEAD`` (``+dirty`` with
    uncommitted changes under ``ci_env/``), or '' when neither tells (an installed wheel)."""
    try:
        stamp = importlib.import_module("ci_env._build")
    except ImportError:
        pass
    else:
        return str(getattr(stamp, "COMMIT", ""))
    package = Path(__file__).resolve().parent
    if not (package.parent / ".git").exists():
        return ""
    try:
        head = subprocess.run(["git", "-C", str(package.parent), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(package.parent), "status", "--porcelain", "--", "ci_env",
                                "templates"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    if head.returncode != 0:
        return ""
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def version_line() -> str:
    """``ci-env, version 0.2.0 (commit 0123abc...)``; without the parenthesis when no commit is known."""
    commit = source_commit()
    return f"ci-env, version {__version__}" + (f" (commit {commit})" if commit else "")
