"""A resumable cleanup: the removals a run planned, and those it finished.

Before its first removal, cleanup writes the journal: one JSON document per line, a header (command, images
repo, stages storage, when) and one line per planned removal with the digest its tag pointed at when planned,
written whole to a temporary file and renamed into place. Each finished removal then appends one line (its
outcome), flushed at once, so a run killed at any moment leaves every removal it finished on record (a last
line cut short is ignored). A run that ends with every removal done deletes its journal.

The next run against the same images repo and stages storage finds the journal, plans afresh, and removes
first the journal's pending removals that today's plan removes too (``ci_env.cleanup.resume``): a journal says
what to finish first, never what may be removed. Where the journal lives: ``--journal PATH``
(``WERF_CLEANUP_JOURNAL``), else ``$XDG_STATE_HOME/ci-env/journal/<command>-<hash of images repo and stages
storage>.jsonl`` (``~/.local/state`` without ``XDG_STATE_HOME``). It is written 0600 (directories made 0700),
and read only when it is a regular file reached without a symlink, owned by the user running cleanup and not
writable by group or others, in a directory no one else may write to (``load``). Its header names the CI ref
the run was for (``current_ref``), so a journal from another branch's cache is recognised and ignored.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from ci_env.errors import UsageError
from ci_env.registry.outcomes import Status

SCHEMA = "ci-env-cleanup-journal/v1"
#: a journal older than this is set aside: the run plans afresh (what the policies keep may have changed).
MAX_AGE = timedelta(days=7)
#: the outcome of a planned removal that a protection (in use, --keep-tag, --keep-list) now keeps.
PROTECTED = "protected"
#: outcomes that finish a planned removal (a failed one is planned again by the next run's own plan).
FINISHED = frozenset({Status.REMOVED, Status.ABSENT, Status.FAILED, Status.MOVED, PROTECTED})


@dataclass(frozen=True)
class Entry:
    """One planned removal: the tag, the digest it pointed at when planned, and what it was."""

    repository: str
    tag: str
    digest: str | None
    kind: str = "tag"
    image: str | None = None
    published: str | None = None  #: the tag as published, where it differs from the stored one (monorepo)

    @property
    def key(self) -> tuple[str, str]:
        return self.repository, self.tag

    def as_json(self) -> dict[str, Any]:
        return {"repository": self.repository, "tag": self.tag, "digest": self.digest, "kind": self.kind,
                "image": self.image, "published": self.published}


@dataclass(frozen=True)
class Target:
    """What a journal is for: the command and its repositories (a journal for another target is not used)."""

    command: str
    images_repo: str
    stages_storage: str | None

    def digest(self) -> str:
        text = "\n".join((self.command, self.images_repo, self.stages_storage or ""))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class State:
    """A journal as read: its target, when it was written, the planned removals and the finished ones."""

    path: Path
    target: Target
    created: datetime
    entries: tuple[Entry, ...]
    done: Mapping[tuple[str, str], str] = field(default_factory=dict)
    ref: str | None = None  #: the CI ref (branch or tag) of the run that wrote it, None outside CI

    @property
    def pending(self) -> tuple[Entry, ...]:
        """The planned removals not finished yet, in the planned order."""
        return tuple(e for e in self.entries if self.done.get(e.key) not in FINISHED)


def default_path(env: Mapping[str, str], target: Target) -> Path:
    """Where the journal of ``target`` lives unless ``--journal`` says otherwise."""
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "ci-env" / "journal" / f"{target.command}-{target.digest()}.jsonl"


def current_ref(env: Mapping[str, str]) -> str | None:
    """The CI ref (branch or tag name) this job runs for, as the CI system says; None outside CI."""
    from ci_env.ci import detect

    return detect(env).ref_name


def tracked_by_git(path: Path, directory: Path) -> bool:
    """Whether ``path`` is a file git tracks in the clone at ``directory`` (False when it cannot tell): such a
    file comes with the checkout, from whoever committed it, so it is never taken for a journal."""
    try:
        result = subprocess.run(["git", "-C", str(directory), "ls-files", "--error-unmatch", "--",
                                 str(path.absolute())], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _refuse(path: Path, why: str) -> UsageError:
    return UsageError(f"the cleanup journal {path} {why}: only a journal of your own that no one else can "
                      "change is used; delete it (the run then plans afresh) or pass another --journal PATH")


def _read_checked(path: Path) -> str | None:
    """The text of the journal at ``path`` (None when there is none), read only when the file and its directory
    pass the checks of the module docstring; UsageError (one line) naming the one that failed."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        _check_directory(path)  # where this run's journal goes: refused now, not by the next run
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse(path, "is a symlink") from None
        raise UsageError(f"the cleanup journal {path} cannot be read: {exc.strerror or exc}; fix its permissions "
                         "or pass another --journal PATH") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _check_file(path, info)
        _check_directory(path)
        data = handle.read()
    return data.decode("utf-8", errors="replace")


def _check_file(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, "is not a regular file")
    if info.st_uid != os.geteuid():
        raise _refuse(path, f"is owned by uid {info.st_uid}, not by the user running cleanup (uid {os.geteuid()})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _refuse(path, f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o}; chmod 600 "
                      "it if it is yours)")


def _check_directory(path: Path) -> None:
    """The directory holding the journal: not a symlink, owned by the user or root, and not writable by group
    or others unless sticky (as /tmp is: no one can replace another's file there)."""
    directory = path.parent
    try:
        info = os.lstat(directory)
    except OSError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise _refuse(path, f"is reached through a symlink ({directory})")
    if info.st_uid not in (os.geteuid(), 0):
        raise _refuse(path, f"is in {directory}, owned by uid {info.st_uid}, not by the user running cleanup")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not info.st_mode & stat.S_ISVTX:
        raise _refuse(path, f"is in {directory}, which group or others can write to (mode "
                      f"{stat.S_IMODE(info.st_mode):04o}; chmod go-w it)")


def load(path: Path, target: Target, *, now: datetime | None = None) -> State | None:
    """The journal at ``path`` for ``target``, or None when there is none (or it is older than ``MAX_AGE``).

    UsageError (one line) when the file fails the checks of the module docstring (a symlink, not owned by the
    user, writable by group or others, in a directory others can write to), is not a journal, or is the journal
    of another command or images repo (a ``--journal`` shared by two cleanups by mistake): nothing is removed.
    """
    text = _read_checked(path)
    if text is None:
        return None
    lines = text.splitlines()
    header = _json_line(lines[0]) if lines else None
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        raise UsageError(f"{path} is not a ci-env cleanup journal; delete it or pass another --journal PATH")
    found = Target(str(header.get("command")), str(header.get("images_repo")),
                   header.get("stages_storage") if isinstance(header.get("stages_storage"), str) else None)
    if found != target:
        raise UsageError(f"the cleanup journal {path} belongs to `{found.command}` of {found.images_repo}, not to "
                         f"this `{target.command}` of {target.images_repo}; pass another --journal PATH")
    try:
        created = datetime.fromisoformat(str(header.get("created")).replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{path} is not a ci-env cleanup journal (no valid `created`); delete it") from None
    if (now or datetime.now(timezone.utc)) - created > MAX_AGE:
        return None
    entries: list[Entry] = []
    done: dict[tuple[str, str], str] = {}
    for line in lines[1:]:
        record = _json_line(line)
        if not isinstance(record, dict):
            continue  # a line cut short by a kill
        planned = record.get("plan")
        if isinstance(planned, dict) and isinstance(planned.get("repository"), str) and \
                isinstance(planned.get("tag"), str):
            entries.append(Entry(planned["repository"], planned["tag"], _text(planned.get("digest")),
                                 str(planned.get("kind") or "tag"), _text(planned.get("image")),
                                 _text(planned.get("published"))))
        finished = record.get("done")
        if isinstance(finished, list) and len(finished) == 2 and all(isinstance(x, str) for x in finished):
            done[(finished[0], finished[1])] = str(record.get("outcome"))
    ref = header.get("ref")
    return State(path, target, created, tuple(entries), done, ref if isinstance(ref, str) else None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


class Journal:
    """The journal being written: ``record`` each finished removal (from any thread), ``finish`` when all
    are done (the file is deleted), ``close`` otherwise (it stays for the next run)."""

    def __init__(self, path: Path, handle: IO[str]) -> None:
        self.path = path
        self._handle = handle
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: Path, target: Target, entries: Iterable[Entry], *, now: datetime | None = None,
               ref: str | None = None) -> Journal:
        """Write the plan to ``path`` (atomically: a 0600 temporary file renamed into place, directories made
        0700; a symlink at ``path`` is replaced, never followed) and keep it open for outcomes. ``ref``: the CI
        ref of the run (``current_ref``). UsageError when the directory cannot be made or written."""
        created = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        header = {"schema": SCHEMA, "command": target.command, "images_repo": target.images_repo,
                  "stages_storage": target.stages_storage, "created": created.isoformat().replace("+00:00", "Z"),
                  "ref": ref}
        lines = [json.dumps(header)] + [json.dumps({"plan": e.as_json()}) for e in entries]
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
            handle = os.fdopen(fd, "w", encoding="utf-8")
            try:
                handle.write("\n".join(lines) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
                os.replace(tmp, path)
            except OSError:
                handle.close()
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise UsageError(f"the cleanup journal {path} cannot be written: {exc.strerror or exc}; pass "
                             "--journal PATH in a writable directory") from None
        return cls(path, handle)

    def record(self, repository: str, tag: str, outcome: str) -> None:
        """Note that the removal of ``repository:tag`` finished with ``outcome`` (one line, flushed now)."""
        line = json.dumps({"done": [repository, tag], "outcome": outcome}) + "\n"
        with self._lock:
            if self._handle.closed:
                return
            self._handle.write(line)
            self._handle.flush()

    def record_all(self, outcomes: Sequence[tuple[str, str, str]]) -> None:
        """``record`` each of (repository, tag, outcome)."""
        for repository, tag, outcome in outcomes:
            self.record(repository, tag, outcome)

    def close(self) -> None:
        """Keep the journal for the next run (its outcomes synced to disk)."""
        with self._lock:
            if not self._handle.closed:
                with contextlib.suppress(OSError):
                    self._handle.flush()
                    os.fsync(self._handle.fileno())
                self._handle.close()

    def finish(self) -> None:
        """Every planned removal is done: the journal is deleted."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
