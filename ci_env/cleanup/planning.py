"""The plan of a run: list the managed images' tags and the stages with their records, read git history for the
keep policies, decide every tag (``ci_env.cleanup.policies``), resolve what the plan removes (re-planning when a
tag moved), and plan the metadata records' pruning (``ci_env.cleanup.metadata``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_env.cleanup import local_stages
from ci_env.cleanup.collect import Inventory, PartlyResolved, collect_stages, collect_tags
from ci_env.cleanup.policies import (
    KIND_TAG,
    FoundTag,
    GitHistory,
    Plan,
    Policy,
    StageTag,
    plan_cleanup,
    plan_purge,
)
from ci_env.cleanup.progress import Update
from ci_env.cleanup.target import NO_DAEMON, Clients, Run, Target, local_stages_of
from ci_env.contract import GIT_COMMIT, STAGES_SIGNATURE
from ci_env.errors import CiEnvError, ConfigError

if TYPE_CHECKING:
    from ci_env.gitinfo import GitFacts, GitRepository
    from ci_env.options import Credentials
    from ci_env.records import CommitMetadata, RecordStore
    from ci_env.registry.listing import TagLister
    from ci_env.registry.reference import RepoAddress
    from ci_env.werf_config.cleanup import CleanupConfig


def images_lister(
    target: Target, clients: Clients, credentials: Mapping[str, Credentials] | None,
) -> TagLister | None:
    """The images repo implementation's own tag listing (``ci_env.registry.listing``), built with the images
    repo credentials (``credentials["images-repo"]``), or None: list through the Registry API."""
    from ci_env.cascade import IMAGES_REPO
    from ci_env.registry.listing import lister_for

    context = clients.context((credentials or {}).get(IMAGES_REPO))
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
    naming = target.images_repo.naming(target.managed)
    tags, skipped = collect_tags(naming, publications, clients, exclude=exclude, progress=progress, lister=lister,
                                 listings=listings, partial=partial)
    stage_tags: list[StageTag] = []
    if stages is not None:
        stage_tags = collect_stages(clients(stages), stages, with_created=want_created, progress=progress)
    elif target.stages_local:
        local = local_stages_of(target, clients.env)
        if local is None:
            skipped.append((str(local_stages.repository(target.project)), NO_DAEMON))
        else:
            stage_tags = local.collect()
    return Inventory(tuple(tags), tuple(stage_tags), tuple(skipped), tuple(publications), listings, read, partial)


def make_plan(
    run: Run, policy: Policy | None, now: datetime, progress: Update | None = None,
    also: Collection[tuple[str, str]] = (),
) -> tuple[Plan, Inventory]:
    """Purge (``policy`` None) or cleanup plan; cleanup reads git history first (shallow clone refused).

    The images repo is listed through its implementation's own API where it has one (:func:`images_lister`,
    with the run's credentials), else through the Registry API. ``also``: see :func:`verified_plan`."""
    target, clients, settings = run.target, run.clients, run.settings
    lister = images_lister(target, clients, run.credentials)
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
    narrowing = RemovedBranch.of(policy, inventory, target.metadata_records())
    if narrowing is not None:
        commits += narrowing.commits
        policy = narrowing.policy
    facts = repo.facts(commits)
    if settings.git_history_based:
        from ci_env.werf_config.cleanup import DEFAULT

        if progress is not None:
            progress("reading the git history the keep policies select", 0, 0)
        policy = replace(policy, git_history=git_history(
            repo, target.store, inventory.tags, settings.cleanup or DEFAULT, now, strict=settings.git_history_strict,
            metadata=target.metadata_records()))
    final = policy

    def plan_of(tags: Sequence[FoundTag]) -> Plan:
        plan = plan_cleanup(tags, inventory.stages, facts, final, now)
        return plan if narrowing is None else narrowing.narrow(plan, tags, facts)

    plan, inventory = verified_plan(inventory, plan_of, clients, progress, also)
    verdict = plan.git_history.verdict if plan.git_history is not None else None
    return replace(plan, metadata=plan_metadata(target.metadata_records(), plan.decisions, verdict, repo)), inventory


@dataclass(frozen=True)
class RemovedBranch:
    """A ``--removed-branch`` run's planning input (``ci_env.cleanup.removed_reference``): the policy it plans by
    (no age protection: the branch is checked gone), the branch's own tags and the commits that decide them."""

    branch: str
    policy: Policy
    own: tuple[FoundTag, ...]
    commits: tuple[str, ...]
    metadata: tuple[CommitMetadata, ...]

    @classmethod
    def of(cls, policy: Policy, inventory: Inventory, metadata: Sequence[CommitMetadata]) -> RemovedBranch | None:
        """The input of ``policy.removed_branch``, None when the run has none."""
        if policy.removed_branch is None:
            return None
        from ci_env.cleanup import removed_reference as rr

        own = rr.published_from(inventory.tags, inventory.publications, policy.removed_branch)
        return cls(policy.removed_branch, replace(policy, keep_published_within=timedelta(0)), tuple(own),
                   tuple(rr.commits_to_check(own, metadata)), tuple(metadata))

    def narrow(self, plan: Plan, tags: Sequence[FoundTag], facts: GitFacts) -> Plan:
        from ci_env.cleanup.removed_reference import narrow

        return narrow(plan, tags, self.branch, facts, self.own, self.metadata)


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
        wanted = [d.key for d in plan.deletions if d.kind == KIND_TAG] + extra
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
        changed = {t.key: current[t.key] for t in tags if t.key in current and current[t.key] != t.digest}
        if not changed:
            continue
        kept: list[FoundTag] = []
        for tag in tags:
            key = tag.key
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
