"""What a run forgets once its removals are done: the publication records of the tags removed (or gone), a
purge's every record, and the metadata records the plan prunes (``ci_env.cleanup.metadata``)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from ci_env.cleanup.collect import Inventory
from ci_env.cleanup.metadata import content_signature
from ci_env.cleanup.planning import make_plan
from ci_env.cleanup.policies import DELETE, KIND_TAG, Plan, Policy
from ci_env.cleanup.progress import Update
from ci_env.cleanup.target import Run, Target
from ci_env.errors import CiEnvError
from ci_env.registry.client import ClientPool

if TYPE_CHECKING:
    from ci_env.records import Publication
    from ci_env.registry.reference import RepoAddress


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
        if d.kind == KIND_TAG and d.action == DELETE and outcomes.get(d.key, ("", ""))[0] in ("removed", "absent")
    }
    present = {f"{t.repository}:{t.stored_tag}" for t in inventory.tags}
    listed = {str(address): address for address in (
        *(t.repository for t in inventory.tags), *(target.images_repo.image_repository(i) for i in target.managed))}
    chosen = [
        p for p in inventory.publications
        if p.full_name in gone
        or (p.repository in listed and p.full_name not in present and p.image in target.managed)
    ]
    removed_here = {f"{repo}:{tag}" for (repo, tag), (status, _) in outcomes.items() if status == "removed"}
    unsure = [p for p in chosen if p.full_name not in removed_here]

    def has(p: Publication) -> bool:
        return _registry_has(clients, listed.get(p.repository), p.stored_tag)

    with ThreadPoolExecutor(max(1, parallel)) as pool:
        there = dict(zip((p.full_name for p in unsure), pool.map(has, unsure), strict=True))
    names = [p.full_name for p in chosen if not there.get(p.full_name, False)]
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


def _registry_has(clients: ClientPool | None, repository: RepoAddress | None, tag: str) -> bool:
    """Whether the registry still has ``repository:tag`` (True when it cannot tell, or without ``clients`` or
    ``repository``)."""
    if clients is None or repository is None:
        return True
    try:
        return clients(repository).resolve(repository.path, tag) is not None
    except CiEnvError:
        return True


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
        signature = content_signature(decision)
        if signature is not None:
            status = outcomes.get(decision.key, ("", ""))[0]
            statuses.setdefault(signature, set()).add(status if decision.action == DELETE else "kept")
    gone = {signature for signature, found in statuses.items() if found <= {"removed", "absent"}}
    keys = pruning.keys(gone)
    if not keys:
        return 0
    try:
        return target.store.delete_many(records.METADATA, keys, parallel)
    except CiEnvError:
        return 0


def prune_when_disabled(
    run: Run, policy: Policy, now: datetime, progress: Update | None = None,
) -> tuple[int, str | None]:
    """werf.yaml's ``cleanup.disable: true``: no image is removed, and the metadata records that can keep nothing
    are pruned as a cleanup would prune them (those of kept images by commits that do not keep them, of commits
    no reference reaches, of signatures no managed image carries): the cleanup is planned as usual (without
    Kubernetes: an image only a workload would keep stays with its records, as nothing is removed) and only
    those records go. Returns how many went (would go, in a dry run), and why none was pruned when the plan
    could not be made (a clone cleanup cannot read, say): disabling cleanup never fails a job."""
    from ci_env import records

    try:
        plan, _inventory = make_plan(run, policy, now, progress)
    except CiEnvError as exc:
        return 0, exc.message
    keys = list(plan.metadata.now) if plan.metadata is not None else []
    if run.settings.dry_run or not keys:
        return len(keys), None
    try:
        return run.target.store.delete_many(records.METADATA, keys, run.settings.parallel), None
    except CiEnvError as exc:
        return 0, exc.message
