"""What becomes of the journal of an earlier run (stopped by its time budget, or killed): a journal says what
to finish first, never what may be removed.

The resuming run plans today as any run does (publication records, git history, custom tags,
``--keep-published-within``, Kubernetes, ``--keep-tag``, ``--keep-list``). A pending entry of the journal is
removed only when (a) its repository is one of the images repo's image repositories or the stages storage, and
(b) today's plan removes that same tag, at the same digest; those removals go first, in the journal's order.
Every other entry is dropped and reported: ``outside`` (a) fails, ``moved`` the tag points at another digest
now (today's plan decides it as any other tag), ``kept`` today's plan keeps it, ``not-planned`` today's plan
has no such tag (gone, or no managed image owns it). A journal, honest or planted, can therefore never widen
what a run removes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ci_env.cleanup.journal import Entry, State
from ci_env.cleanup.policies import DELETE, Decision, Plan
from ci_env.registry.outcomes import Status

if TYPE_CHECKING:
    from ci_env.cleanup.target import Target

#: the outcome of an entry whose repository is not one of the target's: never removed.
OUTSIDE = "outside"
#: the outcome of an entry today's plan keeps.
KEPT = "kept"
#: the outcome of an entry today's plan does not have (the tag is gone, or no managed image owns it).
NOT_PLANNED = "not-planned"
#: the outcomes of entries dropped from the journal (the others are the removal's own).
DROPPED = frozenset({OUTSIDE, Status.MOVED, KEPT, NOT_PLANNED})


@dataclass(frozen=True)
class Resumed:
    """What became of one pending removal of the journal."""

    repository: str
    tag: str
    digest: str | None
    outcome: str
    reason: str = ""

    def as_json(self) -> dict[str, Any]:
        """The report's form."""
        return {"repository": self.repository, "tag": self.tag, "digest": self.digest, "outcome": self.outcome,
                **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class Triage:
    """The pending entries of a journal against today's plan: the removals to do first (today's plan has them,
    at the journal's digest), and the entries dropped with why."""

    pending: tuple[Entry, ...]
    first: tuple[tuple[str, str], ...]  #: (repository, stored tag), in the journal's order
    dropped: tuple[Resumed, ...]

    def resumed(self, outcomes: Mapping[tuple[str, str], tuple[str, str]]) -> tuple[Resumed, ...]:
        """Every pending entry's outcome, in the journal's order: the removal's outcome (``outcomes``, as
        ``Result.outcomes``; ``not-attempted`` when missing) for those done first, the drop for the others."""
        dropped = {(r.repository, r.tag): r for r in self.dropped}
        first = set(self.first)
        found: list[Resumed] = []
        once: dict[tuple[str, str], Entry] = {}
        for entry in self.pending:
            once.setdefault(entry.key, entry)
        for entry in once.values():
            if entry.key in first:
                status, reason = outcomes.get(entry.key, (Status.NOT_ATTEMPTED, ""))
                found.append(Resumed(entry.repository, entry.tag, entry.digest, status, reason))
            elif entry.key in dropped:
                found.append(dropped[entry.key])
        return tuple(found)


def target_repositories(target: Target) -> frozenset[str]:
    """The repositories a run may remove from: the managed images' repositories and the stages storage."""
    found = {str(target.images_repo.image_repository(image)) for image in target.managed}
    if target.stages is not None:
        found.add(str(target.stages))
    return frozenset(found)


def triage(state: State, plan: Plan, repositories: Collection[str],
           skipped: Sequence[tuple[str, str]] = ()) -> Triage:
    """Sort the pending entries of ``state`` against today's ``plan`` (see the module docstring).
    ``repositories``: the target's (:func:`target_repositories`); ``skipped``: the inventory's tags left alone
    ("repository:tag", why), whose reason a dropped entry repeats."""
    decisions: dict[tuple[str, str], Decision] = {d.key: d for d in plan.decisions}
    left_alone = dict(skipped)
    first: list[tuple[str, str]] = []
    dropped: list[Resumed] = []
    seen: set[tuple[str, str]] = set()
    for entry in state.pending:
        if entry.key in seen:
            continue
        seen.add(entry.key)
        decision = decisions.get(entry.key)
        outcome, reason = _verdict(entry, decision, repositories, left_alone)
        if outcome is None:
            first.append(entry.key)
        else:
            dropped.append(Resumed(entry.repository, entry.tag, entry.digest, outcome, reason))
    return Triage(state.pending, tuple(first), tuple(dropped))


def _verdict(entry: Entry, decision: Decision | None, repositories: Collection[str],
             skipped: Mapping[str, str]) -> tuple[str | None, str]:
    """(None, "") when the entry is removed first, else (outcome, reason) of its drop."""
    if entry.repository not in repositories:
        return OUTSIDE, "not a repository of this images repo or stages storage: never removed by this run"
    if decision is None:
        why = skipped.get(f"{entry.repository}:{entry.tag}")
        return NOT_PLANNED, (f"today's plan leaves it alone: {why}" if why else
                             "today's plan has no such tag (gone since, or no managed image owns it)")
    if entry.digest is None or decision.digest != entry.digest:
        verb = "removes" if decision.action == DELETE else "keeps"
        return Status.MOVED, (f"the tag points at {decision.digest} now, not at the planned digest; today's plan "
                       f"{verb} it")
    if decision.action != DELETE:
        return KEPT, f"today's plan keeps it: {decision.reason}"
    return None, ""


def counts(resumed: Sequence[Resumed]) -> dict[str, int]:
    """How many resumed removals ended in each outcome."""
    found: dict[str, int] = {}
    for item in resumed:
        found[item.outcome] = found.get(item.outcome, 0) + 1
    return found
