"""The base URL of each vendor API: the one place that knows vendor URLs.

Every function takes the job's environment and returns a URL without a trailing
slash. Each default can be overridden by a variable, so GitHub Enterprise,
self-hosted GitLab/Harbor/Quay and tests (a server on 127.0.0.1) work alike.
Plain ``http`` is used only for loopback hosts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ci_env.registry.insecure import is_loopback

DOCKER_HUB_API = "https://hub.docker.com"
GITHUB_API = "https://api.github.com"
AZURE_AUTHORITY = "https://login.microsoftonline.com"

# registry host -> web host of the GitLab instance serving it, where they differ by more than a port
_GITLAB_WEB_HOSTS = {"registry.gitlab.com": "gitlab.com"}

_ECR_HOST = re.compile(r"^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def _override(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value.rstrip("/")
    return None


def _scheme(host: str) -> str:
    return "http" if is_loopback(host) else "https"


def _without_port(host: str) -> str:
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def docker_hub_api(env: Mapping[str, str]) -> str:
    """Docker Hub's API: ``$WERF_DOCKER_HUB_API_URL``, else https://hub.docker.com."""
    return _override(env, "WERF_DOCKER_HUB_API_URL") or DOCKER_HUB_API


def github_api(env: Mapping[str, str]) -> str:
    """GitHub's REST API: ``$WERF_GITHUB_API_URL`` > ``$GITHUB_API_URL`` (Actions, GHES) > api.github.com."""
    return _override(env, "WERF_GITHUB_API_URL", "GITHUB_API_URL") or GITHUB_API


def github_graphql(env: Mapping[str, str]) -> str:
    """GitHub's GraphQL endpoint: ``$WERF_GITHUB_GRAPHQL_URL`` > ``$GITHUB_GRAPHQL_URL`` > derived from the REST API.

    ``https://api.github.com`` -> ``.../graphql``; GHES ``https://HOST/api/v3`` -> ``https://HOST/api/graphql``.
    """
    explicit = _override(env, "WERF_GITHUB_GRAPHQL_URL", "GITHUB_GRAPHQL_URL")
    if explicit:
        return explicit
    rest = github_api(env)
    if rest.endswith("/api/v3"):
        return rest[: -len("/v3")] + "/graphql"
    return rest + "/graphql"


def gitlab_api(registry: str, env: Mapping[str, str]) -> str:
    """GitLab's API v4 for a registry host.

    ``$WERF_GITLAB_API_URL`` > ``$CI_API_V4_URL`` (in GitLab CI, when the job's ``$CI_REGISTRY`` is this
    registry or unset) > ``https://`` + the GitLab web host (``registry.gitlab.com`` -> ``gitlab.com``;
    otherwise the registry host without its port, as GitLab serves its registry on port 5050 by default).
    """
    explicit = _override(env, "WERF_GITLAB_API_URL")
    if explicit:
        return explicit
    ci_registry = env.get("CI_REGISTRY", "").strip().lower()
    if env.get("GITLAB_CI") and (not ci_registry or ci_registry == registry.lower()):
        ci_api = _override(env, "CI_API_V4_URL")
        if ci_api:
            return ci_api
    web = _GITLAB_WEB_HOSTS.get(registry.lower(), _without_port(registry))
    return f"{_scheme(registry)}://{web}/api/v4"


def harbor_api(registry: str, env: Mapping[str, str]) -> str:
    """Harbor's v2.0 API: ``$WERF_HARBOR_API_URL`` (the Harbor root URL) or the registry host, + ``/api/v2.0``."""
    root = _override(env, "WERF_HARBOR_API_URL") or f"{_scheme(registry)}://{registry}"
    return root + "/api/v2.0"


def quay_api(registry: str, env: Mapping[str, str]) -> str:
    """Quay's v1 API: ``$WERF_QUAY_API_URL`` (the Quay root URL) or the registry host, + ``/api/v1``."""
    root = _override(env, "WERF_QUAY_API_URL") or f"{_scheme(registry)}://{registry}"
    return root + "/api/v1"


def acr_api(registry: str, env: Mapping[str, str]) -> str:
    """The ACR data plane (``/oauth2/...``, ``/acr/v1/...``): ``$WERF_ACR_API_URL`` or the registry host."""
    return _override(env, "WERF_ACR_API_URL") or f"{_scheme(registry)}://{registry}"


def azure_authority(env: Mapping[str, str]) -> str:
    """Microsoft Entra ID (AAD): ``$AZURE_AUTHORITY_HOST`` (as the Azure SDKs read it) or login.microsoftonline.com."""
    value = _override(env, "AZURE_AUTHORITY_HOST") or AZURE_AUTHORITY
    return value if "://" in value else f"https://{value}"


def ecr_endpoint(env: Mapping[str, str]) -> str | None:
    """The ECR endpoint override, as the AWS SDK defines it: ``$AWS_ENDPOINT_URL_ECR`` > ``$AWS_ENDPOINT_URL``."""
    return _override(env, "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL")


def ecr_region(registry: str, env: Mapping[str, str]) -> str | None:
    """The AWS region of an ECR registry host, else ``$AWS_REGION`` / ``$AWS_DEFAULT_REGION``."""
    match = _ECR_HOST.match(_without_port(registry.lower()))
    if match:
        return match.group(3)
    return _override(env, "AWS_REGION", "AWS_DEFAULT_REGION")


def ecr_account(registry: str) -> str | None:
    """The 12-digit account id of an ECR registry host (the ``registryId`` of API calls), or None."""
    match = _ECR_HOST.match(_without_port(registry.lower()))
    return match.group(1) if match else None
