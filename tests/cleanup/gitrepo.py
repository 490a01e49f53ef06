"""A real git repository for the cleanup tests: commits, branches, tags, an origin remote."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


class GitRepo:
    """A working copy at ``path``, driven through the git CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, date: str | None = None) -> str:
        env = {**os.environ, **GIT_ENV}
        if date is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
        return subprocess.run(["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True,
                              env=env).stdout.strip()

    def commit(self, message: str, date: str | None = None) -> str:
        self.git("commit", "-q", "--allow-empty", "-m", message, date=date)
        return self.git("rev-parse", "HEAD")

    def long_history(self, count: int, newest: int, step: int = 60, branch: str = "main") -> list[str]:
        """``count`` more commits on ``branch`` made at once by ``git fast-import``, the newest dated ``newest``
        (Unix seconds) and each ``step`` seconds before the next; returns their ids, newest first, and checks
        ``branch`` out."""
        parent = subprocess.run(["git", "-C", str(self.path), "rev-parse", "-q", "--verify", f"refs/heads/{branch}"],
                                capture_output=True, text=True).stdout.strip()
        chunks = []
        for n in range(count):
            message = f"bulk {n}\n"
            chunks.append(f"commit refs/heads/{branch}\ncommitter Test <t@example.com> "
                          f"{newest - (count - 1 - n) * step} +0000\ndata {len(message)}\n{message}"
                          + (f"from {parent}\n" if n == 0 and parent else "") + "\n")
        subprocess.run(["git", "-C", str(self.path), "fast-import", "--quiet"], input="".join(chunks), text=True,
                       check=True, env={**os.environ, **GIT_ENV})
        self.git("checkout", "-q", "-f", branch)
        return self.git("rev-list", f"--max-count={count}", branch).split()
