"""The retention decision: keep or delete for every tag and untagged manifest of one repository, with the reason
(pure: no I/O, ``now`` given).

Order of decision:

1. **Rules, in priority order** (as ECR lifecycle rules): each tag (``unit: image``: each digest with all its
   tags) is judged by the first rule whose tag selection covers it; what no rule covers is kept. A rule ranks,
   newest push first (ties by name), everything its selection covers, including what an earlier rule judges (as
   ECR's rules "identify images marked by higher priority rules as if they had not been expired"), keeps the
   ``keep.last`` most recent and those pushed ``keep.within``; of the rest it removes those older than
   ``remove.olderThan`` (any age without it) except the ``remove.exceptLast`` most recent of them. A tag whose
   push time is unknown is kept by the rule that covers it and takes no place in its count.
2. **Untagged manifests nothing references** follow the repository's ``untagged`` policy.
3. **Protections veto a removal** (in use in Kubernetes, ``--keep-tag``, the keep-list: the caller passes them
   as :class:`Protections`), each with its own reason.
4. **The graph keeps what kept images need**: a manifest reached from a kept tag, a protected digest or a kept
   untagged manifest (as a platform manifest at any depth of indexes, an attestation, a signature, an SBOM or
   any referrer) is never removed, tagged or not. Untagged manifests only removed images reach go with them.

Removing a tag is an untag: when another kept tag points at the same digest the image stays (the decision's
reason says so).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ci_env.retention.rules import (
    KEEP,
    UNIT_IMAGE,
    RepositoryRules,
    Rule,
    UntaggedPolicy,
    duration_text,
)

#: Decision actions, as the cleanup plan spells them.
ACTION_KEEP = "keep"
ACTION_DELETE = "delete"

#: Where a push time came from: the vendor API's push time, or the image config's ``created``.
AGE_REGISTRY = "registry"
AGE_CONFIG = "config"
_AGE_WORDS = {AGE_REGISTRY: "pushed {} by the registry's push time", AGE_CONFIG: "created {} by the image config"}

#: What a graph edge is: a platform manifest (or nested index) of an index, or an accessory of a manifest.
EDGE_PLATFORM = "platform manifest"
EDGE_ATTESTATION = "attestation"
EDGE_SIGNATURE = "signature"
EDGE_SBOM = "SBOM"
EDGE_REFERRER = "referrer"

#: Basis rules: what decided.
BASIS_RULE = "retention-rule"
BASIS_NO_RULE = "no-rule"
BASIS_UNKNOWN_AGE = "unknown-age"
BASIS_PROTECTION = "protection"
BASIS_GRAPH = "graph"
BASIS_UNTAGGED = "untagged-policy"
BASIS_FOLLOWS = "follows-removed"


@dataclass(frozen=True, slots=True)
class Artifact:
    """A tag (``tag`` set) or an untagged manifest (``tag`` None) of the repository, with its push time (UTC) and
    where that came from (:data:`AGE_REGISTRY`, :data:`AGE_CONFIG`, None: unknown)."""

    digest: str
    tag: str | None = None
    pushed: datetime | None = None
    age_source: str | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    """``digest`` is reached from its parent as ``kind`` (:data:`EDGE_PLATFORM`, :data:`EDGE_SIGNATURE`, ...)."""

    digest: str
    kind: str = EDGE_PLATFORM


@dataclass(frozen=True)
class Inventory:
    """One repository as listed: its tags and untagged manifests, and its graph (digest -> what it reaches:
    an index's manifests, a manifest's signatures, attestations and referrers)."""

    repository: str
    artifacts: tuple[Artifact, ...]
    edges: Mapping[str, tuple[Edge, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Protections:
    """What no rule removes, each with the reason the report gives: exact tags, whole-tag patterns
    (``--keep-tag``) and digests (what Kubernetes runs)."""

    tags: Mapping[str, str] = field(default_factory=dict)
    tag_patterns: tuple[tuple[str, str], ...] = ()
    digests: Mapping[str, str] = field(default_factory=dict)

    def reason(self, tag: str | None, digest: str) -> str | None:
        """Why this tag or digest is protected, or None."""
        from ci_env.patterns import compile_pattern

        if tag is not None:
            if tag in self.tags:
                return self.tags[tag]
            for pattern, reason in self.tag_patterns:
                if compile_pattern(pattern).fullmatch(tag):  # compiled once (cached), linear time
                    return reason
        return self.digests.get(digest)


@dataclass(frozen=True, slots=True)
class Basis:
    """Why, for machines: the ``rule`` kind (``BASIS_*``), the rule ``number`` and its ``line`` when a rule
    decided."""

    rule: str
    number: int | None = None
    line: int | None = None

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"rule": self.rule}
        if self.number is not None:
            data["number"] = self.number
        if self.line:
            data["line"] = self.line
        return data


@dataclass(frozen=True, slots=True)
class Decision:
    """Keep or delete one tag (``tag`` set) or one untagged manifest (``tag`` None), and why; ``pushed`` and
    ``age_source`` say which age was used."""

    repository: str
    tag: str | None
    digest: str
    action: str
    reason: str
    basis: Basis
    pushed: datetime | None = None
    age_source: str | None = None

    @property
    def reference(self) -> str:
        """``repository:tag`` or ``repository@digest``."""
        return f"{self.repository}:{self.tag}" if self.tag is not None else f"{self.repository}@{self.digest}"


@dataclass
class _Item:
    """What a rule judges: one tag, or (unit image) one digest with its tags."""

    key: str
    digest: str
    tags: tuple[str, ...]
    pushed: datetime | None
    age_source: str | None
    action: str = ACTION_KEEP
    reason: str = ""
    basis: Basis = field(default_factory=lambda: Basis(BASIS_NO_RULE))


def decide(inventory: Inventory, rules: RepositoryRules, now: datetime,
           protections: Protections | None = None) -> tuple[Decision, ...]:
    """Every tag's and untagged manifest's decision for ``inventory`` under ``rules`` at ``now``: tags first (by
    name), then untagged manifests (by digest)."""
    protections = protections or Protections()
    tagged = [a for a in inventory.artifacts if a.tag is not None]
    tagged_digests = {a.digest for a in tagged}
    untagged = _unique(a for a in inventory.artifacts if a.tag is None and a.digest not in tagged_digests)
    items = _items(tagged, rules.unit == UNIT_IMAGE)
    _apply_rules(items, rules.rules, now, rules.unit == UNIT_IMAGE)
    for item in items:
        if item.action == ACTION_DELETE:
            reason = next((r for r in (protections.reason(t, item.digest) for t in item.tags) if r), None)
            if reason is not None:
                item.action, item.reason, item.basis = ACTION_KEEP, f"protected: {reason}", Basis(BASIS_PROTECTION)
    children = {edge.digest for edges in inventory.edges.values() for edge in edges}
    roots = [a for a in untagged if a.digest not in children]
    root_decisions = _untagged_roots(inventory.repository, roots, rules.untagged, now, protections)
    kept = {item.digest: item.tags[0] for item in items if item.action == ACTION_KEEP}
    kept.update({d.digest: d.digest for d in root_decisions if d.action == ACTION_KEEP})
    kept.update({digest: digest for digest in protections.digests if digest not in kept})
    reach = _reach(kept, inventory.edges)
    for item in items:
        if item.action == ACTION_DELETE and item.digest in reach:
            kind, owner = reach[item.digest]
            item.action = ACTION_KEEP
            item.reason = f"the {kind} of kept {_name(owner)}: a kept image needs it"
            item.basis = Basis(BASIS_GRAPH)
    decisions = _tag_decisions(inventory.repository, items, {a.tag: a for a in tagged if a.tag is not None})
    removed = {d.digest: d.digest for d in root_decisions if d.action == ACTION_DELETE}
    removed.update({item.digest: item.tags[0] for item in items if item.action == ACTION_DELETE})
    by_digest = {d.digest: d for d in root_decisions}
    manifests = [by_digest.get(a.digest) or _follower(inventory.repository, a, reach, removed, inventory.edges)
                 for a in untagged]
    return tuple(decisions) + tuple(sorted(manifests, key=lambda d: d.digest))


def _unique(artifacts: Iterable[Artifact]) -> list[Artifact]:
    seen: dict[str, Artifact] = {}
    for artifact in artifacts:
        seen.setdefault(artifact.digest, artifact)
    return list(seen.values())


def _items(tagged: Sequence[Artifact], by_image: bool) -> list[_Item]:
    """One item per tag, or (``by_image``) per digest with its tags and its most recent push."""
    if not by_image:
        return [_Item(a.tag or "", a.digest, (a.tag or "",), a.pushed, a.age_source)
                for a in sorted(tagged, key=lambda a: a.tag or "")]
    groups: dict[str, list[Artifact]] = {}
    for artifact in tagged:
        groups.setdefault(artifact.digest, []).append(artifact)
    items = []
    for digest, members in groups.items():
        members.sort(key=lambda a: a.tag or "")
        known = [a for a in members if a.pushed is not None]
        newest = max(known, key=lambda a: (a.pushed, a.tag or "")) if known else None
        items.append(_Item(digest, digest, tuple(a.tag or "" for a in members),
                           newest.pushed if newest else None, newest.age_source if newest else None))
    return sorted(items, key=lambda i: i.tags[0])


def _covers(rule: Rule, item: _Item) -> bool:
    """A tag is covered when the rule's selection covers it; an image when one of its tags is included and none
    excluded."""
    if len(item.tags) == 1:
        return rule.tags.covers(item.tags[0])
    return any(rule.tags.includes(t) for t in item.tags) and not any(rule.tags.excludes(t) for t in item.tags)


def _newest_first(items: Iterable[_Item]) -> list[_Item]:
    """Items with a known push time, newest first; ties by name."""
    dated = [i for i in items if i.pushed is not None]
    dated.sort(key=lambda i: i.key)
    dated.sort(key=lambda i: i.pushed or datetime.min, reverse=True)  # stable: ties stay by name
    return dated


def _apply_rules(items: list[_Item], rules: Sequence[Rule], now: datetime, by_image: bool) -> None:
    noun = "images" if by_image else "tags"
    judged: set[str] = set()
    for item in items:
        item.reason = "matched no rule: kept"
    for rule in rules:
        covered = [i for i in items if _covers(rule, i)]
        mine = [i for i in covered if i.key not in judged]
        judged.update(i.key for i in mine)
        ranked = _newest_first(covered)
        rank = {i.key: place for place, i in enumerate(ranked, 1)}
        basis = Basis(BASIS_RULE, rule.number, rule.line or None)
        candidates = []
        for item in mine:
            item.basis = basis
            when = _when(item)
            if rule.keep.everything:
                item.reason = f"{rule.name} keeps every tag it covers ({rule.tags.describe()})"
            elif item.pushed is None:
                item.reason = f"{rule.name}: push time unknown, so no age or rank to remove it by: kept"
                item.basis = Basis(BASIS_UNKNOWN_AGE, rule.number, rule.line or None)
            elif rule.keep.last is not None and rank[item.key] <= rule.keep.last:
                item.reason = f"{_among(rule.keep.last, noun)} of {rule.name} ({when})"
            elif rule.keep.within is not None and item.pushed >= now - rule.keep.within:
                item.reason = f"within {duration_text(rule.keep.within)} of {rule.name} ({when})"
            elif (rule.remove is not None and rule.remove.older_than is not None
                  and item.pushed >= now - rule.remove.older_than):
                item.reason = (f"not older than {duration_text(rule.remove.older_than)}: {rule.name} removes only "
                               f"older {noun} ({when})")
            else:
                candidates.append(item)
        spare = rule.remove.except_last if rule.remove is not None else 0
        for place, item in enumerate(_newest_first(candidates), 1):
            if place <= spare:
                item.reason = f"{_one_of(spare, noun)} {rule.name} would remove, spared ({_when(item)})"
            else:
                item.action = ACTION_DELETE
                item.reason = _removal_reason(rule, item, noun)


def _most_recent(count: int, noun: str) -> str:
    """``the 3 most recent tags``, ``the most recent tag`` (``noun`` is the plural: tags, images, ...)."""
    return f"the most recent {noun[:-1]}" if count == 1 else f"the {count} most recent {noun}"


def _among(count: int, noun: str) -> str:
    """``among the 3 most recent tags``, ``the most recent tag``."""
    return _most_recent(count, noun) if count == 1 else f"among {_most_recent(count, noun)}"


def _one_of(count: int, noun: str) -> str:
    """``one of the 3 most recent tags``, ``the most recent tag``."""
    return _most_recent(count, noun) if count == 1 else f"one of {_most_recent(count, noun)}"


def _removal_reason(rule: Rule, item: _Item, noun: str) -> str:
    parts = []
    if rule.keep.last is not None:
        parts.append(f"beyond {_most_recent(rule.keep.last, noun)} of {rule.name}")
    if rule.keep.within is not None:
        parts.append(f"not within {duration_text(rule.keep.within)}")
    remove = rule.remove
    if remove is not None and remove.older_than is not None:
        parts.append(f"older than {duration_text(remove.older_than)}")
    if remove is not None and remove.except_last:
        parts.append("not the most recent of those" if remove.except_last == 1
                     else f"not among the {remove.except_last} most recent of those")
    text = ", ".join(parts) if parts else f"{rule.name} removes every tag it covers"
    if parts and rule.keep.last is None:
        text = f"{rule.name}: {text}"
    if len(item.tags) > 1:
        text += f" (the image with tags {', '.join(item.tags)})"
    return f"{text} ({_when(item)})"


def _when(item: _Item | Artifact) -> str:
    if item.pushed is None:
        return "push time unknown"
    day = item.pushed.strftime("%Y-%m-%d %H:%M UTC")
    return _AGE_WORDS.get(item.age_source or "", "pushed {}").format(day)


def _untagged_roots(repository: str, roots: Sequence[Artifact], policy: UntaggedPolicy, now: datetime,
                    protections: Protections) -> list[Decision]:
    """Untagged manifests nothing references, under the repository's ``untagged`` policy."""

    def manifest(artifact: Artifact, action: str, reason: str, basis: str = BASIS_UNTAGGED) -> Decision:
        return Decision(repository, None, artifact.digest, action, reason, Basis(basis), artifact.pushed,
                        artifact.age_source)

    decisions: dict[str, Decision] = {}
    candidates: list[Artifact] = []
    for artifact in roots:
        if policy.action == KEEP:
            decisions[artifact.digest] = manifest(artifact, ACTION_KEEP, "untagged: keep (the default)")
        elif policy.older_than is not None and artifact.pushed is None:
            decisions[artifact.digest] = manifest(artifact, ACTION_KEEP, "untagged, push time unknown: kept")
        elif policy.older_than is not None and artifact.pushed is not None and (
                artifact.pushed >= now - policy.older_than):
            age = duration_text(policy.older_than)
            decisions[artifact.digest] = manifest(artifact, ACTION_KEEP,
                                                  f"untagged, not older than {age} ({_when(artifact)})")
        else:
            candidates.append(artifact)
    dated = sorted((a for a in candidates if a.pushed is not None), key=lambda a: a.digest)
    dated.sort(key=lambda a: a.pushed or datetime.min, reverse=True)
    spared = {a.digest for a in dated[:policy.except_last]}
    for artifact in candidates:
        protected = protections.reason(None, artifact.digest)
        if protected is not None:
            decisions[artifact.digest] = manifest(artifact, ACTION_KEEP, f"protected: {protected}", BASIS_PROTECTION)
        elif artifact.digest in spared or (policy.except_last and artifact.pushed is None):
            decisions[artifact.digest] = manifest(
                artifact, ACTION_KEEP, f"{_one_of(policy.except_last, 'untagged manifests')} ({_when(artifact)})")
        else:
            older = f" older than {duration_text(policy.older_than)}" if policy.older_than is not None else ""
            decisions[artifact.digest] = manifest(
                artifact, ACTION_DELETE, f"untagged, nothing references it: untagged: remove{older} "
                                         f"({_when(artifact)})")
    return [decisions[a.digest] for a in roots]


def _reach(kept: Mapping[str, str], edges: Mapping[str, tuple[Edge, ...]]) -> dict[str, tuple[str, str]]:
    """Every digest reached through at least one edge from a kept digest -> (the edge kind, the kept tag or
    digest it serves)."""
    reached: dict[str, tuple[str, str]] = {}
    queue = deque((digest, owner) for digest, owner in kept.items())
    while queue:
        digest, owner = queue.popleft()
        for edge in edges.get(digest, ()):
            if edge.digest not in reached:
                reached[edge.digest] = (edge.kind, owner)
                queue.append((edge.digest, owner))
    return reached


def _name(owner: str) -> str:
    return owner if owner.startswith(("sha256:", "sha512:")) else f"tag {owner}"


def _tag_decisions(repository: str, items: Sequence[_Item], artifacts: Mapping[str, Artifact]) -> list[Decision]:
    kept_digests = {item.digest: item.tags[0] for item in items if item.action == ACTION_KEEP}
    decisions = []
    for item in items:
        for tag in item.tags:
            artifact = artifacts[tag]
            reason = item.reason
            if item.action == ACTION_DELETE and item.digest in kept_digests:
                reason += f"; only the tag goes: tag {kept_digests[item.digest]} keeps the image"
            decisions.append(Decision(repository, tag, item.digest, item.action, reason, item.basis,
                                      artifact.pushed, artifact.age_source))
    return sorted(decisions, key=lambda d: d.tag or "")


def _follower(repository: str, artifact: Artifact, reach: Mapping[str, tuple[str, str]],
              removed: Mapping[str, str], edges: Mapping[str, tuple[Edge, ...]]) -> Decision:
    """An untagged manifest something references: kept when a kept image reaches it, else it goes with the
    removed image that references it."""
    if artifact.digest in reach:
        kind, owner = reach[artifact.digest]
        return Decision(repository, None, artifact.digest, ACTION_KEEP, f"the {kind} of kept {_name(owner)}",
                        Basis(BASIS_GRAPH), artifact.pushed, artifact.age_source)
    owner = _removed_owner(artifact.digest, removed, edges)
    return Decision(repository, None, artifact.digest, ACTION_DELETE,
                    f"goes with removed {_name(owner)}: no kept image references it", Basis(BASIS_FOLLOWS),
                    artifact.pushed, artifact.age_source)


def _removed_owner(digest: str, removed: Mapping[str, str], edges: Mapping[str, tuple[Edge, ...]]) -> str:
    """The removed tag (or untagged manifest) whose graph holds ``digest``."""
    parents: dict[str, str] = {}
    for parent, children in edges.items():
        for edge in children:
            parents.setdefault(edge.digest, parent)
    current, seen = digest, set()
    while current in parents and current not in seen:
        seen.add(current)
        current = parents[current]
        if current in removed:
            return removed[current]
    return current
