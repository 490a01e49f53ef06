"""Quay: remove one tag through Quay's API.

``DELETE /api/v1/repository/NS/REPO/tag/TAG`` -> 204 removes that tag only, with an OAuth access
token (``--repo-quay-token``: an application token or robot token with repository write access)
sent as ``Authorization: Bearer``.

Listing: ``GET /api/v1/repository/NS/REPO/tag/?onlyActiveTags=true&limit=100&page=N`` while
``has_additional`` gives every tag with its manifest digest and ``start_ts`` (when the tag was pushed),
anonymously for a public repository, with the token when one is given.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    listing_page,
    new_session,
    preflight_failure,
    untag_outcome,
    where_to_set,
)

if TYPE_CHECKING:
    import requests

    from ci_env.registry.client import TagInfo
    from ci_env.registry.reference import RepoAddress

VENDOR = "Quay"
CREDENTIALS_HELP = f"set {where_to_set('quay-token')} to an OAuth token with write access to the repository"

#: tags per page of the tag listing (Quay's maximum)
LIST_PAGE_SIZE = 100


def repository_url(repo: RepoAddress, env: Mapping[str, str]) -> str:
    """``.../api/v1/repository/NS/REPO`` for ``repo`` (Quay repositories are exactly NAMESPACE/REPOSITORY)."""
    parts = repo.path.split("/")
    if len(parts) != 2 or not all(parts):
        raise RegistryError(f"{VENDOR}: {repo} is not a repository (expected {repo.registry}/NAMESPACE/REPOSITORY)")
    api = endpoints.quay_api(repo.registry, env)
    return f"{api}/repository/{quote(parts[0], safe='')}/{quote(parts[1], safe='')}"


class QuayRemover:
    """Removes tags from Quay repositories with Quay's API."""

    capabilities = Capabilities()

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._context = context
        self._session = session or new_session()

    def _headers(self) -> dict[str, str]:
        token = get_credential(self._context, "quay-token")
        if not token:
            raise preflight_failure(VENDOR, "no token for removing tags", CREDENTIALS_HELP)
        return {"Authorization": f"Bearer {token}"}

    def preflight(self, repo: RepoAddress) -> None:
        """Check the token is accepted and may write to the repository; deletes nothing."""
        url = repository_url(repo, self._context.env)
        response = self._session.get(url, headers=self._headers())
        if response.status_code in (401, 403):
            raise preflight_failure(VENDOR, f"access to {repo.path} refused ({describe(response)})", CREDENTIALS_HELP)
        if response.status_code == 404:
            return
        if not response.ok:
            raise fail(response, f"{VENDOR}: reading {repo.path}")
        body = response.json()
        if isinstance(body, dict) and body.get("can_write") is False:
            raise preflight_failure(VENDOR, f"the token may not write to {repo.path}", CREDENTIALS_HELP)

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` only: ``removed``, or ``absent`` when Quay does not know it."""
        repository = repository_url(repo, self._context.env)
        response = self._session.delete(f"{repository}/tag/{quote(tag, safe='')}", headers=self._headers())
        return untag_outcome(
            response, f"{VENDOR}: removing {repo}:{tag}",
            lambda: exists(self._session.get(repository, headers=self._headers()), f"{VENDOR}: reading {repo.path}"),
            f"{repo.path} exists and WERF_QUAY_API_URL (default: the registry host) is Quay's API",
        )

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        """Every active tag of ``repo`` (sorted) with its manifest digest and push time, page by page.

        The media type is not in Quay's listing (None). Anonymous unless ``--repo-quay-token`` is given.
        RegistryError when the repository is unknown (or private without a token); AuthError when refused.
        """
        from ci_env.registry.client import TagInfo

        url = f"{repository_url(repo, self._context.env)}/tag/"
        token = get_credential(self._context, "quay-token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        what = f"{VENDOR}: listing the tags of {repo}"
        infos: dict[str, TagInfo] = {}
        page = 1
        guard = PageGuard(what, first=str(page))
        while True:
            params = {"onlyActiveTags": "true", "limit": str(LIST_PAGE_SIZE), "page": str(page)}
            response = self._session.get(url, params=params, headers=headers)
            hint = "" if token else f" (a private repository needs a token: {CREDENTIALS_HELP})"
            body = listing_page(response, what, hint)
            items = items_of(body, "tags", what)
            known = len(infos)
            for item in items:
                tag = item.get("name")
                if isinstance(tag, str) and tag:
                    digest = item.get("manifest_digest")
                    infos[tag] = TagInfo(tag, digest if isinstance(digest, str) and digest else None, None,
                                         _utc(item.get("start_ts")))
            if not body.get("has_additional") or not items:
                break
            if len(infos) == known:
                raise RegistryError(f"{what}: page {page} repeats tags already listed and says it has more; "
                                    "stopping instead of looping")
            page += 1
            guard.advance(str(page))
        return [infos[tag] for tag in sorted(infos)]


class QuayNamespaces:
    """Lists the repositories of a Quay namespace (``NamespaceLister``): ``GET /api/v1/repository?namespace=NS``
    and each page its ``next_page`` token names; each repository is ``NS/NAME``. With ``--repo-quay-token`` when
    given (sent to the Quay API only), else anonymously: public repositories only."""

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._context = context
        self._session = session or new_session()

    def list_namespace(self, registry: str, namespace: str) -> list[str]:
        """Every repository of the namespace (``namespace``'s first segment); [] when it has none; RegistryError
        when Quay knows no organization or user by that name."""
        owner = namespace.strip("/").split("/")[0]
        api = endpoints.quay_api(registry, self._context.env)
        token = get_credential(self._context, "quay-token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        what = f"{VENDOR}: listing the repositories of {owner}"
        names: list[str] = []
        cursor: str | None = None
        guard = PageGuard(what)
        while True:
            params = {"namespace": owner, **({"next_page": cursor} if cursor else {})}
            body = listing_page(self._session.get(f"{api}/repository", params=params, headers=headers), what)
            for item in items_of(body, "repositories", what):
                name = item.get("name")
                if isinstance(name, str) and name and item.get("namespace", owner) == owner:
                    names.append(f"{owner}/{name}")
            cursor = body.get("next_page") or None
            if cursor is None:
                break
            if not isinstance(cursor, str):
                raise RegistryError(f"{what}: 'next_page' in the answer is not a page token")
            guard.advance(cursor)
        if not names and not self._exists(api, owner, headers):
            raise RegistryError(f"{what}: Quay at {api} knows no organization or user {owner}: check the name and "
                                "WERF_QUAY_API_URL (default: the registry host)")
        return list(dict.fromkeys(names))

    def _exists(self, api: str, owner: str, headers: dict[str, str]) -> bool:
        """Whether Quay knows ``owner`` as an organization or a user (``GET /organization/NS``, ``/users/NS``)."""
        for kind in ("organization", "users"):
            response = self._session.get(f"{api}/{kind}/{quote(owner, safe='')}", headers=headers)
            if response.status_code != 404:
                return True
        return False


def _utc(timestamp: object) -> str | None:
    """A Unix time in seconds as ISO 8601 UTC (``2024-05-01T12:00:00Z``); None when absent or not a number."""
    from datetime import datetime, timezone

    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        return None
    try:
        when = datetime.fromtimestamp(timestamp, timezone.utc)
    except (ValueError, OverflowError, OSError):  # milliseconds, NaN, out of range: no time rather than a crash
        return None
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")
