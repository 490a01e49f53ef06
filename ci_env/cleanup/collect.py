"""What is there to clean: the managed images' tags and the stage images, read from the registry.

Each tag found in a managed image's repository becomes a :class:`FoundTag` carrying the strategy
it was published with: from its publication record (``ci_env.records``) when there is one, else
from the labels of its image config (one manifest and one blob request per digest, only for tags
without a record; see :func:`strategy_from_labels`), whose ``werf-image-name`` also decides the owner.
Tags no managed image owns (another project's, an ambiguous monorepo prefix) are never returned,
so cleanup never touches them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ci_env import untrusted_json
from ci_env.cleanup.policies import FoundTag, StageTag
from ci_env.cleanup.progress import Update
from ci_env.contract import (
    GIT_BRANCH,
    GIT_COMMIT,
    GIT_TAG,
    IMAGE_TAG_LABEL,
    REVISION_LABEL,
    SIGNATURE_LABEL,
    STRATEGY_LABEL,
)
from ci_env.errors import CiEnvError, RepositoryUnknownError

if TYPE_CHECKING:
    from ci_env.records import Publication, PublicationsRead
    from ci_env.registry.client import ManifestInfo, RegistryClient
    from ci_env.registry.listing import TagLister
    from ci_env.registry.naming import ManagedNaming
    from ci_env.registry.reference import RepoAddress

PARALLELISM = 32  # reads at once; see ci_env.registry.client.LISTING_PARALLELISM


@dataclass(frozen=True)
class Inventory:
    """The tags found (owned by managed images), the stages found, and the tags left alone with why."""

    tags: tuple[FoundTag, ...]
    stages: tuple[StageTag, ...]
    skipped: tuple[tuple[str, str], ...] = ()  #: (repository:tag, reason) of tags cleanup will not touch
    publications: tuple[Publication, ...] = ()  #: every publication record read
    #: repository -> EVERY tag listed there with what it resolved to (digest, media type): the repository graph
    #: is built from it (``ci_env.registry.graph``) without listing again; only repositories listed whole
    listings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the publication records as read (``records.PublicationsRead``): what forgetting and compaction start from
    records: PublicationsRead | None = None
    #: repository -> its tags listed through the Registry API, partly resolved (see ``collect_tags``): a plan
    #: resolves the rest of each repository it removes from before it is final
    partial: Mapping[str, PartlyResolved] = field(default_factory=dict)


@functools.lru_cache(maxsize=4096)  # records published together share their time: one datetime for them all
def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time (``Z`` or offset; naive taken as UTC) as an aware datetime, None when absent/invalid."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:  # Go writes nanoseconds; Python 3.10 accepts at most microseconds
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def image_config(client: RegistryClient, path: str, digest: str) -> dict[str, Any]:
    """The image config JSON of the image manifest ``digest`` ({} for an index or an unreadable config)."""
    from ci_env.registry import manifests as mf
    from ci_env.registry.auth import repository_scope

    body, info = client.get_manifest(path, digest)
    if info.media_type not in mf.IMAGE_TYPES:
        return {}
    try:
        blobs = mf.references(body).blobs
    except ValueError:
        return {}
    if not blobs:
        return {}
    response = client.request("GET", f"/v2/{path}/blobs/{blobs[0]}", scopes=[repository_scope(path, "pull")])
    if response.status_code != 200:
        return {}
    try:
        data = untrusted_json.loads(response.content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def labels_and_created(config: Mapping[str, Any]) -> tuple[dict[str, str], datetime | None]:
    """The labels (``config.Labels``) and the ``created`` time of an image config."""
    inner = config.get("config") or {}
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    clean = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    created = config.get("created")
    return clean, parse_time(created if isinstance(created, str) else None)


def _digests(
    client: RegistryClient, path: str, tags: Sequence[str], progress: Update | None = None, what: str = "",
) -> dict[str, str | None]:
    """The digest of each tag (None when it vanished), resolved in parallel, reporting ``progress``."""
    return {tag: info.digest if info else None for tag, info in _resolve(client, path, tags, progress, what).items()}


def _resolve(
    client: RegistryClient, path: str, tags: Sequence[str], progress: Update | None = None, what: str = "",
) -> dict[str, ManifestInfo | None]:
    """What each tag points at (None when it vanished), resolved in parallel, reporting ``progress``."""
    lock = threading.Lock()
    done = 0

    def resolve(tag: str) -> ManifestInfo | None:
        nonlocal done
        info = client.resolve(path, tag)
        if progress is not None:
            with lock:
                done += 1
                count = done
            progress(what, count, len(tags))
        return info

    with ThreadPoolExecutor(max_workers=PARALLELISM) as pool:
        infos = list(pool.map(resolve, tags))
    return dict(zip(tags, infos, strict=True))


def _list(client: RegistryClient, path: str) -> list[str]:
    try:
        return client.list_tags(path)
    except RepositoryUnknownError:
        return []


def _vendor_digests(
    lister: TagLister, client: RegistryClient, repository: RepoAddress,
    exclude: Callable[[RepoAddress, str], bool], progress: Update | None,
    listings: dict[str, Mapping[str, Any]] | None = None,
) -> dict[str, str | None] | None:
    """The digest of each tag of ``repository`` from the vendor's own listing (one paginated listing, no
    request per tag; a tag the listing gives without a digest is resolved through the Registry API), or
    None when the listing fails (the repository is missing, the credentials do not allow it, ...)."""
    if progress is not None:
        progress(f"listing the tags of {repository}", 0, 0)
    try:
        listed = lister.list_tags(repository)
    except CiEnvError:
        return None
    if listings is not None and not any(exclude(repository, info.tag) for info in listed):
        listings[str(repository)] = {info.tag: info for info in listed}
    digests = {info.tag: info.digest for info in listed if not exclude(repository, info.tag)}
    missing = [tag for tag, digest in digests.items() if digest is None]
    if missing:
        digests.update(_digests(client, repository.path, missing, progress, f"resolving the tags of {repository}"))
    return digests


@dataclass(frozen=True)
class PartlyResolved:
    """A repository listed through the Registry API whose tags with a publication record were not resolved: each
    took the digest its record says (see ``collect_tags``). ``resolve_some`` resolves the ones a plan removes."""

    repository: RepoAddress
    whole: bool  #: every tag listed is here (nothing excluded)
    resolved: Mapping[str, ManifestInfo | None]  #: the tags resolved
    recorded: tuple[str, ...]  #: the tags that took their record's digest

    @property
    def names(self) -> tuple[str, ...]:
        """Every tag listed (and not excluded)."""
        return (*self.resolved, *self.recorded)


def resolve_some(
    client: RegistryClient, partly: PartlyResolved, tags: Sequence[str], progress: Update | None = None,
) -> tuple[dict[str, str | None], PartlyResolved]:
    """Resolve ``tags`` of ``partly`` that took their record's digest: their digest now (None: gone), and
    ``partly`` with them resolved. One request per tag: a plan resolves what it removes, never the repository."""
    recorded = set(partly.recorded)
    wanted = [t for t in dict.fromkeys(tags) if t in recorded]
    what = f"resolving the tags to remove in {partly.repository}"
    infos = _resolve(client, partly.repository.path, wanted, progress, what)
    after = PartlyResolved(partly.repository, partly.whole, {**partly.resolved, **infos},
                           tuple(t for t in partly.recorded if t not in infos))
    return {tag: info.digest if info else None for tag, info in infos.items()}, after


def _registry_digests(
    client: RegistryClient, repository: RepoAddress, exclude: Callable[[RepoAddress, str], bool],
    progress: Update | None, listings: dict[str, Mapping[str, Any]] | None = None,
    recorded: Mapping[str, str] | None = None, partial: dict[str, PartlyResolved] | None = None,
) -> dict[str, str | None]:
    """The digest of each tag of ``repository`` through the Registry API: the tag list, then one request per tag,
    except (with ``partial`` to collect them in) for the tags in ``recorded`` (tag -> the digest its publication
    record says): those take the recorded digest unresolved. A repository resolved whole (nothing excluded, nothing
    taken from records) goes into ``listings``; one partly resolved into ``partial``."""
    listed = _list(client, repository.path)
    tags = [t for t in listed if not exclude(repository, t)]
    trusted = {t: recorded[t] for t in tags if t in recorded} if recorded and partial is not None else {}
    wanted = [t for t in tags if t not in trusted]
    infos = _resolve(client, repository.path, wanted, progress, f"resolving the tags of {repository}")
    if trusted and partial is not None:
        partial[str(repository)] = PartlyResolved(repository, len(tags) == len(listed), infos, tuple(trusted))
    elif len(wanted) == len(listed) and listings is not None:  # the whole repository: its graph starts from it
        listings[str(repository)] = infos
    digests: dict[str, str | None] = {tag: info.digest if info else None for tag, info in infos.items()}
    digests.update(trusted)
    return digests


def collect_tags(
    naming: ManagedNaming,
    publications: Iterable[Publication],
    client_of: Callable[[RepoAddress], RegistryClient],
    *,
    exclude: Callable[[RepoAddress, str], bool] = lambda _r, _t: False,
    progress: Update | None = None,
    lister: TagLister | None = None,
    listings: dict[str, Mapping[str, Any]] | None = None,
    partial: dict[str, PartlyResolved] | None = None,
) -> tuple[list[FoundTag], list[tuple[str, str]]]:
    """Every tag of the managed images (``naming``: where their tags live and which owns a tag) in their
    repositories, with its strategy; and the tags skipped.

    ``exclude(repository, tag)`` drops tags that are not images at all (records, stages sharing the repo).
    ``progress(what, done, total)`` is told how far listing and resolving each repository's tags is.

    With a ``lister`` (the images repo implementation's own tag listing, ``ci_env.registry.listing``), the
    tags and digests of each repository come from it: one paginated listing instead of one request per tag.
    When that listing fails, and for every implementation without one, the Registry API lists the tags and
    resolves each. ``listings`` (when given) receives each repository's whole listing, for its graph.

    With ``partial`` (a dict to fill), a tag listed through the Registry API that has a publication record takes
    the digest its record says instead of being resolved (one request per tag saved), and its repository goes into
    ``partial`` (a :class:`PartlyResolved`): before a plan is final, the tags it removes are resolved
    (:func:`resolve_some`), so it decides on the digests they hold now, not as published; the tags it keeps are
    never read.

    Size: one loop over the repositories, each tag classified by record, then by owner, then by labels; the keyword
    parameters are optional hooks and outputs the callers fill (listing, partial resolution).
    """
    images = naming.images
    records = {(p.repository, p.stored_tag): p for p in publications}
    recorded_by_repo: dict[str, dict[str, str]] = {}
    for (repo, stored), publication in records.items():
        if publication.image in images and publication.digest:
            recorded_by_repo.setdefault(repo, {})[stored] = publication.digest
    found: list[FoundTag] = []
    skipped: list[tuple[str, str]] = []
    for repository in naming.repositories:
        client = client_of(repository)
        digests = (_vendor_digests(lister, client, repository, exclude, progress, listings)
                   if lister is not None else None)
        if digests is None:
            digests = _registry_digests(client, repository, exclude, progress, listings,
                                        recorded_by_repo.get(str(repository)), partial)
        tags = list(digests)
        configs: dict[str, tuple[dict[str, str], datetime | None]] = {}

        def config_of(
            digest: str, client: RegistryClient = client, repository: RepoAddress = repository,
            configs: dict[str, tuple[dict[str, str], datetime | None]] = configs,
        ) -> tuple[dict[str, str], datetime | None]:
            if digest not in configs:
                configs[digest] = labels_and_created(image_config(client, repository.path, digest))
            return configs[digest]

        for tag in sorted(tags):
            digest = digests[tag]
            if digest is None:
                continue  # removed while we listed
            record = records.get((str(repository), tag))
            if record is not None and record.image in images:
                found.append(FoundTag(
                    record.image, repository, record.tag, tag, digest, record.strategy, "record",
                    recorded_ref(record), parse_time(record.published_at), record.signature,
                ))
                continue
            owner = naming.owner(repository, tag)
            if owner.status == "unmanaged":
                skipped.append((f"{repository}:{tag}", owner.reason))
                continue
            labels, created = config_of(digest)
            owner = naming.owner(repository, tag, labels or None)
            if not owner.owned:
                skipped.append((f"{repository}:{tag}", owner.reason))
                continue
            image_tag = owner.image_tag or tag
            strategy, git_ref = strategy_from_labels(labels, image_tag)
            found.append(FoundTag(
                owner.image, repository, image_tag, tag, digest, strategy,
                "label" if strategy else "none", git_ref, created, labels.get(SIGNATURE_LABEL) or None,
            ))
    return found, skipped


def recorded_ref(record: Publication) -> str | None:
    """The git reference a publication record's tag names by its strategy: the branch of a git-branch tag, the
    git tag of a git-tag tag, the commit of a git-commit tag (a record names every one it knows, e.g. the branch a
    commit tag was published from); None for any other strategy."""
    refs = {GIT_BRANCH: record.git_branch, GIT_TAG: record.git_tag, GIT_COMMIT: record.git_commit}
    return refs.get(record.strategy)


def strategy_from_labels(labels: Mapping[str, str], image_tag: str) -> tuple[str | None, str | None]:
    """The strategy (and git ref, when the labels name it) of ``image_tag`` on an image with ``labels``.

    An image carries one set of labels however many tags it has, and they describe the tag it was
    first published under (``werf-image-tag``): ``werf-tag-strategy`` applies to that tag only. A tag
    equal to the image's revision (``org.opencontainers.image.revision``, full or abbreviated) is a
    git-commit tag of that commit. Without a ``werf-image-tag`` label (images of the original tool),
    ``werf-tag-strategy`` applies to every tag. Any other tag: (None, None), so it is kept.
    """
    strategy = labels.get(STRATEGY_LABEL) or None
    labelled_tag = labels.get(IMAGE_TAG_LABEL)
    revision = (labels.get(REVISION_LABEL) or "").lower()
    if labelled_tag is None or labelled_tag == image_tag:
        if strategy == GIT_COMMIT and revision and revision.startswith(image_tag.lower()):
            return strategy, revision
        return strategy, None
    if revision and len(image_tag) >= 7 and revision.startswith(image_tag.lower()):
        return GIT_COMMIT, revision
    return None, None


def collect_stages(
    client: RegistryClient, stages: RepoAddress, *, with_created: Callable[[str], bool],
    progress: Update | None = None,
) -> list[StageTag]:
    """The stage images (64-hex signature tags) of the stages repository, with digest and, for the
    stages ``with_created(signature)`` says need it, their creation time (from the image config)."""
    from ci_env.records import is_stage_tag

    tags = sorted(t for t in _list(client, stages.path) if is_stage_tag(t))
    digests = _digests(client, stages.path, tags, progress, f"resolving the stages in {stages}")
    wanted = [t for t in tags if digests[t] is not None and with_created(t)]
    with ThreadPoolExecutor(max_workers=PARALLELISM) as pool:
        created = dict(zip(wanted, pool.map(
            lambda t: labels_and_created(image_config(client, stages.path, digests[t] or ""))[1], wanted
        ), strict=True))
    return [StageTag(stages, t, digests[t], created.get(t)) for t in tags if digests[t] is not None]
