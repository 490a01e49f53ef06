"""Cleanup and purge as one pipeline, in the order werf's cleanup manager runs:

    werf.yaml -> target -> in use -> resume -> list and plan -> preflight -> remove -> forget -> result

:func:`run` takes what the command parsed (:class:`Request`) and a :class:`Display` to tell the user how it
goes, and returns the :class:`~ci_env.cleanup.report.Result` (None when werf.yaml disables cleanup); the
command prints the result and maps it to an exit code. Each step is a method of :class:`Pipeline`, or a
module it calls: ``target`` (what the run works on), ``planning``, ``removing``, ``forget``, ``journal`` and
``resume`` (an earlier run's work left), ``sizes_read`` (bytes freed), ``notes`` (the lines told on the way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ci_env.cleanup import local_stages, notes
from ci_env.cleanup.collect import Inventory
from ci_env.cleanup.forget import forget_records, prune_metadata, prune_when_disabled, purge_records
from ci_env.cleanup.planning import cleanup_config, make_plan
from ci_env.cleanup.policies import KIND_STAGE, KIND_TAG, Decision, Plan, Policy
from ci_env.cleanup.progress import Update
from ci_env.cleanup.removing import graph_source, preflight_refusals, remove, remove_local_stages, target_removers
from ci_env.cleanup.report import Refusal, Result
from ci_env.cleanup.target import NO_DAEMON, Clients, Run, Settings, journal_target, now_text, resolve_target
from ci_env.errors import CiEnvError

if TYPE_CHECKING:
    from ci_env.cleanup.in_use import KubeSettings
    from ci_env.cleanup.journal import Journal, State
    from ci_env.cleanup.resume import Triage
    from ci_env.cleanup.rules_run import RulesRequest
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.options import RepoOptions
    from ci_env.registry.graph import RepoGraph
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.removal import ImageRemoval, UntaggedOutcome, UntaggedRemoval
    from ci_env.registry.untag import Outcome, Progress, TagRemover
    from ci_env.werf_config.cleanup import CleanupConfig


@dataclass(frozen=True)
class Request:
    """What the command parsed: the ``command`` (``cleanup`` or ``purge``), the repo options, the settings, the
    policy (None: purge), Kubernetes' settings (None: not read), werf.yaml's path (``--config``), whether
    ``--keep-published-within`` was given (it wins over werf.yaml's hours), the ``--keep-tag`` patterns, the
    stages-signature limit options given (ignored under the keep policies), the journal (None: the default
    path), the time budget, and the JSON report to write with the plan when removal fails."""

    command: str
    repo: RepoOptions
    settings: Settings
    env: Mapping[str, str]
    policy: Policy | None = None
    kube: KubeSettings | None = None
    config_path: str | None = None
    keep_within_given: bool = False
    keep_tags: tuple[str, ...] = ()
    ignored_limits: tuple[str, ...] = ()
    journal: Path | None = None
    budget: TimeBudget | None = None
    report: Path | None = None


@dataclass(frozen=True)
class Display:
    """How the run tells the user how it goes: ``status`` lines, ``phases`` (what is being read or written,
    ``(what, done, total)``) and ``removing`` (``(done, total, summary)`` of the removals)."""

    status: Callable[[str], None]
    phases: Update | None = None
    removing: Progress | None = None


def run(request: Request, display: Display) -> Result | None:
    """The whole run (see the module docstring); None when werf.yaml disables cleanup (its line told)."""
    return Pipeline(request, display).run()


def run_rules(request: RulesRequest, display: Display) -> Result:
    """A cleanup by retention rules (``ci_env.cleanup.rules_run``): its own selection and planning, the same
    in-use scan, journal, removal, time budget and report as :func:`run`."""
    from ci_env.cleanup import rules_run

    return rules_run.run(request, rules_run.Display(display.status, display.phases, display.removing))


class Pipeline:
    """One run's steps, in order (:meth:`run`); what werf.yaml changes is kept on the instance."""

    def __init__(self, request: Request, display: Display) -> None:
        self.request = request
        self.display = display
        self.settings = request.settings
        self.policy = request.policy
        self.kube = request.kube
        self.config: CleanupConfig | None = None

    def run(self) -> Result | None:
        """werf.yaml -> target -> in use -> resume -> list and plan -> remove -> forget -> result."""
        self.read_werf_yaml()
        work = self.open_target()
        if self.config is not None and self.config.disable:
            assert self.policy is not None
            pruned, why = prune_when_disabled(work, self.policy, datetime.now(timezone.utc))
            told = notes.disabled_line(pruned, why, self.settings.dry_run)
            self.display.status(told)
            return None
        self.scan_in_use()
        journal, earlier = self.earlier_journal(work)
        also = [e.key for e in earlier.pending] if earlier is not None else ()
        plan, inventory = make_plan(work, self.policy, datetime.now(timezone.utc), self.display.phases, also)
        triage = None if earlier is None else self.triage(earlier, plan, work, inventory)
        self.tell_plan(plan, inventory)
        from ci_env.cleanup import sizes_read

        skip = sizes_read.local_skip(work.target)
        manifests = sizes_read.read_plan(plan, work.clients, self.settings.parallel, self.display.phases, skip,
                                         kept=self.settings.measure_kept, skipped=inventory.skipped)
        result = self.remove(work, plan, inventory, journal, triage)
        result = replace(result, bytes=sizes_read.figures(result, manifests, skip))
        return self.finish(result, inventory, triage, earlier)

    def read_werf_yaml(self) -> None:
        """werf.yaml's cleanup section (cleanup only), read and checked before anything else, applied to the
        policy and settings; its warning told."""
        if self.policy is None:
            return
        request = self.request
        config = cleanup_config(self.settings.directory, request.config_path, request.env)
        self.config = config
        self.policy, warning = with_werf_yaml(self.policy, config, request.keep_within_given)
        self.settings = replace(self.settings, cleanup=config, git_history_based=self.settings.git_history_based
                                and not config.disable_git_history_based_policy)
        if warning is not None:
            self.display.status(f"ci-env: warning: {warning}")

    def open_target(self) -> Run:
        """The run: its clients, its target resolved (the records read), the first status line."""
        from ci_env.cascade import IMAGES_REPO, STAGES_STORAGE
        from ci_env.output import plural

        request = self.request
        clients = Clients(self.settings, request.env)
        started = now_text()
        target = resolve_target(request.repo, request.env, clients, self.settings.directory)
        self.display.status(f"{request.command}: {target.images_repo.address} ({target.images_repo.mode}), "
                            f"{plural(len(target.managed), 'managed image')}")
        credentials = {IMAGES_REPO: request.repo.credentials(IMAGES_REPO),
                       STAGES_STORAGE: request.repo.credentials(STAGES_STORAGE)}
        return Run(request.command, target, clients, self.settings, request.env, credentials, started,
                   request.budget)

    def scan_in_use(self) -> None:
        """What Kubernetes runs, read before planning (a cluster that cannot be read removes nothing)."""
        kube = self.kube
        if self.config is not None and self.config.disable_kubernetes_based_policy and kube is not None:
            kube = replace(kube, without_kube=True)  # werf.yaml: cleanup.disableKubernetesBasedPolicy
        if self.policy is None or kube is None:
            return
        from ci_env.cleanup.in_use import scan

        in_use = scan(kube, self.request.env)
        if in_use.summary() is not None:
            self.display.status(f"ci-env: {in_use.summary()}")
        self.policy = replace(self.policy, in_use=in_use)

    def earlier_journal(self, work: Run) -> tuple[Path | None, State | None]:
        """Where this run keeps its journal (None: nowhere, a dry run keeps none), and the journal an earlier
        run left there with work left (``journal.State``, or None). A file git tracks in the clone is not a
        journal (ignored: this run keeps none); one of another CI ref is ignored and replaced. UsageError
        (exit 2) for a file that fails ``journal.load``'s checks."""
        from ci_env.cleanup import journal

        if self.settings.dry_run:
            return None, None
        request, status = self.request, self.display.status
        jt = journal_target(request.command, work.target)
        path = request.journal or journal.default_path(request.env, jt)
        if path.exists() and journal.tracked_by_git(path, self.settings.directory):
            status(f"ci-env: warning: the cleanup journal {path} is a file git tracks in {self.settings.directory}: "
                   "ignored, and this run keeps no journal; pass --journal PATH outside the checkout's tracked files")
            return None, None
        state = journal.load(path, jt)
        if state is None:
            return path, None
        ref = journal.current_ref(request.env)
        if state.ref != ref:
            status(f"{request.command}: the journal {path} was written for ref {state.ref or '(none)'}, not for "
                   f"{ref or '(none)'} (another branch's cache?): ignored, and replaced by this run's")
            return path, None
        if not state.pending:
            path.unlink(missing_ok=True)
            return path, None
        return path, state

    def triage(self, state: State, plan: Plan, work: Run, inventory: Inventory) -> Triage:
        """The earlier journal against today's plan (``resume.triage``), told."""
        from ci_env.cleanup import resume

        found = resume.triage(state, plan, resume.target_repositories(work.target), inventory.skipped)
        for line in notes.triage_lines(self.request.command, state, found):
            self.display.status(line)
        return found

    def tell_plan(self, plan: Plan, inventory: Inventory) -> None:
        """The warnings the plan owes the user, and the plan's line."""
        from ci_env.output import plural

        status = self.display.status
        if self.request.keep_tags:
            from ci_env.cleanup.protections import keep_tag_warnings

            found = [name for d in plan.decisions if d.kind == KIND_TAG for name in (d.tag, d.stored_tag)]
            for warning in keep_tag_warnings(self.request.keep_tags, found):
                status(f"ci-env: warning: {warning}")
        if any(why == NO_DAEMON for _ref, why in inventory.skipped):
            status(f"ci-env: warning: {NO_DAEMON}")
        for line in notes.history_lines(plan, self.config, self.request.ignored_limits):
            status(line)
        for line in plan.notes:
            status(line)
        stages = sum(1 for d in plan.deletions if d.kind == KIND_STAGE)
        status(f"plan: {len(plan.kept)} kept, {len(plan.deletions)} to remove ({plural(stages, 'stage')})"
               + (" -- dry run, nothing is removed" if self.settings.dry_run else ""))

    def remove(self, work: Run, plan: Plan, inventory: Inventory, journal: Path | None,
               triage: Triage | None) -> Result:
        """:func:`execute`; when it fails, the JSON report (if asked) holds the plan without outcomes."""
        try:
            return execute(work, plan, inventory, progress=self.display.removing, phases=self.display.phases,
                           journal=journal, first=triage.first if triage is not None else ())
        except CiEnvError:
            if self.request.report is not None:
                from ci_env.cleanup.report import write_json

                empty = Result(work.command, self.settings.dry_run, str(work.target.images_repo.address), None,
                               plan, {}, inventory.skipped, work.started, now_text())
                write_json(self.request.report, empty.as_json())
            raise

    def finish(self, result: Result, inventory: Inventory, triage: Triage | None, earlier: State | None) -> Result:
        """The result with the waits, the earlier journal's removals and the publication times; the phases' display
        closed; what became of the earlier journal told (a journal this run finished is deleted)."""
        from ci_env.cleanup import html_report
        from ci_env.registry.budget import shared

        resumed = () if triage is None else triage.resumed(result.outcomes)
        result = replace(result, waits=tuple(shared().stats()), resumed=resumed,
                         published=html_report.published_times(inventory.tags, inventory.stages))
        close = getattr(self.display.phases, "close", None)
        if close is not None:
            close()
        if earlier is not None:
            self.display.status(notes.resumed_line(resumed))
            if result.journal is None:  # this run wrote no journal, or finished it: the earlier one is done with
                earlier.path.unlink(missing_ok=True)
        return result


def with_werf_yaml(policy: Policy, config: CleanupConfig, keep_within_given: bool) -> tuple[Policy, str | None]:
    """The policy with werf.yaml's ``keepImagesBuiltWithinLastNHours`` / ``disableBuiltWithinLastNHoursPolicy``
    applied, and a warning for the user, if any.

    As in werf, ``disableBuiltWithinLastNHoursPolicy: true`` wins: no tag or stage is protected by its age, also
    when --keep-published-within (or WERF_KEEP_PUBLISHED_WITHIN) is given, which is then ignored with a warning.
    Otherwise --keep-published-within, when given, wins over ``keepImagesBuiltWithinLastNHours`` (as werf's
    --keep-stages-built-within-last-n-hours does)."""
    if config.disable_built_within_last_n_hours_policy:
        warning = None
        if keep_within_given and policy.keep_published_within:
            warning = ("--keep-published-within (WERF_KEEP_PUBLISHED_WITHIN) is ignored: werf.yaml's "
                       "cleanup.disableBuiltWithinLastNHoursPolicy is true, so no tag or stage is protected by its "
                       "age; remove that line from werf.yaml to protect recent ones")
        return replace(policy, keep_published_within=timedelta(0)), warning
    if keep_within_given or config.keep_images_built_within_last_n_hours is None:
        return policy, None
    from ci_env.durations import bounded_duration

    hours = config.keep_images_built_within_last_n_hours
    return replace(policy, keep_published_within=bounded_duration(hours=hours)), None


# ------------------------------------------------------------------------------------------------ remove, forget


def execute(
    work: Run, plan: Plan, inventory: Inventory, *, progress: Progress | None = None,
    phases: Update | None = None, journal: Path | None = None, first: Sequence[tuple[str, str]] = (),
) -> Result:
    """Remove the plan's deletions (unless dry run) and forget their records; the Result with every outcome.

    ``progress(done, total, summary)`` follows the removals (as ``untag_all`` reports them), ``phases``
    the work after them (forgetting records). With a ``journal`` path the planned removals are written there
    before the first one and each outcome as it comes (``ci_env.cleanup.journal``); the file is deleted when
    the run did them all. With a time budget (``work.budget``) the removals go in slices, and none is started
    once the budget is reached: the rest are ``not-attempted``, the Result is ``stopped``, no records are
    forgotten (the next run does it) and the journal stays. ``first``: the (repository, stored tag) of deletions
    to start with, in that order (an earlier run's journal, ``ci_env.cleanup.resume``); it only orders the plan's
    deletions. Every tag is removed only while it points at its decision's digest (where the remover can check:
    the placeholder route reads it right before), else it is left alone, ``moved``.

    Size: the journal must open before the first removal and close after the last outcome, so the removal and the
    forgetting of records stay in one function.
    """
    target, settings = work.target, work.settings
    local, remote, requests = _requests(work, plan, first)
    remover_of = target_removers(target, work.clients, work.credentials)
    graph_of = graph_source(inventory, work.clients, settings.parallel, requests, remover_of)
    writer = _open_journal(work, journal, remote)
    expected = {(address, d.stored_tag): d.digest for (address, _), d in zip(requests, remote, strict=True)
                if d.digest}

    def running(repo: RepoAddress) -> frozenset[str]:
        return plan.in_use.digests(repo) if plan.in_use is not None else frozenset()

    journaled = None if writer is None else _journal_outcome(writer)
    changed = _published_again(work, inventory, requests, remote)
    try:
        removal, stopped = remove(requests, remover_of, graph_of, settings, progress, work.budget, journaled, expected,
                                  keep=running, changed=changed)
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    untagged: tuple[UntaggedOutcome, ...] = ()
    untagged_stopped: Mapping[str, str] = {}
    warnings = removal.warnings
    if settings.delete_untagged and not stopped:
        deleted = _delete_untagged(work, inventory, (remover_of, graph_of), removal, running)
        untagged, untagged_stopped = deleted.outcomes, deleted.stopped
        warnings += deleted.warnings
    refusals: tuple[Refusal, ...] = ()
    if settings.dry_run:  # what the real run's preflight would refuse (it deletes nothing)
        touched = [repo for repo, _tag in requests]
        listed = {str(repo): repo for repo in _listed_repositories(work, inventory)}
        touched += [listed[o.repo] for o in untagged if o.status == "would-remove" and o.repo in listed]
        refusals = preflight_refusals(touched, remover_of)
    outcomes: dict[tuple[str, str], tuple[str, str]] = {
        (o.repo, o.tag): (o.status, o.reason) for o in removal.summary.outcomes}
    if local and not stopped:
        outcomes.update(remove_local_stages(target, local, settings, work.env))
    if writer is not None and stopped:
        writer.close()
    elif writer is not None:
        writer.finish()
    forgotten, managed_forgotten = _forget(work, plan, inventory, outcomes, phases) if not stopped else (0, 0)
    pruned = 0 if stopped else _prune(work, plan, outcomes, phases)
    return Result(
        work.command, settings.dry_run, str(target.images_repo.address),
        ":local" if target.stages_local else (str(target.stages) if target.stages else None),
        plan, outcomes, inventory.skipped, work.started, now_text(), forgotten, metadata_pruned=pruned,
        managed_forgotten=managed_forgotten,
        accessories=removal.by_tag(), untagged=untagged, warnings=warnings, stopped=stopped,
        journal=str(writer.path) if writer is not None and stopped else None, refusals=refusals,
        untagged_stopped=untagged_stopped,
    )


def _published_again(
    work: Run, inventory: Inventory, requests: Sequence[tuple[RepoAddress, str]], remote: Sequence[Decision],
) -> Callable[[Sequence[tuple[RepoAddress, str]]], dict[tuple[RepoAddress, str], str]]:
    """The removal requests among those asked whose publication record was written again since the plan read the
    records (a branch pushed again, a content-addressed tag built again: often the same image, so the digest the
    removal checks has not changed), with why. One listing of the stages storage per call (``:local``: the
    records' files), none when no tag asked has a record key; no tag is read."""
    from ci_env import records

    keys = {request: records.publication_key(f"{d.repository}:{d.stored_tag}")
            for request, d in zip(requests, remote, strict=True) if d.kind == KIND_TAG}
    read = inventory.records

    def changed(asked: Sequence[tuple[RepoAddress, str]]) -> dict[tuple[RepoAddress, str], str]:
        wanted = {request: keys[request] for request in asked if request in keys}
        if read is None or not wanted:
            return {}
        found = records.written_since(work.target.store, read, set(wanted.values()))
        return {request: "published again" + (f" at {found[key]}" if found[key] else "") + " since the plan "
                "(a new publication record): left alone, the next run decides"
                for request, key in wanted.items() if key in found}

    return changed


def _delete_untagged(
    work: Run, inventory: Inventory,
    route: tuple[Callable[[RepoAddress], TagRemover], Callable[[RepoAddress], RepoGraph]], removal: ImageRemoval,
    running: Callable[[RepoAddress], frozenset[str]],
) -> UntaggedRemoval:
    """``--delete-untagged``: the untagged manifests nothing kept reaches, in every repository the run listed
    (``route``: each repository's remover and graph), except what a tag pushed or moved since the listing reaches
    now (``untagged_recheck.graph_recheck``: a build during the run)."""
    from ci_env.cleanup.untagged_recheck import graph_recheck
    from ci_env.registry.removal import remove_untagged

    settings = work.settings
    listed = _listed_repositories(work, inventory)
    recheck = graph_recheck(work.clients, route[1], removal, settings.parallel)
    return remove_untagged(listed, route[0], route[1], removal, parallel=settings.parallel,
                           dry_run=settings.dry_run, keep=running, recheck=recheck)


def _listed_repositories(work: Run, inventory: Inventory) -> list[RepoAddress]:
    """Every repository the run listed: those of the tags found and the managed images', each once."""
    target = work.target
    return list(dict.fromkeys([*(t.repository for t in inventory.tags),
                               *(target.images_repo.image_repository(i) for i in target.managed)]))


def _requests(
    work: Run, plan: Plan, first: Sequence[tuple[str, str]],
) -> tuple[list[Decision], list[Decision], list[tuple[RepoAddress, str]]]:
    """The plan's deletions: the ``:local`` stages, the others (``first`` first, as ``Decision.key``), and the
    others as removal requests (repository address, stored tag)."""
    target = work.target
    local_repository = local_stages.repository(target.project) if target.stages_local else None
    local = [d for d in plan.deletions if d.kind == KIND_STAGE and d.repository == local_repository]
    remote = [d for d in plan.deletions if d.repository != local_repository]
    if first:
        rank = {key: n for n, key in enumerate(first)}
        remote.sort(key=lambda d: rank.get(d.key, len(rank)))
    return local, remote, [(d.repository, d.stored_tag) for d in remote]


def _open_journal(work: Run, journal: Path | None, remote: Sequence[Decision]) -> Journal | None:
    """The journal of the planned removals, written before the first one (a real run with removals only)."""
    if journal is None or work.settings.dry_run or not remote:
        return None
    from ci_env.cleanup import journal as jr

    entries = [jr.Entry(str(d.repository), d.stored_tag, d.digest, d.kind, d.image,
                        d.tag if d.tag != d.stored_tag else None) for d in remote]
    return jr.Journal.create(journal, journal_target(work.command, work.target), entries,
                             ref=jr.current_ref(work.env))


def _journal_outcome(writer: Journal) -> Callable[[Outcome], None]:
    def record(outcome: Outcome) -> None:
        if outcome.status in ("removed", "absent", "failed", "moved"):
            writer.record(outcome.repo, outcome.tag, outcome.status)

    return record


def _forget(
    work: Run, plan: Plan, inventory: Inventory, outcomes: Mapping[tuple[str, str], tuple[str, str]],
    phases: Update | None,
) -> tuple[int, int]:
    """(publication records, managed images) forgotten: a purge that removed everything forgets every record,
    a cleanup those of the tags removed; a dry purge counts the managed images it would forget."""
    settings, target = work.settings, work.target
    if settings.dry_run:
        return 0, len(target.managed) if work.command == "purge" else 0
    if work.command == "purge" and all(outcomes.get(d.key, ("", ""))[0] in ("removed", "absent")
                                       for d in plan.deletions):
        return purge_records(target, inventory, settings.parallel)
    return forget_records(target, plan, inventory, outcomes, settings.parallel, phases, work.clients), 0


def _prune(work: Run, plan: Plan, outcomes: Mapping[tuple[str, str], tuple[str, str]], phases: Update | None) -> int:
    """The metadata records pruned, last: skipped when the time budget ran out."""
    settings, budget = work.settings, work.budget
    if budget is not None and not settings.dry_run and budget.reached():
        return 0
    if phases is not None and not settings.dry_run and plan.metadata is not None and plan.metadata.keys():
        phases(f"pruning the metadata records in {work.target.store.description}", 0, 0)
    return prune_metadata(work.target, plan, outcomes, settings.parallel, dry_run=settings.dry_run)
