"""Docker's ``config.json``: where the config directory is, how it is read, how registries are keyed in it.

Shared by the job's private config (``ci_env.dockerconfig``: setup, login, teardown) and by the
registry client's credential lookup (``ci_env.registry.auth``), so both agree on the precedence
(``--docker-config`` > ``$WERF_DOCKER_CONFIG`` > ``$DOCKER_CONFIG`` > ``~/.docker``), on what a valid
file is, and on the names Docker Hub goes by. Standard library only: it is on setup's start-up path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_env.errors import ConfigError

#: Every host name Docker Hub is known by; all normalise to ``docker.io``.
DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
#: The ``auths`` key docker itself writes for Docker Hub.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class ConfigLocation:
    """The Docker config directory and where that choice came from (for messages)."""

    path: Path
    source: str


def _non_empty(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value if value else None


def expand_home(path: str, env: Mapping[str, str]) -> Path:
    """``path`` with a leading ``~`` replaced by ``$HOME`` from ``env`` (else the user's home)."""
    if path == "~" or path.startswith("~/"):
        home = _non_empty(env, "HOME") or str(Path.home())
        return Path(home + path[1:])
    return Path(path)


def locate(option: str | Path | None = None, env: Mapping[str, str] | None = None) -> ConfigLocation:
    """The Docker config directory: ``option`` > ``$WERF_DOCKER_CONFIG`` > ``$DOCKER_CONFIG`` > ``~/.docker``."""
    env = os.environ if env is None else env
    for value, source in (
        (str(option) if option else None, "--docker-config"),
        (_non_empty(env, "WERF_DOCKER_CONFIG"), "$WERF_DOCKER_CONFIG"),
        (_non_empty(env, "DOCKER_CONFIG"), "$DOCKER_CONFIG"),
    ):
        if value:
            return ConfigLocation(expand_home(value, env), source)
    return ConfigLocation(expand_home("~/.docker", env), "~/.docker")


def parse(text: str, origin: str) -> dict[str, Any]:
    """Parse config.json text; ConfigError naming ``origin`` (never quoting the content, which may hold secrets)."""
    if not text.strip():
        return {}
    from ci_env.registry import untrusted_json

    try:
        data = untrusted_json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{origin} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            'it must hold a Docker config.json object such as {"auths": {...}}'
        ) from None
    except ValueError:  # nested deeper than the parser goes
        raise ConfigError(
            f"{origin} is JSON nested too deeply to be a Docker config; "
            'it must hold a Docker config.json object such as {"auths": {...}}'
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin} must hold a JSON object (a Docker config.json), not {type(data).__name__}")
    return data


def load(directory: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of ``directory``; {} when it does not exist; ConfigError when unreadable."""
    path = directory / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the Docker config {path}: {exc.strerror}; check its permissions") from None
    return parse(text, f"the Docker config {path}")


def normalize_registry(name: str) -> str:
    """A registry as ``host[:port]``: no scheme, no path, lower case, every Docker Hub alias as ``docker.io``."""
    value = name.strip()
    for scheme in ("https://", "http://"):
        if value.lower().startswith(scheme):
            value = value[len(scheme):]
            break
    value = value.split("/", 1)[0].lower()
    return "docker.io" if value in DOCKER_HUB_NAMES else value


def auth_key(registry: str) -> str:
    """The ``auths`` key docker itself uses for ``registry`` (Docker Hub: the legacy v1 URL)."""
    canonical = normalize_registry(registry)
    return DOCKER_HUB_AUTH_KEY if canonical == "docker.io" else canonical


def config_keys(registry: str) -> list[str]:
    """Every key ``registry`` may be stored under in ``auths``/``credHelpers``, most specific first."""
    host = normalize_registry(registry)
    if host == "docker.io":
        return [DOCKER_HUB_AUTH_KEY, "index.docker.io", "docker.io", "registry-1.docker.io", "https://index.docker.io/v1"]
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
