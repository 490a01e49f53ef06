"""Git-history-based cleanup: which content signatures the keep policies reach through git history.

The keep policies (``ci_env.werf_config.cleanup``) select references (branches and git tags) and say
how many images to keep per reference. The metadata records (``ci_env.records.CommitMetadata``) say which
commit published which signature of which image. This module joins the two, with werf's semantics:

1. **References.** Branches are ``origin/*`` (the local branches when the clone has no ``origin``
   branches); tags are git tags. A branch's date is its head commit's committer date; a tag's is its
   tagger date (annotated) or its commit's date (lightweight).
2. **Selection.** Each policy takes the references of its kind whose name matches in full, then its
   ``references.limit``: the newest ``last`` by date, those dated within ``in``, combined by ``operator``.
   A reference selected by several policies takes the ``imagesPerReference`` of the last of them.
3. **Images per reference.** A branch's history is its head and every ancestor; a tag's history is its commit
   alone. "Newest" is by committer date wherever the commit is in the history. Per image, each signature is
   counted at its newest commit on that history; signatures published by one commit count as one. Kept: the
   newest ``last`` (any negative: all; 0: none) and/or those whose commit is within ``in`` (``And``: both;
   ``Or``: either). A signature is kept when any selected reference keeps it.

**Reading only as deep as the policies can keep.** The commits that matter are known before the walk: those
of the metadata records (their dates are read first, in one ``git rev-list --no-walk``; commits the clone does
not have are left out). Each selected branch's history is streamed from one ``git rev-list --timestamp`` (git's
newest-first walk) and the stream is stopped as soon as no record commit that could still change what the
branch keeps is left unreached (:class:`_Walk`): a commit dated below the ``last``-th newest image found, or
outside ``in`` under ``And``, or superseded by a newer commit of the same signature, cannot. That rule is exact
whatever the clocks said (a commit made with a clock behind hides nothing beneath it; one made with a clock
ahead is still found). When such commits remain but none can be an ancestor by the dates (every commit still
to come is older than all of them, for :data:`SLOP` commits in a row: records of other branches, for example),
the walk also stops, as git's own ``--since`` does; only a history whose clocks went back by more than
:data:`SLOP` commits below such a record could hide it. Tags need no walk. Memory holds the records and one
reference's walk state, never the history.
"""

from __future__ import annotations

import bisect
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from ci_env.errors import ConfigError
from ci_env.gitinfo import REMOTE, GitRepository
from ci_env.werf_config.cleanup import AND, BRANCH, OR, REFERENCES_DEFAULT_LAST, TAG, KeepPolicy, Limit


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
    #: per (image, signature) kept: EVERY commit through which a selected reference keeps it (``kept`` names the
    #: first); the metadata records of these commits are the ones that keep the image (``ci_env.cleanup.metadata``)
    keeping: dict[tuple[str | None, str], set[str]] = field(default_factory=dict)
    references: int = 0  #: references the policies selected
    commits: int = 0  #: commits read from git (the walks of the references, and the record commits' dates)


@dataclass(frozen=True)
class Published:
    """One metadata record as the walk uses it: ``image`` published ``signature`` from ``commit``."""

    image: str | None
    commit: str
    signature: str


#: Commits walked past the point where, by their dates, nothing left can change a reference's verdict, before
#: its walk stops anyway: room for clocks that were wrong (git's ``--since`` allows 5).
SLOP = 100


class CommitLog:
    """Commits read from git on demand: the dates of chosen commits, and each reference's history streamed
    newest first, read only as far as its walk goes. ``read`` counts the commits read so far."""

    def __init__(self, repo: GitRepository) -> None:
        self.repo = repo
        self.read = 0

    def dates(self, commits: Iterable[str]) -> dict[str, int]:
        """The committer date (Unix seconds) of each of ``commits`` the repository has as a commit (one
        ``git cat-file`` and one ``git rev-list --no-walk``); the others are left out."""
        wanted = sorted(set(commits))
        if not wanted:
            return {}
        out = self.repo._git("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin="\n".join(wanted) + "\n")
        present = [line.split()[0] for line in out.splitlines() if line.endswith(" commit")]
        if not present:
            return {}
        out = self.repo._git("rev-list", "--no-walk=unsorted", "--timestamp", "--stdin",
                             stdin="\n".join(present) + "\n")
        found: dict[str, int] = {}
        for line in out.splitlines():
            stamp, sha = line.split(" ", 1)
            found[sha] = int(stamp)
        self.read += len(found)
        return found

    def walk(self, head: str) -> Iterator[tuple[str, int]]:
        """``head`` and its ancestors with their committer dates, in git's order (newest date first among the
        commits whose children were read), from a ``git rev-list`` that is stopped when the caller stops."""
        command = ["git", "-C", str(self.repo.path), "rev-list", "--timestamp", head, "--"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1 << 16)
        assert process.stdout is not None
        finished = False
        try:
            for line in process.stdout:
                stamp, sha = line.rstrip("\n").split(" ", 1)
                self.read += 1
                yield sha, int(stamp)
            finished = True
        finally:
            if not finished:
                process.kill()
            process.stdout.close()
            error = process.stderr.read() if process.stderr is not None else ""
            if process.stderr is not None:
                process.stderr.close()
            code = process.wait()
        if code != 0:
            lines = error.strip().splitlines()
            raise ConfigError(f"git rev-list failed in {self.repo.path}: {lines[-1] if lines else f'exit {code}'}")


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


class _Walk:
    """One reference's walk: which record commits it reached, and whether any left could still change its verdict.

    ``candidates[image]``: (date, commit) of every record commit of ``image``, oldest first. A candidate not
    reached yet is *dead* when it can no longer change what the reference keeps: dated at or before the
    threshold (``in``'s cutoff under ``And``; else below the ``last``-th newest image found so far, and outside
    ``in`` under ``Or``), or each signature it published already found at a commit at least as new. Everything
    a walk can learn only makes more candidates dead, so a pointer per image moves from the oldest up: the
    candidate it points at is the oldest one still alive."""

    def __init__(self, candidates: Mapping[str | None, Sequence[tuple[int, str]]],
                 published: Mapping[str, Sequence[Published]], limit: Limit, last: int, now: datetime) -> None:
        self.candidates = candidates
        self.published = published
        self.last = last
        within = limit.within is not None
        self.cutoff = (now - limit.within).timestamp() if limit.within is not None else float("-inf")
        self.by_in_only = within and limit.operator == AND
        self.either = within and limit.operator == OR
        self.best: dict[tuple[str | None, str], tuple[str, int]] = {}  # (image, signature) -> newest (commit, date)
        self.counts: dict[str | None, dict[str, int]] = {}  # image -> commit -> signatures it is the newest of
        self.ranked: dict[str | None, list[int]] = {}  # image -> dates of the commits of counts, ascending
        self.reached: set[str] = set()
        self.low = dict.fromkeys(candidates, 0)
        for image in candidates:
            self._advance(image)

    def _threshold(self, image: str | None) -> float:
        """Candidates of ``image`` dated at or before this cannot be kept by this reference."""
        if self.by_in_only:
            return self.cutoff
        ranked = self.ranked.get(image, [])
        by_last = float("-inf") if self.last < 0 or len(ranked) < self.last else float(ranked[-self.last])
        return min(by_last, self.cutoff) if self.either else by_last

    def _dead(self, image: str | None, date: int, sha: str, threshold: float) -> bool:
        if date <= threshold or sha in self.reached:
            return True
        return all(record.image != image or self.best.get((image, record.signature), ("", -1))[1] >= date
                   for record in self.published.get(sha, ()))

    def _advance(self, image: str | None) -> None:
        entries = self.candidates[image]
        index = self.low[image]
        threshold = self._threshold(image)
        while index < len(entries) and self._dead(image, entries[index][0], entries[index][1], threshold):
            index += 1
        self.low[image] = index

    def oldest_alive(self) -> int | None:
        """The date of the oldest candidate that could still change the verdict; None when there is none."""
        dates = [self.candidates[image][index][0] for image, index in self.low.items()
                 if index < len(self.candidates[image])]
        return min(dates) if dates else None

    def visit(self, sha: str, date: int) -> None:
        """Count the records of commit ``sha`` (dated ``date``): each signature at its newest commit."""
        records = self.published.get(sha)
        if not records:
            return
        self.reached.add(sha)
        touched: set[str | None] = set()
        for record in records:
            key = (record.image, record.signature)
            before = self.best.get(key)
            touched.add(record.image)
            if before is not None and before[1] >= date:
                continue
            self.best[key] = (sha, date)
            per_image = self.counts.setdefault(record.image, {})
            ranked = self.ranked.setdefault(record.image, [])
            if sha not in per_image:
                bisect.insort(ranked, date)
            per_image[sha] = per_image.get(sha, 0) + 1
            if before is not None:
                per_image[before[0]] -= 1
                if not per_image[before[0]]:
                    del per_image[before[0]]
                    del ranked[bisect.bisect_left(ranked, before[1])]
        for image in touched:
            if image in self.low:
                self._advance(image)

    def hits(self) -> dict[str | None, list[tuple[str, list[str]]]]:
        """Per image: (commit, signatures), each signature at its newest commit on the history."""
        grouped: dict[str | None, dict[str, list[str]]] = {}
        for (image, signature), (sha, _date) in self.best.items():
            grouped.setdefault(image, {}).setdefault(sha, []).append(signature)
        return {image: list(commits.items()) for image, commits in grouped.items()}


def _hits(
    log: CommitLog, ref: Reference, candidates: Mapping[str | None, Sequence[tuple[int, str]]],
    dates: Mapping[str, int], published: Mapping[str, Sequence[Published]], limit: Limit, last: int, now: datetime,
) -> dict[str | None, list[tuple[str, list[str]]]]:
    """Per image: (commit, signatures) the history of ``ref`` reaches, read only as deep as can matter (see the
    module docstring). Under ``And`` with ``in`` the walk goes on to ``in`` past ``last``, so that the images it
    passes over can be named in the plan."""
    walk = _Walk(candidates, published, limit, last, now)
    if ref.kind == TAG:
        if ref.head in dates:
            walk.visit(ref.head, dates[ref.head])
        return walk.hits()
    alive = walk.oldest_alive()
    if alive is None:
        return walk.hits()
    below = 0  # commits in a row dated before every candidate still alive
    for sha, date in log.walk(ref.head):
        walk.visit(sha, date)
        if sha in published:
            still = walk.oldest_alive()
            if still is None:
                break
            alive = still
        below = below + 1 if date < alive else 0
        if below > SLOP:
            break
    return walk.hits()


def read_history(
    policies: Sequence[KeepPolicy], refs: Sequence[Reference], repo: GitRepository, records: Iterable[Published],
    now: datetime,
) -> Verdict:
    """Which (image, signature) the policies keep, reading ``repo``'s history only as deep as they can keep."""
    return evaluate(policies, refs, CommitLog(repo), records, now)


def evaluate(
    policies: Sequence[KeepPolicy], refs: Sequence[Reference], log: CommitLog, records: Iterable[Published],
    now: datetime,
) -> Verdict:
    """Which (image, signature) the policies keep, and which they reached but did not keep."""
    published: dict[str, list[Published]] = {}
    for record in records:
        published.setdefault(record.commit, []).append(record)
    images = {record.image for records in published.values() for record in records}
    selected = select_references(policies, refs, now)
    tag_heads = [ref.head for ref in selected if ref.kind == TAG]
    dates = log.dates([*published, *tag_heads])  # record commits the clone has, and the tagged commits
    published = {sha: found for sha, found in published.items() if sha in dates}
    candidates: dict[str | None, list[tuple[int, str]]] = {image: [] for image in images}
    for sha, found in published.items():
        for image in {record.image for record in found}:
            candidates[image].append((dates[sha], sha))
    for entries in candidates.values():
        entries.sort()
    verdict = Verdict(references=len(selected))
    for ref, policy in sorted(selected.items(), key=lambda item: (item[1].number, -item[0].date.timestamp())):
        last = policy.images_last
        limit = policy.images_per_reference
        if last == 0:
            continue
        beyond = f"its images per reference ({limit.describe(1)}) of keep policy #{policy.number}"
        for image, commits in _hits(log, ref, candidates, dates, published, limit, last, now).items():
            commits.sort(key=lambda hit: dates[hit[0]], reverse=True)
            by_last = {sha for sha, _ in (commits if last < 0 else commits[:last])}
            by_in = {sha for sha, _ in commits if _within(_date(dates[sha]), limit.within, now)}
            keep = by_last | by_in if limit.operator == OR and limit.within is not None else by_last & by_in
            for position, (sha, signatures) in enumerate(commits, 1):
                for signature in signatures:
                    key = (image, signature)
                    if sha in keep:
                        verdict.kept.setdefault(key, Reach(policy, ref, sha, _date(dates[sha])))
                        verdict.keeping.setdefault(key, set()).add(sha)
                    else:
                        why = (f"{ref} reaches it at commit {sha[:12]} as image {position} (newest first), "
                               f"beyond {beyond}")
                        verdict.missed.setdefault(key, []).append(Miss(policy, ref, sha, why))
    verdict.commits = log.read
    return verdict


def _date(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, tz=timezone.utc)
