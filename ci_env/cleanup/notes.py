"""The lines a cleanup run tells the user on the way (stderr): what the keep policies did, the warnings they owe,
what an earlier run's journal left and what became of it, a stop by the time budget. Text only: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ci_env.cleanup.policies import KEEP, RULE_NO_METADATA, Plan
from ci_env.cleanup.time_budget import EXIT_PARTIAL
from ci_env.output import plural

if TYPE_CHECKING:
    from ci_env.cleanup.journal import State
    from ci_env.cleanup.resume import Resumed, Triage
    from ci_env.werf_config.cleanup import CleanupConfig

#: dropped journal entries printed one per line; the report has every one.
DROPPED_LINES = 20


def history_lines(plan: Plan, config: CleanupConfig | None, ignored_limits: Sequence[str]) -> list[str]:
    """What git-history-based cleanup did, and the warnings it owes the user: tags the policies cannot judge,
    and the ``ignored_limits`` options given (``stages_signature_strategy_limit``, ...) that it ignores."""
    lines: list[str] = []
    history = plan.git_history
    if history is None:
        return lines
    source = "werf's default keep policies" if config is None or config.defaults else "werf.yaml's keep policies"
    lines.append(f"keep policies: {source} ({plural(len(config.keep_policies if config else ()), 'policy')}): "
                 f"{plural(history.verdict.references, 'reference')} selected, "
                 f"{plural(history.verdict.commits, 'commit')} read, "
                 f"{plural(len(history.recorded), 'content signature')} with metadata")
    unrecorded = sum(1 for d in plan.decisions if d.basis.rule == RULE_NO_METADATA and d.action == KEEP)
    if unrecorded:
        lines.append(
            f"ci-env: warning: {plural(unrecorded, 'content-signature tag')} "
            f"{'has' if unrecorded == 1 else 'have'} no metadata record of the commit that published "
            f"{'it' if unrecorded == 1 else 'them'} (published before ci-env recorded commits, or by another "
            f"tool), so the keep policies cannot judge {'it' if unrecorded == 1 else 'them'}: kept. Once every "
            "pipeline publishes with this ci-env, remove such tags with --git-history-based-cleanup-strict "
            "(WERF_GIT_HISTORY_BASED_CLEANUP_STRICT=true)")
    if ignored_limits:
        flags = " and ".join("--" + name.replace("_", "-") for name in ignored_limits)
        one = len(ignored_limits) == 1
        lines.append(f"ci-env: warning: {flags} {'is' if one else 'are'} ignored: content-signature "
                     "tags are decided by the keep policies; pass --git-history-based-cleanup=false to use "
                     f"{'it' if one else 'them'} instead")
    return lines


def triage_lines(command: str, state: State, triage: Triage) -> Iterable[str]:
    """What an earlier run's journal (``journal.State``) holds against today's plan (``resume.Triage``): a line
    saying what is done first, and one per dropped entry (at most :data:`DROPPED_LINES`)."""
    when = state.created.isoformat().replace("+00:00", "Z")
    yield (f"{command}: resuming the journal {state.path} of the run of {when}: "
           f"{plural(len({e.key for e in triage.pending}), 'removal')} not done yet, "
           f"{len(triage.first)} of them go first (today's plan removes them too), "
           f"{len(triage.dropped)} dropped")
    for item in triage.dropped[:DROPPED_LINES]:
        yield f"journal: dropped {item.repository}:{item.tag} ({item.outcome}): {item.reason}"
    if len(triage.dropped) > DROPPED_LINES:
        yield f"journal: ... and {len(triage.dropped) - DROPPED_LINES} more dropped (the --report lists them)"


def resumed_line(resumed: Sequence[Resumed]) -> str:
    """What became of the earlier journal's pending removals (``resume.Resumed``) in this run."""
    from ci_env.cleanup import resume

    found = resume.counts([r for r in resumed if r.outcome not in resume.DROPPED])
    return (f"journal: {found.get('removed', 0)} removed, {found.get('absent', 0)} already gone, "
            f"{found.get('failed', 0)} failed" + (f", {found['not-attempted']} not started"
                                                  if found.get("not-attempted") else ""))


def stopped_line(command: str, left: int, journal: str | None) -> str:
    """A run the time budget stopped with ``left`` removals not started: how to continue, and its exit code."""
    where = f" (journal {journal})" if journal else ""
    return (f"{command}: stopped by --time-budget with {plural(left, 'removal')} not started: run {command} again "
            f"to continue from the journal{where}; exit code {EXIT_PARTIAL}")


def disabled_line(pruned: int, why: str | None, dry_run: bool) -> str:
    """werf.yaml's ``cleanup.disable: true``: nothing removed, and the metadata records pruned (or why not)."""
    return ("cleanup: disabled in werf.yaml (cleanup.disable: true): no image is removed; "
            + (f"metadata records not pruned: {why}" if why else
               f"{plural(pruned, 'metadata record')} {'would be ' if dry_run else ''}pruned"))
