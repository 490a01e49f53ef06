"""The environment of a fresh CI runner for the install tests: a new HOME, no pip or uv settings from this
machine, PATH with or without uv, and the runner's own pip configuration file when it has one."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

#: This machine's settings that a fresh runner would not have (pip's, TLS bundles, bytecode switch).
_MACHINE_ONLY = ("PIP_", "UV_", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PYTHONDONTWRITEBYTECODE",
                 "VIRTUAL_ENV")


def uv_binary() -> Path:
    """The uv executable the tests use (installed with the test extras); skips or fails without it."""
    from tests.services import require

    return Path(require("uv", "the installer prefers uv; pip install uv"))


def path_without_uv() -> str:
    """This PATH without the directories that hold a uv."""
    keep = [d for d in os.environ["PATH"].split(os.pathsep) if d and not (Path(d) / "uv").exists()]
    return os.pathsep.join(keep)


def runner_env(home: Path, *, uv: bool, pip_conf: str | None = None) -> dict[str, str]:
    """A fresh runner's environment; ``pip_conf`` is the text of its pip configuration file."""
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_MACHINE_ONLY)}
    env["HOME"] = str(home)
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    env["PATH"] = path_without_uv()
    if uv:
        tools = home / "tools"
        tools.mkdir(exist_ok=True)
        link = tools / "uv"
        if not link.exists():
            link.symlink_to(uv_binary())
        env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    if pip_conf is not None:
        conf = home / "pip.conf"
        conf.write_text(pip_conf)
        env["PIP_CONFIG_FILE"] = str(conf)
    return env


def find_python(version: str) -> str:
    """A working ``pythonX.Y`` (on PATH, or a pyenv version); skips the test when there is none."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv = Path("~/.pyenv/versions").expanduser()
    candidates += sorted(str(p) for p in pyenv.glob(f"{version}.*/bin/python{version}"))
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    pytest.skip(f"no working python{version} here (the test runs the installer with several Pythons)")
