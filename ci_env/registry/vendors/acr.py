"""Azure Container Registry: remove one tag with the Azure CLI, or the ACR data plane for a service principal.

Azure CLI route (the seed's): ``az acr repository untag -n REGISTRY --image REPO:TAG`` removes only the
tag; ``az`` must be installed and logged in (``az account show``), with role Owner, Contributor or AcrDelete.

Data-plane route (when ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET`` and ``AZURE_TENANT_ID`` are set): a
Microsoft Entra ID token (client credentials, ``$AZURE_AUTHORITY_HOST``), exchanged at
``POST /oauth2/exchange`` for an ACR refresh token, then ``POST /oauth2/token`` for an access token with
scope ``repository:REPO:delete``, then ``DELETE /acr/v1/REPO/_tags/TAG`` (202).

Listing (cleanup by rules ages tags by it): ``GET /acr/v1/REPO/_tags?n=100`` and each ``Link: rel="next"`` page
(``?last=TAG&n=100``) give every tag with its ``digest`` and ``lastUpdateTime`` (when it was last pushed), with
an access token of scope ``repository:REPO:metadata_read``: the service principal's, else through the registry's
own token challenge with the credentials ``docker login`` saved for it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ci_env.errors import AuthError, RegistryError
from ci_env.registry.outcomes import Status
from ci_env.registry.paging import PageGuard
from ci_env.registry.untag import Capabilities
from ci_env.registry.vendors import endpoints
from ci_env.registry.vendors.common import (
    VendorContext,
    describe,
    fail,
    json_of,
    new_session,
    next_link,
    next_page,
    post_with_retry,
    preflight_failure,
    token_of,
)

if TYPE_CHECKING:
    import requests

    from ci_env.registry.client import TagInfo
    from ci_env.registry.reference import RepoAddress

VENDOR = "Azure CR"
AZ_TIMEOUT = 120.0
SP_VARIABLES = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")
AAD_SCOPE = "https://containerregistry.azure.net/.default"
SP_HELP = "set AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID for a service principal with role AcrDelete"
AZ_HELP = f"install the Azure CLI (az) and run az login with role Owner, Contributor or AcrDelete, or {SP_HELP}"
#: what ACR (and az) say when the tag itself is gone; NAME_UNKNOWN (no such repository) is an error
_ABSENT = re.compile(r"\b(TAG_UNKNOWN|MANIFEST_UNKNOWN)\b")
#: tags per page of the tag listing
LIST_PAGE_SIZE = 100


def registry_name(registry: str) -> str:
    """The registry's name for ``az -n``: ``myreg`` for ``myreg.azurecr.io``."""
    return registry.split(".", 1)[0]


def _token_actions(token: str, repository: str) -> set[str] | None:
    """The actions an ACR access token (a JWT) grants on ``repository``; None when it cannot be read."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    actions: set[str] = set()
    for entry in claims.get("access") or []:
        if isinstance(entry, dict) and entry.get("type") == "repository" and entry.get("name") == repository:
            actions.update(str(a) for a in entry.get("actions") or [])
    return actions


class AcrRemover:
    """Removes tags from Azure Container Registry."""

    capabilities = Capabilities()

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._context = context
        self._session = session or new_session()
        self._lock = threading.Lock()
        self._refresh: dict[str, str] = {}
        self._access: dict[tuple[str, str, str], str] = {}

    # --- route choice ----------------------------------------------------------------
    def _service_principal(self) -> tuple[str, str, str] | None:
        values = [self._context.env.get(name, "") for name in SP_VARIABLES]
        if all(values):
            return values[0], values[1], values[2]
        return None

    def _env(self) -> dict[str, str]:
        return {**os.environ, **self._context.env}

    def preflight(self, repo: RepoAddress) -> None:
        """Service principal: get a delete-scoped token; else check ``az`` is installed and logged in."""
        if not repo.path:
            raise RegistryError(f"{VENDOR}: {repo} is not a repository")
        if self._service_principal() is not None:
            try:
                token = self._access_token(repo, refresh=True)
            except AuthError as refused:
                raise preflight_failure(VENDOR, f"the service principal was refused ({refused})", SP_HELP) from None
            actions = _token_actions(token, repo.path)
            if actions is not None and "delete" not in actions:
                raise preflight_failure(VENDOR, f"the service principal may not delete in {repo.path}", SP_HELP)
            return
        az = self._az()
        if az is None:
            raise preflight_failure(VENDOR, "the Azure CLI (az) is not installed", AZ_HELP)
        result = self._run([az, "account", "show", "--output", "none"])
        if result.returncode != 0:
            raise preflight_failure(VENDOR, "the Azure CLI is not logged in (az account show failed)", AZ_HELP)

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` only: ``removed``, or ``absent`` when the registry does not know it."""
        if self._service_principal() is not None:
            return self._untag_data_plane(repo, tag)
        return self._untag_az(repo, tag)

    # --- Azure CLI -----------------------------------------------------------------------
    def _az(self) -> str | None:
        return shutil.which("az", path=self._env().get("PATH"))

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=AZ_TIMEOUT, env=self._env(),
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise RegistryError(f"{VENDOR}: {' '.join(argv[1:4])} did not finish in {AZ_TIMEOUT:.0f} s") from None

    def _untag_az(self, repo: RepoAddress, tag: str) -> str:
        az = self._az()
        if az is None:
            raise preflight_failure(VENDOR, "the Azure CLI (az) is not installed", AZ_HELP)
        result = self._run([az, "acr", "repository", "untag", "-n", registry_name(repo.registry),
                            "--image", f"{repo.path}:{tag}"])
        if result.returncode == 0:
            return Status.REMOVED
        output = (result.stderr or result.stdout or "").strip()
        if _ABSENT.search(output):
            return Status.ABSENT
        last = output.splitlines()[-1][:300] if output else f"exit status {result.returncode}"
        raise RegistryError(f"{VENDOR}: az acr repository untag {repo.path}:{tag} failed: {last}")

    # --- data plane ------------------------------------------------------------------------
    def _aad_token(self) -> str:
        sp = self._service_principal()
        assert sp is not None
        client_id, secret, tenant = sp
        url = f"{endpoints.azure_authority(self._context.env)}/{quote(tenant, safe='')}/oauth2/v2.0/token"
        response = post_with_retry(self._session, url, data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": AAD_SCOPE,
        })
        if not response.ok:
            raise AuthError(f"Microsoft Entra ID refused the service principal ({describe(response)})")
        return token_of(response, "access_token", "Microsoft Entra ID: the service principal's token")

    def _refresh_token(self, repo: RepoAddress, renew: bool) -> str:
        with self._lock:
            if not renew and repo.registry in self._refresh:
                return self._refresh[repo.registry]
        sp = self._service_principal()
        assert sp is not None
        api = endpoints.acr_api(repo.registry, self._context.env)
        response = post_with_retry(self._session, f"{api}/oauth2/exchange", data={
            "grant_type": "access_token", "service": repo.registry, "tenant": sp[2], "access_token": self._aad_token(),
        })
        if not response.ok:
            raise AuthError(f"{repo.registry} refused the token exchange ({describe(response)})")
        token = token_of(response, "refresh_token", f"{repo.registry}: the token exchange")
        with self._lock:
            self._refresh[repo.registry] = token
        return token

    def _access_token(self, repo: RepoAddress, refresh: bool = False, action: str = "delete") -> str:
        key = (repo.registry, repo.path, action)
        with self._lock:
            if not refresh and key in self._access:
                return self._access[key]
        api = endpoints.acr_api(repo.registry, self._context.env)
        response = post_with_retry(self._session, f"{api}/oauth2/token", data={
            "grant_type": "refresh_token", "service": repo.registry, "scope": f"repository:{repo.path}:{action}",
            "refresh_token": self._refresh_token(repo, renew=refresh),
        })
        if not response.ok:
            raise AuthError(f"{repo.registry} refused an access token for {repo.path} ({describe(response)})")
        token = token_of(response, "access_token", f"{repo.registry}: an access token for {repo.path}")
        with self._lock:
            self._access[key] = token
        return token

    def _delete(self, repo: RepoAddress, tag: str, refresh: bool) -> requests.Response:
        api = endpoints.acr_api(repo.registry, self._context.env)
        url = f"{api}/acr/v1/{repo.path}/_tags/{quote(tag, safe='')}"
        return self._session.delete(url, headers={"Authorization": f"Bearer {self._access_token(repo, refresh)}"})

    def _untag_data_plane(self, repo: RepoAddress, tag: str) -> str:
        response = self._delete(repo, tag, refresh=False)
        if response.status_code == 401:
            response = self._delete(repo, tag, refresh=True)
        if response.status_code in (200, 202, 204):
            return Status.REMOVED
        if response.status_code == 404:
            if _ABSENT.search(response.text or ""):  # TAG_UNKNOWN / MANIFEST_UNKNOWN: the tag is gone
                return Status.ABSENT
            raise fail(response, f"{VENDOR}: removing {repo}:{tag} (check that {repo.path} exists and that "
                                 "WERF_ACR_API_URL, default the registry host, is its data plane)")
        if response.status_code == 405:
            raise RegistryError(f"{VENDOR}: {repo}:{tag} is locked against deletion (deleteEnabled=false)")
        raise fail(response, f"{VENDOR}: removing {repo}:{tag}")


    # --- listing -------------------------------------------------------------------------------
    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        """Every tag of ``repo`` (sorted) with its digest and ``lastUpdateTime`` (``createdTime`` where absent),
        following ``Link`` pages; the media type is not in the listing (None). RegistryError when the repository
        is unknown; AuthError when the credentials are refused."""
        from ci_env.registry.client import TagInfo

        if not repo.path:
            raise RegistryError(f"{VENDOR}: {repo} is not a repository")
        what = f"{VENDOR}: listing the tags of {repo.path}"
        get = self._metadata_get(repo)
        url: str | None = f"/acr/v1/{repo.path}/_tags?n={LIST_PAGE_SIZE}"
        guard: PageGuard | None = None
        infos: dict[str, TagInfo] = {}
        while url:
            response = get(url)
            if response.status_code == 404:
                raise RegistryError(f"{what}: no such repository ({describe(response)})")
            if not response.ok:
                raise fail(response, what)
            items = json_of(response, what).get("tags") or []
            if not isinstance(items, list):
                raise RegistryError(f"{what}: 'tags' in the answer is not a list")
            for item in items:
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str) and name:
                    digest, when = item.get("digest"), item.get("lastUpdateTime") or item.get("createdTime")
                    infos[name] = TagInfo(name, digest if isinstance(digest, str) and digest else None, None,
                                          when if isinstance(when, str) and when else None)
            guard = guard or PageGuard(what, first=response.url)
            url = next_page(next_link(response), response.url, guard)
        return [infos[tag] for tag in sorted(infos)]

    def _metadata_get(self, repo: RepoAddress) -> Any:
        """``get(url)`` for the listing: ``url`` a path on the data plane, or an absolute URL it handed back. The
        service principal's ``metadata_read`` token (asked again once on a 401), else the registry client's
        token challenge with ``docker login``'s credentials."""
        scope = f"repository:{repo.path}:metadata_read"
        if self._service_principal() is not None:
            api = endpoints.acr_api(repo.registry, self._context.env)

            def with_token(url: str) -> requests.Response:
                target = url if "://" in url else api + url
                response = None
                for refresh in (False, True):
                    token = self._access_token(repo, refresh, "metadata_read")
                    response = self._session.get(target, headers={"Authorization": f"Bearer {token}"})
                    if response.status_code != 401:
                        break
                assert response is not None
                return response

            return with_token
        from ci_env.registry.client import ClientPool

        pool = getattr(self._context, "clients", None) or ClientPool(
            self._context.docker_config, self._context.insecure_registries, self._context.env)
        client = pool(repo.registry)
        return lambda url: client.request("GET", url, scopes=[scope], absolute="://" in url)
