"""Git-history-based cleanup: which content signatures the keep policies reach through git history.

The keep policies (``ci_env.cleanup.keep_policies``) select references (branches and git tags) and say
how many images to keep per reference. The metadata records (``ci_env.records.CommitMetadata``) say which
commit published which signature of which image. This module joins the two, with werf's semantics:

1. **References.** Branches are ``origin/*`` (the local branches when the clone has no ``origin``
   branches); tags are git tags. A branch's date is its head commit's committer date; a tag's is its
   tagger date (annotated) or its commit's date (lightweight).
2. **Selection.** Each policy takes the references of its kind whose name matches in full, then its
   ``references.limit``: the newest ``last`` by date, those dated within ``in``, combined by ``operator``.
   A reference selected by several policies takes the ``imagesPerReference`` of the last of them.
3. **Images per reference.** A branch's history is its head and every ancestor; a tag's history is its commit
   alone. "Newest" is by committer date wherever the commit is in the graph (clocks can be wrong: a walk stops
   only when nothing left can be newer, see :attr:`CommitGraph.bounds`). Per image, each signature is counted
   at its newest commit on that history; signatures published by one commit count as one. Kept: the newest
   ``last`` (-1: all; 0: none) and/or those whose commit is within ``in`` (``And``: both; ``Or``: either).
   A signature is kept when any selected reference keeps it.

Everything is read with one ``git for-each-ref`` and one ``git log`` whatever the number of references (and
one ``git cat-file`` when a tag points at another tag object).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ci_env.cleanup.keep_policies import AND, BRANCH, OR, REFERENCES_DEFAULT_LAST, TAG, KeepPolicy, Limit
from ci_env.gitinfo import REMOTE, GitRepository


@dataclass(frozen=True)
class Reference:
    """A branch (``name`` without ``origin/``) or git tag, its head commit and its date."""

    kind: str
    name: str
    head: str
    date: datetime

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Reach:
    """How a signature is kept: ``policy`` selected ``reference``, whose history reaches ``commit``."""

    policy: KeepPolicy
    reference: Reference
    commit: str
    commit_date: datetime

    def describe(self) -> str:
        return (f"kept by keep {self.policy.describe()}: {self.reference} reaches it at commit {self.commit[:12]} "
                f"({self.commit_date:%Y-%m-%d %H:%M}Z)")


@dataclass(frozen=True)
class Miss:
    """A signature a selected reference reached but did not keep (beyond its images-per-reference limit)."""

    policy: KeepPolicy
    reference: Reference
    commit: str
    why: str


@dataclass
class Verdict:
    """Per (image, signature): the reach that keeps it, or the misses that did not."""

    kept: dict[tuple[str | None, str], Reach] = field(default_factory=dict)
    missed: dict[tuple[str | None, str], list[Miss]] = field(default_factory=dict)
    references: int = 0  #: references the policies selected
    commits: int = 0  #: commits in the graph


@dataclass(frozen=True)
class Published:
    """One metadata record as the walk uses it: ``image`` published ``signature`` from ``commit``."""

    image: str | None
    commit: str
    signature: str


class CommitGraph:
    """Every commit reachable from the branches and tags: committer date and parents, read in one ``git log``.

    ``bounds[sha]`` is the newest committer date of ``sha`` and all its ancestors: equal to its own date in a
    history whose clocks were right, later when an ancestor's clock was ahead (or this commit's behind). Walks
    go by it, so that everything not yet walked is known to be dated no later than the bound last walked."""

    def __init__(self, dates: Mapping[str, int], parents: Mapping[str, tuple[str, ...]],
                 bounds: Mapping[str, int] | None = None) -> None:
        self.dates = dates
        self.parents = parents
        self.bounds = bounds if bounds is not None else _bounds(dates, parents)

    @classmethod
    def load(cls, repo: GitRepository, heads: Iterable[str]) -> CommitGraph:
        """The history of ``heads`` (commit ids)."""
        wanted = sorted(set(heads))
        dates: dict[str, int] = {}
        parents: dict[str, tuple[str, ...]] = {}
        if not wanted:
            return cls(dates, parents, {})
        # --topo-order: no parent before all its children, so the bounds are computed in one reversed pass
        out = repo._git("log", "--topo-order", "--stdin", "--format=%H %ct %P", stdin="\n".join(wanted) + "\n")
        order: list[str] = []
        for line in out.splitlines():
            sha, stamp, *rest = line.split(" ")
            dates[sha] = int(stamp)
            parents[sha] = tuple(p for p in rest if p)
            order.append(sha)
        bounds: dict[str, int] = {}
        for sha in reversed(order):
            bounds[sha] = max([dates[sha], *(bounds[p] for p in parents[sha] if p in bounds)])
        return cls(dates, parents, bounds)

    def date(self, sha: str) -> datetime:
        return datetime.fromtimestamp(self.dates.get(sha, 0), tz=timezone.utc)

    def walk(self, head: str, depth: int | None = None) -> Iterator[tuple[str, int]]:
        """``head`` and its ancestors, each once, with the bound of what is left: every commit not yet yielded is
        dated no later than it. Newest first by :attr:`bounds` (committer date where clocks were right);
        ``depth`` 1: ``head`` alone."""
        if head not in self.dates:
            return
        if depth == 1:
            yield head, self.dates[head]
            return
        seen = {head}
        queue = [(-self.bounds[head], head)]
        while queue:
            bound, sha = heapq.heappop(queue)
            yield sha, -bound
            for parent in self.parents.get(sha, ()):
                if parent not in seen and parent in self.dates:
                    seen.add(parent)
                    heapq.heappush(queue, (-self.bounds[parent], parent))


def _bounds(dates: Mapping[str, int], parents: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """:attr:`CommitGraph.bounds` for a graph given in any order (iterative, parents first)."""
    bounds: dict[str, int] = {}
    for start in dates:
        stack = [start]
        while stack:
            sha = stack[-1]
            if sha in bounds:
                stack.pop()
                continue
            pending = [p for p in parents.get(sha, ()) if p in dates and p not in bounds]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            bounds[sha] = max([dates[sha], *(bounds[p] for p in parents.get(sha, ()) if p in bounds)])
    return bounds


def list_references(repo: GitRepository) -> list[Reference]:
    """The branches (``origin/*``, else local) and git tags, with head commit and date.

    A tag's head is the commit beneath it, however many tag objects deep (``git tag -a outer inner``); a tag of
    a tree or blob reaches no commit and is no reference."""
    out = repo._git(
        "for-each-ref",
        "--format=%(refname)%09%(objectname)%09%(objecttype)%09%(*objectname)%09%(*objecttype)"
        "%09%(creatordate:unix)",
        "refs/heads", f"refs/remotes/{REMOTE}", "refs/tags",
    )
    remote: list[Reference] = []
    local: list[Reference] = []
    tags: list[tuple[str, str, datetime]] = []
    nested: list[str] = []  # tag objects whose target is another tag object
    prefix = f"refs/remotes/{REMOTE}/"
    for line in out.splitlines():
        ref, obj, kind, peeled, peeled_kind, created = line.split("\t")
        when = datetime.fromtimestamp(int(created or 0), tz=timezone.utc)
        if ref.startswith("refs/tags/"):
            target, target_kind = (peeled, peeled_kind) if kind == "tag" else (obj, kind)
            if target_kind == "tag":
                nested.append(target)
            elif target_kind != "commit":
                continue
            tags.append((ref[len("refs/tags/"):], target, when))
        elif ref.startswith(prefix) and ref != f"{prefix}HEAD":
            remote.append(Reference(BRANCH, ref[len(prefix):], obj, when))
        elif ref.startswith("refs/heads/"):
            local.append(Reference(BRANCH, ref[len("refs/heads/"):], obj, when))
    commits = _peel_to_commits(repo, nested)
    refs = [Reference(TAG, name, commits.get(target, target), when) for name, target, when in tags
            if target not in nested or target in commits]
    return (remote or local) + refs


def _peel_to_commits(repo: GitRepository, objects: Sequence[str]) -> dict[str, str]:
    """The commit beneath each tag object of ``objects`` (one ``git cat-file``); tags of non-commits left out."""
    wanted = sorted(set(objects))
    if not wanted:
        return {}
    out = repo._git("cat-file", "--batch-check=%(objectname) %(objecttype)",
                    stdin="".join(f"{sha}^{{commit}}\n" for sha in wanted))
    commits: dict[str, str] = {}
    for sha, line in zip(wanted, out.splitlines(), strict=True):
        parts = line.split()
        if len(parts) == 2 and parts[1] == "commit":
            commits[sha] = parts[0]
    return commits


def _within(date: datetime, limit: timedelta | None, now: datetime) -> bool:
    return limit is None or date > now - limit


def _limit_references(refs: Sequence[Reference], limit: Limit | None, now: datetime) -> list[Reference]:
    if limit is None:
        return list(refs)
    newest = sorted(refs, key=lambda r: r.date, reverse=True)
    last = limit.effective_last(REFERENCES_DEFAULT_LAST)
    by_last = set(newest if last < 0 else newest[:last])
    by_in = {r for r in refs if _within(r.date, limit.within, now)}
    chosen = by_last | by_in if limit.operator != AND else by_last & by_in
    return [r for r in newest if r in chosen]


def select_references(
    policies: Sequence[KeepPolicy], refs: Sequence[Reference], now: datetime
) -> dict[Reference, KeepPolicy]:
    """Each selected reference with the policy whose ``imagesPerReference`` applies (the last selecting it)."""
    selected: dict[Reference, KeepPolicy] = {}
    for policy in policies:
        candidates = [r for r in refs if r.kind == policy.kind and policy.selects(r.name)]
        for ref in _limit_references(candidates, policy.references_limit, now):
            selected[ref] = policy
    return selected


def _hits(
    graph: CommitGraph, ref: Reference, published: Mapping[str, Sequence[Published]], images: Set[str | None],
    limit: Limit, last: int, now: datetime,
) -> dict[str | None, list[tuple[str, list[str]]]]:
    """Per image: (commit, signatures), each signature at its newest commit (by committer date) on the history.

    The walk stops as soon as nothing further can be kept, whatever the clocks said: once what is left is all
    older than ``in`` (under ``Or``, once every image also has ``last`` commits that nothing left can outrank);
    without ``in``, once every image has such ``last`` commits. (Under ``And`` with ``in`` the walk goes on to
    ``in`` past ``last``, so that the images it passes over can be named in the plan.)"""
    best: dict[tuple[str | None, str], str] = {}  # (image, signature) -> its newest commit so far
    counts: dict[str | None, dict[str, int]] = {}  # image -> commit -> signatures it is the newest commit of
    cutoff = int((now - limit.within).timestamp()) if limit.within is not None else None
    either = limit.operator == OR and cutoff is not None
    dates = graph.dates

    def full(bound: int) -> bool:
        """Every image has ``last`` commits dated at or after ``bound`` (nothing left can outrank them)."""
        if last < 0 or any(len(counts.get(image, ())) < last for image in images):
            return False
        return all(sum(1 for sha in counts[image] if dates[sha] >= bound) >= last for image in images)

    for sha, bound in graph.walk(ref.head, 1 if ref.kind == TAG else None):
        old = cutoff is not None and bound <= cutoff
        if (old and full(bound)) if either else (old if cutoff is not None else full(bound)):
            break
        for record in published.get(sha, ()):
            key = (record.image, record.signature)
            before = best.get(key)
            if before is not None and dates[before] >= dates[sha]:
                continue
            best[key] = sha
            per_image = counts.setdefault(record.image, {})
            per_image[sha] = per_image.get(sha, 0) + 1
            if before is not None:
                per_image[before] -= 1
                if not per_image[before]:
                    del per_image[before]
    grouped: dict[str | None, dict[str, list[str]]] = {}
    for (image, signature), sha in best.items():
        grouped.setdefault(image, {}).setdefault(sha, []).append(signature)
    return {image: list(commits.items()) for image, commits in grouped.items()}


def evaluate(
    policies: Sequence[KeepPolicy], refs: Sequence[Reference], graph: CommitGraph, records: Iterable[Published],
    now: datetime,
) -> Verdict:
    """Which (image, signature) the policies keep, and which they reached but did not keep."""
    published: dict[str, list[Published]] = {}
    for record in records:
        published.setdefault(record.commit, []).append(record)
    images = {record.image for records in published.values() for record in records}
    selected = select_references(policies, refs, now)
    verdict = Verdict(references=len(selected), commits=len(graph.dates))
    for ref, policy in sorted(selected.items(), key=lambda item: (item[1].number, -item[0].date.timestamp())):
        last = policy.images_last
        limit = policy.images_per_reference
        if last == 0:
            continue
        for image, commits in _hits(graph, ref, published, images, limit, last, now).items():
            commits.sort(key=lambda hit: graph.dates[hit[0]], reverse=True)
            by_last = {sha for sha, _ in (commits if last < 0 else commits[:last])}
            by_in = {sha for sha, _ in commits if _within(graph.date(sha), limit.within, now)}
            keep = by_last | by_in if limit.operator == OR and limit.within is not None else by_last & by_in
            for position, (sha, signatures) in enumerate(commits, 1):
                for signature in signatures:
                    key = (image, signature)
                    if sha in keep:
                        verdict.kept.setdefault(key, Reach(policy, ref, sha, graph.date(sha)))
                    else:
                        why = (f"{ref} reaches it at commit {sha[:12]} as image {position} (newest first), beyond "
                               f"its images per reference ({limit.describe(1)}) of keep policy #{policy.number}")
                        verdict.missed.setdefault(key, []).append(Miss(policy, ref, sha, why))
    return verdict
