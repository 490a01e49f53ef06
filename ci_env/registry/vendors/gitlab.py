"""GitLab: remove one tag through GitLab's registry, or else through the projects API.

Registry route (preferred): ``DELETE /v2/NAME/tags/reference/TAG`` (GitLab's registry removes only
that tag), with a token whose scope includes ``delete``, obtained with the credentials ``docker login``
saved for the registry (in a job: ``CI_REGISTRY_USER``/``CI_JOB_TOKEN`` or a deploy token).

A registry that does not implement ``tags/reference`` (any registry that is not GitLab's, or an old one)
answers 404 there for every tag: a 404 is only "already gone" when the tag no longer resolves (HEAD).
When it still resolves, the route is remembered as missing for that registry, and tags are removed
through the projects API when a token is available, else through the default placeholder route.

API route (when the registry's token may not delete): find the project (``$CI_PROJECT_ID`` when the
repository is under ``$CI_PROJECT_PATH``, else the longest path prefix that is a project), its registry
repository (``GET /projects/ID/registry/repositories``, paged with ``X-Next-Page``), then
``DELETE /projects/ID/registry/repositories/RID/tags/TAG``, authenticated with ``PRIVATE-TOKEN``
(``--repo-gitlab-token``) or ``JOB-TOKEN`` (``$CI_JOB_TOKEN``).

Listing (cleanup by rules ages tags by it): the project and its registry repository as above, the tag names
(``GET /projects/ID/registry/repositories/RID/tags``, paged with ``X-Next-Page``), then one
``GET .../tags/TAG`` per tag for its ``digest`` and ``created_at`` (when it was pushed), a few at a time, every
request under the shared per-host rate budget; with the same token when one is given, else anonymously.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ci_env.ci.token_scope import may_send, withheld
from ci_env.errors import AuthError, CiEnvError, RegistryError
from ci_env.registry.outcomes import Status
from ci_env.registry.paging import PageGuard
from ci_env.registry.untag import Capabilities
from ci_env.registry.vendors import endpoints
from ci_env.registry.vendors.common import (
    VendorContext,
    describe,
    exists,
    fail,
    get_credential,
    json_of,
    new_session,
    preflight_failure,
    untag_outcome,
    where_to_set,
)

if TYPE_CHECKING:
    import requests

    from ci_env.registry.client import ClientPool, RegistryClient, TagInfo
    from ci_env.registry.reference import RepoAddress

VENDOR = "GitLab"
REGISTRY_ROUTE = "registry"
API_ROUTE = "api"
CREDENTIALS_HELP = (
    f"docker login to the registry with a user or deploy token allowed to delete, or set "
    f"{where_to_set('gitlab-token')} to a token with the api scope (in GitLab CI, $CI_JOB_TOKEN is used when the "
    "job's user may delete, and only towards the job's own GitLab)"
)
#: tag names per page of the tag list (GitLab's maximum), and tag details read at a time
LIST_PAGE_SIZE = 100
DETAILS_PARALLEL = 8

ClientFactory = Callable[[str], "RegistryClient"]


class GitLabRemover:
    """Removes tags from a GitLab container registry (gitlab.com or self-managed)."""

    capabilities = Capabilities()

    def __init__(
        self,
        context: VendorContext,
        session: requests.Session | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self._context = context
        self._session = session or new_session()
        self._client_factory: ClientFactory = client_factory or self._default_clients()
        self._clients: dict[str, RegistryClient] = {}
        self._routes: dict[str, str] = {}
        self._projects: dict[str, int | None] = {}
        self._repositories: dict[str, int | None] = {}
        self._no_reference_route: set[str] = set()
        self._lock = threading.Lock()

    def _default_clients(self) -> ClientPool:
        """The caller's clients (``context.clients``, so its tag maps are reused), else a pool of our own."""
        from ci_env.registry.client import ClientPool

        pool: ClientPool | None = getattr(self._context, "clients", None)
        if pool is None:
            pool = ClientPool(self._context.docker_config, self._context.insecure_registries, self._context.env)
        return pool

    def _client(self, repo: RepoAddress) -> RegistryClient:
        host = repo.api_host()
        with self._lock:
            if host not in self._clients:
                self._clients[host] = self._client_factory(host)
            return self._clients[host]

    def _api_headers(self, repo: RepoAddress) -> dict[str, str] | None:
        """``PRIVATE-TOKEN`` (``--repo-gitlab-token``), else ``JOB-TOKEN`` (``$CI_JOB_TOKEN``), else None.

        A CI job token is offered only to the job's own GitLab (``ci_env.ci.token_scope``), never elsewhere.
        """
        env = self._context.env
        api = endpoints.gitlab_api(repo.registry, env)
        token = get_credential(self._context, "gitlab-token")
        if token and may_send(token, api, env):
            return {"PRIVATE-TOKEN": token}
        job_token = env.get("CI_JOB_TOKEN")
        if job_token and may_send(job_token, api, env):
            return {"JOB-TOKEN": job_token}
        return None

    def _withheld_note(self, repo: RepoAddress) -> str:
        """``" ($CI_JOB_TOKEN is sent only to ...)"`` when a CI token was kept from this GitLab, else ``""``."""
        env = self._context.env
        api = endpoints.gitlab_api(repo.registry, env)
        for value in (get_credential(self._context, "gitlab-token"), env.get("CI_JOB_TOKEN")):
            reason = withheld(value, api, env)
            if reason:
                return f" ({reason})"
        return ""

    # --- route choice --------------------------------------------------------------
    def _route(self, repo: RepoAddress) -> str:
        """``registry`` when the registry grants a delete-scoped token for ``repo``, else ``api``."""
        key = str(repo)
        with self._lock:
            if key in self._routes:
                return self._routes[key]
        try:
            self._client(repo).can_delete(repo.path)
            route = REGISTRY_ROUTE
        except CiEnvError as registry_refusal:
            if self._api_headers(repo) is None:
                raise preflight_failure(
                    VENDOR, f"the registry does not let these credentials delete ({registry_refusal})"
                    f"{self._withheld_note(repo)}",
                    CREDENTIALS_HELP,
                ) from None
            route = API_ROUTE
        with self._lock:
            self._routes[key] = route
        return route

    # --- TagRemover --------------------------------------------------------------------
    def preflight(self, repo: RepoAddress) -> None:
        """Choose the route; for the API route check the token is accepted. Deletes nothing."""
        if self._route(repo) != API_ROUTE:
            return
        try:
            project = self._project_id(repo)
        except AuthError as refused:
            raise preflight_failure(VENDOR, f"the API token was refused ({refused})", CREDENTIALS_HELP) from None
        if project is None:
            api = endpoints.gitlab_api(repo.registry, self._context.env)
            raise preflight_failure(
                VENDOR,
                f"no project holding {repo.path} is visible at {api}",
                f"check that the token may read the project, or set WERF_GITLAB_API_URL to the GitLab API; "
                f"{CREDENTIALS_HELP}",
            )

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` only: ``removed``, or ``absent`` when GitLab does not know it."""
        if self._route(repo) == API_ROUTE:
            return self._untag_api(repo, tag)
        with self._lock:
            missing = repo.api_host() in self._no_reference_route
        if missing:
            return self._untag_without_reference_route(repo, tag)
        return self._untag_registry(repo, tag)

    # --- registry route ----------------------------------------------------------------
    def _untag_registry(self, repo: RepoAddress, tag: str) -> str:
        from ci_env.registry.auth import repository_scope

        client = self._client(repo)
        response = client.request(
            "DELETE", f"/v2/{repo.path}/tags/reference/{quote(tag, safe='')}", scopes=[repository_scope(repo.path)]
        )
        if response.status_code in (200, 202, 204):
            return Status.REMOVED
        if response.status_code != 404:
            raise fail(response, f"{VENDOR}: removing {repo}:{tag}")
        if "NAME_UNKNOWN" in response.text:  # the registry says the repository, not the tag, is missing
            raise RegistryError(f"{VENDOR}: removing {repo}:{tag}: the registry has no repository {repo.path} "
                                "(NAME_UNKNOWN)")
        if client.resolve(repo.path, tag) is None:
            return Status.ABSENT
        # the tag is still there: this registry has no tags/reference route (a 404 for every tag)
        with self._lock:
            self._no_reference_route.add(repo.api_host())
        return self._untag_without_reference_route(repo, tag)

    def _untag_without_reference_route(self, repo: RepoAddress, tag: str) -> str:
        """The projects API when a token is available, else the default route (placeholder or digest)."""
        if self._api_headers(repo) is not None:
            return self._untag_api(repo, tag)
        return self._client(repo).untag(repo.path, tag)

    # --- API route ---------------------------------------------------------------------------
    def _get(self, repo: RepoAddress, url: str, **kwargs: Any) -> requests.Response:
        return self._session.get(url, headers=self._api_headers(repo), **kwargs)

    def _project_id(self, repo: RepoAddress) -> int | None:
        """The id of the project holding ``repo`` (``$CI_PROJECT_ID`` when under ``$CI_PROJECT_PATH``), or None."""
        with self._lock:
            if repo.path in self._projects:
                return self._projects[repo.path]
        env = self._context.env
        project_path = env.get("CI_PROJECT_PATH", "").lower()
        found: int | None = None
        if env.get("CI_PROJECT_ID") and project_path and (repo.path + "/").startswith(project_path + "/"):
            found = int(env["CI_PROJECT_ID"])
        else:
            api = endpoints.gitlab_api(repo.registry, env)
            parts = repo.path.split("/")
            for end in range(len(parts), 1, -1):
                response = self._get(repo, f"{api}/projects/{quote('/'.join(parts[:end]), safe='')}")
                if response.ok:
                    found = _id_of(json_of(response, f"{VENDOR}: reading a project"), "project")
                    break
                if response.status_code in (401, 403):
                    raise AuthError(f"{VENDOR}: reading projects refused ({describe(response)})")
                if response.status_code != 404:
                    raise fail(response, f"{VENDOR}: finding the project of {repo.path}")
        with self._lock:
            self._projects[repo.path] = found
        return found

    def _repository_id(self, repo: RepoAddress, project: int) -> int | None:
        with self._lock:
            if repo.path in self._repositories:
                return self._repositories[repo.path]
        api = endpoints.gitlab_api(repo.registry, self._context.env)
        what = f"{VENDOR}: listing the registry repositories of project {project}"
        found: int | None = None
        page: str | None = "1"
        guard = PageGuard(what, first=page)
        while page and found is None:
            response = self._get(repo, f"{api}/projects/{project}/registry/repositories",
                                 params={"per_page": 100, "page": page})
            if not response.ok:
                raise fail(response, what)
            for item in json_of(response, what, list):
                if isinstance(item, dict) and str(item.get("path", "")).lower() == repo.path.lower():
                    found = _id_of(item, "registry repository")
                    break
            page = (response.headers.get("X-Next-Page") or "").strip() or None
            if page is not None and found is None:
                if not page.isdigit():
                    raise RegistryError(f"{what}: X-Next-Page {page[:20]!r} is not a page number")
                guard.advance(page)
        with self._lock:
            self._repositories[repo.path] = found
        return found

    def _untag_api(self, repo: RepoAddress, tag: str) -> str:
        project = self._project_id(repo)
        if project is None:
            raise RegistryError(
                f"{VENDOR}: no project found for {repo.path}; set $WERF_GITLAB_API_URL if the GitLab API is not at "
                f"{endpoints.gitlab_api(repo.registry, self._context.env)}"
            )
        api = endpoints.gitlab_api(repo.registry, self._context.env)
        repository = self._repository_id(repo, project)
        if repository is None:
            raise RegistryError(f"{VENDOR}: project {project} at {api} has no registry repository {repo.path}")
        url = f"{api}/projects/{project}/registry/repositories/{repository}/tags/{quote(tag, safe='')}"
        response = self._session.delete(url, headers=self._api_headers(repo))
        return untag_outcome(
            response, f"{VENDOR}: removing {repo}:{tag}",
            lambda: exists(self._get(repo, f"{api}/registry/repositories/{repository}"),
                           f"{VENDOR}: reading registry repository {repository}"),
            f"{repo.path} exists and WERF_GITLAB_API_URL is the GitLab API",
        )

    # --- listing -------------------------------------------------------------------------------
    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        """Every tag of ``repo`` (sorted) with its digest and ``created_at`` (the push time) from the tag
        details; the media type is not in them (None). [] when the project has no such registry repository;
        RegistryError when no project holds ``repo``; AuthError when the token is refused."""
        project = self._project_id(repo)
        api = endpoints.gitlab_api(repo.registry, self._context.env)
        if project is None:
            raise RegistryError(f"{VENDOR}: no project holding {repo.path} is visible at {api}: check that the token "
                                "may read it, or set WERF_GITLAB_API_URL to the GitLab API")
        repository = self._repository_id(repo, project)
        if repository is None:
            return []
        base = f"{api}/projects/{project}/registry/repositories/{repository}/tags"
        names = self._tag_names(repo, base)
        if not names:
            return []
        with ThreadPoolExecutor(max_workers=min(DETAILS_PARALLEL, len(names))) as pool:
            found = list(pool.map(lambda name: self._tag_details(repo, base, name), names))
        return sorted((info for info in found if info is not None), key=lambda info: info.tag)

    def _tag_names(self, repo: RepoAddress, base: str) -> list[str]:
        """The names of the repository's tags, every page."""
        what = f"{VENDOR}: listing the tags of {repo.path}"
        names: dict[str, None] = {}
        page: str | None = "1"
        guard = PageGuard(what, first=page)
        while page:
            response = self._get(repo, base, params={"per_page": LIST_PAGE_SIZE, "page": page})
            if not response.ok:
                raise fail(response, what)
            for item in json_of(response, what, list):
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str) and name:
                    names[name] = None
            page = (response.headers.get("X-Next-Page") or "").strip() or None
            if page is not None:
                if not page.isdigit():
                    raise RegistryError(f"{what}: X-Next-Page {page[:20]!r} is not a page number")
                guard.advance(page)
        return list(names)

    def _tag_details(self, repo: RepoAddress, base: str, name: str) -> TagInfo | None:
        """One tag's digest and ``created_at``; None when it is gone since the list (404)."""
        from ci_env.registry.client import TagInfo

        what = f"{VENDOR}: reading tag {name} of {repo.path}"
        response = self._get(repo, f"{base}/{quote(name, safe='')}")
        if response.status_code == 404:
            return None
        if not response.ok:
            raise fail(response, what)
        body = json_of(response, what)
        digest, created = body.get("digest"), body.get("created_at")
        return TagInfo(name, digest if isinstance(digest, str) and digest else None, None,
                       created if isinstance(created, str) and created else None)


class GitLabNamespaces:
    """Lists the registry repositories under a GitLab group or project (``NamespaceLister``): ``GET
    /groups/GROUP/registry/repositories`` (the group's and its subgroups' projects), else, when no group has that
    path, ``GET /projects/PROJECT/registry/repositories``; the path URL-encoded, 100 a page, following
    ``X-Next-Page``; each repository's ``path`` is its name. ``PRIVATE-TOKEN`` (``--repo-gitlab-token``, ``read_api``)
    or the job's ``JOB-TOKEN`` goes to the GitLab API only (none: anonymous, public groups only)."""

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._context = context
        self._session = session or new_session()
        self._remover = GitLabRemover(context, self._session)

    def list_namespace(self, registry: str, namespace: str) -> list[str]:
        """Every registry repository's path under the group or project ``namespace``; [] when it has none;
        RegistryError when GitLab knows neither a group nor a project by that path."""
        from ci_env.registry.reference import RepoAddress

        namespace = namespace.strip("/")
        where = RepoAddress(registry, namespace)
        api = endpoints.gitlab_api(registry, self._context.env)
        encoded = quote(namespace, safe="")
        for kind in ("groups", "projects"):
            paths = self._list(where, f"{api}/{kind}/{encoded}/registry/repositories",
                               f"{VENDOR}: listing the registry repositories of {kind[:-1]} {namespace}")
            if paths is not None:
                return paths
        raise RegistryError(
            f"{VENDOR}: no group or project {namespace} at {api}{self._remover._withheld_note(where)}: check the path, "
            f"that the token may read it ({where_to_set('gitlab-token')}, scope read_api), and that "
            "WERF_GITLAB_API_URL is the GitLab API"
        )

    def _list(self, where: RepoAddress, url: str, what: str) -> list[str] | None:
        """The ``path`` of every repository ``url`` lists, page by page; None when it answers 404 (no such one)."""
        headers = self._remover._api_headers(where)
        paths: list[str] = []
        page: str | None = "1"
        guard = PageGuard(what, first=page)
        while page is not None:
            params: dict[str, str | int] = {"per_page": 100, "page": page}
            response = self._session.get(url, headers=headers, params=params)
            if response.status_code == 404 and page == "1":
                return None
            if not response.ok:
                raise fail(response, what)
            for item in json_of(response, what, list):
                path = item.get("path") if isinstance(item, dict) else None
                if isinstance(path, str) and path:
                    paths.append(path.lower())
            page = (response.headers.get("X-Next-Page") or "").strip() or None
            if page is not None:
                if not page.isdigit():
                    raise RegistryError(f"{what}: X-Next-Page {page[:20]!r} is not a page number")
                guard.advance(page)
        return list(dict.fromkeys(paths))


def _id_of(item: dict[str, Any], kind: str) -> int:
    """The integer ``id`` of a GitLab API object; RegistryError when the answer has none."""
    value = item.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise RegistryError(f"{VENDOR}: the API answered a {kind} without a numeric id")
    return value
