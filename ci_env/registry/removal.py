"""Removing images with what belongs to them: tags, and the signatures, attestations, referrers and platform
manifests no remaining tag reaches.

:func:`remove_images` wraps the tag dispatcher (``ci_env.registry.untag.untag_all``) with the repository graph
(``ci_env.registry.graph``), per repository, in three phases:

1. the removed images' referrers (signatures, attestations, SBOMs, referrers tag schema indexes), deepest first;
2. the tags themselves (each remover's careful route; removers that can delete a manifest with its last tag are
   told which digests remaining tags reach, so they never delete one of those);
3. the child manifests of the removed indexes (an index before its children).

A run stopped half-way leaves the tags in place (phase 1: run it again) or only untagged children (phase 3).
Nothing a remaining tag reaches is ever deleted. A remover that can delete a manifest by digest says so in its
``capabilities`` (``deletes_manifests``, :class:`ManifestRemover`: GitHub's package versions, ECR); on the
others (Harbor's included: it deletes untagged manifests only, ``deletes_untagged``, in :func:`remove_untagged`),
the default route included (it deletes no image, so that a tag moved onto one meanwhile keeps it), an accessory's
tags are removed and the untagged manifest is left to the registry's garbage collection (outcome ``left``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

from ci_env.errors import CiEnvError, RegistryError
from ci_env.registry.outcomes import GONE, Status
from ci_env.registry.untag import BatchRemover, Capabilities, Outcome, Progress, Summary, TagRemover, untag_all

if TYPE_CHECKING:
    from ci_env.registry.client import TagInfo
    from ci_env.registry.graph import Accessory, Removal, RepoGraph
    from ci_env.registry.listing import ManifestLister
    from ci_env.registry.reference import RepoAddress

LEFT_REASON = "untagged: the registry's garbage collection removes it (ci-env removes tags, not manifests, here)"


def deletes_manifests(remover: TagRemover) -> bool:
    """True when ``remover`` deletes manifests (by digest, or a package version with its last tag): it must know
    every digest the remaining tags reach (the whole repository's graph). A remover that only moves tags (the
    placeholder route) needs only what the removed tags reach (``Capabilities.needs_whole_graph``)."""
    return remover.capabilities.needs_whole_graph


class ManifestRemover(Protocol):
    """A remover that can also delete manifests by digest (with every tag on them)."""

    def delete_manifests(
        self, repo: RepoAddress, digests: Sequence[str], *, parallel: int = 8,
    ) -> Mapping[str, str | CiEnvError]:
        """Delete each of ``digests``: ``removed``, ``absent`` or the error, per digest (never raises)."""


class UntaggedDeleter(Protocol):
    """A remover that deletes untagged manifests only (``capabilities.deletes_untagged``: Harbor), whose delete
    may take more with it (Harbor's: accessories, children): it is told what must stay."""

    def delete_manifests(
        self, repo: RepoAddress, digests: Sequence[str], *, parallel: int = 1, keep: Collection[str] = (),
    ) -> Mapping[str, str | CiEnvError]:
        """Delete each of ``digests`` unless it, or what its delete takes along, is tagged now or among ``keep``
        (then ``left``); ``removed``, ``absent``, ``left`` or the error, per digest (never raises)."""


#: (repository, the tags listed now) -> each digest a tag pushed or moved since the plan reaches -> that tag
Recheck = Callable[["RepoAddress", Sequence["TagInfo"]], Mapping[str, str]]


class ProtectingRemover(Protocol):
    """A remover whose tag removal may delete a manifest (with its last tag): told what must stay."""

    def protect(self, repo: RepoAddress, digests: frozenset[str]) -> None:
        """Never delete any of ``digests`` in ``repo`` (remaining tags reach them)."""


@dataclass(frozen=True)
class AccessoryOutcome:
    """What happened to one accessory of a removed tag."""

    repo: str
    tag: str
    accessory: Accessory
    status: Status
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (reports and ``--json``)."""
        return {**self.accessory.as_dict(), "outcome": self.status, **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class ImageRemoval:
    """The tags' outcomes (as ``untag_all`` gives them), each removed tag's accessories, and warnings."""

    summary: Summary
    accessories: tuple[AccessoryOutcome, ...] = ()
    warnings: tuple[str, ...] = ()
    graphs: Mapping[str, RepoGraph] = field(default_factory=dict)
    #: repository -> every digest its remaining tags reach
    protected: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def accessories_of(self, repo: str, tag: str) -> tuple[AccessoryOutcome, ...]:
        """The accessories removed (or to be removed) with ``repo:tag``."""
        return tuple(a for a in self.accessories if a.repo == repo and a.tag == tag)

    def by_tag(self) -> dict[tuple[str, str], tuple[AccessoryOutcome, ...]]:
        """(repository, tag) -> its accessories' outcomes."""
        grouped: dict[tuple[str, str], list[AccessoryOutcome]] = {}
        for outcome in self.accessories:
            grouped.setdefault((outcome.repo, outcome.tag), []).append(outcome)
        return {key: tuple(value) for key, value in grouped.items()}

    @property
    def failed(self) -> tuple[AccessoryOutcome, ...]:
        """The accessories that could not be removed."""
        return tuple(a for a in self.accessories if a.status == Status.FAILED)


class _Preflighted:
    """A remover whose preflight runs once (the phases and ``untag_all`` all ask); it can do what ``inner`` can."""

    def __init__(self, inner: TagRemover) -> None:
        self.inner = inner
        self.capabilities: Capabilities = inner.capabilities
        self._done: set[RepoAddress] = set()

    def preflight(self, repo: RepoAddress) -> None:
        if repo not in self._done:
            self.inner.preflight(repo)
            self._done.add(repo)

    def untag(self, repo: RepoAddress, tag: str) -> str:
        return self.inner.untag(repo, tag)

    def untag_many(self, repo: RepoAddress, tags: Sequence[str], **options: Any) -> Mapping[str, str | CiEnvError]:
        """The inner remover's batch (only when ``capabilities.batch``)."""
        batch: Any = self.inner
        answers: Mapping[str, str | CiEnvError] = batch.untag_many(repo, tags, **options)
        return answers

    def delete_manifests(self, repo: RepoAddress, digests: Sequence[str], *, parallel: int = 8,
                         **options: Any) -> Mapping[str, str | CiEnvError]:
        """The inner remover's manifest deletion (only when ``capabilities.deletes_manifests`` or
        ``deletes_untagged``: then with its ``keep``)."""
        inner: Any = self.inner
        answers: Mapping[str, str | CiEnvError] = inner.delete_manifests(repo, digests, parallel=parallel, **options)
        return answers


def remove_images(
    requests: Sequence[tuple[RepoAddress, str]],
    remover_of: Callable[[RepoAddress], TagRemover],
    graph_of: Callable[[RepoAddress], RepoGraph],
    *,
    keep_accessories: bool = False,
    parallel: int = 8,
    dry_run: bool = False,
    progress: Progress | None = None,
    keep: Callable[[RepoAddress], Collection[str]] = lambda _repo: (),
    on_outcome: Callable[[Outcome], None] | None = None,
    expected: Mapping[tuple[RepoAddress, str], str] | None = None,
    fresh_graphs: bool = False,
) -> ImageRemoval:
    """Remove every (repository, tag) of ``requests`` with its accessories (see the module docstring).

    ``graph_of(repo)`` gives the repository's graph (built from the caller's listing); when it cannot be built
    the tags are still removed by their remover's own careful route, nothing else is, and a warning says so.
    Every repository is preflighted before anything is deleted. ``keep_accessories`` (``--keep-signatures``)
    leaves referrers in place; platform manifests still go with their index. ``keep(repo)``: digests that must
    stay with everything they reach although no remaining tag holds them (what Kubernetes runs). ``on_outcome``
    is told each tag's outcome as soon as it is known (``untag_all``); ``expected`` guards the tag removals
    (``untag_all``). ``fresh_graphs``: the graphs were read a moment ago (``registry untag``), so the removers
    that can take what they say of the removed tags instead of reading each again (``untag_all``'s ``known``).

    Size: one pass in order (graphs, dry run, preflight, referrers, tags, children) whose steps share the removers,
    graphs and outcomes; the keyword parameters are the removal's options, passed on to ``untag_all``.
    """
    unique = list(dict.fromkeys(requests))
    by_repo: dict[RepoAddress, list[str]] = {}
    for repo, tag in unique:
        by_repo.setdefault(repo, []).append(tag)
    removers: dict[RepoAddress, _Preflighted] = {}
    shared: dict[int, _Preflighted] = {}

    def wrapped(repo: RepoAddress) -> _Preflighted:
        if repo not in removers:
            inner = remover_of(repo)
            removers[repo] = shared.setdefault(id(inner), _Preflighted(inner))
        return removers[repo]

    removals: dict[RepoAddress, Removal] = {}
    graphs: dict[str, RepoGraph] = {}
    warnings: list[str] = []
    for repo, tags in by_repo.items():
        try:
            graph = graph_of(repo)
        except CiEnvError as exc:
            warnings.append(f"{repo}: the repository's graph could not be read ({exc.message}); only the tags "
                            "are removed, their signatures and other accessories are not")
            continue
        graphs[str(repo)] = graph
        removals[repo] = graph.removal(tags, keep_accessories=keep_accessories, keep=keep(repo))
    if dry_run:
        summary = untag_all(unique, wrapped, parallel=parallel, dry_run=True)
        planned = [
            AccessoryOutcome(str(repo), tag, accessory,
                             Status.WOULD_REMOVE if _deletable(wrapped(repo), accessory) else Status.LEFT,
                             "" if _deletable(wrapped(repo), accessory) else LEFT_REASON)
            for repo, removal in removals.items() for tag in removal.tags for accessory in removal.accessories[tag]
        ]
        return ImageRemoval(summary, tuple(planned), tuple(warnings), graphs, _protected(removals))
    for repo in by_repo:
        wrapped(repo).preflight(repo)
    outcomes: dict[tuple[str, str, str], AccessoryOutcome] = {}
    for repo, removal in removals.items():
        remover = wrapped(repo)
        if remover.capabilities.protects:
            cast(ProtectingRemover, remover.inner).protect(repo, removal.protected)
        referrers = [(removal.owner(a.digest), a) for a in removal.all_accessories() if a.is_referrer]
        _remove_accessories(repo, remover, referrers, parallel, outcomes)
    known = None
    if fresh_graphs:
        known = {(repo, tag): graphs[str(repo)].tags.get(tag) for repo, tag in unique if str(repo) in graphs}
    summary = untag_all(unique, wrapped, parallel=parallel, progress=progress, on_outcome=on_outcome,
                        expected=expected, known=known)
    status = {(o.repo, o.tag): o.status for o in summary.outcomes}
    for repo, removal in removals.items():
        children: list[tuple[str, Accessory]] = []
        for tag in removal.tags:
            for accessory in removal.accessories[tag]:
                if accessory.is_referrer:
                    continue
                if status.get((str(repo), tag)) in GONE:
                    children.append((tag, accessory))
                else:
                    outcomes[(str(repo), tag, accessory.digest)] = AccessoryOutcome(
                        str(repo), tag, accessory, Status.NOT_ATTEMPTED,
                        "its image's tag was not removed; left in place")
        _remove_accessories(repo, wrapped(repo), children, parallel, outcomes)
    ordered = [
        outcomes[(str(repo), tag, a.digest)]
        for repo, removal in removals.items() for tag in removal.tags for a in removal.accessories[tag]
        if (str(repo), tag, a.digest) in outcomes
    ]
    return ImageRemoval(summary, tuple(ordered), tuple(warnings), graphs, _protected(removals))


def _protected(removals: Mapping[RepoAddress, Removal]) -> dict[str, frozenset[str]]:
    return {str(repo): removal.protected for repo, removal in removals.items()}


@dataclass(frozen=True)
class UntaggedOutcome:
    """What happened to one untagged manifest (``--delete-untagged``, or an ``untagged:`` retention policy):
    ``reason`` is the error of a failure, ``why`` why it was removed (the retention decision's reason)."""

    repo: str
    digest: str
    status: Status
    reason: str = ""
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (reports)."""
        return {"repository": self.repo, "digest": self.digest, "outcome": self.status,
                **({"reason": self.why} if self.why else {}), **({"error": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class UntaggedRemoval:
    """What the untagged removal did: one outcome per manifest, warnings, and the repositories whose untagged
    removal stopped on an error (reference -> why; nothing more of them was removed: the run fails at its end)."""

    outcomes: tuple[UntaggedOutcome, ...] = ()
    warnings: tuple[str, ...] = ()
    stopped: Mapping[str, str] = field(default_factory=dict)


def remove_untagged(
    repos: Sequence[RepoAddress],
    remover_of: Callable[[RepoAddress], TagRemover],
    graph_of: Callable[[RepoAddress], RepoGraph],
    removal: ImageRemoval,
    *,
    parallel: int = 8,
    dry_run: bool = False,
    keep: Callable[[RepoAddress], Collection[str]] = lambda _repo: (),
    only: Callable[[RepoAddress], Mapping[str, str]] | None = None,
    recheck: Recheck | None = None,
) -> UntaggedRemoval:
    """Delete the untagged manifests of ``repos`` that nothing kept reaches (``--delete-untagged``): the platform
    manifests, attestations and signatures of kept images are never among them. Only registries that list
    untagged manifests and delete them by digest (``capabilities.removes_untagged``) have any; ``removal`` is the
    tag removal that ran before (what its remaining tags reach); ``keep(repo)``, digests that stay with what they
    reach although untagged (what Kubernetes runs); ``only(repo)``: the digests a retention policy removes (digest
    -> why, in the order to delete them), of which those still untagged now and reached by nothing kept go.
    ``recheck(repo, tags)``, given the tags the vendor lists now (its ``list_manifests``, the same listing that
    gives the untagged manifests), says which digests tags pushed or moved since the plan reach now (digest ->
    tag): those stay (``left``, with a warning), as do those of ``only`` that are tagged now, and those the
    remover finds tagged right before deleting them.

    An error while reading or deleting one repository's untagged manifests (a CiEnvError, or any other exception
    of a vendor's code: an answer of an unexpected shape) stops that repository only: a warning says why, what
    was planned and not removed is ``failed``, and the repository is in ``stopped``. KeyboardInterrupt and
    SystemExit are not caught.

    Size: nine parameters: the repositories, how to reach their removers and graphs, the tag removal that ran
    before, and five keyword options that two callers (``--delete-untagged``, the rules' ``untagged:``) set
    differently; a settings object would only move them.
    """
    scope = _UntaggedScope(graph_of, removal, parallel, dry_run, keep, only, recheck)
    outcomes: list[UntaggedOutcome] = []
    warnings: list[str] = []
    stopped: dict[str, str] = {}
    for repo in dict.fromkeys(repos):
        remover = remover_of(repo)
        if not remover.capabilities.removes_untagged:
            continue
        done = len(outcomes)
        try:
            _remove_untagged_of(repo, remover, scope, outcomes, warnings)
        except Exception as exc:  # CiEnvError, or a vendor's answer no check foresaw: this repository stops
            why = exc.message if isinstance(exc, CiEnvError) else _unexpected(exc)
            stopped[str(repo)] = why
            warnings.append(f"{repo}: untagged manifests were not removed: {why}")
            decided = {o.digest for o in outcomes[done:]}
            planned = only(repo) if only is not None else {}
            outcomes += [UntaggedOutcome(str(repo), d, Status.FAILED, f"not removed: {why}", reason)
                         for d, reason in planned.items() if d not in decided]
    return UntaggedRemoval(tuple(outcomes), tuple(warnings), stopped)


def _unexpected(exc: Exception) -> str:
    """What a warning says of an error no check foresaw: its type and first line (shortened, without the userinfo
    of any URL in it)."""
    from ci_env.redact import strip_userinfo_in

    first = strip_userinfo_in((str(exc).splitlines() or [""])[0][:200])
    return (f"unexpected error ({type(exc).__name__}{': ' + first if first else ''}); the registry or its API "
            "answered in a shape ci-env does not read: run again, and report it if it stays")


@dataclass(frozen=True)
class _UntaggedScope:
    """The options of one :func:`remove_untagged` call, the same for each of its repositories."""

    graph_of: Callable[[RepoAddress], RepoGraph]
    removal: ImageRemoval
    parallel: int
    dry_run: bool
    keep: Callable[[RepoAddress], Collection[str]]
    only: Callable[[RepoAddress], Mapping[str, str]] | None
    recheck: Recheck | None


def _remove_untagged_of(repo: RepoAddress, remover: TagRemover, scope: _UntaggedScope,
                        outcomes: list[UntaggedOutcome], warnings: list[str]) -> None:
    """One repository of :func:`remove_untagged`: its outcomes and warnings appended as they are known (so that
    an error part-way leaves those already decided); raises what reading or deleting raises."""
    untagged, held = _doomed_untagged(repo, remover, scope)
    why = scope.only(repo) if scope.only is not None else {}
    stay = [d for d in untagged if d in held]
    if stay:
        outcomes += [UntaggedOutcome(str(repo), d, Status.LEFT, why=_joined(
            why.get(d, ""), f"kept: tag {held[d]}, pushed or moved since the plan, reaches it")) for d in stay]
        tags = ", ".join(sorted({held[d] for d in stay}))
        warnings.append(f"{repo}: {len(stay)} untagged manifest{'s' if len(stay) != 1 else ''} planned for "
                        f"removal kept: tags pushed or moved since the plan reach them ({tags})")
        untagged = [d for d in untagged if d not in held]
    if scope.dry_run or not untagged:
        outcomes += [UntaggedOutcome(str(repo), d, Status.WOULD_REMOVE, why=why.get(d, "")) for d in untagged]
        return
    remover.preflight(repo)
    if remover.capabilities.deletes_untagged:  # its delete may take more along: it must know what stays
        answers = cast(UntaggedDeleter, remover).delete_manifests(repo, untagged, parallel=scope.parallel,
                                                                  keep=frozenset(scope.keep(repo)))
    else:
        answers = cast(ManifestRemover, remover).delete_manifests(repo, untagged, parallel=scope.parallel)
    tagged: list[str] = []
    kept: list[str] = []
    for digest in untagged:
        answer = answers.get(digest, RegistryError("no outcome was reported"))
        if isinstance(answer, CiEnvError):
            outcomes.append(UntaggedOutcome(str(repo), digest, Status.FAILED, answer.message, why.get(digest, "")))
        elif answer == Status.LEFT:
            reason = getattr(answer, "reason", "")
            (kept if reason else tagged).append(reason)
            outcomes.append(UntaggedOutcome(str(repo), digest, Status.LEFT, why=_joined(
                why.get(digest, ""), f"kept: {reason or 'it had a tag when it was to be deleted'}")))
        else:
            outcomes.append(UntaggedOutcome(str(repo), digest, Status(answer), why=why.get(digest, "")))
    if tagged:
        warnings.append(f"{repo}: {len(tagged)} untagged manifest{'s' if len(tagged) != 1 else ''} planned for "
                        "removal kept: tagged when they were to be deleted")
    if kept:
        warnings.append(f"{repo}: {len(kept)} untagged manifest{'s' if len(kept) != 1 else ''} planned for "
                        f"removal kept: {kept[0]}" + (" (and others: see the report)" if len(kept) > 1 else ""))


def _doomed_untagged(repo: RepoAddress, remover: TagRemover,
                     scope: _UntaggedScope) -> tuple[list[str], Mapping[str, str]]:
    """``repo``'s untagged manifests to remove (in order), read from the registry now, and those of them that a
    tag pushed or moved since the plan reaches (digest -> tag: they stay); see :func:`remove_untagged`.
    CiEnvError when the registry cannot be read (then nothing of ``repo`` is removed)."""
    graph_of, removal, keep, only, recheck = scope.graph_of, scope.removal, scope.keep, scope.only, scope.recheck
    held: Mapping[str, str] = {}
    protected = removal.protected.get(str(repo))
    if protected is None:
        graph = removal.graphs.get(str(repo)) or graph_of(repo)
        protected = graph.reach([*graph.tags.values(), *keep(repo)])
    tags_now, loose = _listed_now(remover, repo)
    tagged_now: dict[str, str] = {}
    if recheck is not None:
        kept = set(keep(repo))
        if only is not None or any(d not in protected and d not in kept for d in loose):  # else nothing to check
            held = recheck(repo, tags_now)
        tagged_now = {info.digest: info.tag for info in tags_now if info.digest}
    untagged = [d for d in loose if d not in protected]
    if only is not None:
        listed_now = set(untagged)
        planned = only(repo)
        held = {**held, **{d: tagged_now[d] for d in planned if d in tagged_now}}
        untagged = [d for d in planned if d in listed_now or d in held]
    gone = {a.accessory.digest for a in removal.accessories if a.repo == str(repo) and a.status == Status.REMOVED}
    return [d for d in untagged if d not in gone and d not in keep(repo)], held


def _listed_now(remover: TagRemover, repo: RepoAddress) -> tuple[list[TagInfo], list[str]]:
    """The tags and the untagged manifests of ``repo`` as its vendor lists them now, from one listing (a remover
    declaring ``lists_untagged`` is a ``listing.ManifestLister``)."""
    tags, loose = cast("ManifestLister", remover).list_manifests(repo)
    return list(tags), list(loose)


def _joined(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


def _deletable(remover: TagRemover, accessory: Accessory) -> bool:
    return bool(accessory.tags) or remover.capabilities.deletes_manifests


def _remove_accessories(
    repo: RepoAddress, remover: _Preflighted, items: Sequence[tuple[str, Accessory]], parallel: int,
    outcomes: dict[tuple[str, str, str], AccessoryOutcome],
) -> None:
    """Delete ``items`` (in order) by digest where the remover can, else remove their tags and leave them."""
    if not items:
        return
    record = functools.partial(_record, repo, outcomes)
    if remover.capabilities.deletes_manifests:
        digests = list(dict.fromkeys(a.digest for _, a in items))
        try:
            answers: Mapping[str, object] = remover.delete_manifests(repo, digests, parallel=parallel)
        except CiEnvError as exc:
            answers = dict.fromkeys(digests, exc)
        for tag, accessory in items:
            record(tag, accessory, answers.get(accessory.digest, RegistryError("no outcome was reported")))
        return
    names = list(dict.fromkeys(t for _, accessory in items for t in accessory.tags))
    answers = {}
    if remover.capabilities.batch and names:
        try:
            answers = cast(BatchRemover, remover).untag_many(repo, names, parallel=parallel)
        except CiEnvError as exc:
            answers = dict.fromkeys(names, exc)
    for tag, accessory in items:
        if not accessory.tags:
            record(tag, accessory, Status.LEFT)
            continue
        result: object = Status.REMOVED
        for accessory_tag in accessory.tags:
            try:
                answer = answers[accessory_tag] if accessory_tag in answers else remover.untag(repo, accessory_tag)
            except CiEnvError as exc:
                answer = exc
            if isinstance(answer, CiEnvError):
                result = answer
        record(tag, accessory, result)


def _record(repo: RepoAddress, outcomes: dict[tuple[str, str, str], AccessoryOutcome], tag: str,
            accessory: Accessory, result: object) -> None:
    if isinstance(result, CiEnvError):
        outcome = AccessoryOutcome(str(repo), tag, accessory, Status.FAILED, result.message)
    elif result == Status.LEFT:
        outcome = AccessoryOutcome(str(repo), tag, accessory, Status.LEFT, LEFT_REASON)
    else:
        outcome = AccessoryOutcome(str(repo), tag, accessory,
                                   Status(result) if result in GONE else Status.REMOVED)
    outcomes[(str(repo), tag, accessory.digest)] = outcome
