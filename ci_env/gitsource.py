"""Where a build's source comes from, read from the project's git clone when no CI system says so.

Used for the ``org.opencontainers.image.source`` and ``.revision`` labels outside CI: the ``origin``
remote as a web URL without credentials, and the commit at ``HEAD``. Never raises: no git, no
repository or no ``origin`` simply gives None.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ci_env.redact import strip_userinfo

#: ``[user@]host:path`` (scp-like syntax of ssh remotes), not a Windows drive, a URL or a remote helper
#: (``ext::CMD``, ``persistent-https::URL``); a query or fragment (which may carry a token) is dropped.
_SCP_LIKE = re.compile(r"^(?:[^@/:\s]+@)?([^/:\s]{2,}):(?!//)(?!:)([^?#\s]+)(?:[?#]\S*)?$")
_SSH_URL = re.compile(r"^(?:ssh|git\+ssh|ssh\+git|git)://(?:[^@/]+@)?([^/:\s]+)(?::\d+)?/([^?#\s]+)(?:[?#]\S*)?$")
_WEB_URL = re.compile(r"^(https?)://([^/?#\s]+)/([^?#\s]+)(?:[?#]\S*)?$")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def source_url(remote: str) -> str | None:
    """The web URL of a git remote, without credentials and ``.git``: ``git@github.com:o/r.git`` and
    ``https://ci:TOKEN@github.com/o/r.git`` both give ``https://github.com/o/r``. None for a local path."""
    text = strip_userinfo(remote)
    match = _WEB_URL.match(text)
    if match:
        scheme, host, path = match.groups()
    elif (ssh := _SSH_URL.match(text)) is not None:
        scheme, (host, path) = "https", ssh.groups()
    elif "://" not in text and (scp := _SCP_LIKE.match(text)) is not None:
        scheme, (host, path) = "https", scp.groups()
    else:
        return None
    path = path.strip("/")
    path = path[: -len(".git")] if path.endswith(".git") else path
    return f"{scheme}://{host}/{path}" if path else None


def _git(directory: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, check=False,
                                timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def origin_url(directory: Path) -> str | None:
    """The web URL of the ``origin`` remote of the clone at ``directory`` (see :func:`source_url`), or None."""
    remote = _git(directory, "config", "--get", "remote.origin.url")
    return source_url(remote) if remote else None


def resolve_commit(directory: Path, revision: str = "HEAD") -> str | None:
    """The full id of the commit ``revision`` names in the clone at ``directory`` (``HEAD`` by default), or
    None when there is no git, no repository or no such commit."""
    sha = _git(directory, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    sha = sha.lower() if sha else None
    return sha if sha and _SHA.fullmatch(sha) else None
