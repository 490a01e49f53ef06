"""Docker Hub: remove one tag through Docker Hub's API (its Registry API cannot delete a tag).

Login: ``POST /v2/auth/token`` with ``{"identifier": USERNAME, "secret": PAT-or-password}`` gives an
``access_token`` (legacy ``POST /v2/users/login/`` with ``{"username", "password"}`` when the first is
absent); a ``--repo-docker-hub-token`` that already is a JWT (the seed's ``/v2/users/login`` token) is used
as is. Without these options, the user name and password (or access token) that ``docker login``
saved for Docker Hub in the job's Docker config are used. Delete:
``DELETE /v2/repositories/NS/REPO/tags/TAG/`` removes only that tag. 429 answers are retried honouring
``Retry-After``.

Listing: ``GET /v2/repositories/NS/REPO/tags?page_size=100`` and each ``next`` page gives every tag with
its digest, media type and ``tag_last_pushed`` (when the tag was last pushed; ``last_updated``, which also
moves when the tag's metadata changes, where the answer has no ``tag_last_pushed``), anonymously for a public
repository, with the JWT when credentials are configured.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from urllib.parse import quote

from ci_env.errors import RegistryError
from ci_env.registry.paging import PageGuard
from ci_env.registry.untag import Capabilities
from ci_env.registry.vendors import endpoints
from ci_env.registry.vendors.common import (
    VendorContext,
    describe,
    exists,
    fail,
    get_credential,
    items_of,
    json_of,
    listing_page,
    new_session,
    next_page,
    post_with_retry,
    preflight_failure,
    untag_outcome,
    where_to_set,
)

if TYPE_CHECKING:
    import requests

    from ci_env.registry.client import TagInfo
    from ci_env.registry.reference import RepoAddress

VENDOR = "Docker Hub"
API_VARIABLE = "WERF_DOCKER_HUB_API_URL"
CREDENTIALS_HELP = (
    f"set {where_to_set('docker-hub-token')} with a JWT, or {where_to_set('docker-hub-username')} with "
    f"{where_to_set('docker-hub-token')} (a personal access token with Delete scope) or "
    f"{where_to_set('docker-hub-password')}"
)

#: tags per page of the tag listing (Docker Hub's maximum)
LIST_PAGE_SIZE = 100


def docker_login(context: VendorContext) -> tuple[str, str] | None:
    """The user name and password (or access token) ``docker login`` saved for Docker Hub, if any."""
    from ci_env.registry.auth import credentials_for

    credential = credentials_for("docker.io", context.docker_config)
    if credential is None or not credential.has_basic:
        return None
    return credential.username or "", credential.password or ""


def _looks_like_jwt(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 3 and value.startswith("eyJ") and all(parts)


def split_repository(repo: RepoAddress) -> tuple[str, str]:
    """(namespace, repository) of a Docker Hub repository; ``library`` for official images."""
    parts = repo.path.split("/")
    if len(parts) == 1 and parts[0]:
        return "library", parts[0]
    if len(parts) != 2 or not all(parts):
        raise RegistryError(
            f"{VENDOR}: {repo} is not a repository (expected NAMESPACE/REPOSITORY; Docker Hub has no nested ones)"
        )
    return parts[0], parts[1]


class DockerHubRemover:
    """Removes tags from Docker Hub repositories with Docker Hub's API."""

    capabilities = Capabilities()

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._context = context
        self._session = session or new_session()
        self._api = endpoints.docker_hub_api(context.env)
        self._lock = threading.Lock()
        self._jwt: str | None = None

    # --- login -------------------------------------------------------------
    def _login(self) -> str:
        """A JWT for the API, from the configured credentials; AuthError/PreflightError when impossible."""
        token = get_credential(self._context, "docker-hub-token")
        username = get_credential(self._context, "docker-hub-username")
        password = get_credential(self._context, "docker-hub-password")
        if token and _looks_like_jwt(token):
            return token
        secret = token or password
        if not secret:
            saved = docker_login(self._context)
            if saved is not None:
                username, secret = saved
        if not secret:
            raise preflight_failure(VENDOR, "no credentials for removing tags", CREDENTIALS_HELP)
        if not username:
            raise preflight_failure(
                VENDOR,
                "a personal access token or password needs the account name",
                f"set {where_to_set('docker-hub-username')}",
            )
        response = post_with_retry(
            self._session, f"{self._api}/v2/auth/token", json={"identifier": username, "secret": secret}
        )
        if response.status_code == 404:
            response = post_with_retry(
                self._session, f"{self._api}/v2/users/login/", json={"username": username, "password": secret}
            )
        if response.status_code in (400, 401, 403):
            raise preflight_failure(VENDOR, f"login refused ({describe(response)})", CREDENTIALS_HELP)
        if not response.ok:
            raise fail(response, f"{VENDOR}: login")
        body = json_of(response, f"{VENDOR}: login")
        jwt = body.get("access_token") or body.get("token")
        if not jwt:
            raise RegistryError(f"{VENDOR}: login answered without a token")
        return str(jwt)

    def _token(self, refresh: bool = False) -> str:
        with self._lock:
            if self._jwt is None or refresh:
                self._jwt = self._login()
            return self._jwt

    def _call(self, method: str, url: str) -> requests.Response:
        """``method`` on ``url`` with the JWT; logs in again once when the JWT expired (401)."""
        response = self._session.request(method, url, headers={"Authorization": f"Bearer {self._token()}"})
        if response.status_code == 401:
            response = self._session.request(
                method, url, headers={"Authorization": f"Bearer {self._token(refresh=True)}"}
            )
        return response

    # --- TagRemover --------------------------------------------------------
    def preflight(self, repo: RepoAddress) -> None:
        """Log in and read the repository; PreflightError naming the credential options when refused."""
        namespace, name = split_repository(repo)
        self._token()
        response = self._call("GET", f"{self._api}/v2/repositories/{quote(namespace)}/{quote(name)}/")
        if response.status_code in (401, 403):
            raise preflight_failure(
                VENDOR, f"access to {namespace}/{name} refused ({describe(response)})", CREDENTIALS_HELP
            )
        if not response.ok and response.status_code != 404:
            raise fail(response, f"{VENDOR}: reading {namespace}/{name}")

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` only: ``removed``, or ``absent`` when Docker Hub does not know it."""
        namespace, name = split_repository(repo)
        repository = f"{self._api}/v2/repositories/{quote(namespace)}/{quote(name)}/"
        response = self._call("DELETE", f"{repository}tags/{quote(tag, safe='')}/")
        what = f"{VENDOR}: removing {namespace}/{name}:{tag}"
        return untag_outcome(
            response, what, lambda: exists(self._call("GET", repository), f"{VENDOR}: reading {namespace}/{name}"),
            f"{namespace}/{name} exists and {API_VARIABLE} (default {endpoints.DOCKER_HUB_API}) is Docker Hub's API",
        )

    # --- listing -----------------------------------------------------------
    def _has_credentials(self) -> bool:
        """Whether credentials for Docker Hub's API are configured (else the listing is anonymous)."""
        kinds = ("docker-hub-token", "docker-hub-password")
        return any(get_credential(self._context, kind) for kind in kinds) or docker_login(self._context) is not None

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        """Every tag of ``repo`` (sorted) with digest, media type and last push time (``tag_last_pushed``, else
        ``last_updated``), following ``next`` pages.

        Anonymous unless credentials are configured. RegistryError when the repository is unknown (or private
        and no credentials were given); AuthError when the credentials are refused.
        """
        from ci_env.registry.client import TagInfo

        namespace, name = split_repository(repo)
        what = f"{VENDOR}: listing the tags of {namespace}/{name}"
        authenticated = self._has_credentials()
        url: str | None = (
            f"{self._api}/v2/repositories/{quote(namespace)}/{quote(name)}/tags?page_size={LIST_PAGE_SIZE}"
        )
        assert url is not None
        guard = PageGuard(what, first=url)
        infos: dict[str, TagInfo] = {}
        while url:
            response = self._call("GET", url) if authenticated else self._session.get(url)
            hint = "" if authenticated else f" (a private repository needs credentials: {CREDENTIALS_HELP})"
            body = listing_page(response, what, hint)
            for item in items_of(body, "results", what):
                tag = item.get("name")
                if isinstance(tag, str) and tag:
                    pushed = _text(item.get("tag_last_pushed")) or _text(item.get("last_updated"))
                    infos[tag] = TagInfo(tag, _text(item.get("digest")), _text(item.get("media_type")), pushed)
            next_url = body.get("next")
            if next_url is not None and not isinstance(next_url, str):
                raise RegistryError(f"{what}: 'next' in the answer is not a URL")
            url = next_page(next_url, self._api, guard)
        return [infos[tag] for tag in sorted(infos)]


class DockerHubNamespaces:
    """Lists the repositories of a Docker Hub namespace (``NamespaceLister``): ``GET
    /v2/namespaces/NS/repositories?page_size=100`` and each ``next`` page (on Docker Hub's API origin only);
    each ``name`` is repository ``NS/NAME``. With the JWT when credentials are configured (sent to Docker Hub's
    API only), else anonymously: public repositories only."""

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._session = session or new_session()
        self._remover = DockerHubRemover(context, self._session)

    def list_namespace(self, registry: str, namespace: str) -> list[str]:
        """Every repository of the namespace (``namespace``'s first segment); [] when it has none; RegistryError
        when Docker Hub knows no such namespace."""
        owner = namespace.strip("/").split("/")[0]
        api = self._remover._api
        what = f"{VENDOR}: listing the repositories of {owner}"
        authenticated = self._remover._has_credentials()
        url: str | None = f"{api}/v2/namespaces/{quote(owner, safe='')}/repositories?page_size={LIST_PAGE_SIZE}"
        assert url is not None
        guard = PageGuard(what, first=url)
        names: list[str] = []
        while url:
            response = self._remover._call("GET", url) if authenticated else self._session.get(url)
            if response.status_code == 404 and guard.pages == 1:
                raise RegistryError(f"{what}: Docker Hub at {api} knows no namespace {owner}: check the name and "
                                    f"{API_VARIABLE} (default {endpoints.DOCKER_HUB_API})")
            body = listing_page(response, what)
            for item in items_of(body, "results", what):
                name = item.get("name")
                if isinstance(name, str) and name:
                    names.append(f"{owner}/{name}")
            next_url = body.get("next")
            if next_url is not None and not isinstance(next_url, str):
                raise RegistryError(f"{what}: 'next' in the answer is not a URL")
            url = next_page(next_url, api, guard)
        return list(dict.fromkeys(names))


def _text(value: object) -> str | None:
    """``value`` when it is a non-empty string, else None (a listing field that is missing or malformed)."""
    return value if isinstance(value, str) and value else None
