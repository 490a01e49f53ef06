"""Docker's ``config.json``: where the config directory is, how it is read, how registries are keyed in it,
and what a job's copy of the base config keeps of it.

Shared by the job's private config (``ci_env.dockerconfig``: setup, login, teardown) and by the
registry client's credential lookup (``ci_env.registry.auth``), so both agree on the location (the options
cascade: ``--docker-config`` > ``$WERF_DOCKER_CONFIG`` > ``$DOCKER_CONFIG`` > ``~/.docker``), on what a valid
file is, and on the names Docker Hub goes by. The content rules live here too: the base a job's config
starts from (:func:`read_base`, GitLab's ``$DOCKER_AUTH_CONFIG``), what of it a job's copy keeps
(:func:`strip_credential_stores`) and which credentials only a credential store held
(:func:`store_only_credentials`). Standard library only: it is on setup's start-up path.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_env.cascade import Option, Resolved, given, resolve
from ci_env.errors import ConfigError

#: CI family -> the variable that, when set, holds the base ``config.json`` content as JSON.
CI_AUTH_CONFIG_VARIABLES: dict[str, str] = {"gitlab": "DOCKER_AUTH_CONFIG"}

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


#: ``--docker-config`` as the cascade reads it.
DOCKER_CONFIG = Option("--docker-config", ("WERF_DOCKER_CONFIG", "DOCKER_CONFIG"), "~/.docker")


def resolve_location(option: str | Path | None, env: Mapping[str, str]) -> Resolved:
    """The Docker config directory as the cascade resolves it: ``--docker-config`` > ``$WERF_DOCKER_CONFIG`` >
    ``$DOCKER_CONFIG`` > ``~/.docker`` (unexpanded; source ``default`` for the last)."""
    found = resolve(given(str(option) if option else None, DOCKER_CONFIG.flag), env, DOCKER_CONFIG)
    assert found is not None
    return found


def location(found: Resolved, env: Mapping[str, str]) -> ConfigLocation:
    """``found`` (from :func:`resolve_location`) as a directory, its source as messages name it
    (``--docker-config``, ``$WERF_DOCKER_CONFIG``, ``$DOCKER_CONFIG`` or ``~/.docker``)."""
    if found.source == "default":
        source = found.value
    else:
        source = found.source if found.source.startswith("-") else f"${found.source}"
    return ConfigLocation(expand_home(found.value, env), source)


def locate(option: str | Path | None = None, env: Mapping[str, str] | None = None) -> ConfigLocation:
    """The Docker config directory: ``option`` > ``$WERF_DOCKER_CONFIG`` > ``$DOCKER_CONFIG`` > ``~/.docker``."""
    env = os.environ if env is None else env
    return location(resolve_location(option, env), env)


def parse(text: str, origin: str) -> dict[str, Any]:
    """Parse config.json text; ConfigError naming ``origin`` (never quoting the content, which may hold secrets)."""
    if not text.strip():
        return {}
    from ci_env import untrusted_json

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


# --------------------------------------------------------------------------- the base a job's config copies


@dataclass(frozen=True)
class BaseConfig:
    """Where a job's private config is copied from.

    ``directory`` is the base directory (None when it does not exist); ``content`` the base
    ``config.json`` content when given as JSON (GitLab's ``$DOCKER_AUTH_CONFIG``), which then
    replaces the directory's ``config.json`` (the directory still gives plugins, contexts, ...).
    """

    directory: Path | None
    content: dict[str, Any] | None = None


def read_base(found: Resolved, env: Mapping[str, str], family: str) -> BaseConfig:
    """The base config at the location :func:`resolve_location` found (``--docker-config`` >
    ``$WERF_DOCKER_CONFIG`` > ``$DOCKER_CONFIG`` > ``~/.docker``).

    In GitLab (:data:`CI_AUTH_CONFIG_VARIABLES`) a non-empty ``$DOCKER_AUTH_CONFIG`` is the base
    ``config.json`` content. Raises ConfigError for an invalid ``$DOCKER_AUTH_CONFIG`` (naming
    the variable, never its value) or a base path that exists but is not a directory.
    """
    where = location(found, env)
    path, source = where.path, where.source
    directory: Path | None = None
    try:
        if path.is_dir():
            directory = path.absolute()
        elif path.exists():
            raise ConfigError(f"the Docker config {path} (from {source}) is not a directory; point {source} at one")
    except OSError as exc:  # e.g. a name too long
        raise ConfigError(f"cannot use the Docker config {path} (from {source}): {exc.strerror}") from None
    content: dict[str, Any] | None = None
    variable = CI_AUTH_CONFIG_VARIABLES.get(family)
    raw = env.get(variable) if variable else None
    if variable and raw:
        content = parse(raw, f"${variable}")
    return BaseConfig(directory=directory, content=content)


def strip_credential_stores(config: dict[str, Any], strip_registries: Sequence[str]) -> dict[str, Any]:
    """A copy of ``config`` without ``credsStore`` and without the ``credHelpers`` entries of
    ``strip_registries`` (compared in canonical form, so Docker Hub aliases match)."""
    result = dict(config)
    result.pop("credsStore", None)
    helpers = result.get("credHelpers")
    if isinstance(helpers, dict):
        stripped = {normalize_registry(r) for r in strip_registries}
        kept = {k: v for k, v in helpers.items() if normalize_registry(k) not in stripped}
        if kept:
            result["credHelpers"] = kept
        else:
            result.pop("credHelpers")
    return result


def store_only_credentials(config: Mapping[str, Any], logins: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """The base config's ``credsStore`` and the registries whose credentials only that store held, which a
    job config (made without ``credsStore``) therefore no longer has: ``auths`` entries without ``auth`` or
    ``identitytoken`` that no ``credHelpers`` entry covers, minus ``logins`` (the job logs in to them).
    ``("", ())`` when the base has no ``credsStore``. ``config`` is the base's content (:func:`base_config`).
    """
    store = config.get("credsStore")
    if not isinstance(store, str) or not store:
        return "", ()
    auths = config.get("auths")
    helpers = config.get("credHelpers")
    auths = auths if isinstance(auths, dict) else {}
    helpers = helpers if isinstance(helpers, dict) else {}
    covered = {normalize_registry(r) for r in [*helpers, *logins]}
    lost = []
    for key, entry in auths.items():
        if isinstance(entry, dict) and (entry.get("auth") or entry.get("identitytoken")):
            continue
        registry = normalize_registry(key)
        if registry not in covered and registry not in lost:
            lost.append(registry)
    return store, tuple(lost)


def base_config(base: BaseConfig) -> dict[str, Any]:
    """The base ``config.json`` content: ``$DOCKER_AUTH_CONFIG``'s, else the base directory's file ({} when
    there is none); ConfigError when it is not a regular file, unreadable or not a JSON object."""
    if base.content is not None:
        return dict(base.content)
    if base.directory is None:
        return {}
    path = base.directory / "config.json"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return {}
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path} is not a regular file; the base Docker config must hold a config.json file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}; check its permissions") from None
    return parse(text, str(path))


def check_username(registry: str, username: str) -> None:
    """ConfigError when ``username`` holds ``:``, which Docker's ``auth`` format (``user:password``) cannot hold."""
    if ":" in username:
        raise ConfigError(f"the username for {registry} contains ':', which Docker's auth format cannot hold")


def with_login(config: dict[str, Any], registry: str, username: str, password: str) -> dict[str, Any]:
    """``config`` with ``username``/``password`` recorded for ``registry``: ``auths[<key>] = {"auth":
    base64(user:pass)}`` under the key docker uses (other keys naming the same registry dropped) and no
    ``credHelpers`` entry for it. ConfigError when the username holds ``:`` (:func:`check_username`)."""
    check_username(registry, username)
    canonical = normalize_registry(registry)
    result = dict(config)
    auths = result.get("auths")
    auths = dict(auths) if isinstance(auths, dict) else {}
    auths = {k: v for k, v in auths.items() if normalize_registry(k) != canonical}
    auths[auth_key(registry)] = {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    result["auths"] = auths
    helpers = result.get("credHelpers")
    if isinstance(helpers, dict):
        kept = {k: v for k, v in helpers.items() if normalize_registry(k) != canonical}
        if kept:
            result["credHelpers"] = kept
        else:
            result.pop("credHelpers")
    return result


@dataclass(frozen=True)
class JobConfig:
    """What a job's ``config.json`` starts with: the base without credential stores, with the job's logins;
    and the base's ``credsStore`` with the registries only it held (which the job's config no longer has)."""

    config: dict[str, Any] = field(repr=False)
    store: str = ""
    left_behind: tuple[str, ...] = ()


def job_config(base: BaseConfig, logins: Sequence[tuple[str, str, str]]) -> JobConfig:
    """The job's ``config.json`` for ``base`` with ``logins`` (registry, username, password) written in, read
    from the base once. ConfigError for an unreadable base or a username :func:`with_login` refuses."""
    registries = [registry for registry, _user, _password in logins]
    content = base_config(base)
    config = strip_credential_stores(content, registries)
    for registry, username, password in logins:
        config = with_login(config, registry, username, password)
    store, left_behind = store_only_credentials(content, registries)
    return JobConfig(config, store, left_behind)


def dump(config: Mapping[str, Any]) -> bytes:
    """``config`` as docker writes ``config.json`` (tab-indented JSON and a newline)."""
    return (json.dumps(config, indent="\t") + "\n").encode()
