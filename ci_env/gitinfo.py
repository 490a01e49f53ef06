"""Git history facts for cleanup, read through the ``git`` command line.

Cleanup decides from git history whether a tag is still needed: does its branch still
exist (locally or as ``origin/*``), does its git tag, is its commit still reachable, and
how old are they. Everything is read in a handful of ``git`` processes, whatever the
number of tags (``cat-file --batch-check``, ``for-each-ref``, one ``rev-list``).

A shallow clone hides history, and a clone that fetched some branches of ``origin`` only (``git clone
--single-branch``, a fetch refspec not covering ``refs/heads/*``, a CI checkout of the pipeline's branch)
hides the others, which would look deleted: :func:`open_repository` refuses both with a
:class:`~ci_env.errors.ConfigError` unless asked to synchronise, in which case it fetches every branch and
tag from ``origin`` (pruning deleted ones) and unshallows the clone.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ci_env.errors import ConfigError, PreflightError
from ci_env.redact import strip_userinfo_in

#: The remote whose branches count as existing (``origin/*``), as CI systems name the clone's remote.
REMOTE = "origin"
_SHA = re.compile(r"[0-9a-f]{4,64}")


@dataclass(frozen=True)
class GitTag:
    """A git tag: its name, the commit it points at and its date (tagger date, else the commit date)."""

    name: str
    commit: str
    date: datetime


@dataclass(frozen=True)
class CommitInfo:
    """A commit found in the repository and reachable from a branch or tag, with its committer date."""

    sha: str
    date: datetime


@dataclass(frozen=True)
class GitFacts:
    """What cleanup needs to know about the repository, read once.

    ``branches``: local branch names and ``origin/*`` names without the ``origin/`` prefix.
    ``tags``: git tag name -> :class:`GitTag`. ``commits``: for each commit asked about that is
    reachable from some ref, its :class:`CommitInfo` (full and given abbreviations both map).
    """

    branches: frozenset[str]
    tags: dict[str, GitTag] = field(default_factory=dict)
    commits: dict[str, CommitInfo] = field(default_factory=dict)
    shallow: bool = False

    def branch_exists(self, name: str) -> bool:
        """True when ``name`` is a local branch or a branch of ``origin``."""
        return name in self.branches

    def commit(self, sha: str) -> CommitInfo | None:
        """The reachable commit ``sha`` (full or abbreviated as asked), or None when it is gone."""
        return self.commits.get(sha.lower())


def _utc(timestamp: str) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=timezone.utc)


class GitRepository:
    """A git working copy or bare repository at ``path``, queried through the ``git`` program."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if shutil.which("git") is None:
            raise PreflightError("cleanup reads git history but the 'git' program is not installed: install git")

    def _git(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run git in the repository and return its stdout; ConfigError with git's message on failure."""
        result = subprocess.run(
            ["git", "-C", str(self.path), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            raise ConfigError(f"git {args[0]} failed in {self.path}: {strip_userinfo_in(message)}")
        return result.stdout

    def check(self) -> None:
        """ConfigError unless ``path`` is inside a git repository."""
        result = subprocess.run(
            ["git", "-C", str(self.path), "rev-parse", "--git-dir"], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ConfigError(
                f"{self.path} is not a git repository: run cleanup from the project's clone "
                "(or pass --dir PATH), since its policies read branches, tags and commits"
            )

    def is_shallow(self) -> bool:
        """True when the clone is shallow (``git rev-parse --is-shallow-repository``)."""
        return self._git("rev-parse", "--is-shallow-repository").strip() == "true"

    def branches(self) -> frozenset[str]:
        """Local branches and ``origin/*`` branches (prefix removed; ``origin/HEAD`` ignored)."""
        out = self._git("for-each-ref", "--format=%(refname)", "refs/heads", f"refs/remotes/{REMOTE}")
        names: set[str] = set()
        remote_prefix = f"refs/remotes/{REMOTE}/"
        for ref in out.splitlines():
            if ref.startswith("refs/heads/"):
                names.add(ref[len("refs/heads/"):])
            elif ref.startswith(remote_prefix) and ref != f"{remote_prefix}HEAD":
                names.add(ref[len(remote_prefix):])
        return frozenset(names)

    def tags(self) -> dict[str, GitTag]:
        """Every git tag with the commit it points at and its date (annotated: tagger date)."""
        out = self._git(
            "for-each-ref",
            "--format=%(refname:strip=2)%09%(creatordate:unix)%09%(objectname)%09%(*objectname)",
            "refs/tags",
        )
        tags: dict[str, GitTag] = {}
        for line in out.splitlines():
            name, date, obj, peeled = line.split("\t")
            tags[name] = GitTag(name, peeled or obj, _utc(date or "0"))
        return tags

    def reachable_commits(self, shas: Iterable[str]) -> dict[str, CommitInfo]:
        """For each of ``shas`` that names a commit reachable from a branch or tag: its info.

        Keys are the shas as given (lower-cased) and the full shas. Strings that are not
        hexadecimal, missing objects and unreachable commits (e.g. of a deleted branch, not yet
        garbage collected) are simply absent.
        """
        wanted = sorted({s.lower() for s in shas if _SHA.fullmatch(s.lower())})
        if not wanted:
            return {}
        out = self._git("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin="\n".join(wanted) + "\n")
        full: dict[str, str] = {}
        for asked, line in zip(wanted, out.splitlines(), strict=True):
            parts = line.split()
            if len(parts) == 2 and parts[1] == "commit":
                full[asked] = parts[0]
        if not full:
            return {}
        reachable = set(self._git("rev-list", "--branches", "--tags", f"--remotes={REMOTE}").split())
        found = sorted({sha for sha in full.values() if sha in reachable})
        if not found:
            return {}
        dates: dict[str, datetime] = {}
        log = self._git("log", "--no-walk=unsorted", "--stdin", "--format=%H %ct", stdin="\n".join(found) + "\n")
        for line in log.splitlines():
            sha, _, ts = line.partition(" ")
            dates[sha] = _utc(ts)
        result: dict[str, CommitInfo] = {}
        for asked, sha in full.items():
            if sha in dates:
                info = CommitInfo(sha, dates[sha])
                result[asked] = info
                result[sha] = info
        return result

    def hidden_branches(self) -> str | None:
        """Why this clone may not show every branch of ``origin`` (one phrase for the message), or None.

        A repository without ``origin`` shows its own branches: None. Otherwise ``remote.origin.fetch`` must
        have a refspec bringing every branch (``+refs/heads/*:refs/remotes/origin/*``, or a mirror's into
        ``refs/heads/*``) and no negative one; and a clone with no ``origin/HEAD`` (so not made by a plain
        ``git clone``: a CI checkout, ``git init`` + ``fetch`` of chosen refs) must show more than one branch
        of ``origin``, since CI systems fetch the pipeline's branch only."""
        if not self.has_remote():
            return None
        result = subprocess.run(["git", "-C", str(self.path), "config", "--get-all", f"remote.{REMOTE}.fetch"],
                                capture_output=True, text=True, check=False)
        refspecs = result.stdout.split()
        if not refspecs:
            return f"remote.{REMOTE}.fetch is not set, so fetching brings no branch of {REMOTE}"
        negative = [spec for spec in refspecs if spec.startswith("^")]
        if negative:
            return f"its fetch refspec excludes branches (remote.{REMOTE}.fetch {negative[0]})"
        if not any(_brings_every_branch(spec) for spec in refspecs):
            return (f"its fetch refspec (remote.{REMOTE}.fetch {' '.join(refspecs)}) does not cover "
                    f"refs/heads/* of {REMOTE}: a single-branch clone")
        remote = self._git("for-each-ref", "--format=%(refname)", f"refs/remotes/{REMOTE}").split()
        head = f"refs/remotes/{REMOTE}/HEAD"
        branches = [ref[len(f"refs/remotes/{REMOTE}/"):] for ref in remote if ref != head]
        if head not in remote and len(branches) <= 1:
            shown = f"only {REMOTE}/{branches[0]}" if branches else f"no branch of {REMOTE}"
            return f"it has {shown} and no {REMOTE}/HEAD: a CI checkout of one branch"
        return None

    def hidden_tags(self) -> str | None:
        """Why this clone may not show the git tags of ``origin`` (one phrase for the message), or None: a clone
        made with ``--no-tags`` (``remote.origin.tagOpt --no-tags``) whose fetch refspecs do not bring
        ``refs/tags/*`` fetches no tag, so every git tag would look deleted."""
        if not self.has_remote():
            return None
        tag_opt = self._git("config", "--get", f"remote.{REMOTE}.tagOpt", check=False).strip()
        if tag_opt != "--no-tags":
            return None
        refspecs = self._git("config", "--get-all", f"remote.{REMOTE}.fetch", check=False).split()
        if any(spec.lstrip("+").partition(":")[0] in ("refs/tags/*", "refs/*") for spec in refspecs):
            return None
        return f"remote.{REMOTE}.tagOpt --no-tags"

    def other_remotes(self) -> list[str]:
        """The remotes of a repository that has no ``origin`` (a clone made with ``--origin NAME``, a renamed
        remote): their branches are not read, so they would look deleted. Empty when ``origin`` exists."""
        remotes = self._git("remote").split()
        return [] if REMOTE in remotes else remotes

    def has_remote(self, name: str = REMOTE) -> bool:
        """True when the repository has a remote called ``name``."""
        return name in self._git("remote").split()

    def synchronize(self) -> None:
        """Fetch every branch and tag of ``origin``, pruning deleted ones; unshallow a shallow clone.

        PreflightError when there is no ``origin`` remote or the fetch fails (git's message included).
        """
        if not self.has_remote():
            raise PreflightError(
                f"--git-history-synchronization needs a remote named '{REMOTE}' in {self.path}: add it "
                "(git remote add origin URL) or run without synchronisation on a full clone"
            )
        args = ["fetch", "--prune", "--force"]
        if self.is_shallow():
            args.append("--unshallow")
        # Explicit refspecs: a CI clone often fetches one branch only, and --prune-tags is ignored
        # when refspecs are given; these fetch and prune every branch and every tag.
        args += [REMOTE, f"+refs/heads/*:refs/remotes/{REMOTE}/*", "+refs/tags/*:refs/tags/*"]
        result = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            last = strip_userinfo_in(last)
            raise PreflightError(f"git history synchronisation failed (git {' '.join(args)}): {last}")

    def facts(self, commits: Sequence[str] = ()) -> GitFacts:
        """Read branches, tags and the given commits in one go."""
        return GitFacts(
            branches=self.branches(),
            tags=self.tags(),
            commits=self.reachable_commits(commits),
            shallow=self.is_shallow(),
        )


def open_repository(path: Path, *, synchronize: bool = False) -> GitRepository:
    """The repository at ``path``, ready for cleanup to read.

    With ``synchronize``, fetches branches and tags from ``origin`` first (unshallowing if needed).
    Without it, a shallow clone, or one that hides branches of ``origin`` (:meth:`GitRepository.hidden_branches`),
    raises ConfigError (exit 2) saying how to fix it, since its missing history or branches would look deleted.
    """
    repo = GitRepository(path)
    repo.check()
    if synchronize:
        repo.synchronize()
    elif repo.is_shallow():
        raise ConfigError(
            f"{path} is a shallow clone: cleanup needs the full git history to tell deleted branches, tags and "
            "commits from ones the clone does not show. Pass --git-history-synchronization "
            "(WERF_GIT_HISTORY_SYNCHRONIZATION=true) to fetch it (on GitLab, which fetches the pipeline's branch "
            "only, use it with GIT_DEPTH: 0), or clone with full depth (GitHub: actions/checkout with "
            "fetch-depth: 0)"
        )
    else:
        others = repo.other_remotes()
        if others:
            raise ConfigError(
                f"{path} is a clone that names its remote {', '.join(others)}, not {REMOTE}: cleanup reads the "
                f"branches of {REMOTE} (refs/remotes/{REMOTE}/*) and would take every branch of {others[0]} for "
                f"deleted and remove its images. Rename it (git remote rename {others[0]} {REMOTE}), then pass "
                "--git-history-synchronization (WERF_GIT_HISTORY_SYNCHRONIZATION=true) or fetch every branch"
            )
        tags = repo.hidden_tags()
        if tags is not None:
            raise ConfigError(
                f"{path} is a clone that hides the git tags of {REMOTE} ({tags}): cleanup would take every git "
                "tag it does not show for deleted and remove its images. Pass --git-history-synchronization "
                "(WERF_GIT_HISTORY_SYNCHRONIZATION=true) to fetch every branch and tag first, or fetch the tags "
                f"(git config --unset remote.{REMOTE}.tagOpt; git fetch --tags {REMOTE})"
            )
        hidden = repo.hidden_branches()
        if hidden is not None:
            raise ConfigError(
                f"{path} is a clone that hides branches of {REMOTE} ({hidden}): cleanup would take every branch "
                "it does not show for deleted and remove its images. Pass --git-history-synchronization "
                "(WERF_GIT_HISTORY_SYNCHRONIZATION=true) to fetch every branch and tag first (GitLab CI fetches "
                "the pipeline's branch only, even with GIT_DEPTH: 0), or clone every branch (GitHub: "
                "actions/checkout with fetch-depth: 0; git clone without --single-branch or --depth)"
            )
    return repo


def _brings_every_branch(refspec: str) -> bool:
    """Whether a fetch refspec brings every branch of origin where :meth:`GitRepository.branches` reads them."""
    source, _, destination = refspec.lstrip("+").partition(":")
    return (source, destination) in (("refs/heads/*", f"refs/remotes/{REMOTE}/*"), ("refs/heads/*", "refs/heads/*"),
                                     ("refs/*", "refs/*"))
