"""Removing tags on every implementation: the remover protocol, the route table, and the dispatcher.

``remover_for(implementation, context)`` picks the remover for the implementation's ``delete_route``
(vendor removers are imported lazily from ``REMOVERS``). ``untag_all`` preflights every repository
first (nothing is deleted when any preflight fails), then removes the tags with bounded concurrency,
reporting progress, and returns one outcome per requested tag. A remover that also has
``untag_many(repo, tags, *, parallel, report)`` (``BatchRemover``, its ``capabilities.batch``) gets all the tags of
a repository in one call (the default route batches its DELETEs, ECR its ``batch_delete_image`` calls of 100).
Every remover declares what it can do beyond ``untag`` in its :class:`Capabilities`: the dispatcher and
``ci_env.registry.removal`` read that, never probe the remover for methods.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from ci_env.errors import CiEnvError, PreflightError, RegistryError
from ci_env.registry.outcomes import GONE, Status
from ci_env.registry.routes import RoutedImplementation, build

if TYPE_CHECKING:
    from ci_env.registry.api import RegistryApi
    from ci_env.registry.client import ClientPool, RegistryClient
    from ci_env.registry.reference import RepoAddress

#: delete_route -> "module:Class" of its remover; each class is built as ``Class(context)``.
REMOVERS: dict[str, str] = {
    "placeholder": "ci_env.registry.untag:DefaultRemover",
    "oci-tag-delete": "ci_env.registry.untag:OciTagDeleteRemover",
    "dockerhub-api": "ci_env.registry.vendors.dockerhub:DockerHubRemover",
    "github-api": "ci_env.registry.vendors.github:GitHubRemover",
    "github-graphql": "ci_env.registry.vendors.github:GitHubRemover",
    "gitlab": "ci_env.registry.vendors.gitlab:GitLabRemover",
    "harbor-api": "ci_env.registry.vendors.harbor:HarborRemover",
    "quay-api": "ci_env.registry.vendors.quay:QuayRemover",
    "ecr-sdk": "ci_env.registry.vendors.ecr:EcrRemover",
    "acr": "ci_env.registry.vendors.acr:AcrRemover",
}


@dataclass(frozen=True)
class Capabilities:
    """What a remover can do beyond removing one tag (``untag``) and checking it may (``preflight``)."""

    #: ``untag_many(repo, tags, *, parallel, report)``: many tags of one repository in one call (:class:`BatchRemover`).
    batch: bool = False
    #: its ``untag_many`` also takes ``expected`` (tag -> digest: a tag elsewhere now is left alone, ``moved``) and
    #: ``known`` (tag -> digest the caller resolved a moment ago): the placeholder route.
    guarded: bool = False
    #: ``delete_manifests(repo, digests, *, parallel)``: deletes manifests by digest (a package version, an image).
    deletes_manifests: bool = False
    #: ``list_manifests(repo)`` (``listing.ManifestLister``): its registry lists the manifests no tag points at, in
    #: the listing that gives its tags.
    lists_untagged: bool = False
    #: ``delete_manifests(repo, digests, *, parallel)`` for untagged manifests only: each digest's tags are read
    #: right before its delete, and one tagged now stays (``left``), as the vendor's delete would take its tags
    #: with it (Harbor's artifact delete); it is told what must stay (``keep``: what workloads run), and one whose
    #: delete would take along a tagged manifest or one of those (Harbor: its accessories, its untagged children)
    #: stays too. Accessories keep the tag route; only the untagged removal deletes.
    deletes_untagged: bool = False
    #: ``protect(repo, digests)``: its tag removal may delete a manifest with its last tag, so it is told first
    #: which digests the remaining tags reach.
    protects: bool = False

    @property
    def needs_whole_graph(self) -> bool:
        """True when the remover deletes manifests (by digest, or with their last tag): it must know every digest
        the remaining tags reach, not only what the removed tags reach."""
        return self.deletes_manifests or self.deletes_untagged or self.protects

    @property
    def removes_untagged(self) -> bool:
        """True when it lists the untagged manifests and deletes them by digest (``--delete-untagged``, the
        rules' ``untagged:`` policy)."""
        return self.lists_untagged and (self.deletes_manifests or self.deletes_untagged)


class TagRemover(Protocol):
    """Removes single tags from the repositories of one implementation."""

    @property
    def capabilities(self) -> Capabilities:
        """What it can do beyond ``untag`` (see :class:`Capabilities`)."""

    def preflight(self, repo: RepoAddress) -> None:
        """Raise PreflightError (naming the flag or variable to set) unless tags can be removed; deletes nothing."""

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove exactly ``tag``: ``removed`` or ``absent`` (a :class:`Status`); RegistryError/AuthError on
        failure."""


#: called by a batch once per tag as soon as its outcome is known: ``removed``, ``absent`` or the error.
BatchReport = Callable[[str, "str | CiEnvError"], None]


class BatchRemover(TagRemover, Protocol):
    """A remover that also removes many tags of one repository in one call."""

    def untag_many(
        self, repo: RepoAddress, tags: Sequence[str], *, parallel: int = 8, report: BatchReport | None = None
    ) -> Mapping[str, str | CiEnvError]:
        """Remove exactly ``tags``; per tag ``removed``, ``absent`` or its error (never raises for a tag)."""


class GuardedRemover(TagRemover, Protocol):
    """A batch remover that leaves a tag pushed elsewhere since the plan alone (``capabilities.guarded``)."""

    def untag_many(
        self, repo: RepoAddress, tags: Sequence[str], *, parallel: int = 8, report: BatchReport | None = None,
        expected: Mapping[str, str] | None = None, known: Mapping[str, str | None] | None = None,
    ) -> Mapping[str, str | CiEnvError]:
        """Remove exactly ``tags``; a tag no longer at its ``expected`` digest is ``moved``, left alone."""


def referenced_by_tags(client: RegistryApi, path: str) -> frozenset[str]:
    """What the tags of ``path`` reach through an index or as a referrer (its graph, read through ``client`` now):
    the manifests a remover that deletes a manifest with its last tag must keep, when its caller did not say."""
    from ci_env.registry.graph import registry_graph

    return registry_graph(client, path).referenced()


@dataclass(frozen=True)
class RemoverContext:
    """What a remover is built from: the Docker config, insecure registries, the environment, credentials,
    and optionally the caller's registry clients."""

    docker_config: Path | None = None
    insecure_registries: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    credentials: Any = None
    #: the caller's clients (one per registry host): removers that talk the Registry API use them, and so the
    #: tag maps the caller built while listing; None: the remover makes its own.
    clients: ClientPool | None = None
    #: what a repository's tags reach through an index or as a referrer, for a remover whose tag removal may delete
    #: a manifest and whose caller did not ``protect`` (GitHub): the graph is given to the vendors, never imported.
    referenced: Callable[[RegistryApi, str], frozenset[str]] = referenced_by_tags


def remover_for(implementation: RoutedImplementation, context: RemoverContext) -> TagRemover:
    """The remover for ``implementation.delete_route``, built with ``context``."""
    route = implementation.delete_route
    target = REMOVERS.get(route)
    if target is None:
        raise RegistryError(f"no tag remover for the delete route {route!r}")
    return cast("TagRemover", build(target, context, f"the tag remover for {route!r}"))


class _ClientRemover:
    """Shared by the Registry API removers: one ``RegistryClient`` per registry host, from the context's pool
    (so the tag maps its caller already built are reused) or from a pool of its own."""

    def __init__(self, context: RemoverContext) -> None:
        from ci_env.registry.client import ClientPool

        self.context = context
        self.pool = context.clients or ClientPool(context.docker_config, context.insecure_registries, context.env)

    def client(self, repo: RepoAddress) -> RegistryClient:
        """The client for ``repo``'s registry host."""
        return self.pool(repo)

    def preflight(self, repo: RepoAddress) -> None:
        """PreflightError unless the registry grants a token that may delete in ``repo``; deletes nothing."""
        try:
            self.client(repo).can_delete(repo.path)
        except CiEnvError as exc:
            raise PreflightError(f"cannot remove tags from {repo}: {exc.message}; nothing was deleted") from None


class DefaultRemover(_ClientRemover):
    """The default route (``ci_env.registry.untag_engine``): each tag is moved onto a placeholder unique to its
    batch, which is then deleted; no image is ever deleted by digest (the registry's garbage collection removes
    the untagged ones), so a tag moved onto an image meanwhile always keeps it."""

    capabilities = Capabilities(batch=True, guarded=True)

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` only: ``removed`` or ``absent``."""
        return self.client(repo).untag(repo.path, tag)

    def untag_many(
        self, repo: RepoAddress, tags: Sequence[str], *, parallel: int = 8, report: BatchReport | None = None,
        expected: Mapping[str, str] | None = None, known: Mapping[str, str | None] | None = None,
    ) -> Mapping[str, str | CiEnvError]:
        """All of ``tags`` in one batch (``untag_engine.untag_many``: ``expected`` guards it, ``known`` saves the
        reads of tags the caller resolved a moment ago)."""
        return self.client(repo).untag_many(repo.path, tags, parallel=parallel, report=report, expected=expected,
                                            known=known)


class OciTagDeleteRemover(_ClientRemover):
    """GCR / Artifact Registry: ``DELETE /v2/NAME/manifests/TAG`` removes only the tag."""

    capabilities = Capabilities()

    def untag(self, repo: RepoAddress, tag: str) -> str:
        """Remove ``tag`` with the OCI tag delete: ``removed`` or ``absent``."""
        return self.client(repo).oci_tag_delete(repo.path, tag)


@dataclass(frozen=True)
class Outcome:
    """What happened to one requested tag."""

    repo: str
    tag: str
    status: Status
    reason: str = ""


@dataclass(frozen=True)
class Summary:
    """Every outcome of a run, in the order requested, with counts."""

    outcomes: tuple[Outcome, ...]

    def count(self, status: str) -> int:
        """How many outcomes have ``status``."""
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def failed(self) -> tuple[Outcome, ...]:
        """The failed outcomes, in the order requested."""
        return tuple(outcome for outcome in self.outcomes if outcome.status == Status.FAILED)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: counts and one entry per tag."""
        return {
            "removed": self.count(Status.REMOVED),
            "absent": self.count(Status.ABSENT),
            "failed": self.count(Status.FAILED),
            "would_remove": self.count(Status.WOULD_REMOVE),
            "tags": [
                {"repository": o.repo, "tag": o.tag, "status": o.status, **({"reason": o.reason} if o.reason else {})}
                for o in self.outcomes
            ],
        }


Progress = Callable[[int, int, Summary], None]


def untag_all(
    requests: Sequence[tuple[RepoAddress, str]],
    remover_of: Callable[[RepoAddress], TagRemover],
    *,
    parallel: int = 8,
    dry_run: bool = False,
    progress: Progress | None = None,
    progress_every: float = 2.0,
    on_outcome: Callable[[Outcome], None] | None = None,
    expected: Mapping[tuple[RepoAddress, str], str] | None = None,
    known: Mapping[tuple[RepoAddress, str], str | None] | None = None,
) -> Summary:
    """Remove every (repository, tag) of ``requests``; one Outcome each, failures recorded, not raised.

    Every repository is preflighted before anything is deleted: a PreflightError (or any user error
    raised while preflighting) propagates and nothing is removed. ``dry_run`` preflights nothing and
    removes nothing: each tag is reported ``would-remove``. ``progress(done, total, summary)`` is called
    at most every ``progress_every`` seconds and once at the end; ``on_outcome(outcome)`` once per tag as soon
    as its outcome is known (from worker threads). ``expected`` ((repository, tag) -> digest) guards the
    removals where the remover can check (``untag_many`` with ``expected``): a tag pointing elsewhere is left
    alone, outcome ``moved``. ``known`` ((repository, tag) -> digest, None: absent) is what the caller resolved a
    moment ago: a remover that can skips reading those tags again.

    Size: the workers (``record``, ``run``) close over the shared results, lock and progress clock; the keyword
    parameters are the caller's hooks and guards, each optional.
    """
    unique = list(dict.fromkeys(requests))
    if dry_run:
        return Summary(tuple(Outcome(str(repo), tag, Status.WOULD_REMOVE) for repo, tag in unique))
    removers: dict[RepoAddress, TagRemover] = {}
    for repo, _ in unique:
        if repo not in removers:
            removers[repo] = remover_of(repo)
            removers[repo].preflight(repo)
    results: list[Outcome | None] = [None] * len(unique)
    lock = threading.Lock()
    done = 0
    last = time.monotonic()

    def record(index: int, outcome: Outcome) -> None:
        nonlocal done, last
        with lock:
            if results[index] is not None:
                return
            results[index] = outcome
            done += 1
            if on_outcome is not None:
                on_outcome(outcome)
            now = time.monotonic()
            if progress is not None and now - last >= progress_every and done < len(unique):
                last = now
                progress(done, len(unique), Summary(tuple(r for r in results if r is not None)))

    def run(index: int) -> None:
        repo, tag = unique[index]
        try:
            status = removers[repo].untag(repo, tag)
            outcome = Outcome(str(repo), tag, Status(status) if status in GONE else Status.REMOVED)
        except CiEnvError as exc:
            outcome = Outcome(str(repo), tag, Status.FAILED, exc.message)
        except Exception as exc:  # a bug or an unexpected library error: report it, keep going
            outcome = Outcome(str(repo), tag, Status.FAILED, f"{type(exc).__name__}: {exc}")
        record(index, outcome)

    batches: dict[RepoAddress, list[int]] = {}
    singles: list[int] = []
    for index, (repo, _) in enumerate(unique):
        if removers[repo].capabilities.batch:
            batches.setdefault(repo, []).append(index)
        else:
            singles.append(index)
    workers = max(1, parallel)
    outer = max(1, min(workers, len(batches) + len(singles)))
    inner = max(1, workers // max(1, min(workers, len(batches))))
    tasks: list[Callable[[], None]] = [functools.partial(run, i) for i in singles]
    tasks += [
        functools.partial(_run_batch, removers[repo], repo, [unique[i][1] for i in indexes], indexes, inner, record,
                          _per_tag(expected, unique, indexes), _per_tag(known, unique, indexes))
        for repo, indexes in batches.items()
    ]
    with ThreadPoolExecutor(max_workers=outer) as pool:
        list(pool.map(lambda task: task(), tasks))
    summary = Summary(tuple(r for r in results if r is not None))
    if progress is not None:
        progress(len(unique), len(unique), summary)
    return summary


def _outcome(repo: RepoAddress, tag: str, result: object) -> Outcome:
    if isinstance(result, CiEnvError):
        return Outcome(str(repo), tag, Status.FAILED, result.message)
    if isinstance(result, BaseException):
        return Outcome(str(repo), tag, Status.FAILED, f"{type(result).__name__}: {result}")
    return Outcome(str(repo), tag, Status(result) if result in (*GONE, Status.MOVED) else Status.REMOVED)


_V = TypeVar("_V")


def _per_tag(
    given: Mapping[tuple[RepoAddress, str], _V] | None, unique: Sequence[tuple[RepoAddress, str]],
    indexes: Sequence[int],
) -> dict[str, _V] | None:
    """The part of ``given`` (keyed by (repository, tag)) for one repository's batch, keyed by tag."""
    if given is None:
        return None
    return {unique[i][1]: given[unique[i]] for i in indexes if unique[i] in given}


def _run_batch(
    remover: TagRemover, repo: RepoAddress, tags: list[str], indexes: list[int], parallel: int,
    record: Callable[[int, Outcome], None], expected: Mapping[str, str] | None = None,
    known: Mapping[str, str | None] | None = None,
) -> None:
    """One ``untag_many`` call; every tag gets an outcome, even when the call itself fails."""
    position = dict(zip(tags, indexes, strict=True))

    def report(tag: str, result: str | CiEnvError) -> None:
        if tag in position:
            record(position[tag], _outcome(repo, tag, result))

    try:
        answers: Mapping[str, object]
        if remover.capabilities.guarded:
            answers = cast(GuardedRemover, remover).untag_many(repo, tags, parallel=parallel, report=report,
                                                               expected=expected, known=known)
        else:
            answers = cast(BatchRemover, remover).untag_many(repo, tags, parallel=parallel, report=report)
    except Exception as exc:  # CiEnvError, a bug or an unexpected library error: report it, keep going
        answers = dict.fromkeys(tags, exc)
    for tag in tags:
        record(position[tag], _outcome(repo, tag, answers.get(tag, RegistryError("no outcome was reported"))))

