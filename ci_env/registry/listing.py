"""Vendor tag listings: where an implementation's own API lists tags with digests and creation times in one
paginated listing (instead of the Registry API's tag list plus requests per image), the one table saying which.

``lister_for(implementation, context)`` builds the lister for the implementation's ``delete_route`` (each lives
next to its remover in ``ci_env.registry.vendors``, imported lazily), or returns None: use the Registry API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from ci_env.errors import RepositoryUnknownError
from ci_env.registry.routes import RoutedImplementation, build

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ci_env.registry.api import RegistryApi
    from ci_env.registry.client import TagInfo
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.untag import RemoverContext

#: delete_route -> "module:Class" of its lister; each class is built as ``Class(context)``.
LISTERS: dict[str, str] = {
    "ecr-sdk": "ci_env.registry.vendors.ecr:EcrRemover",
    "dockerhub-api": "ci_env.registry.vendors.dockerhub:DockerHubRemover",
    "quay-api": "ci_env.registry.vendors.quay:QuayRemover",
}


#: delete_route -> "module:Class" of a listing whose times are the registry's push times (cleanup by rules ages
#: tags by them, and takes each tag's digest from them: no HEAD per tag). The one table of where they come from:
#: ECR ``imagePushedAt``, Docker Hub ``tag_last_pushed``, Quay ``start_ts`` (the vendor listings above), GitHub's
#: package versions ``updated_at``, GitLab's tag details ``created_at`` (one request per tag), Harbor's tags
#: ``push_time`` and ACR's ``lastUpdateTime``. Elsewhere the image config's ``created`` stands in.
PUSH_TIME_LISTERS: dict[str, str] = {
    **LISTERS,
    "github-api": "ci_env.registry.vendors.github:GitHubRemover",
    "gitlab": "ci_env.registry.vendors.gitlab:GitLabRemover",
    "harbor-api": "ci_env.registry.vendors.harbor:HarborRemover",
    "acr": "ci_env.registry.vendors.acr:AcrRemover",
}


class TagLister(Protocol):
    """Lists the tags of the repositories of one implementation through its own API."""

    def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
        """Every tag of ``repo``, sorted, with digest, media type and creation time where the API gives them."""


class ManifestLister(TagLister, Protocol):
    """A tag listing that also lists the manifests no tag points at, with their push times (GitHub's untagged
    package versions, ECR's untagged images, Harbor's artifacts without tags)."""

    def list_manifests(self, repo: RepoAddress) -> tuple[list[TagInfo], dict[str, str | None]]:
        """``list_tags(repo)``, and the untagged manifests of the same listing: digest -> push time (ISO 8601, None
        when not given)."""


def list_with_untagged(lister: TagLister, repo: RepoAddress) -> tuple[list[TagInfo], dict[str, str | None] | None]:
    """The tags of ``repo`` and, where ``lister`` lists them (:class:`ManifestLister`), its untagged manifests
    with their push times (None: this listing does not say which manifests are untagged)."""
    full = getattr(lister, "list_manifests", None)
    if full is None:
        return lister.list_tags(repo), None
    tags, untagged = cast(ManifestLister, lister).list_manifests(repo)
    return tags, untagged


def with_registry_tags(client: RegistryApi, path: str, infos: Sequence[TagInfo], *, parallel: int = 8,
                       verify: bool = False) -> tuple[list[TagInfo], tuple[str, ...]]:
    """``infos`` (a vendor listing of ``path``) completed by the Registry API's tag list (``GET /v2/PATH/tags/list``,
    one paged listing): each tag the vendor listing lacks (eventual consistency, a lagging or mis-paged listing)
    is resolved with one HEAD and added without a push time; one that vanished meanwhile is left out, and a
    repository the registry does not know (404 NAME_UNKNOWN) adds none. ``verify``: every tag either lists is
    resolved (one HEAD each) and the Registry API's digest wins: a lagging vendor listing can still show a moved
    tag on its old image (its push time is kept only where the digests agree; a tag the registry no longer has
    is left out). (every tag, sorted; the tags added, sorted). RegistryError when the tag list or a tag cannot
    be read: a vendor listing alone could make a tagged manifest look untagged."""
    from ci_env.registry.client import TagInfo

    try:
        names = client.list_tags(path)
    except RepositoryUnknownError:
        names = []
    have = {info.tag: info for info in infos}
    wanted = sorted({*names, *have} if verify else {tag for tag in names if tag not in have})
    added = []
    resolved = client.resolve_tags(path, wanted, parallel=parallel)
    merged = [] if verify else list(infos)
    for tag in wanted:
        found = resolved.get(tag)
        if found is None:
            continue
        vendor = have.get(tag)
        if vendor is None:
            added.append(tag)
        if verify or vendor is None:
            same = vendor is not None and vendor.digest == found.digest
            merged.append(TagInfo(tag, found.digest, found.media_type, vendor.created if same and vendor else None))
    return sorted(merged, key=lambda info: info.tag), tuple(added)


def lister_for(implementation: RoutedImplementation, context: RemoverContext, *,
               table: dict[str, str] | None = None) -> TagLister | None:
    """The vendor lister for ``implementation`` built with ``context``, or None when it has none (``table``:
    :data:`LISTERS` unless given, e.g. :data:`PUSH_TIME_LISTERS`)."""
    target = (LISTERS if table is None else table).get(implementation.delete_route)
    if target is None:
        return None
    return cast(TagLister, build(target, context, f"the tag listing for {implementation.delete_route!r}"))
