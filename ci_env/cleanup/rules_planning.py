"""The plan of a cleanup by retention rules (``cleanup --rules FILE`` or ``--repository``/``--rule``): any repository
the rules select, whoever built its images.

1. **Select** the repositories: a name selector names one (no listing); a glob or namespace lists its namespace
   once through the vendor's API where the implementation has one (``ci_env.registry.namespaces``: a GitLab
   group, a GitHub owner, a Harbor project, an ECR prefix, a Docker Hub or Quay namespace), else the registry's
   catalog once (``GET /v2/_catalog``, paged), and keeps what an entry selects; ``--shard I/N`` keeps those whose
   stable hash falls to this shard (:mod:`ci_env.cleanup.shards`).
2. **List** each repository (tags resolved, one HEAD each) and build its graph (``ci_env.registry.graph``: the
   platform manifests of indexes, attestations, signatures and other referrers).
3. **Age** each distinct digest by its image config's ``created`` (one manifest and one blob read per distinct
   digest; an index by its first platform manifest's): the Registry API has no push time. Where the vendor's
   own listing gives push times (``registry.listing.PUSH_TIME_LISTERS``) it replaces the HEADs and those reads
   (the Registry API's tag list is still read once: a tag the vendor omits is added, with no age); where it
   also lists the untagged manifests (GitHub, ECR, Harbor), they are decided too (the ``untagged`` policy), each one
   the tags' graph does not hold read once for what it reaches (an index's manifests, the subject it names),
   and what the tags reached is kept for the removal's check (``ci_env.cleanup.untagged_recheck``).
4. **Protect** what Kubernetes runs, ``--keep-tag`` and the keep-list, and **decide** every tag with the rules
   engine (``ci_env.retention.engine``); the decisions become the plan the shared removal tail works through.

Repositories are read ``parallel`` at a time; every request goes through the shared rate budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ci_env.cleanup.manifest_edges import EDGE_KINDS, loose_edges
from ci_env.cleanup.policies import KIND_TAG, Basis, Decision, Plan
from ci_env.errors import AuthError, CiEnvError, RegistryError, UsageError
from ci_env.retention.engine import (
    ACTION_DELETE,
    AGE_CONFIG,
    AGE_REGISTRY,
    BASIS_UNTAGGED,
    EDGE_PLATFORM,
    EDGE_REFERRER,
    Artifact,
    Edge,
    Inventory,
    Protections,
    decide,
)
from ci_env.retention.rules import SELECT_NAME, SELECT_NAMESPACE, RulesFile

if TYPE_CHECKING:
    from ci_env.cleanup.in_use import ImagesInUse
    from ci_env.cleanup.progress import Update
    from ci_env.cleanup.protections import KeepList
    from ci_env.cleanup.shards import Shard
    from ci_env.cleanup.untagged_recheck import PlannedReach
    from ci_env.registry.client import RegistryClient
    from ci_env.registry.graph import RepoGraph
    from ci_env.registry.listing import TagLister
    from ci_env.registry.namespaces import Namespaces
    from ci_env.registry.reference import RepoAddress
    from ci_env.retention.rules import RepositorySelector

@dataclass(frozen=True)
class Selection:
    """The repositories this run cleans (this shard's, sorted), how many other shards take, and how the
    repositories were found (``catalog``: hosts whose catalog was listed; ``namespaces``: ``host/namespace`` listed
    through the vendor's API, ``host`` alone for a whole registry)."""

    repositories: tuple[RepoAddress, ...]
    other_shards: int = 0
    catalog: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    #: names a listing gave that are no repository under what was listed: (the name as shown, why), never cleaned
    refused: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Guards:
    """What no rule removes: ``--keep-tag`` patterns (whole-tag regexes), the keep-list, what Kubernetes runs."""

    keep_tags: tuple[str, ...] = ()
    keep_list: KeepList | None = None
    in_use: ImagesInUse | None = None

    def for_repository(self, repository: RepoAddress, tags: Mapping[str, str]) -> Protections:
        """The engine's protections for one repository (``tags``: tag -> digest)."""
        from ci_env.cleanup.in_use import in_use_reason

        by_tag: dict[str, str] = {}
        digests: dict[str, str] = {}
        for tag, digest in tags.items():
            line = self.keep_list.match(None, str(repository), tag, tag) if self.keep_list is not None else None
            if line is not None:
                by_tag[tag] = f"keep-list: {line}"
            users = self.in_use.users(repository, tag, digest) if self.in_use is not None else ()
            if users:
                by_tag[tag] = in_use_reason(users)
        if self.in_use is not None:
            for digest in self.in_use.digests(repository):
                users = self.in_use.users(repository, "", digest)
                digests[digest] = in_use_reason(users) if users else "in use in Kubernetes"
        patterns = tuple((pattern, f"--keep-tag {pattern}") for pattern in self.keep_tags)
        return Protections(by_tag, patterns, digests)


@dataclass(frozen=True)
class RulesPlan:
    """The plan (every tag of every repository selected, decided), each repository's graph as listed (the removal
    starts from it), the push times used (``(repository, tag)`` -> (ISO time, age source)), the repositories
    selected without rules or that could not be listed (``skipped``: (repository, why)), and the untagged
    manifests to remove that no tag's graph holds (``untagged``: repository -> digest -> reason, parents before
    what they reach; those a removed tag's graph holds go with it in the removal), and for each repository with
    untagged manifests to remove, what its tags reached at plan time (``reach``: the removal checks the tags
    again right before, ``ci_env.cleanup.untagged_recheck``)."""

    plan: Plan
    graphs: Mapping[str, RepoGraph] = field(default_factory=dict)
    ages: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    skipped: tuple[tuple[str, str], ...] = ()
    selection: Selection = field(default_factory=lambda: Selection(()))
    untagged: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    reach: Mapping[str, PlannedReach] = field(default_factory=dict)


#: what the report adds to the reason of a tag the Registry API lists and the vendor's listing does not
UNLISTED_NOTE = "the Registry API lists this tag, the vendor's listing does not: push time unknown"


def looks_like_host(segment: str) -> bool:
    """True when a reference's first segment names a registry host (as Docker reads it)."""
    return "." in segment or ":" in segment or segment == "localhost"


def select(rules: RulesFile, registry: str | None, client_of: Callable[[str], RegistryClient],
           shard: Shard | None = None,
           namespaces_of: Callable[[str], Namespaces | None] = lambda _host: None) -> Selection:
    """The repositories the rules select, on ``registry`` (``--registry HOST``) or on the host a selector names
    (``localhost:5000/team/*``). Exact names are taken as given; a glob or namespace lists its namespace through
    ``namespaces_of(host)`` (the implementation's vendor API, ``ci_env.registry.namespaces``) once per namespace,
    else the host's catalog once. UsageError when a selector names no host and ``--registry`` is not given, or
    when a glob names no namespace on a vendor that lists none for a whole registry; RegistryError (with what to
    do) when a catalog is needed and the registry does not list it, or when a namespace does not exist."""
    from ci_env.registry.reference import parse_address

    by_host = selectors_by_host(rules, registry)
    found: dict[str, RepoAddress] = {}
    listed: list[str] = []
    through: list[str] = []
    refused: list[tuple[str, str]] = []

    def keep_valid(names: Sequence[str], namespace: str, where: str) -> list[str]:
        valid = []
        for name in names:
            problem = listed_name_problem(host, name, namespace)
            if problem is None:
                valid.append(name)
            elif isinstance(name, str) and rules.for_repository(f"{host}/{name}") is not None:
                refused.append((f"{host}/{name[:200]!r}", f"{where} gave this name, which {problem}: not cleaned"))
        return valid

    for host, selectors in by_host.items():
        names = [selector.value for selector in selectors if selector.kind == SELECT_NAME]
        patterns = [selector for selector in selectors if selector.kind != SELECT_NAME]
        namespaces = namespaces_of(host) if patterns else None
        if patterns and namespaces is None:
            try:
                names += keep_valid(client_of(host).list_catalog(), "", f"the catalog of {host}")
            except (RegistryError, AuthError) as exc:
                raise type(exc)(f"{exc}; a glob or namespace selector needs the registry's catalog: name the "
                                "repositories exactly (name: team/app, or --repository team/app)") from None
            listed.append(host)
        elif namespaces is not None:
            for namespace in _namespaces_to_list(rules, host, patterns, namespaces):
                where = f"the listing of {namespaces.route.unit} {namespace}" if namespace else f"the listing of {host}"
                names += keep_valid(namespaces.lister.list_namespace(host, namespace), namespace, where)
                through.append(f"{host}/{namespace}" if namespace else host)
        for name in names:
            reference = f"{host}/{name}"
            if reference not in found and rules.for_repository(reference) is not None:
                address = parse_address(reference)
                if address is not None:
                    found[reference] = address
    chosen = sorted(found)
    mine = [name for name in chosen if shard is None or shard.takes(name)]
    return Selection(tuple(found[name] for name in mine), len(chosen) - len(mine), tuple(listed), tuple(through),
                     tuple(refused))


def selectors_by_host(rules: RulesFile, registry: str | None) -> dict[str, list[RepositorySelector]]:
    """Each registry host's selectors, their values without the host: the host a selector names
    (``localhost:5000/team/*``), else ``registry`` (``--registry``). UsageError when neither names one."""
    by_host: dict[str, list[RepositorySelector]] = {}
    for entry in rules.repositories:
        first, _, rest = entry.selector.value.partition("/")
        if rest and looks_like_host(first):
            host, value = first, rest
        elif registry:
            host, value = registry, entry.selector.value
        else:
            raise UsageError(f"{rules.source}: {entry.selector.describe()} names no registry: pass --registry HOST "
                             "(WERF_CLEANUP_REGISTRY), or write the host in the selector (registry.example.com/team/*)")
        by_host.setdefault(host, []).append(replace(entry.selector, value=value))
    return by_host


def listed_name_problem(host: str, name: object, namespace: str) -> str | None:
    """What is wrong with ``name``, a repository a listing of ``namespace`` ("": the whole registry) on ``host``
    gave, or None: it must be a valid repository path (lower-case components, no ``..``, ``%2F``, ``@``, ``\\``,
    at most 255 characters) under ``namespace``. A registry's or vendor's answer never selects a repository the
    listing was not asked for."""
    from ci_env.errors import ConfigError
    from ci_env.registry.reference import parse_address

    if not isinstance(name, str) or not name:
        return "is empty"
    try:
        address = parse_address(f"{host}/{name}")
    except ConfigError:
        address = None
    if address is None or address.path != name:
        return "is not a valid repository path"
    if namespace and not name.startswith(namespace.lower().strip("/") + "/"):
        return f"is not under {namespace}"
    return None


def _namespaces_to_list(rules: RulesFile, host: str, patterns: Sequence[RepositorySelector],
                        namespaces: Namespaces) -> list[str]:
    """The namespaces to list once each for ``patterns`` (globs and namespace selectors) on ``host``: a namespace
    selector's account, a glob's fixed leading segments' (``ci_env.registry.namespaces.glob_namespace``); one
    under another listed namespace is not listed again. UsageError for a glob without a fixed leading segment
    where the vendor lists no whole registry."""
    from ci_env.registry.namespaces import glob_namespace

    wanted: set[str] = set()
    for selector in patterns:
        value = selector.value.strip("/") if selector.kind == SELECT_NAMESPACE else glob_namespace(selector.value)
        namespace = namespaces.listed(value)
        if not namespace and not namespaces.route.whole_registry:
            raise UsageError(
                f"{rules.source}: {selector.describe()} on {host} names no namespace, and the registry's API lists "
                f"repositories by namespace only ({namespaces.route.unit}): write the namespace in front "
                "(glob: team/*, namespace: team)")
        wanted.add(namespace)
    if "" in wanted:
        return [""]
    return [namespace for namespace in sorted(wanted)
            if not any(namespace.startswith(other + "/") for other in wanted)]


def plan_rules(rules: RulesFile, selection: Selection, client_of: Callable[[RepoAddress], RegistryClient],
               guards: Guards, now: datetime, *, parallel: int = 8, progress: Update | None = None,
               lister_of: Callable[[RepoAddress], TagLister | None] = lambda _repo: None) -> RulesPlan:
    """Every selected repository listed, aged and decided (``parallel`` repositories at a time); a repository
    that no longer exists has no tags, one that cannot be listed is skipped with the registry's words.
    ``lister_of(repository)``: its vendor listing with push times (``registry.listing.PUSH_TIME_LISTERS``), or
    None: the Registry API and the image configs."""
    repositories = selection.repositories
    done = 0

    def one(address: RepoAddress) -> _Planned:
        nonlocal done
        try:
            planned = _plan_one(rules, address, client_of(address), guards, now, parallel, lister_of(address))
        except CiEnvError as exc:
            planned = _Planned(error=str(exc))
        except Exception as exc:  # an answer of a shape nobody foresaw: this repository only is skipped
            planned = _Planned(error=unexpected(exc))
        done += 1
        if progress is not None:
            progress("listing and deciding the repositories the rules select", done, len(repositories))
        return planned

    decisions: list[Decision] = []
    graphs: dict[str, RepoGraph] = {}
    ages: dict[tuple[str, str], tuple[str, str]] = {}
    skipped: list[tuple[str, str]] = []
    untagged: dict[str, Mapping[str, str]] = {}
    reaches: dict[str, PlannedReach] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(repositories) or 1))) as pool:
        for address, planned in zip(repositories, pool.map(one, repositories), strict=True):
            decisions.extend(planned.decisions)
            ages.update(planned.ages)
            if planned.untagged:
                untagged[str(address)] = planned.untagged
            if planned.reach is not None:
                reaches[str(address)] = planned.reach
            if planned.graph is not None:
                graphs[str(address)] = planned.graph
            if planned.error is not None:
                skipped.append((str(address), f"not listed, nothing removed: {planned.error}"))
    skipped = [*selection.refused, *skipped]
    return RulesPlan(Plan(tuple(decisions)), graphs, ages, tuple(skipped), selection, untagged, reaches)


@dataclass(frozen=True)
class _Planned:
    """One repository planned: its tags' decisions, graph, ages, untagged manifests to remove (digest -> why) and
    what its tags reached; or the ``error`` that skipped it."""

    decisions: Sequence[Decision] = ()
    graph: RepoGraph | None = None
    ages: Mapping[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    untagged: Mapping[str, str] = field(default_factory=dict)
    reach: PlannedReach | None = None
    error: str | None = None


def _plan_one(rules: RulesFile, address: RepoAddress, client: RegistryClient, guards: Guards, now: datetime,
              parallel: int, lister: TagLister | None) -> _Planned:
    """One repository listed, aged and decided (see :func:`plan_rules`); raises what the listing raises."""
    from ci_env.cleanup.untagged_recheck import PlannedReach

    entry = rules.for_repository(str(address))
    assert entry is not None  # select() kept only what an entry selects
    inventory, graph, unlisted = read_inventory(client, address, parallel, lister)
    tags = {a.tag: a.digest for a in inventory.artifacts if a.tag is not None}
    decisions = decide(inventory, entry, now, guards.for_repository(address, tags))
    ages = {(str(address), d.tag): (_iso(d.pushed), d.age_source or "") for d in decisions
            if d.tag is not None and d.pushed is not None}
    plan = [Decision(KIND_TAG, address.path, address, d.tag, d.tag, d.digest, d.action,
                     f"{d.reason} ({UNLISTED_NOTE})" if d.tag in unlisted else d.reason, None,
                     Basis(d.basis.rule, number=d.basis.number, line=d.basis.line))
            for d in decisions if d.tag is not None]
    untagged = {d.digest: d.reason for d in sorted(decisions, key=lambda d: d.basis.rule != BASIS_UNTAGGED)
                if d.tag is None and d.action == ACTION_DELETE and d.digest not in graph.nodes}
    reach = PlannedReach.of(inventory, graph.tags, list(graph.nodes)) if untagged else None
    return _Planned(plan, graph, ages, untagged, reach)


def unexpected(exc: Exception) -> str:
    """What a repository's skip says of an error no check foresaw (an API answer of an unexpected shape): its kind
    and first line, shortened, and what to do."""
    first = (str(exc).splitlines() or [""])[0][:200]
    return (f"unexpected error while reading it ({type(exc).__name__}{': ' + first if first else ''}); the registry "
            "or its API answered in a shape ci-env does not read: run again, and report it if it stays")


def read_inventory(client: RegistryClient, address: RepoAddress, parallel: int,
                   lister: TagLister | None = None) -> tuple[Inventory, RepoGraph, frozenset[str]]:
    """One repository as the engine reads it: its image tags (accessory tags follow their subject, as the
    removal takes them), the manifests below them, the graph's edges, and each tag's age: the registry's push
    time from ``lister`` (a vendor API) where it gives one, else its image config's ``created``. Where the
    listing also gives the untagged manifests (``listing.ManifestLister``), they are in the inventory with their
    push times, and what those the tags' graph does not hold reach is read (``manifest_edges.loose_edges``). A vendor
    listing is completed by the Registry API's tag list (``listing.with_registry_tags``): a tag it omits has no
    push time (kept as the engine keeps unknown ages) and its graph holds what it reaches. (inventory, graph, the
    tags only the Registry API listed)."""
    from ci_env.registry.graph import Listed, registry_graph
    from ci_env.registry.listing import list_with_untagged, with_registry_tags

    listed: Mapping[str, Listed | None]
    vendor: dict[str, datetime] = {}
    loose: dict[str, str | None] = {}
    unlisted: frozenset[str] = frozenset()
    if lister is not None:
        infos, untagged = list_with_untagged(lister, address)
        infos, added = with_registry_tags(client, address.path, infos, parallel=parallel)
        unlisted = frozenset(added)
        loose = untagged or {}
        listed = {info.tag: info for info in infos}
        vendor = {info.tag: when for info in infos if (when := plausible_time(info.created)) is not None}
    else:
        listed = client.list_repository(address.path, parallel=parallel)
    graph = registry_graph(client, address.path, listed, parallel=parallel)
    image_tags = graph.image_tags()
    unaged = sorted({digest for tag, digest in image_tags.items() if tag not in vendor and tag not in unlisted})
    pushed = config_times(client, address.path, graph, unaged, parallel)
    artifacts = []
    for tag, digest in sorted(image_tags.items()):
        if tag in vendor:
            artifacts.append(Artifact(digest, tag, vendor[tag], AGE_REGISTRY))
        elif tag in unlisted:
            artifacts.append(Artifact(digest, tag, None, None))
        else:
            artifacts.append(Artifact(digest, tag, pushed.get(digest), AGE_CONFIG if pushed.get(digest) else None))
    edges: dict[str, tuple[Edge, ...]] = {}
    below: set[str] = set()
    for node in graph.nodes.values():
        found = [Edge(child, EDGE_KINDS.get(graph.roles.get(child, "platform"), EDGE_PLATFORM))
                 for child in node.children]
        found += [Edge(r.digest, EDGE_KINDS.get(r.kind, EDGE_REFERRER)) for r in graph.referrers_of(node.digest)]
        if found:
            edges[node.digest] = tuple(found)
            below.update(edge.digest for edge in found)
    tagged = set(image_tags.values())
    loose = {digest: when for digest, when in loose.items() if digest not in tagged}
    for parent, reached in loose_edges(client, address.path, [d for d in loose if d not in graph.nodes],
                                       parallel).items():
        edges[parent] = (*edges.get(parent, ()), *reached)
        below.update(edge.digest for edge in reached)
    for digest in sorted(set(loose) | (below - tagged)):
        when = plausible_time(loose.get(digest))
        artifacts.append(Artifact(digest, None, when, AGE_REGISTRY if when is not None else None))
    return Inventory(str(address), tuple(artifacts), edges), graph, unlisted


def config_times(client: RegistryClient, path: str, graph: RepoGraph, digests: Sequence[str],
                 parallel: int) -> dict[str, datetime]:
    """digest -> the ``created`` of its image config (an index: of its first platform manifest), read once per
    distinct digest (a manifest and a blob each); a digest without one is left out (its age is unknown)."""

    def when(digest: str) -> datetime | None:
        node = graph.nodes.get(digest)
        target = digest
        if node is not None and node.children:
            platforms = [c for c in node.children if graph.roles.get(c, "platform") == "platform"]
            if not platforms:
                return None
            target = platforms[0]
        try:
            return plausible_time(client.image_created(path, target))
        except RegistryError:
            return None

    if not digests:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(digests)))) as pool:
        times = dict(zip(digests, pool.map(when, digests), strict=True))
    return {digest: value for digest, value in times.items() if value is not None}


#: push times before this are placeholders, never real: Go's zero time (0001-01-01), the Unix epoch, the
#: 1980-01-01 of reproducible builds (buildpacks, Bazel, ko, Nix write them as an image config's ``created``)
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
#: how far ahead of this machine's clock a push time may be (clock skew) before it is taken as no time at all
FUTURE_SKEW = timedelta(days=1)


def plausible_time(value: str | None, now: datetime | None = None) -> datetime | None:
    """``value`` (ISO 8601, as a vendor listing or an image config gives it) as a UTC time when it can be a push
    time, else None: the age is unknown and no rule removes by it (``push time unknown: kept``). A placeholder
    before :data:`EARLIEST_TIME` would make a kept tag look decades old, and a time over :data:`FUTURE_SKEW` ahead
    would rank before every real one in ``keep.last`` and push a recent tag out of it."""
    from ci_env.cleanup.collect import parse_time

    when = parse_time(value)
    if when is None:
        return None
    now = now or datetime.now(timezone.utc)
    return when if EARLIEST_TIME <= when <= now + FUTURE_SKEW else None


def _iso(value: datetime) -> str:
    return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")
