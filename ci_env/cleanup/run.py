"""Cleanup and purge, end to end: read records and git history, collect, plan, remove, report.

Removal goes through the registry client's untag dispatcher (``ci_env.registry.untag``): every
repository is preflighted before the first removal; a failed removal does not stop the others;
a tag already gone counts as ``absent``, so a killed run can simply be run again. After the tags,
the publication records of the tags removed (and of tags that no longer exist) are forgotten, then the metadata
records are pruned (``ci_env.cleanup.metadata``); a purge that removed everything forgets every record.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_env.cleanup import local_stages
from ci_env.cleanup.collect import Inventory, PartlyResolved, collect_stages, collect_tags
from ci_env.cleanup.policies import (
    DELETE,
    KIND_STAGE,
    KIND_TAG,
    STAGES_SIGNATURE,
    Decision,
    FoundTag,
    GitHistory,
    Plan,
    Policy,
    StageTag,
    plan_cleanup,
    plan_purge,
)
from ci_env.cleanup.progress import Update
from ci_env.cleanup.report import Refusal, Result
from ci_env.contract import GIT_COMMIT
from ci_env.errors import CiEnvError, ConfigError, UsageError
from ci_env.registry.client import ClientPool

if TYPE_CHECKING:
    from ci_env.cleanup.journal import Journal
    from ci_env.cleanup.journal import Target as JournalTarget
    from ci_env.cleanup.time_budget import TimeBudget
    from ci_env.gitinfo import GitRepository
    from ci_env.options import RepoOptions
    from ci_env.records import CommitMetadata, RecordStore
    from ci_env.registry.graph import RepoGraph
    from ci_env.registry.listing import TagLister
    from ci_env.registry.naming import ImagesRepo
    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.removal import ImageRemoval
    from ci_env.registry.untag import Outcome, TagRemover
    from ci_env.werf_config.cleanup import CleanupConfig


@dataclass(frozen=True)
class Settings:
    """How to run: the git directory, history synchronisation, parallelism, dry run."""

    directory: Path
    synchronize: bool = False
    dry_run: bool = False
    parallel: int = 8
    docker_config: Path | None = None
    insecure_registries: tuple[str, ...] = ()
    git_history_based: bool = True  #: content-signature tags decided by the keep policies (werf's default)
    git_history_strict: bool = False  #: ... and those without a metadata record removed, not kept
    cleanup: CleanupConfig | None = None  #: werf.yaml's cleanup section (None: werf's defaults)
    #: leave the signatures, attestations and other referrers of removed images (``--keep-signatures``)
    keep_signatures: bool = False
    #: also remove the untagged manifests nothing kept reaches (``--delete-untagged``)
    delete_untagged: bool = False


class Clients(ClientPool):
    """The pool of cleanup's registry clients (one per host), made from its Settings: listing, records and
    removal share them, so the removal starts from the tag maps the listing built."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        super().__init__(settings.docker_config, settings.insecure_registries, env)
        self.settings = settings


@dataclass(frozen=True)
class Target:
    """The resolved repositories and the record store."""

    images_repo: ImagesRepo
    stages: RepoAddress | None
    stages_local: bool
    store: RecordStore
    managed: tuple[str | None, ...]
    project: str = ""  #: the werf.yaml project name (read for ``:local`` only)
    #: the metadata records, read before the managed images (see ``ci_env.cleanup.metadata``); None: read them
    #: when needed
    metadata: tuple[CommitMetadata, ...] | None = None

    def metadata_records(self) -> tuple[CommitMetadata, ...]:
        """The metadata records read with the managed images, else read now."""
        from ci_env import records

        return self.metadata if self.metadata is not None else tuple(records.read_metadata(self.store))


def resolve_target(options: RepoOptions, env: Mapping[str, str], clients: Clients, directory: Path) -> Target:
    """Check the repo options and open the record store; UsageError/ConfigError saying what to set."""
    from ci_env import records
    from ci_env.registry.naming import resolve_images_repo

    if options.images_repo is None:
        raise UsageError("no images repo: pass -i/--images-repo ADDRESS or set WERF_IMAGES_REPO")
    if options.stages_storage is None and not options.stages_storage_local:
        raise UsageError(
            "no stages storage: pass -s/--stages-storage ADDRESS (or :local) or set WERF_STAGES_STORAGE; "
            "cleanup reads the publication records and managed images kept there"
        )
    options.check_stages_storage(env)
    project = ""
    if options.stages_storage_local:
        from ci_env.werf_config import load_project

        project = load_project(directory, None, env).project
        store = records.open_store(None, project, env=env)
    else:
        assert options.stages_storage is not None
        store = records.open_store(options.stages_storage, "", client=clients(options.stages_storage), env=env)
    metadata = tuple(records.read_metadata(store))  # first: one listing with the managed images (a registry store)
    managed = tuple(records.list_managed_images(store))
    impl = options.images_repo_implementation
    images_repo = resolve_images_repo(
        options.images_repo, env, requested_mode=options.images_repo_mode,
        implementation=impl.value if impl else None,
        implementation_source=impl.source if impl else "--repo-implementation",
        image_names=managed,
    )
    return Target(images_repo, options.stages_storage, options.stages_storage_local, store, managed, project,
                  metadata)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def images_lister(target: Target, clients: Clients, credentials: Mapping[str, Any] | None) -> TagLister | None:
    """The images repo implementation's own tag listing (``ci_env.registry.listing``), built with the images
    repo credentials (``credentials["images-repo"]``), or None: list through the Registry API."""
    from ci_env.registry.listing import lister_for
    from ci_env.registry.untag import RemoverContext

    context = RemoverContext(
        docker_config=clients.settings.docker_config, insecure_registries=clients.settings.insecure_registries,
        env=clients.env, credentials=(credentials or {}).get("images-repo"), clients=clients,
    )
    try:
        return lister_for(target.images_repo.implementation, context)
    except CiEnvError:  # its SDK is missing: the Registry API still lists
        return None


def collect(
    target: Target, clients: Clients, *, want_created: Callable[[str], bool], progress: Update | None = None,
    lister: TagLister | None = None,
) -> Inventory:
    """The tags of the managed images (through ``lister`` when given, see ``collect_tags``) and the stages,
    with their records."""
    from ci_env import records

    if progress is not None:
        progress(f"reading the publication records in {target.store.description}", 0, 0)
    read = records.read_publication_state(target.store, progress=progress)
    publications = read.publications
    stages = target.stages

    def exclude(repository: RepoAddress, tag: str) -> bool:
        return repository == stages and (records.is_record_tag(tag) or records.is_stage_tag(tag))

    listings: dict[str, Mapping[str, Any]] = {}
    partial: dict[str, PartlyResolved] = {}
    tags, skipped = collect_tags(target.images_repo, target.managed, publications, clients, exclude=exclude,
                                 progress=progress, lister=lister, listings=listings, partial=partial)
    stage_tags: list[StageTag] = []
    if stages is not None:
        stage_tags = collect_stages(clients(stages), stages, with_created=want_created, progress=progress)
    elif target.stages_local:
        local = _local_stages(target, clients.env)
        if local is None:
            skipped.append((local_stages.repository(target.project), NO_DAEMON))
        else:
            stage_tags = local.collect()
    return Inventory(tuple(tags), tuple(stage_tags), tuple(skipped), tuple(publications), listings, read, partial)


NO_DAEMON = (
    "the local Docker daemon cannot be reached (DOCKER_HOST or the default socket), so the :local stages "
    "were not cleaned: run cleanup where the builds ran"
)


def _local_stages(target: Target, env: Mapping[str, str]) -> local_stages.LocalStages | None:
    api = local_stages.connect(env)
    return None if api is None else local_stages.LocalStages(api, target.project)


def make_plan(
    target: Target, clients: Clients, settings: Settings, policy: Policy | None, now: datetime,
    progress: Update | None = None, credentials: Mapping[str, Any] | None = None,
    also: Collection[tuple[str, str]] = (),
) -> tuple[Plan, Inventory]:
    """Purge (``policy`` None) or cleanup plan; cleanup reads git history first (shallow clone refused).

    The images repo is listed through its implementation's own API where it has one (:func:`images_lister`,
    with ``credentials`` as ``execute`` takes them), else through the Registry API."""
    lister = images_lister(target, clients, credentials)
    from ci_env.cleanup.metadata import plan_metadata

    if policy is None:
        inventory = collect(target, clients, want_created=lambda _t: False, progress=progress, lister=lister)
        plan, inventory = verified_plan(inventory, lambda tags: plan_purge(tags, inventory.stages), clients, progress,
                                        also)
        return replace(plan, metadata=plan_metadata(target.metadata_records(), plan.decisions, None, None)), inventory
    from ci_env.gitinfo import open_repository

    repo = open_repository(settings.directory, synchronize=settings.synchronize)
    keep_within = bool(policy.keep_published_within)
    inventory = collect(target, clients, want_created=lambda _t: keep_within, progress=progress, lister=lister)
    commits = [t.git_ref or t.tag for t in inventory.tags if t.strategy == GIT_COMMIT]
    facts = repo.facts(commits)
    if settings.git_history_based:
        from ci_env.werf_config.cleanup import DEFAULT

        if progress is not None:
            progress("reading the git history the keep policies select", 0, 0)
        policy = replace(policy, git_history=git_history(
            repo, target.store, inventory.tags, settings.cleanup or DEFAULT, now, strict=settings.git_history_strict,
            metadata=target.metadata_records()))
    final = policy
    plan, inventory = verified_plan(inventory, lambda tags: plan_cleanup(tags, inventory.stages, facts, final, now),
                                    clients, progress, also)
    verdict = plan.git_history.verdict if plan.git_history is not None else None
    return replace(plan, metadata=plan_metadata(target.metadata_records(), plan.decisions, verdict, repo)), inventory


def verified_plan(
    inventory: Inventory, plan_of: Callable[[Sequence[FoundTag]], Plan], clients: Clients,
    progress: Update | None = None, also: Collection[tuple[str, str]] = (),
) -> tuple[Plan, Inventory]:
    """``plan_of(tags)``, with every tag it removes at the digest it points at now.

    Tags with a publication record took the digest their record says (``Inventory.partial``); the tags the plan
    keeps are never resolved. Those it removes are resolved now (one HEAD each); when one moved since it was
    published (someone retagged it) or is gone, the plan is made again with what the registry says (a protection
    by digest, such as a workload in Kubernetes running it, then sees the right one), until every tag it removes
    was resolved. The removal reads each again right before it goes (``ci_env.registry.untag_engine``). ``also``:
    more (repository, stored tag) to resolve the same way, whatever the plan decides (the pending removals of an
    earlier run's journal, whose verdict compares digests)."""
    from ci_env.cleanup.collect import resolve_some

    tags = list(inventory.tags)
    partial = dict(inventory.partial)
    plan = plan_of(tags)
    extra = list(also)
    while True:  # ends: every round resolves at least one recorded tag, or stops
        unresolved: dict[str, list[str]] = {}
        wanted = [(d.repository, d.stored_tag) for d in plan.deletions if d.kind == KIND_TAG] + extra
        extra = []
        for repository, stored in wanted:
            if repository in partial and stored in partial[repository].recorded:
                unresolved.setdefault(repository, []).append(stored)
        if not unresolved:
            break
        current: dict[tuple[str, str], str | None] = {}
        for repository, doomed in unresolved.items():
            partly = partial[repository]
            digests, partial[repository] = resolve_some(clients(partly.repository), partly, doomed, progress)
            current.update(((repository, tag), digest) for tag, digest in digests.items())
        changed = {(t.repository, t.stored_tag): current[t.repository, t.stored_tag] for t in tags
                   if (t.repository, t.stored_tag) in current and current[t.repository, t.stored_tag] != t.digest}
        if not changed:
            continue
        kept: list[FoundTag] = []
        for tag in tags:
            key = (tag.repository, tag.stored_tag)
            if key in changed:
                digest = changed[key]
                if digest is None:
                    continue  # removed meanwhile
                tag = replace(tag, digest=digest)
            kept.append(tag)
        tags = kept
        plan = plan_of(tags)
    return plan, replace(inventory, tags=tuple(tags), partial=partial)


def cleanup_config(directory: Path, config: str | None, env: Mapping[str, str]) -> CleanupConfig:
    """werf.yaml's ``cleanup`` section: from ``config`` (relative to ``directory``; must exist), else from
    werf.yaml/werf.yml in ``directory`` when there is one; werf's default keep policies when the file or its
    section is absent. ConfigError naming file and line for a malformed one (read before anything is removed)."""
    from ci_env.werf_config import DEFAULT_CONFIG_NAMES, load_project
    from ci_env.werf_config.cleanup import DEFAULT

    if config is None and not any((directory / name).is_file() for name in DEFAULT_CONFIG_NAMES):
        return DEFAULT
    return load_project(directory, config, env).cleanup or DEFAULT


def git_history(
    repo: GitRepository, store: RecordStore, tags: Sequence[FoundTag], config: CleanupConfig, now: datetime,
    *, strict: bool = False, metadata: Sequence[CommitMetadata] | None = None,
) -> GitHistory:
    """The keep policies' verdict on the content-signature ``tags``: the metadata records of their signatures
    (``metadata``, else one listing of the store), the references, then each selected branch's history read only
    as deep as the policies can keep (``ci_env.cleanup.history``)."""
    from ci_env import records
    from ci_env.cleanup.history import Published, list_references, read_history
    from ci_env.werf_config.cleanup import BRANCH

    image_of = {t.signature or t.tag: t.image for t in tags if t.strategy == STAGES_SIGNATURE}
    recorded: dict[str, list[str]] = {}
    published = []
    for record in records.read_metadata(store) if metadata is None else metadata:
        if record.signature in image_of:
            recorded.setdefault(record.signature, []).append(record.commit)
            published.append(Published(image_of[record.signature], record.commit, record.signature))
    refs = list_references(repo)
    if published and not any(ref.kind == BRANCH for ref in refs):
        raise ConfigError(
            f"the clone in {repo.path} has no branches (a detached checkout?), so the keep policies would keep no "
            "image of any branch: fetch the branches (--git-history-synchronization, or clone with them), or pass "
            "--git-history-based-cleanup=false"
        )
    verdict = read_history(config.keep_policies, refs, repo, published, now)
    return GitHistory(verdict, {sig: tuple(commits) for sig, commits in recorded.items()}, strict)


def prune_metadata(
    target: Target, plan: Plan, outcomes: Mapping[tuple[str, str], tuple[str, str]], parallel: int = 8,
    *, dry_run: bool = False,
) -> int:
    """Prune the metadata records the plan names (``ci_env.cleanup.metadata``): those pruned whatever the removals
    do, and those of the content signatures whose every tag the plan removes, once each is removed (or found gone).
    A dry run counts what the real run would prune, its removals succeeding. A batch that fails is left for the
    next run. Returns how many went (or would go)."""
    from ci_env import records

    pruning = plan.metadata
    if pruning is None:
        return 0
    if dry_run:
        return len(pruning.keys())
    statuses: dict[str, set[str]] = {}
    for decision in plan.decisions:
        if decision.kind == KIND_TAG and decision.strategy == STAGES_SIGNATURE:
            status = outcomes.get((decision.repository, decision.stored_tag), ("", ""))[0]
            statuses.setdefault(decision.tag, set()).add(status if decision.action == DELETE else "kept")
    gone = {signature for signature, found in statuses.items() if found <= {"removed", "absent"}}
    keys = pruning.keys(gone)
    if not keys:
        return 0
    try:
        return target.store.delete_many(records.METADATA, keys, parallel)
    except CiEnvError:
        return 0


def prune_when_disabled(
    target: Target, clients: Clients, settings: Settings, policy: Policy, now: datetime,
    progress: Update | None = None, credentials: Mapping[str, Any] | None = None,
) -> tuple[int, str | None]:
    """werf.yaml's ``cleanup.disable: true``: no image is removed, and the metadata records that can keep nothing
    are pruned as a cleanup would prune them (those of kept images by commits that do not keep them, of commits
    no reference reaches, of signatures no managed image carries): the cleanup is planned as usual (without
    Kubernetes: an image only a workload would keep stays with its records, as nothing is removed) and only
    those records go. Returns how many went (would go, in a dry run), and why none was pruned when the plan
    could not be made (a clone cleanup cannot read, say): disabling cleanup never fails a job."""
    from ci_env import records

    try:
        plan, _inventory = make_plan(target, clients, settings, policy, now, progress, credentials)
    except CiEnvError as exc:
        return 0, exc.message
    keys = list(plan.metadata.now) if plan.metadata is not None else []
    if settings.dry_run or not keys:
        return len(keys), None
    try:
        return target.store.delete_many(records.METADATA, keys, settings.parallel), None
    except CiEnvError as exc:
        return 0, exc.message


def execute(
    command: str,
    target: Target,
    plan: Plan,
    inventory: Inventory,
    clients: Clients,
    settings: Settings,
    env: Mapping[str, str],
    credentials: Mapping[str, Any],
    progress: Callable[[int, int, Any], None] | None = None,
    started: str = "",
    phases: Update | None = None,
    *,
    budget: TimeBudget | None = None,
    journal: Path | None = None,
    first: Sequence[tuple[str, str]] = (),
) -> Result:
    """Remove the plan's deletions (unless dry run) and forget their records; the Result with every outcome.

    ``progress(done, total, summary)`` follows the removals (as ``untag_all`` reports them), ``phases``
    the work after them (forgetting records). With a ``journal`` path the planned removals are written there
    before the first one and each outcome as it comes (``ci_env.cleanup.journal``); the file is deleted when
    the run did them all. With a time ``budget`` the removals go in slices, and none is started once the budget
    is reached: the rest are ``not-attempted``, the Result is ``stopped``, no records are forgotten (the next
    run does it) and the journal stays. ``first``: the (repository, stored tag) of deletions to start with, in
    that order (an earlier run's journal, ``ci_env.cleanup.resume``); it only orders the plan's deletions. Every
    tag is removed only while it points at its decision's digest (where the remover can check: the placeholder
    route reads it right before), else it is left alone, ``moved``."""
    from ci_env.registry.reference import parse_address
    from ci_env.registry.removal import UntaggedOutcome, remove_untagged

    local_repository = local_stages.repository(target.project) if target.stages_local else None
    local = [d for d in plan.deletions if d.kind == KIND_STAGE and d.repository == local_repository]
    remote = [d for d in plan.deletions if d.repository != local_repository]
    if first:
        rank = {key: n for n, key in enumerate(first)}
        remote.sort(key=lambda d: rank.get((d.repository, d.stored_tag), len(rank)))
    requests: list[tuple[RepoAddress, str]] = []
    for decision in remote:
        parsed = parse_address(decision.repository)
        assert parsed is not None
        requests.append((parsed, decision.stored_tag))
    remover_of = _removers(target, settings, env, credentials, clients)
    graph_of = graph_source(inventory, clients, settings.parallel, requests, remover_of)
    writer: Journal | None = None
    if journal is not None and not settings.dry_run and remote:
        from ci_env.cleanup import journal as jr

        writer = jr.Journal.create(journal, journal_target(command, target), [
            jr.Entry(d.repository, d.stored_tag, d.digest, d.kind, d.image,
                     d.tag if d.tag != d.stored_tag else None) for d in remote], ref=jr.current_ref(env))
    expected = {(address, d.stored_tag): d.digest for (address, _), d in zip(requests, remote, strict=True)
                if d.digest}

    def running(repo: RepoAddress) -> frozenset[str]:
        return plan.in_use.digests(str(repo)) if plan.in_use is not None else frozenset()

    try:
        removal, stopped = _remove(requests, remover_of, graph_of, settings, progress, budget,
                                   None if writer is None else _journal_outcome(writer), expected, keep=running)
    except BaseException:
        if writer is not None:
            writer.close()
        raise
    summary = removal.summary
    untagged: tuple[UntaggedOutcome, ...] = ()
    warnings = removal.warnings
    if settings.delete_untagged and not stopped:
        repositories = [parse_address(r) for r in dict.fromkeys(
            [t.repository for t in inventory.tags]
            + [str(target.images_repo.image_repository(i)) for i in target.managed])]
        untagged, more = remove_untagged([r for r in repositories if r is not None], remover_of, graph_of, removal,
                                         parallel=settings.parallel, dry_run=settings.dry_run, keep=running)
        warnings += more
    refusals: tuple[Refusal, ...] = ()
    if settings.dry_run:  # what the real run's preflight would refuse (it deletes nothing)
        touched = [repo for repo, _tag in requests]
        for outcome in untagged:
            address = parse_address(outcome.repo) if outcome.status == "would-remove" else None
            if address is not None:
                touched.append(address)
        refusals = preflight_refusals(touched, remover_of)
    outcomes = {(o.repo, o.tag): (o.status, o.reason) for o in summary.outcomes}
    if local and not stopped:
        outcomes.update(remove_local_stages(target, local, settings, env))
    if writer is not None:
        if stopped:
            writer.close()
        else:
            writer.finish()
    forgotten = managed_forgotten = 0
    if not settings.dry_run and not stopped:
        if command == "purge" and all(outcomes.get((d.repository, d.stored_tag), ("", ""))[0] in ("removed", "absent")
                                      for d in plan.deletions):
            forgotten, managed_forgotten = purge_records(target, inventory, settings.parallel)
        else:
            forgotten = forget_records(target, plan, inventory, outcomes, settings.parallel, phases, clients)
    elif command == "purge" and settings.dry_run:
        managed_forgotten = len(target.managed)
    pruned = 0
    if not stopped and (budget is None or settings.dry_run or not budget.reached()):  # last: skipped out of time
        if phases is not None and not settings.dry_run and plan.metadata is not None and plan.metadata.keys():
            phases(f"pruning the metadata records in {target.store.description}", 0, 0)
        pruned = prune_metadata(target, plan, outcomes, settings.parallel, dry_run=settings.dry_run)
    return Result(
        command, settings.dry_run, str(target.images_repo.address),
        ":local" if target.stages_local else (str(target.stages) if target.stages else None),
        plan, outcomes, inventory.skipped, started, _now(), forgotten, metadata_pruned=pruned,
        managed_forgotten=managed_forgotten,
        accessories=removal.by_tag(), untagged=untagged, warnings=warnings, stopped=stopped,
        journal=str(writer.path) if writer is not None and stopped else None, refusals=refusals,
    )


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


def journal_target(command: str, target: Target) -> JournalTarget:
    """What the journal of this run is for (a journal of another images repo or command is never used)."""
    from ci_env.cleanup.journal import Target as JournalTarget

    stages = ":local" if target.stages_local else (str(target.stages) if target.stages else None)
    return JournalTarget(command, str(target.images_repo.address), stages)


def _journal_outcome(writer: Journal) -> Callable[[Outcome], None]:
    def record(outcome: Outcome) -> None:
        if outcome.status in ("removed", "absent", "failed", "moved"):
            writer.record(outcome.repo, outcome.tag, outcome.status)

    return record


def _removers(
    target: Target, settings: Settings, env: Mapping[str, str], credentials: Mapping[str, Any], clients: Clients,
) -> Callable[[RepoAddress], TagRemover]:
    """The remover of each repository: the images repo's implementation, or the stages storage's own."""
    from ci_env.registry.untag import RemoverContext, remover_for

    removers: dict[tuple[str, str], TagRemover] = {}

    def remover_of(repo: RepoAddress) -> TagRemover:
        from ci_env.registry.implementations import detect_implementation

        is_stage = target.stages is not None and repo == target.stages
        scope = "stages-storage" if is_stage else "images-repo"
        impl = (
            detect_implementation(repo, env).implementation if is_stage else target.images_repo.implementation
        )
        key = (scope, impl.delete_route)
        if key not in removers:
            context = RemoverContext(
                docker_config=settings.docker_config, insecure_registries=settings.insecure_registries,
                env=env, credentials=credentials.get(scope), clients=clients,
            )
            removers[key] = remover_for(impl, context)
        return removers[key]

    return remover_of


#: tags per slice of removals under a time budget, per worker: a slice must end well within the margin.
SLICE_PER_WORKER = 8


def _remove(
    requests: Sequence[tuple[RepoAddress, str]], remover_of: Callable[[RepoAddress], TagRemover],
    graph_of: Callable[[RepoAddress], RepoGraph], settings: Settings,
    progress: Callable[[int, int, Any], None] | None, budget: TimeBudget | None,
    on_outcome: Callable[[Outcome], None] | None, expected: Mapping[tuple[RepoAddress, str], str] | None = None,
    keep: Callable[[RepoAddress], Collection[str]] = lambda _repo: (),
) -> tuple[ImageRemoval, bool]:
    """The removals (``remove_images``), in one go, or under a time budget in slices of ``SLICE_PER_WORKER``
    tags per worker, each slice started only while the budget allows it (with room for the longest slice so
    far). Each slice sees the repository graph without the tags removed before it. Returns the removal and
    whether the budget stopped it (the tags not reached are ``not-attempted``)."""
    import dataclasses
    import time

    from ci_env.registry.removal import ImageRemoval, remove_images
    from ci_env.registry.untag import NOT_ATTEMPTED, Outcome, Summary

    def run(chunk: Sequence[tuple[RepoAddress, str]], graphs: Callable[[RepoAddress], RepoGraph],
            report: Callable[[int, int, Any], None] | None) -> ImageRemoval:
        return remove_images(chunk, remover_of, graphs, keep_accessories=settings.keep_signatures,
                             parallel=settings.parallel, dry_run=settings.dry_run, progress=report,
                             on_outcome=on_outcome, expected=expected, keep=keep)

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
    accessories: list[Any] = []
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

        def report(done: int, _total: int, summary: Any, offset: int = offset,
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
    outcomes.extend([Outcome(str(repo), tag, NOT_ATTEMPTED) for repo, tag in unique if (str(repo), tag) not in done])
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
    stages: dict[str, dict[str, Known]] = {}
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
                listed = {**{t: Known(digests.get((key, t))) for t in partly.recorded}, **partly.resolved}
            return removal_graph(clients(repo), repo.path, doomed.get(key, ()), names=list(listed), known=listed,
                                 complete=True, parallel=parallel)
        if light:  # the stages storage: its stages were resolved, its other tags were not
            return removal_graph(clients(repo), repo.path, doomed.get(key, ()), known=stages.get(key),
                                 parallel=parallel)
        if listed is None and partly is not None and partly.whole:  # resolve what the records stood in for
            listed = resolve_some(clients(repo), partly, partly.recorded)[1].resolved
        if listed is not None:
            return build_graph(repo.path, listed, RegistrySource(clients(repo), repo.path), parallel=parallel)
        return registry_graph(clients(repo), repo.path, parallel=parallel)

    return graph_of


def remove_local_stages(
    target: Target, decisions: Sequence[Decision], settings: Settings, env: Mapping[str, str],
) -> dict[tuple[str, str], tuple[str, str]]:
    """Remove the ``:local`` stages of ``decisions`` (with their images' local tags in the managed images'
    repositories); (repository, signature) -> (status, reason)."""
    repository = local_stages.repository(target.project)
    if settings.dry_run:
        return {(repository, d.stored_tag): ("would-remove", "") for d in decisions}
    local = _local_stages(target, env)
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


def forget_records(
    target: Target, plan: Plan, inventory: Inventory, outcomes: Mapping[tuple[str, str], tuple[str, str]],
    parallel: int = 8, progress: Update | None = None, clients: ClientPool | None = None,
) -> int:
    """Forget the publication records of tags removed (or already gone), and of tags no longer in the registry;
    a registry stages storage is compacted at the same time: one new snapshot holds the other records, and the
    record tags and snapshots it accounts for are retired (``ci_env.records.snapshots``). A record of a tag this run did
    not remove itself is forgotten only when the registry (asked through ``clients``' Registry API, never a
    vendor listing) no longer has the tag. A record that cannot be removed is left for the next run. Returns
    how many were forgotten."""
    from concurrent.futures import ThreadPoolExecutor

    from ci_env import records

    gone = {
        f"{d.repository}:{d.stored_tag}" for d in plan.decisions
        if d.kind == KIND_TAG and d.action == DELETE
        and outcomes.get((d.repository, d.stored_tag), ("", ""))[0] in ("removed", "absent")
    }
    present = {f"{t.repository}:{t.stored_tag}" for t in inventory.tags}
    listed = {t.repository for t in inventory.tags} | {
        str(target.images_repo.image_repository(i)) for i in target.managed
    }
    names = [
        p.full_name for p in inventory.publications
        if p.full_name in gone
        or (p.repository in listed and p.full_name not in present and p.image in target.managed)
    ]
    removed_here = {f"{repo}:{tag}" for (repo, tag), (status, _) in outcomes.items() if status == "removed"}
    unsure = [name for name in names if name not in removed_here]
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        there = dict(zip(unsure, pool.map(lambda n: _registry_has(clients, n), unsure), strict=True))
    names = [name for name in names if not there.get(name, False)]
    read = inventory.records
    if read is None:  # an inventory made without reading the store (tests): read it now
        read = records.read_publication_state(target.store, parallel=parallel)
    return records.forget_publications(target.store, read, names, parallel=parallel, progress=progress)


def purge_records(target: Target, inventory: Inventory, parallel: int = 8) -> tuple[int, int]:
    """What ``ci-env purge`` leaves once every tag and stage it planned is gone: nothing. Every publication record
    read (a registry store's record tags and snapshots, none written) and the managed images read are forgotten
    (the metadata records go through ``prune_metadata``). Records written after they were read stay. Returns
    (publication records, managed images) forgotten; a removal that fails is left for the next run."""
    from ci_env import records

    read = inventory.records
    if read is None:
        read = records.read_publication_state(target.store, parallel=parallel)
    forgotten = 0
    with contextlib.suppress(CiEnvError):
        if isinstance(target.store, records.RegistryStore) and read.state is not None:
            from ci_env.records.snapshots import clear

            forgotten = clear(target.store, read.state, parallel=parallel).forgotten
        else:
            forgotten = records.remove_publications(target.store, [p.full_name for p in read.publications], parallel)
    managed = 0
    with contextlib.suppress(CiEnvError):
        managed = target.store.delete_many(records.MANAGED, [records.managed_key(n) for n in target.managed],
                                           parallel)
    return forgotten, managed


def _registry_has(clients: ClientPool | None, full_name: str) -> bool:
    """Whether the registry still has ``repository:tag`` (True when it cannot tell, or without ``clients``)."""
    from ci_env.registry.reference import parse_address

    repository, _, tag = full_name.rpartition(":")
    try:
        address = parse_address(repository)
        return clients is None or address is None or clients(address).resolve(address.path, tag) is not None
    except CiEnvError:
        return True


def stage_count(plan: Plan) -> int:
    """How many stage deletions the plan holds."""
    return sum(1 for d in plan.deletions if d.kind == KIND_STAGE)


def started_now() -> str:
    """The current time for the report's ``started``."""
    return _now()
