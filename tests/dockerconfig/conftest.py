"""Helpers for the private Docker config tests: running the real CLI, hashing a tree, a base config."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.cli import run_ci_env

REPO = Path(__file__).resolve().parents[2]

PLUGIN = """#!/bin/sh
if [ "$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"ci-env tests","Version":"1.0","ShortDescription":"says hello"}'
  exit 0
fi
echo "hello from the plugin"
"""


def run_cli(
    args: list[str], env: Mapping[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m ci_env ARGS` in a fresh process with exactly ``env`` (plus PYTHONPATH and a UTF-8 locale)."""
    return run_ci_env(*args, env={"PYTHONPATH": str(REPO), "LANG": "C.UTF-8", **env}, cwd=REPO, stdin=stdin,
                      timeout=timeout)


def tree_state(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under ``root``: kind, mode, and sha256 of a file's bytes or a link's target."""
    state: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            info = os.lstat(path)
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                state[rel] = ("link", info.st_mode, os.readlink(path))
            elif stat.S_ISREG(info.st_mode):
                state[rel] = ("file", info.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                state[rel] = ("other", info.st_mode, str(info.st_mtime_ns))
    info = os.lstat(root)
    state["."] = ("dir", info.st_mode, str(info.st_mtime_ns))
    return state


@pytest.fixture
def base_config(tmp_path: Path) -> Iterator[Path]:
    """A base Docker config like a developer's ~/.docker: creds store, helpers, contexts, plugins,
    trust, a socket and a FIFO (runtime state that must never be copied)."""
    base = tmp_path / "home" / ".docker"
    (base / "contexts" / "meta" / "abc").mkdir(parents=True)
    (base / "contexts" / "meta" / "abc" / "meta.json").write_text('{"Name":"remote"}')
    (base / "trust" / "private").mkdir(parents=True)
    (base / "trust" / "private" / "key").write_text("trust key")
    (base / "buildx" / "instances").mkdir(parents=True)
    (base / "buildx" / "instances" / "builder").write_text('{"Name":"builder"}')
    (base / "buildx" / "refs").mkdir()
    (base / "buildx" / "refs" / "state").write_text("runtime")
    (base / "cli-plugins").mkdir()
    plugin = base / "cli-plugins" / "docker-hello"
    plugin.write_text(PLUGIN)
    plugin.chmod(0o755)
    config = {
        "auths": {"shared.example.com": {"auth": "c2hhcmVkOnNoYXJlZA=="}, "https://index.docker.io/v1/": {}},
        "credsStore": "desktop",
        "credHelpers": {"index.docker.io": "hub-helper", "gcr.io": "gcloud", "127.0.0.1:5999": "local"},
        "currentContext": "default",
        "psFormat": "table {{.ID}}",
    }
    (base / "config.json").write_text(json.dumps(config))
    os.mkfifo(base / "trust" / "fifo")
    sockets = [_bind_unix(base / "buildx" / "instances", "agent.sock"), _bind_unix(base, "run.sock")]
    yield base
    for sock in sockets:
        sock.close()


def _bind_unix(directory: Path, name: str) -> socket.socket:
    """A listening Unix socket at directory/name (bound relative: long paths exceed sun_path)."""
    sock = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        sock.bind(name)
    finally:
        os.chdir(cwd)
    return sock
