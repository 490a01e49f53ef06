"""Publication records: written by build-and-publish, read, forgotten and compacted by cleanup.

In a registry stages storage every write is a new record tag, read back from snapshots
(``ci_env.records.snapshots``); in ``:local`` one file per full name."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from ci_env.errors import CiEnvError
from ci_env.records import snapshots
from ci_env.records.model import PUBLICATIONS, READ_PARALLELISM, Publication, RecordStore, publication_key
from ci_env.records.registry import RegistryStore


def write_publication(store: RecordStore, publication: Publication) -> None:
    """Record ``publication`` (it replaces an earlier record of the same full name for every reader).

    In a registry stages storage every write is a new tag (``ci_env.records.snapshots``): nothing is read first."""
    if isinstance(store, RegistryStore):
        store.put_tag(snapshots.record_tag(publication.key), PUBLICATIONS, publication.to_json())
    else:
        store.put(PUBLICATIONS, publication.key, publication.to_json())


def read_publications(store: RecordStore) -> list[Publication]:
    """Every publication record in the store (unreadable ones skipped), sorted by full name."""
    return read_publication_state(store).publications


@dataclass
class PublicationsRead:
    """The publication records read from a store, and what a compaction of a registry store starts from."""

    publications: list[Publication]
    #: what a compaction of a registry store starts from; None for ``:local``
    state: snapshots.PublicationState | None = None
    read_individually: int = 0  #: records read one by one (not from a snapshot)


def read_publication_state(
    store: RecordStore, *, parallel: int = READ_PARALLELISM, progress: Callable[[str, int, int], None] | None = None,
) -> PublicationsRead:
    """Every publication record in the store, sorted by full name: for a registry store from its snapshots and
    the record tags written since (``ci_env.records.snapshots``), for ``:local`` from its files."""
    if isinstance(store, RegistryStore):
        state = snapshots.read_state(store, parallel=parallel, progress=progress)
        return PublicationsRead(state.publications, state, state.read_individually)
    result = []
    for data in store.all(PUBLICATIONS):
        try:
            result.append(Publication.from_json(data))
        except ValueError:
            continue
    return PublicationsRead(sorted(result, key=lambda p: p.full_name), None, len(result))


def written_since(store: RecordStore, read: PublicationsRead, keys: Collection[str]) -> dict[str, str]:
    """The keys among ``keys`` (``publication_key``) whose record was written again since ``read`` read the store:
    key -> when (the new record's ``published_at``, or for a registry store the time its writer put in its tag).

    A registry store costs one listing of the stages repository (``ci_env.records.snapshots.written_since``);
    ``:local`` reads the files of ``keys`` and compares them with ``read``'s records."""
    if isinstance(store, RegistryStore) and read.state is not None:
        return {key: _version_time(version)
                for key, version in snapshots.written_since(store, read.state, keys).items()}
    before = {p.key: p for p in read.publications}
    found: dict[str, str] = {}
    for key in keys:
        data = store.get(PUBLICATIONS, key)
        try:
            now = Publication.from_json(data) if data is not None else None
        except ValueError:
            continue
        if now is not None and now != before.get(key):
            found[key] = now.published_at
    return found


def _version_time(version: str) -> str:
    """``YYYY-mm-ddTHH:MM:SSZ`` of a record tag's version (its writer's UTC time); "" when it holds none."""
    digits = version.split("-", 1)[0]
    if len(digits) < 14 or not digits.isdigit():
        return ""
    return f"{digits[0:4]}-{digits[4:6]}-{digits[6:8]}T{digits[8:10]}:{digits[10:12]}:{digits[12:14]}Z"


def forget_publications(
    store: RecordStore, read: PublicationsRead, full_names: Sequence[str], *, parallel: int = 8,
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """Forget the records of ``full_names`` (of the records in ``read``); returns how many were forgotten.

    A registry store is compacted at the same time (``ci_env.records.snapshots.compact``): one new snapshot holds every
    other record read, and the record tags and snapshots it accounts for are retired. ``:local`` deletes the
    files of ``full_names`` in batches of 250."""
    if isinstance(store, RegistryStore) and read.state is not None:
        forget = [publication_key(name) for name in full_names]
        done = snapshots.compact(store, read.state, forget=forget, parallel=parallel, progress=progress)
        return done.forgotten
    removed = 0
    for start in range(0, len(full_names), 250):
        chunk = full_names[start:start + 250]
        with contextlib.suppress(CiEnvError):
            removed += remove_publications(store, chunk, parallel)
        if progress is not None:
            progress(f"forgetting the records of removed tags in {store.description}", start + len(chunk),
                     len(full_names))
    return removed


def remove_publications(store: RecordStore, full_names: Sequence[str], parallel: int = 8) -> int:
    """Forget the legacy-keyed records of ``full_names`` in one batch (``:local`` files, legacy registry tags);
    returns how many were removed. Cleanup forgets through :func:`forget_publications`."""
    return store.delete_many(PUBLICATIONS, [publication_key(name) for name in full_names], parallel)
