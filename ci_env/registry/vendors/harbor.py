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
the artifact with it, so an artifact that has a tag when it is read is never deleted (``left``). It also takes the
artifact's accessories (every manifest naming it as ``subject``, cosign's signatures: each with every tag on it) and
its children no tag and no other index holds (with their accessories); so the read asks for them
(``with_accessory=true``, ``references``), each is read too, and the artifact stays (``left``, saying why) when its
delete would take a tagged manifest (other than the accessory tags of the manifest it belongs to, as cosign's
``sha256-<hex>.sig``) or a digest that must stay (what workloads run). What a delete took with it is ``removed`` when
its turn comes. The account needs Harbor's permission to delete artifacts (a project maintainer or admin; a robot
account's "Delete Artifact").
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ci_env.errors import AuthError, CiEnvError, PreflightError, RegistryError
from ci_env.registry.outcomes import Left, Status
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

    def delete_manifests(
        self, repo: RepoAddress, digests: Sequence[str], *, parallel: int = 1, keep: Collection[str] = (),
    ) -> dict[str, str | CiEnvError]:
        """Delete the untagged artifacts ``digests`` in order, one at a time (an index before its children):
        each is read right before its DELETE with what the DELETE would take along (its tags, accessories and
        children: see the module), and one that has a tag now, or whose delete would take a tagged manifest or one
        of ``keep`` (digests that must stay although untagged: what workloads run), stays (``left``; a
        :class:`Left` saying why when it is not its own tag). Per digest ``removed`` (by this call, also what an
        earlier delete of it took along), ``absent`` (Harbor no longer has it), ``left`` or the error; never raises:
        an error no check foresaw (an answer of another shape) fails that digest alone.
        ``parallel`` is accepted for the protocol: the deletes run in the order given."""
        from ci_env.redact import strip_userinfo_in

        results: dict[str, str | CiEnvError] = {}
        done = _Done()
        for digest in dict.fromkeys(digests):
            try:
                results[digest] = self._delete_untagged(repo, digest, frozenset(keep), done)
            except CiEnvError as exc:
                results[digest] = exc
            except Exception as exc:  # an answer of a shape no check foresaw: this digest fails, nothing is lost
                first = strip_userinfo_in((str(exc).splitlines() or [""])[0][:200])
                results[digest] = RegistryError(
                    f"{VENDOR}: artifact {repo.path}@{digest} not removed: unexpected error ({type(exc).__name__}"
                    f"{': ' + first if first else ''}); run again, and report it if it stays")
        return results

    def _read(self, repo: RepoAddress, digest: str) -> dict[str, Any] | None:
        """The artifact ``digest`` with its tags, accessories and references; None when Harbor does not have it.
        RegistryError for an answer about another artifact (or none named)."""
        url = f"{self._repository_url(repo)}/artifacts/{quote(digest, safe=':')}"
        what = f"{VENDOR}: reading artifact {repo.path}@{digest}"
        response = self._session.get(url, params={"with_tag": "true", "with_accessory": "true"},
                                     auth=self._auth(repo))
        if response.status_code == 404:
            return None
        if not response.ok:
            raise fail(response, what)
        artifact: dict[str, Any] = json_of(response, what, dict)
        answered = _text(artifact.get("digest"))
        if answered != digest:
            raise RegistryError(f"{what}: Harbor answered for {answered or 'an artifact without a digest'}; "
                                "nothing is deleted on an answer about another artifact")
        return artifact

    def _delete_untagged(self, repo: RepoAddress, digest: str, keep: frozenset[str], done: _Done) -> str:
        """One untagged artifact: read it and what its delete takes along, then delete it unless that would take a
        tag or what must stay. ``done``: what this call's deletes took and left so far (updated)."""
        what = f"{VENDOR}: reading artifact {repo.path}@{digest}"
        if digest in done.under_left:
            return Left("an index that stays references it (Harbor deletes it with that index only)")
        artifact = self._read(repo, digest)
        if artifact is None:
            return Status.REMOVED if digest in done.taken else Status.ABSENT
        if _tag_names(artifact, what):
            return Status.LEFT  # tagged since it was listed: Harbor's delete would take the tag with it
        along, held = self._takes_along(repo, artifact, keep)
        if held:
            done.under_left.update(_linked(artifact, "references", "child_digest", what))
            return Left(f"Harbor's delete would take with it {held}")
        response = self._session.delete(f"{self._repository_url(repo)}/artifacts/{quote(digest, safe=':')}",
                                        auth=self._auth(repo))
        if response.status_code in (200, 202, 204):
            done.taken.update(along)
            return Status.REMOVED
        if response.status_code == 404:
            return Status.ABSENT
        if response.status_code == 412:  # Harbor's answer for an artifact an index references: nothing deleted
            return Left(f"Harbor refused its delete ({describe(response)}): an index references it")
        if response.status_code in (401, 403):
            raise AuthError(f"{VENDOR}: deleting artifact {repo.path}@{digest} refused ({describe(response)}): "
                            f"{ARTIFACT_DELETE_HELP}")
        raise fail(response, f"{VENDOR}: deleting artifact {repo.path}@{digest}")

    def _takes_along(self, repo: RepoAddress, artifact: dict[str, Any],
                     keep: frozenset[str]) -> tuple[set[str], str]:
        """What Harbor's delete of the (untagged) ``artifact`` deletes with it, as its artifact controller does:
        each accessory (with every tag on it) and each child no tag holds, and theirs in turn, each read now; and
        what must keep it (empty: nothing): a manifest taken along that has a tag other than the accessory tags of
        the manifest it belongs to, or one of ``keep``. A child another index also references stays in Harbor but
        counts here (a false ``left`` at worst, never a deletion)."""
        root = str(artifact["digest"])
        along, pending = {root}, [artifact]
        while pending:
            current = pending.pop()
            owner = str(current["digest"])
            what = f"{VENDOR}: reading artifact {repo.path}@{owner}"
            linked = [(d, True) for d in _linked(current, "accessories", "digest", what)]
            linked += [(d, False) for d in _linked(current, "references", "child_digest", what)]
            for digest, accessory in linked:
                if digest in along:
                    continue
                found = self._read(repo, digest)
                if found is None:
                    continue
                tags = [name for name, _tag in _tag_names(found, what)]
                if not accessory and tags:
                    continue  # Harbor leaves a child that has a tag (and what it holds)
                foreign = [tag for tag in tags if not _accessory_tag_of(tag, owner)]
                if foreign:
                    return along, f"{digest} (tag {foreign[0]})"
                if digest in keep:
                    return along, f"{digest}, which a workload runs"
                along.add(digest)
                pending.append(found)
        return along, ""


@dataclass
class _Done:
    """What one :meth:`HarborRemover.delete_manifests` call did so far: the digests its deletes took along, and
    the children of the artifacts it left (Harbor refuses to delete an artifact an index references)."""

    taken: set[str] = field(default_factory=set)
    under_left: set[str] = field(default_factory=set)


def _linked(artifact: dict[str, Any], field: str, key: str, what: str) -> list[str]:
    """The digests of an artifact's ``accessories`` (``digest``) or ``references`` (``child_digest``); none when
    the field is missing or null. RegistryError for one that cannot be read: what a delete would take along must
    be known."""
    items = artifact.get(field)
    if items is None:
        return []
    digests = [_text(item.get(key)) if isinstance(item, dict) else None for item in items] \
        if isinstance(items, list) else [None]
    if any(digest is None for digest in digests):
        raise RegistryError(f"{what}: Harbor answered {field} ci-env cannot read; nothing is deleted")
    return [digest for digest in digests if digest is not None]


def _accessory_tag_of(tag: str, owner: str) -> bool:
    """True for an accessory tag of ``owner`` (cosign's ``sha256-<hex>.sig``, the referrers tag schema's): it goes
    with what it belongs to."""
    from ci_env.registry.accessories import accessory_tag

    found = accessory_tag(tag)
    return found is not None and found.belongs_to(owner)


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
