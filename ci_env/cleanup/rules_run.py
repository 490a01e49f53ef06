"""A cleanup by retention rules from start to end: in use -> select (and shard) -> list and decide -> journal ->
remove (the shared removal tail of ``ci_env.cleanup.removing``: the same removers, graphs, time budget, dry run
and preflight as managed-image cleanup) -> Result.

No images repo, stages storage, publication record or werf.yaml takes part: the rules name the repositories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ci_env.cleanup.report import Refusal, Result
from ci_env.cleanup.target import Clients, Settings, now_text

if TYPE_CHECKING:
    from ci_env.cleanup.in_use import ImagesInUse, KubeSettings
    from ci_env.cleanup.journal import State
    from ci_env.cleanup.journal import Target as JournalTarget
    from ci_env.cleanup.policies import Decision
    from ci_env.cleanup.progress import Update
    from ci_env.cleanup.protections import KeepList
    from ci_env.cleanup.resume import Triage
    from ci_env.cleanup.rules_planning import RulesPlan
    from ci_env.cleanup.shards import Shard, ShardRun
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.options import Credentials
    from ci_env.registry.client import TagInfo
    from ci_env.registry.graph import RepoGraph
    from ci_env.registry.implementations import Implementation
    from ci_env.registry.listing import TagLister
    from ci_env.registry.namespaces import Namespaces
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.removal import ImageRemoval, UntaggedOutcome, UntaggedRemoval
    from ci_env.registry.untag import Outcome, Progress, TagRemover
    from ci_env.retention.rules import RulesFile


@dataclass(frozen=True)
class RulesRequest:
    """What the command parsed for a cleanup by rules: the rules, the registry host selectors without one use
    (``--registry``), the shard, the protections (``--keep-tag`` patterns, the keep-list, Kubernetes' settings:
    None, not read), the credentials of the repositories' removers, the journal and the time budget."""

    rules: RulesFile
    settings: Settings
    env: Mapping[str, str]
    registry: str | None = None
    shard: Shard | None = None
    keep_tags: tuple[str, ...] = ()
    keep_list: KeepList | None = None
    kube: KubeSettings | None = None
    credentials: Credentials | None = None
    #: the registry implementation given (``--images-repo-implementation``), else detected from each host
    implementation: str | None = None
    journal: Path | None = None
    budget: TimeBudget | None = None


def label(request: RulesRequest) -> str:
    """What the report's ``images_repo`` and the journal name: ``rules FILE on HOST`` (shards of one run agree)."""
    return f"rules {request.rules.source}" + (f" on {request.registry}" if request.registry else "")


@dataclass(frozen=True)
class Display:
    """How the run tells the user how it goes (as ``pipeline.Display``): ``status`` lines, ``phases`` and the
    ``removing`` progress."""

    status: Callable[[str], None]
    phases: Update | None = None
    removing: Progress | None = None


def run(request: RulesRequest, display: Display) -> Result:
    """The whole run (see the module docstring)."""
    from ci_env.cleanup.rules_planning import Guards, plan_rules, select
    from ci_env.output import plural

    settings, status = request.settings, display.status
    clients = Clients(settings, request.env)
    started = now_text()
    in_use = _in_use(request, status)
    selection = select(request.rules, request.registry, clients, request.shard, namespace_listers(request, clients))
    shard = f" (shard {request.shard}: {selection.other_shards} more for the other shards)" if request.shard else ""
    via = f" (listed through the registry's API: {', '.join(selection.namespaces)})" if selection.namespaces else ""
    status(f"cleanup by {label(request)}: {plural(len(selection.repositories), 'repository')}{via}{shard}")
    if not selection.repositories:
        status("nothing to do: the rules select no repository" + (
            " for this shard" if selection.other_shards else
            ": check the name:, glob: and namespace: of the rules (or --repository) against the registry's "
            "repositories"))
    guards = Guards(request.keep_tags, request.keep_list, in_use)
    planned = plan_rules(request.rules, selection, clients, guards, datetime.now(timezone.utc),
                         parallel=settings.parallel, progress=display.phases, lister_of=listers(request, clients))
    plan = replace(planned.plan, in_use=in_use)
    planned = replace(planned, plan=plan)
    if request.keep_tags:
        from ci_env.cleanup.protections import keep_tag_warnings

        for warning in keep_tag_warnings(request.keep_tags, [d.tag for d in plan.decisions]):
            status(f"ci-env: warning: {warning}")
    for reference, why in planned.skipped:  # the run goes on with the others; the command exits 1 at its end
        status(f"ci-env: warning: {reference}: {why}")
    for reference in _named_without_tags(request, planned):
        status(f"ci-env: note: {reference} has no tag (nor has a repository that does not exist): check its name "
               "in the rules if you expected tags there")
    loose = sum(len(digests) for digests in planned.untagged.values())
    status(f"plan: {len(plan.kept)} kept, {len(plan.deletions)} to remove"
           + (f", {plural(loose, 'untagged manifest')} to remove" if loose else "")
           + (" -- dry run, nothing is removed" if settings.dry_run else ""))
    from ci_env.cleanup import sizes_read

    manifests = sizes_read.read_plan(plan, clients, settings.parallel, display.phases, kept=settings.measure_kept)
    result = execute(request, planned, clients, started, display)
    from ci_env.registry.budget import shared

    result = replace(result, bytes=sizes_read.figures(result, manifests), waits=tuple(shared().stats()))
    close = getattr(display.phases, "close", None)
    if close is not None:
        close()
    return result


def _named_without_tags(request: RulesRequest, planned: RulesPlan) -> list[str]:
    """The repositories an exact ``name:`` (or ``--repository``) selector chose that hold no tag and were not
    skipped: most often a misspelt name, since the Registry API answers a missing repository as an empty one."""
    from ci_env.retention.rules import SELECT_NAME

    skipped = {reference for reference, _why in planned.skipped}
    tagged = {str(d.repository) for d in planned.plan.decisions}
    found = []
    for address in planned.selection.repositories:
        entry = request.rules.for_repository(str(address))
        if (entry is not None and entry.selector.kind == SELECT_NAME and str(address) not in tagged
                and str(address) not in skipped and str(address) not in planned.untagged):
            found.append(str(address))
    return found


def _in_use(request: RulesRequest, status: Callable[[str], None]) -> ImagesInUse | None:
    """What Kubernetes runs (read before planning; a cluster that cannot be read removes nothing), or None."""
    if request.kube is None:
        return None
    from ci_env.cleanup.in_use import scan

    in_use = scan(request.kube, request.env)
    if in_use.summary() is not None:
        status(f"ci-env: {in_use.summary()}")
    return in_use


def journal_target(request: RulesRequest) -> JournalTarget:
    """What the journal of this run is for (a shard's is its own)."""
    from ci_env.cleanup.journal import Target as JournalTarget

    return JournalTarget("cleanup", label(request) + (f" shard {request.shard}" if request.shard else ""), None)


def execute(request: RulesRequest, planned: RulesPlan, clients: Clients, started: str, display: Display) -> Result:
    """Remove the plan's deletions (unless dry run) through each repository's remover, from the graphs the plan
    built; with the journal, the time budget and (dry run) the preflight, as managed-image cleanup removes."""
    from ci_env.cascade import IMAGES_REPO
    from ci_env.cleanup import journal as jr
    from ci_env.cleanup.removing import remove, removers

    settings, plan = request.settings, planned.plan
    path = None if settings.dry_run else request.journal or jr.default_path(request.env, journal_target(request))
    earlier = _earlier_journal(request, path, display.status)
    triage, remote = _resume_first(planned, earlier, display.status)
    requests = [(d.repository, d.stored_tag) for d in remote]
    remover_of = removers({IMAGES_REPO: clients.context(request.credentials)},
                          lambda repo: (IMAGES_REPO, _implementation(request, repo)))
    writer = None
    if path is not None and remote:
        writer = jr.Journal.create(path, journal_target(request),
                                   [jr.Entry(str(d.repository), d.stored_tag, d.digest) for d in remote],
                                   ref=jr.current_ref(request.env))
    expected = {(d.repository, d.stored_tag): d.digest for d in remote if d.digest}

    def graph_of(repo: RepoAddress) -> RepoGraph:
        return planned.graphs[str(repo)]

    def running(repo: RepoAddress) -> frozenset[str]:
        return plan.in_use.digests(repo) if plan.in_use is not None else frozenset()

    def record(outcome: Outcome) -> None:
        if writer is not None and outcome.status in ("removed", "absent", "failed", "moved"):
            writer.record(outcome.repo, outcome.tag, outcome.status)

    try:
        removal, stopped = remove(requests, remover_of, graph_of, settings, display.removing, request.budget,
                                  record, expected, keep=running)
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    if writer is not None:
        writer.close() if stopped else writer.finish()
    deleted = _remove_untagged(request, planned, clients, remover_of, graph_of, removal, running, stopped)
    refusals = _dry_run_refusals(request, planned, [repo for repo, _tag in requests], deleted.outcomes, remover_of)
    outcomes = {(o.repo, o.tag): (o.status, o.reason) for o in removal.summary.outcomes}
    resumed = triage.resumed(outcomes) if triage is not None else ()
    if earlier is not None:
        from ci_env.cleanup import notes

        display.status(notes.resumed_line(resumed))
        if not stopped:  # finished (or nothing to remove): the earlier journal is done with
            earlier.path.unlink(missing_ok=True)
    return Result(
        "cleanup", settings.dry_run, label(request), None, plan, outcomes, planned.skipped, started, now_text(),
        accessories=removal.by_tag(), untagged=deleted.outcomes, warnings=removal.warnings + deleted.warnings,
        stopped=stopped, untagged_stopped=deleted.stopped,
        journal=str(writer.path) if writer is not None and stopped else None, refusals=refusals, resumed=resumed,
        published={key: when for key, (when, _source) in planned.ages.items()},
        age_sources={key: source for key, (_when, source) in planned.ages.items()},
        shard=shard_run(request, planned), skipped_fail=bool(planned.skipped),
    )


def _dry_run_refusals(request: RulesRequest, planned: RulesPlan, touched: list[RepoAddress],
                      untagged: tuple[UntaggedOutcome, ...],
                      remover_of: Callable[[RepoAddress], TagRemover]) -> tuple[Refusal, ...]:
    """A dry run: the preflight refusals of the repositories the real run would touch (those with tags to remove,
    and those with untagged manifests it would remove); none for a real run (its removals ran the preflight)."""
    if not request.settings.dry_run:
        return ()
    from ci_env.cleanup.removing import preflight_refusals

    touched = touched + [repo for repo in planned.selection.repositories
                         if any(o.repo == str(repo) and o.status == "would-remove" for o in untagged)]
    return preflight_refusals(touched, remover_of)


def _resume_first(planned: RulesPlan, earlier: State | None,
                  status: Callable[[str], None]) -> tuple[Triage | None, list[Decision]]:
    """The plan's deletions in the order to remove them: with an ``earlier`` journal (a stopped or killed run),
    what today's plan removes too goes first (its triage told with ``status``); (triage or None, deletions)."""
    remote = list(planned.plan.deletions)
    if earlier is None:
        return None, remote
    from ci_env.cleanup import notes, resume

    triage = resume.triage(earlier, planned.plan, {str(repo) for repo in planned.selection.repositories})
    for line in notes.triage_lines("cleanup", earlier, triage):
        status(line)
    rank = {key: n for n, key in enumerate(triage.first)}
    remote.sort(key=lambda d: rank.get(d.key, len(rank)))
    return triage, remote


def _remove_untagged(request: RulesRequest, planned: RulesPlan, clients: Clients,
                     remover_of: Callable[[RepoAddress], TagRemover], graph_of: Callable[[RepoAddress], RepoGraph],
                     removal: ImageRemoval, running: Callable[[RepoAddress], frozenset[str]],
                     stopped: bool) -> UntaggedRemoval:
    """The untagged manifests the rules remove that no removed tag's graph took (``planned.untagged``), deleted
    by digest (dry run: listed) where the registry lists them again as untagged now and nothing kept reaches
    them, nor a tag pushed or moved since the plan (``untagged_recheck``: the tags are read again first, the
    vendor's listing and the Registry API's); none when the time budget stopped the run."""
    from ci_env.registry.removal import UntaggedRemoval, remove_untagged

    if stopped or not planned.untagged:
        return UntaggedRemoval()
    from ci_env.cleanup.untagged_recheck import recheck
    from ci_env.registry.outcomes import GONE

    gone = {(o.repo, o.tag) for o in removal.summary.outcomes if o.status in GONE}

    def tags_moved(repo: RepoAddress, vendor: Sequence[TagInfo]) -> Mapping[str, str]:
        reach = planned.reach[str(repo)]
        remaining = {tag: digest for tag, digest in reach.tags.items() if (str(repo), tag) not in gone}
        return recheck(clients(repo), repo.path, reach, remaining, vendor, request.settings.parallel)

    repos = [repo for repo in planned.selection.repositories if str(repo) in planned.untagged]
    return remove_untagged(
        repos, remover_of, graph_of, removal, parallel=request.settings.parallel, dry_run=request.settings.dry_run,
        keep=running, only=lambda repo: planned.untagged.get(str(repo), {}), recheck=tags_moved)


def shard_run(request: RulesRequest, planned: RulesPlan) -> ShardRun | None:
    """What the report records of a shard's run (None without ``--shard``/``CI_NODE_INDEX``)."""
    from ci_env.cleanup.shards import ShardRun, fingerprint

    if request.shard is None:
        return None
    taken = len(planned.selection.repositories)
    return ShardRun(request.shard, taken, taken + planned.selection.other_shards,
                    fingerprint(request.rules, request.registry))


def _earlier_journal(request: RulesRequest, path: Path | None, status: Callable[[str], None]) -> State | None:
    """The journal an earlier run left at ``path`` with removals pending (``journal.State``), or None: none there,
    a dry run (``path`` None), nothing pending (deleted), or written for another CI ref (ignored, and replaced by
    this run's). UsageError (exit 2) for a file that fails ``journal.load``'s checks or is another run's."""
    from ci_env.cleanup import journal as jr

    if path is None:
        return None
    state = jr.load(path, journal_target(request))
    if state is None:
        return None
    ref = jr.current_ref(request.env)
    if state.ref != ref:
        status(f"cleanup: the journal {path} was written for ref {state.ref or '(none)'}, not for {ref or '(none)'} "
               "(another branch's cache?): ignored, and replaced by this run's")
        return None
    if not state.pending:
        path.unlink(missing_ok=True)
        return None
    return state


def _implementation(request: RulesRequest, repo: RepoAddress) -> Implementation:
    """The repository's registry implementation: the one given, else detected from its host."""
    from ci_env.registry.implementations import detect_implementation

    return detect_implementation(repo, request.env, request.implementation,
                                 explicit_source="--images-repo-implementation").implementation


def listers(request: RulesRequest, clients: Clients) -> Callable[[RepoAddress], TagLister | None]:
    """Each repository's listing with the registry's push times (``registry.listing.PUSH_TIME_LISTERS``), one per
    delete route; None where the implementation has none (its SDK missing too): the image configs age the tags."""
    from ci_env.errors import CiEnvError
    from ci_env.registry.listing import PUSH_TIME_LISTERS, lister_for

    made: dict[str, TagLister | None] = {}
    context = clients.context(request.credentials)

    def lister_of(repo: RepoAddress) -> TagLister | None:
        impl = _implementation(request, repo)
        if impl.delete_route not in made:
            try:
                made[impl.delete_route] = lister_for(impl, context, table=PUSH_TIME_LISTERS)
            except CiEnvError:
                made[impl.delete_route] = None
        return made[impl.delete_route]

    return lister_of



def namespace_listers(request: RulesRequest, clients: Clients) -> Callable[[str], Namespaces | None]:
    """Each registry host's namespace listing through its implementation's API (``registry.namespaces``), one per
    delete route; None where the implementation has none: the Registry API's catalog lists the registry."""
    from ci_env.registry.namespaces import namespace_lister_for
    from ci_env.registry.reference import parse_address

    made: dict[str, Namespaces | None] = {}

    def namespaces_of(host: str) -> Namespaces | None:
        address = parse_address(host)
        assert address is not None  # a registry host, never ':local'
        impl = _implementation(request, address)
        if impl.delete_route not in made:
            made[impl.delete_route] = namespace_lister_for(impl, clients.context(request.credentials))
        return made[impl.delete_route]

    return namespaces_of
