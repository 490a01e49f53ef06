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
3. **Images per reference.** A branch's history is walked from its head, newest commit first (by committer
   date; every ancestor once); a tag's history is its commit alone. Per image, each signature is counted
   at its newest commit on that history; signatures published by one commit count as one. Kept: the newest
   ``last`` (-1: all; 0: none) and/or those whose commit is within ``in`` (``And``: both; ``Or``: either).
   A signature is kept when any selected reference keeps it.

Everything is read with one ``git for-each-ref`` and one ``git log`` whatever the number of references.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    """Every commit reachable from the branches and tags: committer date and parents, read in one ``git log``."""

    def __init__(self, dates: Mapping[str, int], parents: Mapping[str, tuple[str, ...]]) -> None:
        self.dates = dates
        self.parents = parents

    @classmethod
    def load(cls, repo: GitRepository, heads: Iterable[str]) -> CommitGraph:
        """The history of ``heads`` (commit ids), oldest to newest."""
        wanted = sorted(set(heads))
        dates: dict[str, int] = {}
        parents: dict[str, tuple[str, ...]] = {}
        if not wanted:
            return cls(dates, parents)
        out = repo._git("log", "--stdin", "--format=%H %ct %P", stdin="\n".join(wanted) + "\n")
        for line in out.splitlines():
            sha, stamp, *rest = line.split(" ")
            dates[sha] = int(stamp)
            parents[sha] = tuple(p for p in rest if p)
        return cls(dates, parents)

    def date(self, sha: str) -> datetime:
        return datetime.fromtimestamp(self.dates.get(sha, 0), tz=timezone.utc)

    def walk(self, head: str, depth: int | None = None) -> Iterator[str]:
        """``head`` and its ancestors, each once, newest committer date first (``depth`` 1: ``head`` alone)."""
        if head not in self.dates:
            return
        if depth == 1:
            yield head
            return
        seen = {head}
        queue = [(-self.dates[head], head)]
        while queue:
            _, sha = heapq.heappop(queue)
            yield sha
            for parent in self.parents.get(sha, ()):
                if parent not in seen and parent in self.dates:
                    seen.add(parent)
                    heapq.heappush(queue, (-self.dates[parent], parent))


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
    graph: CommitGraph, ref: Reference, published: Mapping[str, Sequence[Published]], limit: Limit, last: int,
    now: datetime,
) -> dict[str | None, list[tuple[str, list[str]]]]:
    """Per image: (commit, new signatures) in walk order, each signature at its newest commit.

    The walk stops as soon as nothing further can be kept: at the first commit older than ``in`` (under
    ``Or``, once every image also has ``last`` commits); without ``in``, once every image has ``last``
    commits. (Under ``And`` with ``in`` the walk goes on to ``in`` past ``last``, so that the images it
    passes over can be named in the plan.)"""
    hits: dict[str | None, list[tuple[str, list[str]]]] = {}
    seen: set[tuple[str | None, str]] = set()
    images = {p.image for records in published.values() for p in records}
    cutoff = now - limit.within if limit.within is not None else None
    either = limit.operator == OR and cutoff is not None
    for sha in graph.walk(ref.head, 1 if ref.kind == TAG else None):
        old = cutoff is not None and graph.date(sha) <= cutoff
        full = last >= 0 and all(len(hits.get(image, ())) >= last for image in images)
        if (old and full) if either else (old if cutoff is not None else full):
            break
        fresh: dict[str | None, list[str]] = {}
        for record in published.get(sha, ()):
            if (record.image, record.signature) not in seen:
                seen.add((record.image, record.signature))
                fresh.setdefault(record.image, []).append(record.signature)
        for image, signatures in fresh.items():
            hits.setdefault(image, []).append((sha, signatures))
    return hits


def evaluate(
    policies: Sequence[KeepPolicy], refs: Sequence[Reference], graph: CommitGraph, records: Iterable[Published],
    now: datetime,
) -> Verdict:
    """Which (image, signature) the policies keep, and which they reached but did not keep."""
    published: dict[str, list[Published]] = {}
    for record in records:
        published.setdefault(record.commit, []).append(record)
    selected = select_references(policies, refs, now)
    verdict = Verdict(references=len(selected), commits=len(graph.dates))
    for ref, policy in sorted(selected.items(), key=lambda item: (item[1].number, -item[0].date.timestamp())):
        last = policy.images_last
        limit = policy.images_per_reference
        if last == 0:
            continue
        for image, commits in _hits(graph, ref, published, limit, last, now).items():
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
