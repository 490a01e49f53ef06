"""Read what :func:`ci_env.cleanup.sizes.measure` needs: one manifest GET per digest the plan removes (and per
child manifest of a removed index), before anything is removed; kept manifests are not read, so the figure
is an upper bound whenever something is kept (``Bytes.at_most``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ci_env.cleanup.policies import DELETE, KIND_STAGE, Plan
from ci_env.cleanup.progress import Update
from ci_env.cleanup.sizes import Bytes, Manifest, Removal, measure, parse_manifest
from ci_env.errors import CiEnvError
from ci_env.registry.outcomes import Status


def _image(decision: Any) -> str:
    if decision.kind == KIND_STAGE:
        return "(stages)"
    return "~" if decision.image is None else decision.image


def read_plan(plan: Plan, client_of: Callable[[Any], Any], parallel: int = 8,
              progress: Update | None = None, skip: Callable[[str], bool] = lambda _r: False) -> dict[str, Manifest]:
    """The manifests of the digests the plan's deletions point at (and of the child manifests of removed
    indexes), each read once by digest, in parallel; a manifest that cannot be read is left out (counted
    ``unknown`` by :func:`figures`). ``skip(repository)`` leaves a repository out (the ``:local`` stages, which are
    not in a registry)."""
    from ci_env.registry.reference import parse_address

    wanted: dict[str, tuple[Any, str]] = {}  # digest -> (address, repository path)
    for decision in plan.decisions:
        if decision.action != DELETE or not decision.digest or skip(decision.repository):
            continue
        try:
            address = parse_address(decision.repository)
        except CiEnvError:
            address = None
        if address is not None:
            wanted.setdefault(decision.digest, (address, address.path))
    kept = {d.digest for d in plan.decisions if d.action != DELETE and d.digest}
    manifests: dict[str, Manifest] = {}
    done = 0

    def read(item: tuple[str, tuple[Any, str]]) -> Manifest | None:
        digest, (address, path) = item
        try:
            body, _info = client_of(address).get_manifest(path, digest)
            return parse_manifest(digest, body)
        except (CiEnvError, ValueError):
            return None

    todo = list(wanted.items())
    with ThreadPoolExecutor(max(1, parallel)) as pool:
        while todo:
            children: dict[str, tuple[Any, str]] = {}
            for (digest, where), manifest in zip(todo, pool.map(read, todo), strict=True):
                done += 1
                if progress is not None:
                    progress("measuring the manifests to remove", done, len(wanted))
                if manifest is None:
                    continue
                manifests[digest] = manifest
                for child in manifest.children:
                    if child not in manifests and child not in wanted and child not in kept:
                        children[child] = where
            wanted.update(children)
            todo = list(children.items())
    return manifests


#: outcomes whose tag is gone after the run (or would be, in a dry run): their bytes are freed
FREEING = frozenset({Status.REMOVED, Status.WOULD_REMOVE})


def figures(result: Any, manifests: Mapping[str, Manifest], skip: Callable[[str], bool] = lambda _r: False) -> Bytes:
    """The bytes ``result``'s removals free: tags removed (or would be) free their blobs; kept tags, and tags
    whose removal failed or was not started, still hold theirs; ``absent`` ones were gone already."""
    removals: list[Removal] = []
    still: set[str] = set()
    for decision in result.plan.decisions:
        if not decision.digest or skip(decision.repository):
            continue
        status, _ = result.outcome(decision)
        if decision.action == DELETE and status in FREEING:
            removals.append(Removal(_image(decision), decision.stored_tag, decision.digest))
        elif status != Status.ABSENT:
            still.add(decision.digest)
    return measure(removals, still, manifests)


def local_skip(target: Any) -> Callable[[str], bool]:
    """The ``skip`` of a cleanup or purge run: its ``:local`` stages are not in a registry."""
    from ci_env.cleanup import local_stages

    local = local_stages.repository(target.project) if target.stages_local else None
    return lambda repository: repository == local
