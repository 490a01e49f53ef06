"""Where a CI system's own token may go: only to that CI system's own servers and registries.

A job token is a credential of one CI instance: GitLab's ``$CI_JOB_TOKEN`` belongs to the job's GitLab (the
hosts of ``$CI_API_V4_URL`` and ``$CI_SERVER_URL``, its registry ``$CI_REGISTRY`` and dependency proxy
``$CI_DEPENDENCY_PROXY_SERVER``); ``$GITHUB_TOKEN`` belongs to the GitHub of ``$GITHUB_API_URL`` (api.github.com
when unset) and its registries (ghcr.io and docker.pkg.github.com for github.com; ``containers.HOST`` and
``docker.HOST`` for GitHub Enterprise Server; the server itself for Gitea and Forgejo). A token is recognised
by its value, whichever option or variable carried it, so ``--repo-gitlab-token "$CI_JOB_TOKEN"`` is bound
the same way. One table, :data:`CI_TOKENS`; standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

GITHUB_COM_API = "api.github.com"
#: the registries of github.com (GitHub Enterprise Server has ``containers.HOST`` and ``docker.HOST``)
GITHUB_COM_REGISTRIES = ("ghcr.io", "docker.pkg.github.com")

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def destination_host(destination: str) -> str:
    """The ``host[:port]`` a URL or a registry address points at: lower case, without a default port."""
    value = destination.strip().lower()
    if "://" not in value:
        return value.split("/", 1)[0]
    parts = urlsplit(value)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    host, sep, port = netloc.rpartition(":")
    if sep and "]" not in port and _DEFAULT_PORTS.get(parts.scheme) == port:
        return host
    return netloc


def _hosts_of(env: Mapping[str, str], *names: str) -> set[str]:
    return {destination_host(env[name]) for name in names if env.get(name, "").strip()}


def _gitlab_homes(env: Mapping[str, str]) -> frozenset[str]:
    """The job's GitLab: its API and web hosts, its registry and dependency proxy."""
    return frozenset(_hosts_of(env, "CI_API_V4_URL", "CI_SERVER_URL", "CI_REGISTRY", "CI_DEPENDENCY_PROXY_SERVER"))


def _github_homes(env: Mapping[str, str]) -> frozenset[str]:
    """The GitHub of ``$GITHUB_API_URL``: its API, GraphQL and web hosts and its container registries."""
    api = _hosts_of(env, "GITHUB_API_URL") or {GITHUB_COM_API}
    servers = _hosts_of(env, "GITHUB_SERVER_URL") | {h.removeprefix("api.") for h in api}
    homes = api | _hosts_of(env, "GITHUB_GRAPHQL_URL") | servers
    if GITHUB_COM_API in api:
        homes |= set(GITHUB_COM_REGISTRIES)
    enterprise = servers - {"github.com"}
    homes |= {f"{prefix}.{server}" for server in enterprise for prefix in ("containers", "docker")}
    return frozenset(homes)


@dataclass(frozen=True)
class CiToken:
    """A CI system's own token: the variable holding it, whose it is, and where it may be sent."""

    variable: str
    owner: str  #: for messages: "this job's GitLab"
    homes: Callable[[Mapping[str, str]], frozenset[str]]


#: The CI tokens bound to their own CI instance.
CI_TOKENS: tuple[CiToken, ...] = (
    CiToken("CI_JOB_TOKEN", "this job's GitLab", _gitlab_homes),
    CiToken("GITHUB_TOKEN", "the GitHub of $GITHUB_API_URL", _github_homes),
)


def ci_token(value: str | None, env: Mapping[str, str]) -> CiToken | None:
    """The CI token ``value`` is (its value equals that variable's), or None for any other credential."""
    if not value:
        return None
    return next((token for token in CI_TOKENS if env.get(token.variable) == value), None)


def withheld(value: str | None, destination: str, env: Mapping[str, str]) -> str | None:
    """Why ``value`` must not be sent to ``destination`` (a URL or ``host[:port]``), or None when it may.

    Only CI tokens are bound: any other credential may go wherever the user configured it. The reason names
    the variable and the hosts it belongs to, never the value.
    """
    token = ci_token(value, env)
    if token is None:
        return None
    homes = token.homes(env)
    if destination_host(destination) in homes:
        return None
    where = ", ".join(sorted(homes)) or "no host: its CI variables are not set"
    return f"${token.variable} is sent only to {token.owner} ({where}), not to {destination_host(destination)}"


def may_send(value: str | None, destination: str, env: Mapping[str, str]) -> bool:
    """True unless ``value`` is a CI token and ``destination`` is not its own CI's (see :func:`withheld`)."""
    return withheld(value, destination, env) is None
