"""One repository as a graph: tags -> manifests -> index children (any depth) and the referrers of each manifest.

:func:`build_graph` starts from a tag listing the caller already has (tag -> digest and, where known, media type),
reads each distinct index manifest once (in parallel, bounded; image manifests are never read: their
descriptors say what they are), and finds the accessories of every manifest: cosign's ``.sig``/``.att``/``.sbom``
tags and the referrers tag schema's ``sha256-<hex>`` indexes from the listing itself (no request), and the
referrers API (``GET /v2/<name>/referrers/<digest>``) when the registry answers it (tried once per repository).

:meth:`RepoGraph.reach` is what a set of tags keeps: their manifests, everything under them at any depth, and
every referrer of those. :meth:`RepoGraph.removal` says what removing some tags takes with it (the accessories,
children and referrers no remaining tag reaches) and what it must never delete. The graph is read-only data;
the I/O is behind :class:`ManifestSource`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ci_env import untrusted_json
from ci_env.errors import RegistryError, RepositoryUnknownError
from ci_env.registry import manifests as mf
from ci_env.registry.accessories import (
    REFERRERS_INDEX,
    AccessoryTag,
    accessory_tag,
    kind_of,
)

if TYPE_CHECKING:
    from ci_env.registry.api import RegistryApi

#: how deep indexes may nest (an index in an index in ...): far beyond buildx's two levels.
MAX_DEPTH = 16
#: how many manifests one repository's graph may hold before building it is refused.
MAX_NODES = 200_000
PARALLELISM = 32  # reads at once; see ci_env.registry.api.LISTING_PARALLELISM

PLATFORM = "platform"
#: an attestation manifest buildx puts into the index beside the platforms (``vnd.docker.reference.type``).
ATTESTATION_MANIFEST = "attestation-manifest"
INDEX = "index"


class Listed(Protocol):
    """One tag as a listing gives it (``TagInfo`` and ``ManifestInfo`` both fit)."""

    @property
    def digest(self) -> str | None: ...

    @property
    def media_type(self) -> str | None: ...


class ManifestSource(Protocol):
    """Where the graph reads manifests and referrers from."""

    def fetch(self, digest: str) -> tuple[bytes, str] | None:
        """The manifest ``digest`` (bytes, media type); None when the registry does not have it."""

    def exists(self, digest: str) -> bool:
        """Whether the registry has the manifest ``digest``."""

    def referrers(self, digest: str) -> list[dict[str, Any]] | None:
        """The referrers API's descriptors for ``digest``; None when the registry has no referrers API."""


@dataclass(frozen=True)
class Node:
    """A manifest of the repository: its type, its child manifests (an index), and the subject it names."""

    digest: str
    media_type: str | None
    children: tuple[str, ...] = ()
    subject: str | None = None
    #: False: known only from a descriptor (an image manifest is never read).
    read: bool = False


@dataclass(frozen=True)
class Referrer:
    """A manifest that belongs to another one (its subject): found under a cosign tag, in a referrers tag schema
    index, through the referrers API, or by the ``subject`` it names."""

    digest: str
    subject: str
    kind: str
    tag: str | None = None


@dataclass(frozen=True)
class Accessory:
    """Something a removed image takes with it: a referrer (signature, attestation, sbom, referrer,
    referrers-index) or a child manifest (platform, attestation-manifest, index), and the tags on it."""

    digest: str
    kind: str
    subject: str
    tags: tuple[str, ...] = ()

    @property
    def is_referrer(self) -> bool:
        """True for a referrer (deleted before its image), False for a child (deleted after its index)."""
        return self.kind not in (PLATFORM, ATTESTATION_MANIFEST, INDEX)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used by the reports."""
        return {"digest": self.digest, "kind": self.kind, "tags": list(self.tags)}


@dataclass(frozen=True)
class Removal:
    """What removing ``tags`` from one repository takes with it, and what it must leave."""

    path: str
    tags: tuple[str, ...]
    #: every digest a remaining tag reaches: never deleted, never moved.
    protected: frozenset[str]
    #: requested tag -> its accessories no remaining tag reaches (each listed under the first tag that has it).
    accessories: Mapping[str, tuple[Accessory, ...]] = field(default_factory=dict)

    def all_accessories(self) -> tuple[Accessory, ...]:
        """Every accessory of the removal, once each: referrers first (deepest first), then children (an index
        before its children), so a run stopped half-way leaves the tags in place or only untagged children."""
        items = [a for tag in self.tags for a in self.accessories.get(tag, ())]
        referrers = [a for a in reversed(items) if a.is_referrer]
        # a referrers tag schema index goes after the referrers it lists (else they could no longer be found)
        referrers.sort(key=lambda a: a.kind == REFERRERS_INDEX)
        children = [a for a in items if not a.is_referrer]
        return (*referrers, *children)

    def owner(self, digest: str) -> str:
        """The requested tag an accessory is listed under."""
        for tag, accessories in self.accessories.items():
            if any(a.digest == digest for a in accessories):
                return tag
        return ""

    def keeps(self, digest: str) -> bool:
        """True when a remaining tag reaches ``digest``."""
        return digest in self.protected


@dataclass(frozen=True)
class RepoGraph:
    """One repository: its tags, the manifests they reach, and who refers to what."""

    path: str
    tags: Mapping[str, str]
    nodes: Mapping[str, Node]
    referrers: Mapping[str, tuple[Referrer, ...]]
    #: child digest -> platform, attestation-manifest or index (what its parent's descriptor says)
    roles: Mapping[str, str]
    accessory_tags: Mapping[str, AccessoryTag]
    #: tags the listing names whose manifest the registry does not have
    dangling_tags: tuple[str, ...] = ()
    #: digests something references that the registry does not have (children checked only when verified)
    missing: frozenset[str] = frozenset()
    referrers_api: bool = False
    #: requests the graph cost beyond the listing
    requests: int = 0

    # ---------------------------------------------------------------- walking

    def referrers_of(self, digest: str) -> tuple[Referrer, ...]:
        """The referrers of ``digest`` (cosign tags, referrers tag schema, referrers API, ``subject``)."""
        return self.referrers.get(digest, ())

    def edges(self, digest: str, *, with_referrers: bool = True) -> list[str]:
        """The manifests ``digest`` keeps alive: its children and (``with_referrers``) its referrers."""
        node = self.nodes.get(digest)
        out = list(node.children) if node is not None else []
        if with_referrers:
            out.extend(r.digest for r in self.referrers_of(digest))
        return out

    def walk(self, roots: Iterable[str], *, with_referrers: bool = True) -> list[str]:
        """Every digest ``roots`` reach (themselves included), breadth first, each once (cycles are harmless)."""
        frontier = list(dict.fromkeys(roots))
        seen = set(frontier)
        order: list[str] = []
        while frontier:
            order.extend(frontier)
            following: list[str] = []
            for digest in frontier:
                for target in self.edges(digest, with_referrers=with_referrers):
                    if target not in seen:
                        seen.add(target)
                        following.append(target)
            frontier = following
        return order

    def reach(self, roots: Iterable[str], *, with_referrers: bool = True) -> frozenset[str]:
        """The digests ``roots`` keep: themselves, their children at any depth, and the referrers of all those."""
        return frozenset(self.walk(roots, with_referrers=with_referrers))

    def image_tags(self) -> dict[str, str]:
        """The tags that are images (not accessory tags), tag -> digest."""
        return {tag: digest for tag, digest in self.tags.items() if tag not in self.accessory_tags}

    def tags_on(self, digest: str) -> tuple[str, ...]:
        """The tags pointing at ``digest``, sorted."""
        return tuple(sorted(tag for tag, d in self.tags.items() if d == digest))

    def referenced(self) -> frozenset[str]:
        """Digests some tag reaches through at least one index or referrer edge: removing one of their tags must
        not delete them (a tag directly on a platform manifest of a kept index, a tagged signature, ...)."""
        roots = set(self.image_tags().values())
        below: set[str] = set()
        for digest in self.walk(roots):
            below.update(self.edges(digest))
        return frozenset(below)

    # ---------------------------------------------------------------- planning

    def removal(self, tags: Sequence[str], *, keep_accessories: bool = False, keep: Iterable[str] = ()) -> Removal:
        """What removing ``tags`` takes with it and what it must leave.

        Protected: everything the remaining tags, and the digests of ``keep`` (what workloads run, tagged or
        not), reach (children at any depth and referrers). The accessory tags
        of a removed image (cosign's, the referrers tag schema's) do not count as remaining: they go with it,
        unless a remaining tag still reaches the same digest. With ``keep_accessories`` (``--keep-signatures``)
        no referrer is taken along (children still are: they are the image).
        """
        removing = [t for t in dict.fromkeys(tags) if t in self.tags]
        removed_roots = {self.tags[t] for t in removing}
        with_referrers = not keep_accessories
        doomed = self.reach(removed_roots, with_referrers=with_referrers)
        staying = {
            digest for tag, digest in self.tags.items()
            if tag not in removing and not (with_referrers and self._rides_along(tag, doomed))
        }
        protected = self.reach([*staying, *keep])
        claimed = set(removed_roots)
        accessories: dict[str, tuple[Accessory, ...]] = {}
        for tag in removing:
            found: list[Accessory] = []
            for digest in self.walk([self.tags[tag]], with_referrers=with_referrers):
                if digest in claimed or digest in protected:
                    continue
                claimed.add(digest)
                found.append(self._accessory(digest))
            accessories[tag] = tuple(found)
        return Removal(self.path, tuple(removing), protected, accessories)

    def _rides_along(self, tag: str, doomed: Collection[str]) -> bool:
        accessory = self.accessory_tags.get(tag)
        return accessory is not None and any(accessory.belongs_to(d) for d in doomed)

    def _accessory(self, digest: str) -> Accessory:
        kind, subject = self.roles.get(digest, PLATFORM), ""
        for referrer in self._referrer_entries(digest):
            kind, subject = referrer.kind, referrer.subject
            break
        else:
            subject = self._parent_of(digest)
        return Accessory(digest, kind, subject, self.tags_on(digest))

    def _referrer_entries(self, digest: str) -> Iterable[Referrer]:
        for referrers in self.referrers.values():
            for referrer in referrers:
                if referrer.digest == digest:
                    yield referrer

    def _parent_of(self, digest: str) -> str:
        for node in self.nodes.values():
            if digest in node.children:
                return node.digest
        return ""

    # ---------------------------------------------------------------- checking

    def broken_indexes(self) -> dict[str, tuple[str, ...]]:
        """Index digest -> its children the registry does not have (needs a verified graph)."""
        broken: dict[str, tuple[str, ...]] = {}
        for node in self.nodes.values():
            gone = tuple(child for child in node.children if child in self.missing)
            if gone and node.read:
                broken[node.digest] = gone
        return broken

    def orphans(self) -> tuple[Referrer, ...]:
        """Referrers whose subject the registry does not have (needs a verified graph), sorted by digest."""
        found = {r.digest: r for subject, refs in self.referrers.items() if subject in self.missing for r in refs}
        return tuple(found[d] for d in sorted(found))


# -------------------------------------------------------------------- building


def build_graph(
    path: str,
    listed: Mapping[str, Listed | None],
    source: ManifestSource,
    *,
    parallel: int = PARALLELISM,
    verify: bool = False,
    use_referrers_api: bool = True,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
    expand: Collection[str] | None = None,
) -> RepoGraph:
    """The graph of repository ``path`` from its tag listing ``listed`` (tag -> what it resolved to; None: it
    vanished). Reads every distinct index once (``parallel`` at a time) and, when the registry answers the
    referrers API (tried once), the referrers of every manifest. ``verify`` also checks that every child and
    every accessory's subject exists (one HEAD each): for ``registry check``. With ``expand``, only those
    digests (and what they reach) are read and asked for referrers: the other tags' manifests are leaves.

    RegistryError when an index cannot be read (anything but "not there"), when indexes nest deeper than
    ``max_depth`` or the repository holds more than ``max_nodes`` manifests: a partial graph could protect too
    little, so none is returned.

    Size: 9 parameters, the graph's limits and switches as keywords with defaults (callers name the ones they
    change).
    """
    builder = _Builder(path, source, max(1, parallel), max_depth, max_nodes)
    return builder.build(listed, verify=verify, use_referrers_api=use_referrers_api,
                         expand=None if expand is None else frozenset(expand))


_T = TypeVar("_T")


class _Builder:
    def __init__(self, path: str, source: ManifestSource, parallel: int, max_depth: int, max_nodes: int) -> None:
        self.path = path
        self.source = source
        self.parallel = parallel
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.nodes: dict[str, Node] = {}
        self.media: dict[str, str] = {}
        self.roles: dict[str, str] = {}
        self.referrers: dict[str, dict[str, Referrer]] = {}
        self.missing: set[str] = set()
        #: child digest -> the artifactType its parent's descriptor gives (referrers tag schema entries)
        self.artifact_types: dict[str, str | None] = {}
        self.requests = 0
        self.api = False

    def _map(self, func: Callable[[str], _T], digests: Sequence[str]) -> list[_T]:
        self.requests += len(digests)
        if len(digests) <= 1:
            return [func(d) for d in digests]
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(digests))) as pool:
            return list(pool.map(func, digests))

    def _refer(self, referrer: Referrer) -> None:
        known = self.referrers.setdefault(referrer.subject, {})
        if referrer.digest not in known or (referrer.tag and not known[referrer.digest].tag):
            known[referrer.digest] = referrer

    def build(self, listed: Mapping[str, Listed | None], *, verify: bool, use_referrers_api: bool,
              expand: frozenset[str] | None = None) -> RepoGraph:
        tags = {tag: str(info.digest) for tag, info in listed.items() if info is not None and info.digest}
        dangling = tuple(sorted(tag for tag in listed if tag not in tags))
        accessory_tags = {tag: a for tag in tags if (a := accessory_tag(tag)) is not None}
        for info in listed.values():
            if info is not None and info.digest and info.media_type:
                self.media.setdefault(str(info.digest), str(info.media_type))
        for tag, accessory in accessory_tags.items():
            self._refer(Referrer(tags[tag], accessory.subject, accessory.kind, tag))
        roots = [d for d in dict.fromkeys(tags.values()) if expand is None or d in expand]
        pending_read = [d for d in roots if self.media.get(d) is None or self.media[d] in mf.INDEX_TYPES]
        for digest in tags.values():
            self.nodes.setdefault(digest, Node(digest, self.media.get(digest)))
        pending_refs: list[str] = []
        if use_referrers_api and roots:
            first = roots[0]
            probe = self._map(self.source.referrers, [first])[0]
            self.api = probe is not None
            if self.api:
                self._add_referrers(first, probe, pending_read, pending_refs)
                pending_refs.extend(d for d in roots if d != first)
        rounds = 0
        while pending_read or pending_refs:
            rounds += 1
            if rounds > 2 * self.max_depth:
                raise RegistryError(f"{self.path}: indexes or referrers nest deeper than {self.max_depth} levels; "
                                    "refusing to guess what they keep")
            reading, pending_read = list(dict.fromkeys(pending_read)), []
            for digest, answer in zip(reading, self._map(self.source.fetch, reading), strict=True):
                self._read(digest, answer, pending_read, pending_refs)
            asking, pending_refs = list(dict.fromkeys(pending_refs)), []
            for digest, referrers in zip(asking, self._map(self.source.referrers, asking), strict=True):
                self._add_referrers(digest, referrers, pending_read, pending_refs)
            if len(self.nodes) > self.max_nodes:
                raise RegistryError(f"{self.path} holds more than {self.max_nodes} manifests; its graph is too "
                                    "large to build")
        for tag, accessory in accessory_tags.items():
            if accessory.kind == REFERRERS_INDEX:
                self._fallback_entries(tags[tag], accessory)
        if verify:
            self._verify(tags, accessory_tags)
        return RepoGraph(
            self.path, tags, dict(self.nodes),
            {subject: tuple(refs[d] for d in sorted(refs)) for subject, refs in self.referrers.items()},
            dict(self.roles), accessory_tags, dangling, frozenset(self.missing), self.api, self.requests,
        )

    def _read(self, digest: str, answer: tuple[bytes, str] | None, pending_read: list[str],
              pending_refs: list[str]) -> None:
        if answer is None:
            self.missing.add(digest)
            return
        body, media = answer
        try:
            doc = untrusted_json.loads(body)
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        children: list[str] = []
        for entry in doc.get("manifests") or []:
            if not isinstance(entry, dict) or not entry.get("digest"):
                continue
            child, child_media = str(entry["digest"]), entry.get("mediaType")
            children.append(child)
            self.artifact_types.setdefault(child, entry.get("artifactType"))
            annotations = entry.get("annotations") or {}
            role = INDEX if child_media in mf.INDEX_TYPES else PLATFORM
            if isinstance(annotations, dict) and annotations.get("vnd.docker.reference.type") == "attestation-manifest":
                role = ATTESTATION_MANIFEST
            self.roles.setdefault(child, role)
            if isinstance(child_media, str):
                self.media.setdefault(child, child_media)
            if child not in self.nodes:
                self.nodes[child] = Node(child, self.media.get(child))
                if child_media is None or child_media in mf.INDEX_TYPES:
                    pending_read.append(child)
                if self.api:
                    pending_refs.append(child)
        subject = doc.get("subject")
        subject_digest = str(subject["digest"]) if isinstance(subject, dict) and subject.get("digest") else None
        self.nodes[digest] = Node(digest, media, tuple(dict.fromkeys(children)), subject_digest, read=True)
        if subject_digest:
            layers = tuple(str(la.get("mediaType") or "") for la in doc.get("layers") or [] if isinstance(la, dict))
            self._refer(Referrer(digest, subject_digest, kind_of(doc.get("artifactType"), layers)))

    def _add_referrers(self, subject: str, descriptors: list[dict[str, Any]] | None, pending_read: list[str],
                       pending_refs: list[str]) -> None:
        for entry in descriptors or []:
            if not isinstance(entry, dict) or not entry.get("digest"):
                continue
            digest, media = str(entry["digest"]), entry.get("mediaType")
            self._refer(Referrer(digest, subject, kind_of(entry.get("artifactType"))))
            if digest not in self.nodes:
                self.nodes[digest] = Node(digest, media if isinstance(media, str) else None)
                if media in mf.INDEX_TYPES:
                    pending_read.append(digest)
                pending_refs.append(digest)

    def _fallback_entries(self, index: str, accessory: AccessoryTag) -> None:
        """The referrers a referrers tag schema index lists become referrers of its subject."""
        node = self.nodes.get(index)
        if node is None or not node.read:
            return
        for child in node.children:
            self._refer(Referrer(child, accessory.subject, kind_of(self.artifact_types.get(child))))
            self.roles.pop(child, None)

    def _verify(self, tags: Mapping[str, str], accessory_tags: Mapping[str, AccessoryTag]) -> None:
        unread = [d for d, node in self.nodes.items() if not node.read and d not in self.missing]
        subjects = [a.subject for a in accessory_tags.values()
                    if a.subject.startswith("sha256:") and a.subject not in self.nodes]
        subjects += [s for s in self.referrers if s not in self.nodes and s.startswith("sha256:")]
        asking = list(dict.fromkeys(unread + subjects))
        for digest, there in zip(asking, self._map(self.source.exists, asking), strict=True):
            if not there:
                self.missing.add(digest)


# -------------------------------------------------------------------- the Registry API as a source


class RegistrySource:
    """A :class:`ManifestSource` over the Registry API of one repository (the caller's client, so its credentials
    and tokens are shared: ``RegistryApi.find_manifest``, ``resolve`` and ``referrers``). Remembers what it read, so
    nothing is fetched twice."""

    def __init__(self, client: RegistryApi, path: str) -> None:
        self.client = client
        self.path = path
        self._bodies: dict[str, tuple[bytes, str] | None] = {}

    def fetch(self, digest: str) -> tuple[bytes, str] | None:
        """The manifest ``digest``; None on 404 (RegistryError for any other failure)."""
        if digest in self._bodies:
            return self._bodies[digest]
        found = self.client.find_manifest(self.path, digest)
        answer = None if found is None else (found[0], found[1].media_type)
        self._bodies[digest] = answer
        return answer

    def exists(self, digest: str) -> bool:
        """HEAD the manifest ``digest``."""
        if self._bodies.get(digest) is not None:
            return True
        return self.client.resolve(self.path, digest) is not None

    def referrers(self, digest: str) -> list[dict[str, Any]] | None:
        """The referrers API's descriptors for ``digest``; None when the registry does not answer it."""
        return self.client.referrers(self.path, digest)


def registry_graph(
    client: RegistryApi, path: str, listed: Mapping[str, Listed | None] | None = None, *,
    parallel: int = PARALLELISM, verify: bool = False,
) -> RepoGraph:
    """The graph of ``path`` through the Registry API; ``listed`` is the caller's listing (None: list and resolve
    every tag now, and leave that map with ``client`` so its removals start from it)."""
    if listed is None:
        listed = client.list_repository(path, parallel=parallel)
    return build_graph(path, listed, RegistrySource(client, path), parallel=parallel, verify=verify)


@dataclass(frozen=True)
class Known:
    """A tag's digest as the caller knows it (a publication record, an earlier read), without a media type."""

    digest: str | None
    media_type: str | None = None


def removal_graph(
    client: RegistryApi, path: str, doomed: Sequence[str], *, names: Sequence[str] | None = None,
    known: Mapping[str, Listed | None] | None = None, complete: bool = False, parallel: int = PARALLELISM,
) -> RepoGraph:
    """The graph a removal of the tags ``doomed`` needs, at the cost of those tags, not of the repository.

    ``names`` is the repository's tag list (listed now when None); ``known`` what the caller knows of its tags
    (tag -> what it resolved to, or a :class:`Known` digest from a record). The doomed tags not in ``known`` are
    resolved (one HEAD each), and only their manifests are read (an index: its children, at any depth), so the
    graph knows what they take with them. The other tags count with the digests ``known`` gives them, unread.

    The one thing that needs every tag is an accessory tag (cosign's ``sha256-<hex>.sig``, the referrers tag
    schema's ``sha256-<hex>``) of a doomed image: it goes only when no remaining tag reaches that image (directly
    or through an index). Then every index is read, and unless ``known`` is ``complete`` (every tag of ``names``,
    as a publication record or a listing gave it), the tags it does not cover are resolved too (one HEAD each).
    Nothing else is decided from this graph on the placeholder route: no image, child or referrer is deleted by
    digest there, so what a tag unknown here holds is never lost.
    """
    from ci_env.registry.accessories import accessory_tag

    if names is None:
        try:
            names = client.list_tags(path)
        except RepositoryUnknownError:
            names = []
    listed: dict[str, Listed | None] = dict(known or {})
    wanted = [t for t in dict.fromkeys(doomed) if t not in listed or listed[t] is None]
    listed.update(client.resolve_tags(path, wanted, parallel=parallel))
    digests = {str(info.digest) for t in doomed if (info := listed.get(t)) is not None and info.digest}
    accessories = [t for t in names if (a := accessory_tag(t)) is not None and any(a.belongs_to(d) for d in digests)]
    if accessories and not complete:
        listed.update(client.resolve_tags(path, [t for t in names if t not in listed or t in accessories],
                                          parallel=parallel))
    listed = {t: info for t, info in listed.items() if t in names or t in doomed}
    return build_graph(path, listed, RegistrySource(client, path), parallel=parallel,
                       expand=None if accessories else digests)

