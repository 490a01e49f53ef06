"""Quay: remove one tag through Quay's API.

``DELETE /api/v1/repository/NS/REPO/tag/TAG`` -> 204 removes that tag only, with an OAuth access
token (``--repo-quay-token``: an application token or robot token with repository write access)
sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from ci_env.errors import RegistryError
from ci_env.registry.vendors import endpoints
from ci_env.registry.vendors.common import (
    VendorContext,
    describe,
    fail,
    get_credential,
    new_session,
    preflight_failure,
    untag_outcome,
    where_to_set,
)

if TYPE_CHECKING:
    import requests

    from ci_env.registry.reference import RepoAddress

VENDOR = "Quay"
CREDENTIALS_HELP = f"set {where_to_set('quay-token')} to an OAuth token with write access to the repository"


def repository_url(repo: RepoAddress, env: Mapping[str, str]) -> str:
    """``.../api/v1/repository/NS/REPO`` for ``repo`` (Quay repositories are exactly NAMESPACE/REPOSITORY)."""
    parts = repo.path.split("/")
    if len(parts) != 2 or not all(parts):
        raise RegistryError(f"{VENDOR}: {repo} is not a repository (expected {repo.registry}/NAMESPACE/REPOSITORY)")
    api = endpoints.quay_api(repo.registry, env)
    return f"{api}/repository/{quote(parts[0], safe='')}/{quote(parts[1], safe='')}"


class QuayRemover:
    """Removes tags from Quay repositories with Quay's API."""

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
        url = f"{repository_url(repo, self._context.env)}/tag/{quote(tag, safe='')}"
        response = self._session.delete(url, headers=self._headers())
        return untag_outcome(response, f"{VENDOR}: removing {repo}:{tag}")
