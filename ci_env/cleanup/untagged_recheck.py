"""The untagged removal of a cleanup by rules, checked against the tags as they are when it runs.

The plan decides the untagged manifests from one listing; minutes can pass before they are deleted (the tags'
removal, GitHub's one DELETE a second). Meanwhile a push may tag an untagged index the plan removes, or put a
tag on an image whose untagged platform manifests or signatures the plan removes: deleting them would break
that tag. So right before a repository's untagged manifests are deleted, its tags are read again (the vendor's
listing, completed by the Registry API's tag list, each tag resolved with a HEAD: ``listing.with_registry_tags``
with ``verify``), and every tag that is new or points elsewhere than when planned (or was removed by this run and
is back) keeps what it reaches now: the plan's graph and the edges read of its untagged manifests, and (one GET
each) any manifest the plan never saw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ci_env.registry.client import RegistryClient, TagInfo
    from ci_env.registry.graph import RepoGraph
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.removal import ImageRemoval, Recheck
    from ci_env.retention.engine import Inventory


@dataclass(frozen=True)
class PlannedReach:
    """What the plan knew of one repository: its tags (tag -> digest), what each digest reaches (an index's
    manifests, a manifest's signatures, attestations and other referrers: the graph's edges and those read of
    the untagged manifests), and every digest it saw (those need no read to know what they reach)."""

    tags: Mapping[str, str]
    edges: Mapping[str, tuple[str, ...]]
    known: frozenset[str]

    @classmethod
    def of(cls, inventory: Inventory, tags: Mapping[str, str], nodes: Sequence[str]) -> PlannedReach:
        """The reach of a planned repository from its inventory, its tags (image and accessory tags) and the
        digests of its graph."""
        edges = {parent: tuple(edge.digest for edge in found) for parent, found in inventory.edges.items()}
        known = {a.digest for a in inventory.artifacts} | set(nodes) | set(edges)
        known.update(digest for found in edges.values() for digest in found)
        return cls(dict(tags), edges, frozenset(known))

    @classmethod
    def of_graph(cls, graph: RepoGraph) -> PlannedReach:
        """The reach of a repository from its graph alone (its tags, each index's manifests, each manifest's
        referrers): what managed-image cleanup listed."""
        edges: dict[str, tuple[str, ...]] = {}
        for digest in {*graph.nodes, *graph.referrers}:
            node = graph.nodes.get(digest)
            below = (*(node.children if node is not None else ()), *(r.digest for r in graph.referrers_of(digest)))
            if below:
                edges[digest] = below
        known = set(graph.nodes) | set(edges) | {d for found in edges.values() for d in found}
        return cls(dict(graph.tags), edges, frozenset(known))


#: reads what manifests the plan never saw reach: digest -> the digests below it (an index's manifests), and
#: subject digest -> its referrers among them (``manifest_edges.loose_edges``)
EdgeReader = Callable[[Sequence[str]], Mapping[str, Sequence[str]]]


def changed_tags(planned: Mapping[str, str], now: Sequence[TagInfo]) -> dict[str, str]:
    """The tags of ``now`` (the current listing) that are new or point at another digest than ``planned`` (the
    tags the plan saw that are still in place after this run's removals): tag -> digest now."""
    return {info.tag: info.digest for info in now if info.digest and planned.get(info.tag) != info.digest}


def held_by(reach: PlannedReach, changed: Mapping[str, str], read: EdgeReader) -> dict[str, str]:
    """Every digest the ``changed`` tags reach now -> the first such tag (sorted): through the plan's edges, and
    through those ``read`` gives of the manifests the plan never saw (read once each, level by level)."""
    held: dict[str, str] = {}
    extra: dict[str, list[str]] = {}
    asked: set[str] = set()
    for tag in sorted(changed):
        frontier = [changed[tag]]
        while frontier:
            unknown = [d for d in frontier if d not in reach.known and d not in asked]
            if unknown:
                asked.update(unknown)
                for parent, below in read(unknown).items():
                    extra.setdefault(parent, []).extend(below)
            following = []
            for digest in frontier:
                if digest in held:
                    continue
                held[digest] = tag
                following += [d for d in (*reach.edges.get(digest, ()), *extra.get(digest, ())) if d not in held]
            frontier = list(dict.fromkeys(following))
    return held


def recheck(client: RegistryClient, path: str, reach: PlannedReach, remaining: Mapping[str, str],
            vendor: Sequence[TagInfo], parallel: int) -> dict[str, str]:
    """The digests of ``path`` that tags new or moved since the plan reach now -> such a tag. ``vendor``: the
    vendor's listing of the tags now (completed here by the Registry API's tag list, and every tag resolved with
    one HEAD: where a tag points is the registry's word, a lagging vendor listing can show it on its old image);
    ``remaining``: the plan's tags this run did not remove. RegistryError when the tags or a manifest cannot be
    read (then nothing of the repository is removed)."""
    from ci_env.cleanup.manifest_edges import loose_edges
    from ci_env.registry.listing import with_registry_tags

    now, _added = with_registry_tags(client, path, vendor, parallel=parallel, verify=True)
    changed = changed_tags(remaining, now)
    if not changed:
        return {}

    def read(digests: Sequence[str]) -> dict[str, list[str]]:
        return {parent: [edge.digest for edge in found]
                for parent, found in loose_edges(client, path, digests, parallel).items()}

    return held_by(reach, changed, read)


def graph_recheck(client_of: Callable[[RepoAddress], RegistryClient], graph_of: Callable[[RepoAddress], RepoGraph],
                  removal: ImageRemoval, parallel: int) -> Recheck:
    """The re-check of ``remove_untagged`` (``ci_env.registry.removal``) for a run whose plan is the repositories'
    graphs (``--delete-untagged`` of managed-image cleanup): the tags ``removal`` did not remove are the planned
    ones, and what a tag new or moved since the graph was read reaches now stays (:func:`recheck`)."""
    from ci_env.registry.outcomes import GONE

    gone = {(o.repo, o.tag) for o in removal.summary.outcomes if o.status in GONE}

    def check(repo: RepoAddress, vendor: Sequence[TagInfo]) -> Mapping[str, str]:
        graph = removal.graphs.get(str(repo)) or graph_of(repo)
        remaining = {tag: digest for tag, digest in graph.tags.items() if (str(repo), tag) not in gone}
        return recheck(client_of(repo), repo.path, PlannedReach.of_graph(graph), remaining, vendor, parallel)

    return check
