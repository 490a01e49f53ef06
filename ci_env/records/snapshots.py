"""Publication records in a registry stages storage: written one by one, read back from snapshots.

**Writing** (build-and-publish, never reads anything): every write of a publication record is a NEW tag,
``ci-env-pub-<key>-<version>`` (:func:`record_tag`): ``key`` the 32 hex of the full name
(``ci_env.records.model.publication_key``), ``version`` the writer's UTC time to the microsecond and 8 random hex digits
(:func:`new_version`). A tag is written once and never changes, so a reader that has seen a tag knows its
content for good. Publishing the same full name again writes a second tag of the same key.

**Compacting** (cleanup, at the end of a run that changes something, :func:`compact`): the records a reader
found are written into ONE new snapshot, an immutable OCI manifest tagged ``ci-env-snapshot-<version>`` whose
layers are gzipped JSON lines: one line per record (the tag it came from, its version, the record) and one
per tag it accounts for without keeping its record (a record superseded by a newer one of the same key, a
record forgotten because its image tag is gone). Only then are the record tags it accounts for retired, and
the snapshots it was made from deleted. Nothing is ever read, modified and written back.

**Reading** (:func:`read_state`): one listing of the stages repository, the snapshots in it (a manifest and
its layers each: normally one), then only the record tags no snapshot accounts for, one GET each. So a reader
costs the listing, the snapshot and what was published since the last compaction. Per key the newest wins:
a record tag no snapshot accounts for always beats a snapshot's copy (it did not exist when that snapshot
listed the repository, so it was written later, whatever the clocks say); between snapshot copies, or
between several new tags of one key, the higher version wins.

Why nothing is lost when a record is written during a compaction: the compaction writes into its snapshot
and retires only tags it saw in its listing; a tag written after that listing is in no snapshot and is never
retired by it, so the next reader reads it one by one, and it wins over the snapshot's copy of its key.
Two compactions at once each write a snapshot and delete only the snapshots they read; a reader merges every
snapshot it finds. A reader that finds a snapshot or a record gone between listing and reading (another
compaction retired it) lists again.

**Legacy records** (``ci-env-publication-<key>``, written by ci-env before snapshots): their tag is rewritten
in place when the same full name is published again, so a snapshot cannot vouch for a legacy tag by name.
They are read one by one (as before) and compaction folds them into its snapshot under ``tag@digest``, then
deletes each by the digest it read: a DELETE by digest removes the record only when the tag still holds what
was read, so a record rewritten meanwhile (by an older ci-env) survives and is read next time. A legacy tag
whose ``tag@digest`` a snapshot accounts for is ignored when it is still there.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ci_env.errors import CiEnvError
from ci_env.records.model import SNAPSHOT_KIND, SNAPSHOT_LAYER, Publication

if TYPE_CHECKING:
    from ci_env.records.registry import RegistryStore

__all__ = ["SNAPSHOT_KIND", "SNAPSHOT_LAYER"]

RECORD_PREFIX = "ci-env-pub-"
LEGACY_PREFIX = "ci-env-publication-"
SNAPSHOT_PREFIX = "ci-env-snapshot-"
#: Records per snapshot layer (a layer of 20,000 records is about 2 MB gzipped).
LAYER_RECORDS = 20_000
#: Tags retired per batch: one PUT per tag and one DELETE per batch.
RETIRE_BATCH = 1000
#: How often a reader lists again when a snapshot or record vanished while it read (another compaction).
READ_ATTEMPTS = 3
_VERSION = r"\d{20}-[0-9a-f]{8}"
_RECORD_TAG = re.compile(rf"ci-env-pub-([0-9a-f]{{32}})-({_VERSION})")
_SNAPSHOT_TAG = re.compile(rf"ci-env-snapshot-({_VERSION})")
_LEGACY_TAG = re.compile(r"ci-env-publication-([0-9a-f]{32})")

Progress = Callable[[str, int, int], None]


def new_version(now: datetime | None = None) -> str:
    """``YYYYmmddHHMMSSffffff-<8 random hex>``: sorts by the writer's UTC time, unique per write."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{moment:%Y%m%d%H%M%S%f}-{secrets.token_hex(4)}"


def legacy_version(published_at: str) -> str:
    """The version a legacy record sorts as: its publication time (to the second) and zeros."""
    digits = "".join(c for c in published_at if c.isdigit())[:14].ljust(14, "0")
    return f"{digits}000000-00000000"


def record_tag(key: str, version: str | None = None) -> str:
    """The tag of one write of the publication record ``key``."""
    return f"{RECORD_PREFIX}{key}-{version or new_version()}"


def parse_record_tag(tag: str) -> tuple[str, str] | None:
    """(key, version) of a tag written by :func:`record_tag`, else None."""
    match = _RECORD_TAG.fullmatch(tag)
    return (match.group(1), match.group(2)) if match else None


def parse_legacy_tag(tag: str) -> str | None:
    """The key of a legacy record tag (``ci-env-publication-<key>``), else None."""
    match = _LEGACY_TAG.fullmatch(tag)
    return match.group(1) if match else None


def is_snapshot_tag(tag: str) -> bool:
    return _SNAPSHOT_TAG.fullmatch(tag) is not None


@dataclass(frozen=True, slots=True)
class Entry:
    """One publication record as a reader found it: its version, the record, whether a snapshot held it, and for a
    legacy record where from (``tag@digest``)."""

    version: str
    publication: Publication
    compacted: bool
    legacy: str | None = None

    @property
    def source(self) -> str:
        """The record tag it came from (``tag@digest`` for a legacy record)."""
        return self.legacy or record_tag(self.publication.key, self.version)


def _key_of(source: str) -> str | None:
    """The record key of a versioned record tag or a legacy ``tag@digest``."""
    parsed = parse_record_tag(source)
    return parsed[0] if parsed is not None else parse_legacy_tag(source.split("@", 1)[0])


@dataclass
class PublicationState:
    """What one reading of the stages repository found: the winning record per key, every tag it accounts for,
    and what a compaction may retire after writing its snapshot."""

    winners: dict[str, Entry] = field(default_factory=dict)
    #: versioned record tags in the listing whose content is known (in a snapshot or read now)
    accounted: set[str] = field(default_factory=set)
    #: legacy ``tag@digest`` read now (or ignored because a snapshot accounts for it)
    legacy: set[str] = field(default_factory=set)
    #: snapshot tag -> manifest digest, every snapshot read
    snapshots: dict[str, str] = field(default_factory=dict)
    #: record tags read one by one (those no snapshot accounted for), for the numbers
    read_individually: int = 0
    #: sources the snapshots account for besides their winners: the covered lines, the snapshot copies that lost
    superseded: set[str] = field(default_factory=set)
    #: every versioned record tag and snapshot tag of the listing read (what :func:`written_since` compares with)
    listed: frozenset[str] = frozenset()

    @property
    def publications(self) -> list[Publication]:
        """Every winning record, sorted by full name."""
        return sorted((e.publication for e in self.winners.values()), key=lambda p: p.full_name)

    def needs_compaction(self) -> bool:
        """True when a compaction would change something: record tags left in the listing (read one by one, or
        already in a snapshot but not yet retired), or several snapshots."""
        return bool(self.accounted) or bool(self.legacy) or len(self.snapshots) > 1

    def is_winner(self, source: str, *, compacted: bool | None = None) -> bool:
        """True when ``source`` is where the winner of its key came from (and, given, it was or was not compacted)."""
        key = _key_of(source)
        winner = self.winners.get(key) if key is not None else None
        return (winner is not None and (compacted is None or winner.compacted == compacted)
                and winner.source == source)

    def covers(self, source: str) -> bool:
        """True when the snapshots read account for record tag ``source`` (a legacy one as ``tag@digest``)."""
        return source in self.superseded or self.is_winner(source, compacted=True)

    def merge(self, entry: Entry) -> None:
        """Keep ``entry`` when it beats the current winner of its key (see the module docstring); a snapshot copy
        that loses stays accounted for."""
        key = entry.publication.key
        current = self.winners.get(key)
        if current is None or _beats(entry, current):
            self.winners[key] = entry
            loser = current
        else:
            loser = entry
        if loser is not None and loser.compacted:
            self.superseded.add(loser.source)


def _beats(entry: Entry, current: Entry) -> bool:
    if entry.compacted != current.compacted:
        return not entry.compacted
    return entry.version > current.version


class _Vanished(Exception):
    """A snapshot or record tag listed a moment ago is gone: list again."""


# ------------------------------------------------------------------------------------------------ reading


def read_state(store: RegistryStore, *, parallel: int = 8, progress: Progress | None = None) -> PublicationState:
    """Every publication record of ``store``: its snapshots, then the record tags none accounts for.

    Lists again (at most :data:`READ_ATTEMPTS` times) when a snapshot or record vanished while it was read;
    on the last attempt, what keeps vanishing is left out (its image tags are then judged by their labels,
    which keeps what cannot be judged)."""
    for attempt in range(READ_ATTEMPTS):
        tags = store.listed_tags(fresh=attempt > 0)
        try:
            return _read_once(store, tags, parallel, progress, tolerate=attempt == READ_ATTEMPTS - 1)
        except _Vanished:
            continue
    raise AssertionError("unreachable: the last attempt tolerates vanished tags")


def _read_once(
    store: RegistryStore, tags: Sequence[str], parallel: int, progress: Progress | None, tolerate: bool = False,
) -> PublicationState:
    """The publication state of ``tags`` read once (``tolerate``: a tag that vanished meanwhile is skipped, else
    ``_Vanished`` is raised).

    Size: snapshots first, then the records no snapshot covers, read in parallel and classified against the
    snapshots alone; the steps fill one PublicationState."""
    state = PublicationState()
    state.listed = frozenset(t for t in tags if is_snapshot_tag(t) or parse_record_tag(t) is not None)
    for tag in sorted(t for t in tags if is_snapshot_tag(t)):
        try:
            digest = _read_snapshot(store, tag, state)
        except _Vanished:
            if tolerate:
                continue
            raise
        state.snapshots[tag] = digest
    versioned = [t for t in tags if t.startswith(RECORD_PREFIX) and parse_record_tag(t) is not None]
    unread = []
    for tag in versioned:
        if state.covers(tag):
            state.accounted.add(tag)
        else:
            unread.append(tag)
    unread += [t for t in tags if parse_legacy_tag(t) is not None]
    lock = threading.Lock()
    done = 0

    def read(tag: str) -> tuple[dict[str, Any] | None, str] | None:
        nonlocal done
        found = store.read_tag(tag)
        if progress is not None:
            with lock:
                done += 1
                count = done
            progress(f"reading the publication records in {store.description}", count, len(unread))
        return found

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        results = list(pool.map(read, unread))
    found: list[Entry] = []
    for tag, result in zip(unread, results, strict=True):
        if result is None:
            if tolerate:
                continue
            raise _Vanished(tag)
        data, digest = result
        parsed = parse_record_tag(tag)
        source = tag if parsed is not None else f"{tag}@{digest}"
        if parsed is None and state.covers(source):
            state.legacy.add(source)  # already in a snapshot: its tag is retired with the next compaction
            continue
        state.read_individually += 1
        try:
            publication = Publication.from_json(data) if data is not None else None
        except ValueError:
            publication = None
        if publication is None or (parsed is not None and parsed[0] != publication.key):
            continue  # not a record we can read: left alone, never retired
        if parsed is None:
            state.legacy.add(source)
            found.append(Entry(legacy_version(publication.published_at), publication, False, source))
        else:
            state.accounted.add(tag)
            found.append(Entry(parsed[1], publication, False))
    for entry in found:  # merged once every tag was classified against the snapshots alone
        state.merge(entry)
    return state


def _read_snapshot(store: RegistryStore, tag: str, state: PublicationState) -> str:
    """Merge the records of snapshot ``tag`` and what else it accounts for into ``state``; returns its manifest
    digest. _Vanished when it is gone."""
    body, digest = store.read_manifest(tag)
    if body is None:
        raise _Vanished(tag)
    try:
        layers = [layer["digest"] for layer in json.loads(body).get("layers") or []]
    except (ValueError, KeyError, TypeError, AttributeError):
        return digest
    for layer in layers:
        data = store.read_blob(layer)
        if data is None:
            raise _Vanished(tag)
        for line in _lines(data):
            source = line.get("covered")
            if isinstance(source, str):
                state.superseded.add(source)
                continue
            try:
                publication = Publication.from_json(line["record"])
                source, version = str(line["tag"]), str(line["version"])
            except (KeyError, TypeError, ValueError):
                continue
            if _key_of(source) != publication.key:
                continue
            state.merge(Entry(version, publication, True, source if "@" in source else None))
    return digest


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    """The JSON objects of a gzipped JSON-lines layer, one at a time (never the whole document in memory)."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        for raw in stream:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                yield line


def written_since(store: RegistryStore, state: PublicationState, keys: Collection[str]) -> dict[str, str]:
    """The keys among ``keys`` whose publication record was written again since ``state`` was read: key -> the
    new record's version (the writer's UTC time first, see :func:`new_version`).

    One listing of the stages repository, no record read: a record tag of one of ``keys`` not in ``state``'s
    listing was written after it (a record tag is written once). A snapshot not in that listing (another run
    compacted meanwhile, and may have retired a new record tag into it) is read, and a key whose winner there
    is not the one ``state`` has counts as written again; a snapshot that vanishes before it is read counts
    all of ``keys`` as written again (what it held is unknown). Legacy records (``ci-env-publication-<key>``,
    rewritten in place by ci-env before snapshots) cannot be told apart by a listing and are not reported."""
    wanted = set(keys)
    if not wanted:
        return {}
    found: dict[str, str] = {}
    for tag in store.listed_tags(fresh=True):
        if tag in state.listed:
            continue
        parsed = parse_record_tag(tag)
        if parsed is not None and parsed[0] in wanted:
            found[parsed[0]] = max(parsed[1], found.get(parsed[0], ""))
        elif is_snapshot_tag(tag):
            other = PublicationState()
            try:
                _read_snapshot(store, tag, other)
            except _Vanished:
                return {key: found.get(key, "") for key in wanted}
            for key in wanted:
                entry, seen = other.winners.get(key), state.winners.get(key)
                if entry is not None and (seen is None or entry.source != seen.source):
                    found[key] = max(entry.version, found.get(key, ""))
    return found


# ------------------------------------------------------------------------------------------------ compacting


@dataclass(frozen=True)
class Compaction:
    """What :func:`compact` did: the snapshot written (None: nothing to change), the records it holds, the record
    tags and snapshots retired, and the records forgotten."""

    snapshot: str | None
    records: int
    retired: int
    snapshots_removed: int
    forgotten: int


def compact(
    store: RegistryStore, state: PublicationState, *, forget: Collection[str] = (), parallel: int = 8,
    progress: Progress | None = None,
) -> Compaction:
    """Write one snapshot of ``state`` without the records of the keys in ``forget``, then retire every record tag
    and snapshot it accounts for (see the module docstring); nothing is written when nothing would change.

    The snapshot is written first: a failure before it leaves everything as it was, a failure after it only
    leaves tags the next compaction retires. Retiring is best effort (a tag left is accounted for by the
    snapshot, so it is not read again)."""
    forgotten = {key for key in forget if key in state.winners}
    if not forgotten and not state.needs_compaction():
        return Compaction(None, len(state.winners), 0, 0, 0)
    kept = [entry for key, entry in state.winners.items() if key not in forgotten]
    accounted = sorted(source for source in state.accounted | state.legacy
                       if _key_of(source) in forgotten or not state.is_winner(source))
    tag = f"{SNAPSHOT_PREFIX}{new_version()}"
    if progress is not None:
        progress(f"writing the snapshot of {len(kept)} publication records in {store.description}", 0, 0)
    store.write_snapshot(tag, snapshot_layers(kept, accounted), len(kept))
    versioned = sorted(state.accounted)
    legacy = sorted(state.legacy)
    retired = 0
    total = len(versioned) + len(legacy)
    for start in range(0, len(versioned), RETIRE_BATCH):
        chunk = versioned[start:start + RETIRE_BATCH]
        with contextlib.suppress(CiEnvError):
            retired += store.retire(chunk, parallel)
        if progress is not None:
            progress(f"retiring the compacted publication records in {store.description}", start + len(chunk), total)
    retired += _delete_by_digest(store, legacy, parallel)
    removed = _delete_by_digest(store, [f"{t}@{d}" for t, d in state.snapshots.items()], parallel)
    return Compaction(tag, len(kept), retired, removed, len(forgotten))


def _delete_by_digest(store: RegistryStore, sources: Sequence[str], parallel: int) -> int:
    """Delete each ``tag@digest`` by its digest: the tag goes only if it still holds that manifest."""

    def delete(source: str) -> bool:
        try:
            return store.delete_digest(source.split("@", 1)[1])
        except CiEnvError:
            return False

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return sum(pool.map(delete, sources))


def snapshot_layers(entries: Sequence[Entry], accounted: Sequence[str]) -> list[bytes]:
    """The snapshot's layers: gzipped JSON lines, at most :data:`LAYER_RECORDS` lines each (every line is
    compressed as it is made: only the compressed layers are held)."""
    lines: Iterator[dict[str, Any]] = itertools.chain(
        ({"tag": e.source, "version": e.version, "record": e.publication.to_json()} for e in entries),
        ({"covered": source} for source in accounted),
    )
    layers: list[bytes] = []
    buffer = io.BytesIO()
    stream = gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0)
    written = 0
    for line in lines:
        if written == LAYER_RECORDS:
            stream.close()
            layers.append(buffer.getvalue())
            buffer = io.BytesIO()
            stream = gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0)
            written = 0
        stream.write(_line(line))
        written += 1
    stream.close()
    layers.append(buffer.getvalue())
    return layers


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def clear(store: RegistryStore, state: PublicationState, *, parallel: int = 8) -> Compaction:
    """Forget every publication record of ``state`` (``ci-env purge``, once everything it planned is gone): retire
    every record tag it read and delete every snapshot it read, writing none. Tags written after its listing are
    untouched (a publisher running meanwhile keeps its records). Best effort: what cannot be removed is read and
    forgotten again by the next run."""
    versioned = sorted(state.accounted)
    retired = 0
    for start in range(0, len(versioned), RETIRE_BATCH):
        with contextlib.suppress(CiEnvError):
            retired += store.retire(versioned[start:start + RETIRE_BATCH], parallel)
    retired += _delete_by_digest(store, sorted(state.legacy), parallel)
    removed = _delete_by_digest(store, [f"{t}@{d}" for t, d in state.snapshots.items()], parallel)
    return Compaction(None, 0, retired, removed, len(state.winners))
