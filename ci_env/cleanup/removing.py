"""The removals of a run: each repository's remover (the one place removers are made and asked what they can
do), its graph, the removals in one go or in slices under a time budget, the dry run's preflight, and the
``:local`` stages through the Docker daemon."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from ci_env.cleanup import local_stages
from ci_env.cleanup.collect import Inventory
from ci_env.cleanup.policies import Decision
from ci_env.cleanup.report import Refusal
from ci_env.cleanup.target import NO_DAEMON, Clients, Settings, Target, local_stages_of
from ci_env.errors import CiEnvError

if TYPE_CHECKING:
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.options import Credentials
    from ci_env.registry.graph import RepoGraph
    from ci_env.registry.implementations import Implementation
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.removal import AccessoryOutcome, ImageRemoval
    from ci_env.registry.untag import Outcome, Progress, RemoverContext, Summary, TagRemover


def removers(
    contexts: Mapping[str, RemoverContext], route_of: Callable[[RepoAddress], tuple[str, Implementation]],
) -> Callable[[RepoAddress], TagRemover]:
    """The remover of each repository: ``route_of(repo)`` names its credentials' scope (a key of ``contexts``) and
    its registry implementation; one remover per scope and delete route, made on first use and kept."""
    from ci_env.registry.untag import remover_for

    made: dict[tuple[str, str], TagRemover] = {}

    def remover_of(repo: RepoAddress) -> TagRemover:
        scope, impl = route_of(repo)
        key = (scope, impl.delete_route)
        if key not in made:
            made[key] = remover_for(impl, contexts[scope])
        return made[key]

    return remover_of


def target_removers(
    target: Target, clients: Clients, credentials: Mapping[str, Credentials],
) -> Callable[[RepoAddress], TagRemover]:
    """The removers of a managed-image cleanup: the stages storage's by its own implementation (detected from its
    host) and credentials, every other repository's by the images repo's."""
    from ci_env.cascade import IMAGES_REPO, STAGES_STORAGE
    from ci_env.registry.implementations import detect_implementation

    contexts = {scope: clients.context(credentials.get(scope)) for scope in (IMAGES_REPO, STAGES_STORAGE)}
    routes = {} if target.stages is None else {
        target.stages: (STAGES_STORAGE, detect_implementation(target.stages, clients.env).implementation)}
    images = (IMAGES_REPO, target.images_repo.implementation)
    return removers(contexts, lambda repo: routes.get(repo, images))


#: the removal requests published again since the plan, with why (see :func:`remove`)
Changed = Callable[[Sequence[tuple["RepoAddress", str]]], Mapping[tuple["RepoAddress", str], str]]

#: tags per slice of removals under a time budget, per worker: a slice must end well within the margin.
SLICE_PER_WORKER = 8


def remove(
    requests: Sequence[tuple[RepoAddress, str]], remover_of: Callable[[RepoAddress], TagRemover],
    graph_of: Callable[[RepoAddress], RepoGraph], settings: Settings,
    progress: Progress | None, budget: TimeBudget | None,
    on_outcome: Callable[[Outcome], None] | None, expected: Mapping[tuple[RepoAddress, str], str] | None = None,
    keep: Callable[[RepoAddress], Collection[str]] = lambda _repo: (),
    changed: Changed | None = None,
) -> tuple[ImageRemoval, bool]:
    """The removals (``remove_images``), in one go, or under a time budget in slices of ``SLICE_PER_WORKER``
    tags per worker, each slice started only while the budget allows it (with room for the longest slice so
    far). Each slice sees the repository graph without the tags removed before it. Returns the removal and
    whether the budget stopped it (the tags not reached are ``not-attempted``).

    ``changed(requests)``, asked right before the removals start (and before each slice): the requests
    published again since the plan, with why; those are left alone with their accessories, ``moved``.

    Size: longer than most, with 10 parameters: the slicing loop shares its state (graphs, tags gone, the longest slice)
    with the graph each slice sees, and the parameters are exactly ``remove_images``' own."""
    import dataclasses
    import time

    from ci_env.registry.outcomes import Status
    from ci_env.registry.removal import ImageRemoval, remove_images
    from ci_env.registry.untag import Outcome, Summary

    def run(chunk: Sequence[tuple[RepoAddress, str]], graphs: Callable[[RepoAddress], RepoGraph],
            report: Progress | None) -> ImageRemoval:
        left = changed(chunk) if changed is not None and not settings.dry_run else {}
        if not left:
            return remove_images(chunk, remover_of, graphs, keep_accessories=settings.keep_signatures,
                                 parallel=settings.parallel, dry_run=settings.dry_run, progress=report,
                                 on_outcome=on_outcome, expected=expected, keep=keep)
        moved = tuple(Outcome(str(repo), tag, Status.MOVED, why) for (repo, tag), why in left.items())
        for outcome in moved:
            if on_outcome is not None:
                on_outcome(outcome)
        rest = [request for request in chunk if request not in left]

        def told(done: int, total: int, summary: Summary) -> None:
            if report is not None:
                report(len(moved) + done, len(moved) + total, Summary((*moved, *summary.outcomes)))

        if not rest:
            told(0, 0, Summary(()))
        removal = ImageRemoval(Summary(())) if not rest else remove_images(
            rest, remover_of, graphs, keep_accessories=settings.keep_signatures, parallel=settings.parallel,
            dry_run=settings.dry_run, progress=told, on_outcome=on_outcome, expected=expected, keep=keep)
        return dataclasses.replace(removal, summary=Summary((*moved, *removal.summary.outcomes)))

    if budget is None or settings.dry_run:
        return run(requests, graph_of, progress), False
    unique = list(dict.fromkeys(requests))
    graphs: dict[str, RepoGraph | CiEnvError] = {}
    gone: dict[str, set[str]] = {}

    def current_graph(repo: RepoAddress) -> RepoGraph:
        key = str(repo)
        if key not in graphs:
            try:
                graphs[key] = graph_of(repo)
            except CiEnvError as exc:
                graphs[key] = exc
        graph = graphs[key]
        if isinstance(graph, CiEnvError):
            raise graph
        removed = gone.get(key)
        if not removed:
            return graph
        return dataclasses.replace(graph, tags={t: d for t, d in graph.tags.items() if t not in removed})

    size = max(1, settings.parallel) * SLICE_PER_WORKER
    outcomes: list[Outcome] = []
    accessories: list[AccessoryOutcome] = []
    warnings: list[str] = []
    last: ImageRemoval | None = None
    longest = 0.0
    stopped = False
    for start in range(0, len(unique), size):
        if budget.reached(longest):
            stopped = True
            break
        chunk = unique[start:start + size]
        began = time.monotonic()
        offset = start

        def report(done: int, _total: int, summary: Summary, offset: int = offset,
                   earlier: Sequence[Outcome] = tuple(outcomes)) -> None:
            if progress is not None:
                progress(offset + done, len(unique), Summary((*earlier, *summary.outcomes)))

        last = run(chunk, current_graph, report)
        longest = max(longest, time.monotonic() - began)
        outcomes.extend(last.summary.outcomes)
        accessories.extend(last.accessories)
        warnings += [w for w in last.warnings if w not in warnings]
        for outcome in last.summary.outcomes:
            if outcome.status in ("removed", "absent"):
                gone.setdefault(outcome.repo, set()).add(outcome.tag)
    done = {(o.repo, o.tag) for o in outcomes}
    outcomes.extend([Outcome(str(repo), tag, Status.NOT_ATTEMPTED)
                     for repo, tag in unique if (str(repo), tag) not in done])
    graph_map = {k: g for k, g in graphs.items() if not isinstance(g, CiEnvError)}
    return ImageRemoval(Summary(tuple(outcomes)), tuple(accessories), tuple(warnings), graph_map,
                        last.protected if last is not None else {}), stopped


def graph_source(
    inventory: Inventory, clients: Clients, parallel: int,
    requests: Sequence[tuple[RepoAddress, str]] = (),
    remover_of: Callable[[RepoAddress], TagRemover] | None = None,
) -> Callable[[RepoAddress], RepoGraph]:
    """The graph of a repository (``ci_env.registry.graph``) from what cleanup already read.

    Where the repository's remover moves tags only (the placeholder route: it deletes nothing by digest), the
    graph holds what removing this run's ``requests`` needs (``removal_graph``): the doomed manifests are read,
    the kept tags count with the digests their records or the listing gave, nothing is listed or resolved again.
    Where a remover deletes manifests (a vendor deleting package versions), the whole repository's graph: from
    cleanup's own listing when it listed the whole repository, else listed through the Registry API now."""
    from ci_env.cleanup.collect import resolve_some
    from ci_env.registry.graph import Known, RegistrySource, build_graph, registry_graph, removal_graph
    from ci_env.registry.removal import deletes_manifests

    doomed: dict[str, list[str]] = {}
    for repo, tag in requests:
        doomed.setdefault(str(repo), []).append(tag)
    digests = {(t.repository, t.stored_tag): t.digest for t in inventory.tags}
    stages: dict[RepoAddress, dict[str, Known]] = {}
    for stage in inventory.stages:
        stages.setdefault(stage.repository, {})[stage.tag] = Known(stage.digest)

    def graph_of(repo: RepoAddress) -> RepoGraph:
        key = str(repo)
        listed = inventory.listings.get(key)
        partly = inventory.partial.get(key)
        light = remover_of is not None and not deletes_manifests(remover_of(repo))
        if light and (listed is not None or partly is not None):
            if listed is None:
                assert partly is not None
                listed = {**{t: Known(digests.get((repo, t))) for t in partly.recorded}, **partly.resolved}
            return removal_graph(clients(repo), repo.path, doomed.get(key, ()), names=list(listed), known=listed,
                                 complete=True, parallel=parallel)
        if light:  # the stages storage: its stages were resolved, its other tags were not
            return removal_graph(clients(repo), repo.path, doomed.get(key, ()), known=stages.get(repo),
                                 parallel=parallel)
        if listed is None and partly is not None and partly.whole:  # resolve what the records stood in for
            listed = resolve_some(clients(repo), partly, partly.recorded)[1].resolved
        if listed is not None:
            return build_graph(repo.path, listed, RegistrySource(clients(repo), repo.path), parallel=parallel)
        return registry_graph(clients(repo), repo.path, parallel=parallel)

    return graph_of


def preflight_refusals(
    repos: Sequence[RepoAddress], remover_of: Callable[[RepoAddress], TagRemover],
) -> tuple[Refusal, ...]:
    """The preflight the real run does before its first removal, for each of ``repos`` (each once, in order):
    one Refusal per repository whose remover refuses (credentials missing or lacking delete, deletion
    disabled, ...). Deletes nothing; used by a dry run to tell whether the real run would stop."""
    refusals: list[Refusal] = []
    for repo in dict.fromkeys(repos):
        try:
            remover_of(repo).preflight(repo)
        except CiEnvError as exc:
            refusals.append(Refusal(str(repo), exc.message, exc.exit_code))
    return tuple(refusals)


def remove_local_stages(
    target: Target, decisions: Sequence[Decision], settings: Settings, env: Mapping[str, str],
) -> dict[tuple[str, str], tuple[str, str]]:
    """Remove the ``:local`` stages of ``decisions`` (with their images' local tags in the managed images'
    repositories); (repository, signature) -> (status, reason)."""
    repository = str(local_stages.repository(target.project))
    if settings.dry_run:
        return {(repository, d.stored_tag): ("would-remove", "") for d in decisions}
    local = local_stages_of(target, env)
    if local is None:
        return {(repository, d.stored_tag): ("failed", NO_DAEMON) for d in decisions}
    from ci_env.registry.reference import parse_address

    managed = {target.images_repo.image_repository(i) for i in target.managed}

    def ours(name: str) -> bool:
        try:
            parsed = parse_address(name.rsplit(":", 1)[0])
        except CiEnvError:
            return False
        return parsed in managed

    outcomes = local.remove([d.stored_tag for d in decisions], ours)
    return {(repository, signature): outcome for signature, outcome in outcomes.items()}
