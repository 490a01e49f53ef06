"""Finishing the journal of an earlier run (killed, or stopped by its time budget) before planning anew.

Only the journal's planned removals that are not done yet are considered, and of those only the ones whose
tag still points at the digest the plan saw: each repository is listed once (every tag resolved, through the
implementation's own listing where it has one), which re-checks each tag's digest and gives the graph the
removal needs. A tag that points elsewhere now is ``moved`` and stays; a tag that is gone is ``absent``; a tag
a protection keeps now (a workload in Kubernetes uses it, ``--keep-tag``, ``--keep-list``) is ``protected``
and stays. Nothing the journal did not plan is ever removed here, and no publication record is touched (the
run's own plan, afterwards or next time, forgets the records of tags that are gone).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ci_env.cleanup.journal import MOVED, PROTECTED, Entry, Journal, State
from ci_env.cleanup.policies import DELETE, Basis, Decision, Plan, Policy
from ci_env.errors import CiEnvError

if TYPE_CHECKING:
    from ci_env.cleanup.run import Clients, Settings, Target
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.registry.listing import TagLister
    from ci_env.registry.reference import RepoAddress

RULE_JOURNAL = "journal"


@dataclass(frozen=True)
class Resumed:
    """What became of one planned removal of the journal."""

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
class Resumption:
    """The outcome of finishing a journal: each pending entry's outcome, and whether the budget stopped it."""

    resumed: tuple[Resumed, ...]
    stopped: bool
    warnings: tuple[str, ...] = ()


def protection(entry: Entry, policy: Policy | None) -> str | None:
    """Why a protection keeps ``entry`` now (a workload uses it, ``--keep-tag``, ``--keep-list``), or None."""
    if policy is None:
        return None
    published = entry.published or entry.tag
    if policy.in_use is not None and policy.in_use.users(entry.repository, entry.tag, entry.digest):
        return "a Kubernetes workload uses it now"
    for pattern in policy.keep_tags:
        if pattern.fullmatch(published) or pattern.fullmatch(entry.tag):
            return f"matches --keep-tag {pattern.pattern!r}"
    line = policy.keep_list.match(entry.image, entry.repository, published, entry.tag)
    if line is not None:
        return f"keep-list entry {line!r}"
    return None


def current_tags(
    repo: RepoAddress, clients: Clients, lister: TagLister | None, parallel: int,
) -> Mapping[str, Any]:
    """Every tag of ``repo`` with what it resolves to now (None: it vanished while listed): the vendor's own
    listing when there is one and it answers, else the Registry API (its map then stays with the client)."""
    from ci_env.registry.graph import list_repository

    if lister is not None:
        try:
            return {info.tag: info for info in lister.list_tags(repo)}
        except CiEnvError:
            pass
    return list_repository(clients(repo), repo.path, parallel=parallel)


def resume(
    state: State, command: str, target: Target, clients: Clients, settings: Settings, env: Mapping[str, str],
    credentials: Mapping[str, Any], policy: Policy | None, *, budget: TimeBudget | None = None,
    progress: Callable[[int, int, Any], None] | None = None, lister: TagLister | None = None,
) -> Resumption:
    """Finish the pending removals of ``state`` (see the module docstring), appending each outcome to the
    journal, which is deleted once every planned removal is done."""
    from ci_env.cleanup.collect import Inventory
    from ci_env.cleanup.run import execute
    from ci_env.registry.reference import parse_address

    writer = Journal.reopen(state)
    settled: list[Resumed] = []
    try:
        pending = state.pending
        by_repo: dict[str, list[Entry]] = {}
        for entry in pending:
            reason = protection(entry, policy)
            if reason is not None:
                writer.record(entry.repository, entry.tag, PROTECTED)
                settled.append(Resumed(entry.repository, entry.tag, entry.digest, PROTECTED, reason))
            else:
                by_repo.setdefault(entry.repository, []).append(entry)
        listings: dict[str, Mapping[str, Any]] = {}
        decisions: list[Decision] = []
        warnings: list[str] = []
        images_repos = {str(target.images_repo.image_repository(i)) for i in target.managed}
        for repository, entries in by_repo.items():
            repo = parse_address(repository)
            if repo is None:
                continue
            try:
                listed = current_tags(repo, clients, lister if repository in images_repos else None,
                                      settings.parallel)
            except CiEnvError as exc:
                warnings.append(f"{repository}: the journal's removals were not resumed: {exc.message}")
                for entry in entries:
                    settled.append(Resumed(entry.repository, entry.tag, entry.digest, "failed", exc.message))
                continue
            listings[repository] = listed
            for entry in entries:
                info = listed.get(entry.tag)
                digest = getattr(info, "digest", None)
                if digest is None:
                    writer.record(entry.repository, entry.tag, "absent")
                    settled.append(Resumed(entry.repository, entry.tag, entry.digest, "absent"))
                elif entry.digest is None or digest != entry.digest:
                    writer.record(entry.repository, entry.tag, MOVED)
                    settled.append(Resumed(entry.repository, entry.tag, entry.digest, MOVED,
                                           f"the tag points at {digest} now, not at the planned digest: kept"))
                else:
                    decisions.append(Decision(entry.kind, entry.image, entry.repository, entry.published or entry.tag,
                                              entry.tag, entry.digest, DELETE, _reason(state),
                                              basis=Basis(RULE_JOURNAL)))
        inventory = Inventory((), (), listings=listings)
        result = execute(command, target, Plan(tuple(decisions)), inventory, clients, settings, env, credentials,
                         progress=progress, budget=budget, forget=False, writer=writer, guarded=True)
    except BaseException:
        writer.close()
        raise
    for decision in decisions:
        status, reason = result.outcomes.get((decision.repository, decision.stored_tag), ("not-attempted", ""))
        settled.append(Resumed(decision.repository, decision.stored_tag, decision.digest, status, reason))
    order = {entry.key: n for n, entry in enumerate(pending)}
    settled.sort(key=lambda r: order.get((r.repository, r.tag), len(order)))
    return Resumption(tuple(settled), result.stopped, (*warnings, *result.warnings))


def _reason(state: State) -> str:
    when = state.created.isoformat().replace("+00:00", "Z")
    return f"planned by the run of {when} (journal {state.path})"


def counts(resumed: Sequence[Resumed]) -> dict[str, int]:
    """How many resumed removals ended in each outcome."""
    found: dict[str, int] = {}
    for item in resumed:
        found[item.outcome] = found.get(item.outcome, 0) + 1
    return found
