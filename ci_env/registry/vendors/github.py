"""GitHub Packages: remove one tag through GitHub's packages API.

ghcr.io (REST): a package *version* is one digest carrying ``metadata.container.tags``. The
version is found in ``GET .../packages/container/PKG/versions?per_page=100`` (``Link`` paging;
PKG with ``/`` sent as ``%2F``) under ``/user`` (the token's owner), ``/orgs/OWNER`` or
``/users/OWNER``. When the tag is the version's only tag the version is deleted
(``DELETE .../versions/ID`` -> 204). When the version has other tags, the tag is first detached
through the registry (pointed at a unique placeholder image), then the placeholder's version is
deleted, so the other tags survive.

docker.pkg.github.com (legacy, private repositories only): GraphQL look-up of the version named
by the tag, then the ``deletePackageVersion`` mutation.

The token (``--repo-github-token``) needs ``read:packages`` and ``delete:packages``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ci_env.ci.token_scope import withheld
from ci_env.errors import AuthError, CiEnvError, RegistryError
from ci_env.registry.budget import HostLimits, host_of
from ci_env.registry.budget import shared as budgets
from ci_env.registry.outcomes import Status
from ci_env.registry.untag import Capabilities
from ci_env.registry.vendors import endpoints
from ci_env.registry.vendors.common import (
    VendorContext,
    describe,
    fail,
    get_credential,
    json_of,
    new_session,
    paged,
    post_with_retry,
    preflight_failure,
    where_to_set,
)

if TYPE_CHECKING:
    import requests

    from ci_env.registry.client import RegistryClient, TagInfo
    from ci_env.registry.reference import RepoAddress

VENDOR = "GitHub Packages"
LEGACY_HOST = "docker.pkg.github.com"
API_VERSION = "2022-11-28"
DELETES_PREVIEW = "application/vnd.github.package-deletes-preview+json"
#: how long to wait for a placeholder pushed through the registry to appear as a package version
PLACEHOLDER_WAIT = (0.0, 0.5, 1.0, 2.0, 4.0)

_VERSION_QUERY = (
    "query($owner:String!,$name:String!,$package:String!,$version:String!){"
    "repository(owner:$owner,name:$name){packages(names:[$package],first:1){nodes{version(version:$version){id}}}}}"
)
_DELETE_MUTATION = "mutation($id:ID!){deletePackageVersion(input:{packageVersionId:$id}){success}}"

ClientFactory = Callable[[str], "RegistryClient"]


def _missing_delete_scopes(scopes: set[str]) -> list[str]:
    """The scopes a classic token lacks to list and delete package versions (write:packages implies read)."""
    missing = [] if "delete:packages" in scopes else ["delete:packages"]
    return missing if scopes & {"read:packages", "write:packages"} else [*missing, "read:packages"]


#: GitHub's guidance against its secondary rate limits ("Best practices for using the REST API"): requests one at
#: a time, and at least one second between two POST, PATCH, PUT or DELETE requests. Every worker of a run keeps
#: it together (``ci_env.registry.budget``).
API_LIMITS = HostLimits(mutating_interval=1.0, concurrency=1)


class GitHubRemover:
    """Removes tags from ghcr.io (REST packages API) and docker.pkg.github.com (GraphQL)."""

    capabilities = Capabilities(deletes_manifests=True, lists_untagged=True, protects=True)

    def __init__(
        self,
        context: VendorContext,
        session: requests.Session | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self._context = context
        self._session = session or new_session()
        self._api = endpoints.github_api(context.env)
        self._graphql = endpoints.github_graphql(context.env)
        for url in (self._api, self._graphql):
            budgets().declare(host_of(url), API_LIMITS)
        self._client_factory = client_factory or self._default_client
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()
        self._login: str | None = None
        self._login_known = False
        self._bases: dict[str, str | None] = {}
        self._package_locks: dict[str, threading.Lock] = {}
        #: repository -> digests remaining tags reach (a version holding one is never deleted with its tag)
        self._protected: dict[str, frozenset[str]] = {}

    # --- plumbing ------------------------------------------------------------
    def _token(self, destination: str) -> str:
        """The token for ``destination`` (a URL or registry host); PreflightError when there is none, or when it
        is ``$GITHUB_TOKEN`` and ``destination`` is not that token's GitHub (``ci_env.ci.token_scope``)."""
        fix = f"set {where_to_set('github-token')} to a token with read:packages and delete:packages"
        token = get_credential(self._context, "github-token")
        if not token:
            raise preflight_failure(VENDOR, "no token for removing tags", fix)
        reason = withheld(token, destination, self._context.env)
        if reason:
            raise preflight_failure(VENDOR, reason, f"{fix} for that GitHub")
        return token

    def _headers(self, url: str, accept: str = "application/vnd.github+json") -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token(url)}", "Accept": accept, "X-GitHub-Api-Version": API_VERSION}

    def _default_client(self, host: str) -> RegistryClient:
        """The caller's client for ``host`` when the Docker config holds credentials for it (the same ones
        that client uses), else a client of our own that authenticates with the token."""
        from ci_env.registry.auth import credentials_for, docker_config_dir
        from ci_env.registry.client import ClientPool, RegistryClient

        saved = credentials_for(host, docker_config_dir(self._context.docker_config, self._context.env))
        pool: ClientPool | None = getattr(self._context, "clients", None)
        if saved is not None and pool is not None:
            return pool(host)
        explicit = None if saved is not None else ("ci-env", self._token(host))
        return RegistryClient(
            host,
            docker_config=self._context.docker_config,
            credentials=explicit,
            insecure_registries=self._context.insecure_registries,
            env=self._context.env,
        )

    def _client(self, host: str) -> RegistryClient:
        with self._lock:
            if host not in self._clients:
                self._clients[host] = self._client_factory(host)
            return self._clients[host]

    def _user_login(self) -> str | None:
        """The token owner's login (None for tokens that cannot read ``/user``, such as GITHUB_TOKEN)."""
        with self._lock:
            if self._login_known:
                return self._login
        response = self._session.get(f"{self._api}/user", headers=self._headers(self._api))
        login = None
        if response.ok and isinstance(response.json(), dict):
            login = response.json().get("login")
        with self._lock:
            self._login, self._login_known = login, True
        return login

    # --- TagRemover --------------------------------------------------------------
    def preflight(self, repo: RepoAddress) -> None:
        """Check the token exists, is accepted, and (when GitHub reports scopes) has delete:packages."""
        self._split(repo)
        response = self._session.get(f"{self._api}/user", headers=self._headers(self._api))
        fix = f"set {where_to_set('github-token')} to a token with read:packages and delete:packages"
        if response.status_code == 401:
            raise preflight_failure(VENDOR, f"the token was refused ({describe(response)})", fix)
        scopes_header = response.headers.get("X-OAuth-Scopes")
        if scopes_header is not None:
            scopes = {s.strip() for s in scopes_header.split(",") if s.strip()}
            missing = _missing_delete_scopes(scopes)
            if missing:
                have = ", ".join(sorted(scopes)) or "none"
                lacks = " and ".join(missing) + (" scope" if len(missing) == 1 else " scopes")
                raise preflight_failure(VENDOR, f"the token lacks the {lacks} (it has: {have})", fix)
        with self._lock:
            if response.ok and isinstance(response.json(), dict):
                self._login = response.json().get("login")
            self._login_known = True
        if repo.registry != LEGACY_HOST:
            self._package_base(repo)

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` only: ``removed``, or ``absent`` when no version carries it."""
        if repo.registry == LEGACY_HOST:
            return self._untag_legacy(repo, tag)
        base = self._package_base(repo)
        if base is None:
            raise RegistryError(
                f"{VENDOR}: no package {repo.path} at {self._api}: check that it exists, that the token may read it "
                "and that WERF_GITHUB_API_URL (default $GITHUB_API_URL, else api.github.com) is GitHub's API"
            )
        with self._package_lock(base):  # one tag at a time per package: versions change under us
            version = self._find_version(base, lambda v: tag in _tags(v))
            if version is None:
                return Status.ABSENT
            lone = _tags(version) == [tag] and not self._reached(repo, str(version.get("name") or ""))
            if lone:  # read again right before the DELETE: a tag pushed onto this image since would go with it
                now = self._fresh_tags(base, version)
                if now is None:
                    return Status.ABSENT
                lone = now == [tag]
            if not lone:
                # other tags, or an index / image a remaining tag reaches holds this manifest: detach the tag only
                digest = self._client(repo.api_host()).point_at_placeholder(repo.path, tag)
                version = self._wait_for_version(base, digest)
                if version is None:
                    raise RegistryError(
                        f"{VENDOR}: {repo}:{tag} was detached onto placeholder {digest}, but no package version "
                        "for it appeared; delete that untagged version later"
                    )
            return self._delete_version(base, version, f"{repo}:{tag}")

    def protect(self, repo: RepoAddress, digests: frozenset[str]) -> None:
        """Never delete the versions of ``digests`` (remaining tags reach them: platforms, signatures, ...)."""
        with self._lock:
            self._protected[str(repo)] = frozenset(digests)

    def _reached(self, repo: RepoAddress, digest: str) -> bool:
        """True when a tag reaches ``digest`` through an index or as a referrer (what the caller said with
        ``protect``, else what the context's ``referenced`` reads through the registry, once)."""
        with self._lock:
            known = self._protected.get(str(repo))
        if known is None:
            known = self._context.referenced(self._client(repo.api_host()), repo.path)
            with self._lock:
                self._protected[str(repo)] = known
        return digest in known

    def _all_versions(self, base: str) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = []
        what = f"{VENDOR}: listing versions"
        for response in paged(self._session, f"{base}/versions", what, params={"per_page": 100},
                              headers=self._headers(base)):
            if not response.ok:
                raise fail(response, what)
            versions.extend(v for v in json_of(response, what, list) if isinstance(v, dict))
        return versions

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        """Every tag of the package (sorted) with its version's digest and push time: the version's
        ``updated_at`` (when a tag last moved onto it, as GitHub's own retention tools age versions), else its
        ``created_at``; the media type is not in the listing (None). [] for a package that does not exist."""
        return self.list_manifests(repo)[0]

    def list_manifests(self, repo: RepoAddress) -> tuple[list[TagInfo], dict[str, str | None]]:
        """:meth:`list_tags` and, from the same version listing, the versions without a tag: digest -> push time
        (``updated_at``, else ``created_at``)."""
        from ci_env.registry.client import TagInfo

        if repo.registry == LEGACY_HOST:
            raise RegistryError(f"{VENDOR}: {repo} is on the legacy docker.pkg.github.com, whose versions carry "
                                "no push time: move the package to ghcr.io")
        base = self._package_base(repo)
        if base is None:
            return [], {}
        infos = []
        untagged: dict[str, str | None] = {}
        for version in self._all_versions(base):
            when = version.get("updated_at") or version.get("created_at")
            pushed = when if isinstance(when, str) else None
            digest = version.get("name")
            tags = _tags(version)
            if not tags and isinstance(digest, str) and digest:
                untagged[digest] = pushed
            for tag in tags:
                infos.append(TagInfo(tag, str(digest) if digest else None, None, pushed))
        return sorted(infos, key=lambda info: info.tag), untagged

    def delete_manifests(
        self, repo: RepoAddress, digests: Sequence[str], *, parallel: int = 8,
    ) -> dict[str, str | CiEnvError]:
        """Delete the package versions of ``digests`` (a version is one manifest with its tags): ``removed``,
        ``absent`` or the error, per digest; on the legacy registry (versions named by tag) ``left``."""
        unique = list(dict.fromkeys(digests))
        if repo.registry == LEGACY_HOST:
            return dict.fromkeys(unique, Status.LEFT)
        results: dict[str, str | CiEnvError] = {}
        try:
            base = self._package_base(repo)
            versions = {str(v.get("name")): v for v in self._all_versions(base)} if base else {}
        except CiEnvError as exc:
            return dict.fromkeys(unique, exc)
        assert base is not None or not versions
        for digest in unique:
            version = versions.get(digest)
            if version is None or base is None:
                results[digest] = Status.ABSENT
                continue
            try:
                now = self._fresh_tags(base, version)  # right before the DELETE, which takes every tag with it
                if now is None:
                    results[digest] = Status.ABSENT
                elif set(now) - set(_tags(version)):
                    results[digest] = Status.LEFT  # it gained a tag since it was listed: it stays
                else:
                    results[digest] = self._delete_version(base, version, f"{repo}@{digest}")
            except CiEnvError as exc:
                results[digest] = exc
        return results

    def _package_lock(self, base: str) -> threading.Lock:
        with self._lock:
            return self._package_locks.setdefault(base, threading.Lock())

    # --- ghcr.io -------------------------------------------------------------------
    def _split(self, repo: RepoAddress) -> tuple[str, str]:
        owner, _, package = repo.path.partition("/")
        if not owner or not package:
            raise RegistryError(f"{VENDOR}: {repo} is not a package (expected {repo.registry}/OWNER/PACKAGE)")
        return owner, package

    def _package_base(self, repo: RepoAddress) -> str | None:
        """The package's API URL (``.../packages/container/PKG``), or None when it does not exist."""
        key = str(repo)
        with self._lock:
            if key in self._bases:
                return self._bases[key]
        owner, package = self._split(repo)
        encoded = quote(package, safe="")
        candidates = []
        login = self._user_login()
        if login and login.lower() == owner.lower():
            candidates.append(f"{self._api}/user/packages/container/{encoded}")
        candidates += [
            f"{self._api}/orgs/{quote(owner)}/packages/container/{encoded}",
            f"{self._api}/users/{quote(owner)}/packages/container/{encoded}",
        ]
        found: str | None = None
        for url in candidates:
            response = self._session.get(url, headers=self._headers(url))
            if response.ok:
                found = url
                break
            if response.status_code in (401, 403):
                raise AuthError(f"{VENDOR}: reading package {owner}/{package} refused ({describe(response)})")
            if response.status_code != 404:
                raise fail(response, f"{VENDOR}: reading package {owner}/{package}")
        with self._lock:
            self._bases[key] = found
        return found

    def _find_version(self, base: str, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        what = f"{VENDOR}: listing versions"
        headers = self._headers(base)
        for response in paged(self._session, f"{base}/versions", what, params={"per_page": 100}, headers=headers):
            if not response.ok:
                raise fail(response, what)
            for version in json_of(response, what, list):
                if isinstance(version, dict) and wanted(version):
                    return version
        return None

    def _fresh_tags(self, base: str, version: dict[str, Any]) -> list[str] | None:
        """The tags of ``version`` as GitHub says now (one request); None when the version is gone."""
        url = f"{base}/versions/{version['id']}"
        what = f"{VENDOR}: reading version {version['id']}"
        response = self._session.get(url, headers=self._headers(base))
        if response.status_code == 404:
            return None
        if not response.ok:
            raise fail(response, what)
        return _tags(json_of(response, what, dict))

    def _wait_for_version(self, base: str, digest: str) -> dict[str, Any] | None:
        for delay in PLACEHOLDER_WAIT:
            time.sleep(delay)
            version = self._find_version(base, lambda v: v.get("name") == digest)
            if version is not None:
                return version
        return None

    def _delete_version(self, base: str, version: dict[str, Any], what: str) -> str:
        response = self._session.delete(f"{base}/versions/{version['id']}", headers=self._headers(base))
        if response.status_code in (200, 202, 204):
            return Status.REMOVED
        if response.status_code == 404:  # gone only when the package's version list says so
            if self._find_version(base, lambda v: v.get("id") == version["id"]) is None:
                return Status.ABSENT
            raise fail(response, f"{VENDOR}: removing {what} (version {version['id']} is still listed)")
        if response.status_code == 400 and "last" in response.text.lower():
            raise RegistryError(
                f"{VENDOR}: GitHub refuses to delete the last tagged version of a package, so {what} cannot be "
                "removed alone; delete the whole package in GitHub if that is intended"
            )
        raise fail(response, f"{VENDOR}: removing {what}")

    # --- docker.pkg.github.com (GraphQL) ----------------------------------------------
    def _graphql_call(self, query: str, variables: dict[str, str], *, retry: bool, accept: str) -> dict[str, Any]:
        payload = {"query": query, "variables": variables}
        headers = self._headers(self._graphql, accept)
        if retry:
            response = post_with_retry(self._session, self._graphql, json=payload, headers=headers)
        else:
            response = self._session.post(self._graphql, json=payload, headers=headers)
        if not response.ok:
            raise fail(response, f"{VENDOR}: GraphQL")
        body = response.json()
        if body.get("errors"):
            messages = "; ".join(str(e.get("message", e)) for e in body["errors"])
            raise RegistryError(f"{VENDOR}: GraphQL: {messages}")
        return body.get("data") or {}

    def _untag_legacy(self, repo: RepoAddress, tag: str) -> str:
        parts = repo.path.split("/")
        if len(parts) != 3:
            raise RegistryError(f"{VENDOR}: {repo} is not a package (expected {LEGACY_HOST}/OWNER/PROJECT/PACKAGE)")
        owner, project, package = parts
        data = self._graphql_call(
            _VERSION_QUERY,
            {"owner": owner, "name": project, "package": package, "version": tag},
            retry=True,
            accept="application/vnd.github+json",
        )
        repository = data.get("repository")
        nodes = ((repository or {}).get("packages") or {}).get("nodes") or []
        if not nodes or not isinstance(nodes[0], dict):
            missing = "repository" if repository is None else "package"
            raise RegistryError(f"{VENDOR}: GraphQL at {self._graphql} knows no {missing} for {repo}: check that it "
                                "exists and that the token may read it")
        version = nodes[0].get("version")
        if not version or not version.get("id"):
            return Status.ABSENT
        result = self._graphql_call(_DELETE_MUTATION, {"id": version["id"]}, retry=False, accept=DELETES_PREVIEW)
        if not (result.get("deletePackageVersion") or {}).get("success"):
            raise RegistryError(f"{VENDOR}: GitHub did not confirm removing {repo}:{tag}")
        return Status.REMOVED


class GitHubNamespaces:
    """Lists an owner's container packages on ghcr.io (``NamespaceLister``): ``GET /orgs/OWNER/packages`` (or
    ``/user/packages`` for the token's own login, ``/users/OWNER/packages`` for another user) with
    ``package_type=container``, 100 a page, following ``Link``; each package name (URL-decoded, may hold ``/``) is
    repository ``OWNER/NAME``. The token (``read:packages``) goes to GitHub's API only."""

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._context = context
        self._session = session or new_session()
        self._remover = GitHubRemover(context, self._session)

    def _headers(self, url: str, owner: str) -> dict[str, str]:
        fix = f"set {where_to_set('github-token')} to a token with read:packages"
        token = get_credential(self._context, "github-token")
        reason = withheld(token, url, self._context.env) if token else "no token is given"
        if not token or reason:
            raise AuthError(f"{VENDOR}: cannot list the container packages of {owner}: {reason}; {fix}")
        return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION}

    def list_namespace(self, registry: str, namespace: str) -> list[str]:
        """Every container package of the owner (``namespace``'s first segment) as ``OWNER/NAME``; [] when it has
        none; RegistryError when GitHub knows no such organization or user."""
        from urllib.parse import unquote

        owner = namespace.strip("/").split("/")[0]
        if registry == LEGACY_HOST:
            raise RegistryError(f"{VENDOR}: {LEGACY_HOST} lists no packages by owner: name the repositories exactly")
        api = self._remover._api
        headers = self._headers(api, owner)
        candidates = []
        login = self._remover._user_login()
        if login and login.lower() == owner.lower():
            candidates.append(f"{api}/user/packages")
        candidates += [f"{api}/orgs/{quote(owner, safe='')}/packages", f"{api}/users/{quote(owner, safe='')}/packages"]
        what = f"{VENDOR}: listing the container packages of {owner}"
        for url in candidates:
            names: list[str] = []
            found = True
            for response in paged(self._session, url, what, params={"package_type": "container", "per_page": 100},
                                  headers=headers):
                if response.status_code == 404:
                    found = False
                    break
                if not response.ok:
                    raise fail(response, what)
                for package in json_of(response, what, list):
                    name = package.get("name") if isinstance(package, dict) else None
                    if isinstance(name, str) and name:
                        names.append(f"{owner}/{unquote(name)}")
            if found:
                return list(dict.fromkeys(names))
        raise RegistryError(f"{what}: GitHub at {api} knows no organization or user {owner}: check the name, that the "
                            "token may read its packages, and that WERF_GITHUB_API_URL (default $GITHUB_API_URL, else "
                            "api.github.com) is GitHub's API")


def _tags(version: dict[str, Any]) -> list[str]:
    """The tags of a package version (``metadata.container.tags``; none when absent). RegistryError when GitHub's
    answer has another shape (``metadata`` or ``container`` not an object, ``tags`` not a list of strings): a
    version whose tags cannot be read could be a tagged image taken for an untagged one."""
    metadata = version.get("metadata") or {}
    container = (metadata.get("container") or {}) if isinstance(metadata, dict) else None
    tags = (container.get("tags") or []) if isinstance(container, dict) else None
    if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
        return list(tags)
    what = ("metadata" if not isinstance(metadata, dict) else "metadata.container"
            if not isinstance(container, dict) else "metadata.container.tags")
    shape = "a list of tags" if what.endswith("tags") else "an object"
    raise RegistryError(f"{VENDOR}: the package versions listing is malformed: version {str(version.get('id'))[:40]} "
                        f"has a {what} that is not {shape}")
