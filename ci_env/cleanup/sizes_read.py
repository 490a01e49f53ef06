"""Read what :func:`ci_env.cleanup.sizes.measure` needs, before anything is removed.

By default: one manifest GET per digest the plan removes (and per child manifest of a removed index); kept
manifests are not read, so the figure is an upper bound whenever something is kept (``Bytes.at_most``).
With ``kept`` (``--measure-kept``): also one GET per distinct digest the plan keeps (and per child of a kept
index), and one per tag of the managed repositories that cleanup leaves alone (read by tag), so the figure is
exact for the repositories the run manages: O(kept) requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ci_env.cleanup.policies import DELETE, KIND_STAGE, Decision, Plan
from ci_env.cleanup.progress import Update
from ci_env.cleanup.sizes import Bytes, Manifest, Removal, measure, parse_manifest
from ci_env.errors import CiEnvError
from ci_env.registry.outcomes import Status

if TYPE_CHECKING:
    from ci_env.cleanup.report import Result
    from ci_env.cleanup.target import Target
    from ci_env.registry.client import RegistryClient
    from ci_env.registry.reference import RepoAddress


@dataclass(frozen=True)
class Read:
    """What :func:`read_plan` read: the manifests by digest, and what holds blobs outside the plan's decisions."""

    manifests: Mapping[str, Manifest] = field(default_factory=dict)
    #: digests the tags cleanup leaves alone (``skipped``) point at, where they were read
    held: frozenset[str] = frozenset()
    #: tags cleanup leaves alone that were not read (each may keep blobs the removals share)
    unread: int = 0


def _image(decision: Decision) -> str:
    if decision.kind == KIND_STAGE:
        return "(stages)"
    return "~" if decision.image is None else decision.image


def _address(repository: str) -> RepoAddress | None:
    from ci_env.registry.reference import parse_address

    try:
        return parse_address(repository)
    except CiEnvError:
        return None


def read_plan(plan: Plan, client_of: Callable[[RepoAddress], RegistryClient], parallel: int = 8,
              progress: Update | None = None, skip: Callable[[str], bool] = lambda _r: False, *,
              kept: bool = False, skipped: Sequence[tuple[str, str]] = ()) -> Read:
    """The manifests of the digests the plan's deletions point at (and of the child manifests of removed
    indexes), each read once by digest, in parallel; a manifest that cannot be read is left out (counted
    ``unknown`` by :func:`figures`). ``skip(repository)`` leaves a repository out (the ``:local`` stages, which are
    not in a registry).

    ``kept``: also the manifests of every digest the plan keeps (and their children), and of each tag in
    ``skipped`` (``repository:tag`` of the tags cleanup leaves alone), read by tag; without it, those tags are
    counted ``unread``.

    Size: collecting what to read (deleted, kept, skipped) and reading it in parallel share one table of digests;
    the parameters are the measuring options of ``cleanup``.
    """
    wanted: dict[str, tuple[RepoAddress, str]] = {}  # digest -> (address, repository path)
    for decision in plan.decisions:
        if not decision.digest or skip(str(decision.repository)) or (decision.action != DELETE and not kept):
            continue
        wanted.setdefault(decision.digest, (decision.repository, decision.repository.path))
    others: list[tuple[RepoAddress, str]] = []  # (address, tag) of the tags left alone
    for ref, _reason in skipped:
        repository, _, tag = ref.rpartition(":")
        if not skip(repository) and (address := _address(repository)) is not None:
            others.append((address, tag))
    unchecked = {d.digest for d in plan.decisions if d.action != DELETE and d.digest} if not kept else set()
    manifests: dict[str, Manifest] = {}
    held: set[str] = set()
    unread = 0 if kept else len(others)
    done, total = 0, len(wanted) + (len(others) if kept else 0)  # grows by the children found
    what = "measuring the manifests to remove" + (" and keep" if kept else "")

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(what, done, total)

    def read(item: tuple[str, tuple[RepoAddress, str]]) -> Manifest | None:
        digest, (address, path) = item
        try:
            body, _info = client_of(address).get_manifest(path, digest)
            return parse_manifest(digest, body)
        except (CiEnvError, ValueError):
            return None

    def read_tag(item: tuple[RepoAddress, str]) -> Manifest | None:
        address, tag = item
        try:
            body, info = client_of(address).get_manifest(address.path, tag)
            return parse_manifest(info.digest, body)
        except (CiEnvError, ValueError):
            return None

    with ThreadPoolExecutor(max(1, parallel)) as pool:
        if kept:
            for (address, _tag), manifest in zip(others, pool.map(read_tag, others), strict=True):
                tick()
                if manifest is None:
                    unread += 1
                    continue
                held.add(manifest.digest)
                manifests.setdefault(manifest.digest, manifest)
                for child in manifest.children:
                    wanted.setdefault(child, (address, address.path))
        todo = [(digest, where) for digest, where in wanted.items() if digest not in manifests]
        total = done + len(todo)
        while todo:
            children: dict[str, tuple[RepoAddress, str]] = {}
            for (digest, where), manifest in zip(todo, pool.map(read, todo), strict=True):
                tick()
                if manifest is None:
                    continue
                manifests[digest] = manifest
                for child in manifest.children:
                    if child not in manifests and child not in wanted and child not in unchecked:
                        children[child] = where
            wanted.update(children)
            total += len(children)
            todo = list(children.items())
    return Read(manifests, frozenset(held), unread)


#: outcomes whose tag is gone after the run (or would be, in a dry run): their bytes are freed
FREEING = frozenset({Status.REMOVED, Status.WOULD_REMOVE})


def figures(result: Result, read: Read, skip: Callable[[str], bool] = lambda _r: False) -> Bytes:
    """The bytes ``result``'s removals free: tags removed (or would be) free their blobs; kept tags, tags whose
    removal failed or was not started, and the tags cleanup left alone still hold theirs; ``absent`` ones were
    gone already."""
    removals: list[Removal] = []
    still: set[str] = set(read.held)
    for decision in result.plan.decisions:
        if not decision.digest or skip(str(decision.repository)):
            continue
        status, _ = result.outcome(decision)
        if decision.action == DELETE and status in FREEING:
            removals.append(Removal(_image(decision), decision.stored_tag, decision.digest))
        elif status != Status.ABSENT:
            still.add(decision.digest)
    return measure(removals, still, read.manifests, unread=read.unread)


def local_skip(target: Target) -> Callable[[str], bool]:
    """The ``skip`` of a cleanup or purge run: its ``:local`` stages are not in a registry."""
    from ci_env.cleanup import local_stages

    local = str(local_stages.repository(target.project)) if target.stages_local else None
    return lambda repository: repository == local
