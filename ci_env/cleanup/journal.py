"""A resumable cleanup: the removals a run planned, and those it finished.

Before its first removal, cleanup writes the journal: one JSON document per line, a header (command, images
repo, stages storage, when) and one line per planned removal with the digest its tag pointed at when planned,
written whole to a temporary file and renamed into place. Each finished removal then appends one line (its
outcome), flushed at once, so a run killed at any moment leaves every removal it finished on record (a last
line cut short is ignored). A run that ends with every removal done deletes its journal.

The next run against the same images repo and stages storage finds the journal and finishes it first:
only the planned removals not yet done, and only those whose tag still points at the planned digest; nothing
else. Where the journal lives: ``--journal PATH`` (``WERF_CLEANUP_JOURNAL``), else
``$XDG_STATE_HOME/ci-env/journal/<command>-<hash of images repo and stages storage>.jsonl`` (``~/.local/state``
without ``XDG_STATE_HOME``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from ci_env.errors import UsageError

SCHEMA = "ci-env-cleanup-journal/v1"
#: a journal older than this is set aside: the run plans afresh (what the policies keep may have changed).
MAX_AGE = timedelta(days=7)
#: the outcome of a planned removal whose tag points elsewhere now: not removed.
MOVED = "moved"
#: the outcome of a planned removal that a protection (in use, --keep-tag, --keep-list) now keeps.
PROTECTED = "protected"
#: outcomes that finish a planned removal (a failed one is planned again by the next run's own plan).
FINISHED = frozenset({"removed", "absent", "failed", MOVED, PROTECTED})


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

    @property
    def pending(self) -> tuple[Entry, ...]:
        """The planned removals not finished yet, in the planned order."""
        return tuple(e for e in self.entries if self.done.get(e.key) not in FINISHED)


def default_path(env: Mapping[str, str], target: Target) -> Path:
    """Where the journal of ``target`` lives unless ``--journal`` says otherwise."""
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "ci-env" / "journal" / f"{target.command}-{target.digest()}.jsonl"


def load(path: Path, target: Target, *, now: datetime | None = None) -> State | None:
    """The journal at ``path`` for ``target``, or None when there is none (or it is older than ``MAX_AGE``).

    UsageError when the file exists but is not a journal, or is the journal of another command or images repo
    (a ``--journal`` shared by two cleanups by mistake): nothing is removed then.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(f"the cleanup journal {path} cannot be read: {exc.strerror or exc}; fix its permissions "
                         "or pass another --journal") from None
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
    return State(path, target, created, tuple(entries), done)


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
    def create(cls, path: Path, target: Target, entries: Iterable[Entry], *, now: datetime | None = None) -> Journal:
        """Write the plan to ``path`` (atomically: a temporary file renamed into place) and open it for outcomes.
        UsageError when the directory cannot be made or written."""
        created = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        header = {"schema": SCHEMA, "command": target.command, "images_repo": target.images_repo,
                  "stages_storage": target.stages_storage, "created": created.isoformat().replace("+00:00", "Z")}
        lines = [json.dumps(header)] + [json.dumps({"plan": e.as_json()}) for e in entries]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write("\n".join(lines) + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except OSError:
                Path(tmp).unlink(missing_ok=True)
                raise
            handle = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"the cleanup journal {path} cannot be written: {exc.strerror or exc}; pass "
                             "--journal PATH in a writable directory") from None
        return cls(path, handle)

    @classmethod
    def reopen(cls, state: State) -> Journal:
        """Append the outcomes of a resumed journal to it."""
        try:
            handle = state.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"the cleanup journal {state.path} cannot be written: {exc.strerror or exc}") from None
        return cls(state.path, handle)

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
