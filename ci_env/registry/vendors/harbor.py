"""Harbor: remove one tag through Harbor's v2.0 API.

``DELETE /api/v2.0/projects/P/repositories/R/artifacts/TAG/tags/TAG`` removes that tag only (the
artifact and its other tags stay). ``R`` is the repository inside project ``P``; a nested ``R`` is
double-encoded (``a/b`` -> ``a%252Fb``) as Harbor requires. Basic auth with
``--repo-harbor-username``/``--repo-harbor-password`` (a user or a robot account), else the
credentials ``docker login`` saved for the Harbor host.

Listing: ``GET /api/v2.0/projects/P/repositories/R/artifacts?with_tag=true&page_size=100&page=1`` and each
``Link: rel="next"`` page give every artifact with its digest, manifest media type, ``push_time`` and
``tags[]`` (each with its own ``push_time``: when that tag was pushed), with the same credentials when
configured, anonymously (a public project) otherwise. The artifacts without tags (``tags`` null or empty) are the
repository's untagged manifests, which the untagged removal deletes:
``GET /api/v2.0/projects/P/repositories/R/artifacts/sha256:...?with_tag=true`` right before each
``DELETE /api/v2.0/projects/P/repositories/R/artifacts/sha256:...``. Harbor's artifact delete takes every tag of
the artifact with it, so an artifact that has a tag when it is read is never deleted (``left``); the account needs
Harbor's permission to delete artifacts (a project maintainer or admin; a robot account's "Delete Artifact").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ci_env.errors import AuthError, CiEnvError, PreflightError, RegistryError
from ci_env.registry.outcomes import Status
from ci_env.registry.untag import Capabilities
from ci_env.registry.vendors import endpoints
from ci_env.registry.vendors.common import (
    VendorContext,
    describe,
    exists,
    fail,
    get_credential,
    json_of,
    listing_page,
    new_session,
    paged,
    preflight_failure,
    untag_outcome,
    where_to_set,
)

if TYPE_CHECKING:
    import requests

    from ci_env.registry.client import TagInfo
    from ci_env.registry.reference import RepoAddress

VENDOR = "Harbor"
CREDENTIALS_HELP = (
    f"set {where_to_set('harbor-username', 'harbor-password')} (a user or robot account allowed to delete tags), "
    "or docker login to the Harbor host"
)

#: artifacts per page of the artifact listing (Harbor's maximum)
LIST_PAGE_SIZE = 100
#: what the account needs to delete untagged artifacts
ARTIFACT_DELETE_HELP = (
    "the account needs Harbor's permission to delete artifacts in the project (a maintainer or project admin; "
    "a robot account with Delete Artifact)"
)


def encode_repository(name: str) -> str:
    """A repository name as Harbor wants it in a path: URL-encoded twice (``a/b`` -> ``a%252Fb``)."""
    return quote(quote(name, safe=""), safe="")


def split_repository(repo: RepoAddress) -> tuple[str, str]:
    """(project, repository inside the project)."""
    project, _, name = repo.path.partition("/")
    if not project or not name:
        raise RegistryError(f"{VENDOR}: {repo} is not a repository (expected {repo.registry}/PROJECT/REPOSITORY)")
    return project, name


class HarborRemover:
    """Removes tags from Harbor repositories with the v2.0 API."""

    capabilities = Capabilities(lists_untagged=True, deletes_untagged=True)

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._context = context
        self._session = session or new_session()

    def _repository_url(self, repo: RepoAddress) -> str:
        """The API URL of ``repo`` (``.../projects/P/repositories/R``, ``R`` double-encoded)."""
        project, name = split_repository(repo)
        api = endpoints.harbor_api(repo.registry, self._context.env)
        return f"{api}/projects/{quote(project, safe='')}/repositories/{encode_repository(name)}"

    def _auth(self, repo: RepoAddress) -> tuple[str, str]:
        username = get_credential(self._context, "harbor-username")
        password = get_credential(self._context, "harbor-password")
        if username and password:
            return username, password
        from ci_env.registry.auth import credentials_for

        saved = credentials_for(repo.registry, self._context.docker_config)
        if saved is not None and saved.has_basic:
            return saved.username or "", saved.password or ""
        raise preflight_failure(VENDOR, f"no credentials for {repo.registry}", CREDENTIALS_HELP)

    def _get(self, repo: RepoAddress, url: str, **kwargs: Any) -> requests.Response:
        return self._session.get(url, auth=self._auth(repo), **kwargs)

    def preflight(self, repo: RepoAddress) -> None:
        """Check the credentials are accepted and, for a user account, that it may delete tags in the project."""
        project, _ = split_repository(repo)
        api = endpoints.harbor_api(repo.registry, self._context.env)
        response = self._get(repo, f"{api}/projects/{quote(project, safe='')}")
        if response.status_code in (401, 403):
            raise preflight_failure(VENDOR, f"access to project {project} refused ({describe(response)})",
                                    CREDENTIALS_HELP)
        if response.status_code == 404:
            return
        if not response.ok:
            raise fail(response, f"{VENDOR}: reading project {project}")
        project_id = json_of(response, f"{VENDOR}: reading project {project}").get("project_id")
        permissions = self._get(
            repo, f"{api}/users/current/permissions", params={"scope": f"/project/{project_id}", "relative": "true"}
        )
        if not permissions.ok:  # robot accounts cannot read /users/current: the delete answers for them
            return
        granted = json_of(permissions, f"{VENDOR}: reading the account's permissions", list)
        allowed = {(p.get("resource"), p.get("action")) for p in granted if isinstance(p, dict)}
        if ("tag", "delete") not in allowed:
            raise preflight_failure(
                VENDOR, f"the account may not delete tags in project {project}", CREDENTIALS_HELP
            )

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` only: ``removed``, or ``absent`` when Harbor does not know it."""
        project, name = split_repository(repo)
        api = endpoints.harbor_api(repo.registry, self._context.env)
        ref = quote(tag, safe="")
        repository = f"{api}/projects/{quote(project, safe='')}/repositories/{encode_repository(name)}"
        url = f"{repository}/artifacts/{ref}/tags/{ref}"
        response = self._session.delete(url, auth=self._auth(repo))
        return untag_outcome(
            response, f"{VENDOR}: removing {repo}:{tag}",
            lambda: exists(self._get(repo, repository), f"{VENDOR}: reading {repo.path}"),
            f"{repo.path} exists and WERF_HARBOR_API_URL (default: the registry host) is Harbor's root URL",
        )

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        """Every tag of ``repo`` (sorted) with its artifact's digest and manifest media type, and the tag's own
        ``push_time`` (the artifact's where the tag has none), following ``Link`` pages.

        With the Harbor credentials (or ``docker login``'s) when configured, else anonymously (a public
        project). RegistryError when the repository is unknown (or private and no credentials were given);
        AuthError when the credentials are refused.
        """
        return self.list_manifests(repo)[0]

    def list_manifests(self, repo: RepoAddress) -> tuple[list[TagInfo], dict[str, str | None]]:
        """:meth:`list_tags` and, from the same artifact listing, the artifacts without a tag (``tags`` null or
        empty): digest -> the artifact's ``push_time``."""
        from ci_env.registry.client import TagInfo

        url = f"{self._repository_url(repo)}/artifacts"
        try:
            auth: tuple[str, str] | None = self._auth(repo)
        except PreflightError:
            auth = None
        what = f"{VENDOR}: listing the artifacts of {repo.path}"
        hint = "" if auth else f" (a private project needs credentials: {CREDENTIALS_HELP})"
        params = {"with_tag": "true", "page_size": str(LIST_PAGE_SIZE), "page": "1"}
        infos: dict[str, TagInfo] = {}
        untagged: dict[str, str | None] = {}
        for response in paged(self._session, url, what, params=params, auth=auth):
            for artifact in _artifacts_of(response, what, hint):
                digest = _text(artifact.get("digest"))
                media = _text(artifact.get("manifest_media_type"))
                names = _tag_names(artifact, what)
                if not names and digest:
                    untagged[digest] = _text(artifact.get("push_time"))
                for tag_name, tag in names:
                    pushed = _text(tag.get("push_time")) or _text(artifact.get("push_time"))
                    infos[tag_name] = TagInfo(tag_name, digest, media, pushed)
        tagged = {info.digest for info in infos.values()}
        untagged = {digest: when for digest, when in untagged.items() if digest not in tagged}
        return [infos[tag] for tag in sorted(infos)], untagged

    def list_untagged(self, repo: RepoAddress) -> list[str]:
        """The digests of the artifacts of ``repo`` without a tag (:meth:`list_manifests`)."""
        return list(self.list_manifests(repo)[1])

    def delete_manifests(
        self, repo: RepoAddress, digests: Sequence[str], *, parallel: int = 1,
    ) -> dict[str, str | CiEnvError]:
        """Delete the untagged artifacts ``digests`` in order, one at a time (an index before its children):
        each is read right before its DELETE, which would take its tags with it, so one that has a tag now stays
        (``left``); ``removed``, ``absent`` (Harbor no longer has it) or the error, per digest (never raises).
        ``parallel`` is accepted for the protocol: the deletes run in the order given."""
        results: dict[str, str | CiEnvError] = {}
        for digest in dict.fromkeys(digests):
            try:
                results[digest] = self._delete_untagged(repo, digest)
            except CiEnvError as exc:
                results[digest] = exc
        return results

    def _delete_untagged(self, repo: RepoAddress, digest: str) -> str:
        """One untagged artifact: read it (with its tags), then delete it unless it has a tag now."""
        url = f"{self._repository_url(repo)}/artifacts/{quote(digest, safe=':')}"
        auth = self._auth(repo)
        what = f"{VENDOR}: reading artifact {repo.path}@{digest}"
        response = self._session.get(url, params={"with_tag": "true"}, auth=auth)
        if response.status_code == 404:
            return Status.ABSENT
        if not response.ok:
            raise fail(response, what)
        if _tag_names(json_of(response, what, dict), what):
            return Status.LEFT  # tagged since it was listed: Harbor's delete would take the tag with it
        response = self._session.delete(url, auth=auth)
        if response.status_code in (200, 202, 204):
            return Status.REMOVED
        if response.status_code == 404:
            return Status.ABSENT
        if response.status_code in (401, 403):
            raise AuthError(f"{VENDOR}: deleting artifact {repo.path}@{digest} refused ({describe(response)}): "
                            f"{ARTIFACT_DELETE_HELP}")
        raise fail(response, f"{VENDOR}: deleting artifact {repo.path}@{digest}")


def _artifacts_of(response: requests.Response, what: str, hint: str) -> list[dict[str, Any]]:
    """The artifacts (objects) of one page of Harbor's artifact listing; RegistryError for a missing repository
    or an answer that is not a list."""
    if response.status_code == 404:
        listing_page(response, what, hint)  # raises "no such repository"
    if not response.ok:
        raise fail(response, what)
    return [item for item in json_of(response, what, list) if isinstance(item, dict)]


def _tag_names(artifact: dict[str, Any], what: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, tag object) of each tag of a listed or read artifact (``tags`` null or missing: none).
    RegistryError when ``tags`` is not a list: an artifact whose tags cannot be read could be a tagged image
    taken for an untagged one."""
    tags = artifact.get("tags")
    if tags is None:
        return []
    if not isinstance(tags, list):
        raise RegistryError(f"{what}: Harbor answered an artifact whose tags are not a list")
    named = [(_text(tag.get("name")), tag) for tag in tags if isinstance(tag, dict)]
    if len(named) != len(tags) or any(name is None for name, _tag in named):
        raise RegistryError(f"{what}: Harbor answered an artifact with a tag that has no name")
    return [(name, tag) for name, tag in named if name is not None]


def _text(value: object) -> str | None:
    """``value`` when it is a non-empty string, else None (a listing field that is missing or malformed)."""
    return value if isinstance(value, str) and value else None

class HarborNamespaces:
    """Lists the repositories of a Harbor project (``NamespaceLister``): ``GET
    /api/v2.0/projects/PROJECT/repositories`` (``X-Is-Resource-Name: true``: the project by name), 100 a page,
    following ``Link``; names come as ``PROJECT/REPOSITORY``. Basic auth as the remover's (a user or robot account
    that may list the project's repositories), sent to the Harbor API only; none: anonymous, public projects."""

    def __init__(self, context: VendorContext, session: requests.Session | None = None) -> None:
        self._context = context
        self._session = session or new_session()
        self._remover = HarborRemover(context, self._session)

    def list_namespace(self, registry: str, namespace: str) -> list[str]:
        """Every repository of the project (``namespace``'s first segment); [] when it has none; RegistryError
        when Harbor has no such project."""
        from ci_env.errors import PreflightError
        from ci_env.registry.reference import RepoAddress
        from ci_env.registry.vendors.common import paged

        project = namespace.strip("/").split("/")[0]
        try:
            auth: tuple[str, str] | None = self._remover._auth(RepoAddress(registry, project))
        except PreflightError:
            auth = None
        api = endpoints.harbor_api(registry, self._context.env)
        what = f"{VENDOR}: listing the repositories of project {project}"
        names: list[str] = []
        for response in paged(self._session, f"{api}/projects/{quote(project, safe='')}/repositories", what,
                              params={"page": 1, "page_size": 100}, headers={"X-Is-Resource-Name": "true"},
                              auth=auth):
            if response.status_code == 404:
                raise RegistryError(f"{what}: Harbor at {api} has no project {project}: check the name, the "
                                    f"credentials ({CREDENTIALS_HELP}) and WERF_HARBOR_API_URL (default: the "
                                    "registry host)")
            if not response.ok:
                raise fail(response, what)
            for item in json_of(response, what, list):
                name = item.get("name") if isinstance(item, dict) else None
                if isinstance(name, str) and name:
                    names.append(name)
        return list(dict.fromkeys(names))
