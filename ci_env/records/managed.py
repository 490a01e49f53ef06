"""The managed-images list and the metadata records (image, commit, content signature) of a record store."""

from __future__ import annotations

from ci_env.records.model import (
    MANAGED,
    METADATA,
    SCHEMA_VERSION,
    CommitMetadata,
    RecordStore,
    managed_key,
    optional,
    parse_metadata_key,
)


def write_metadata(store: RecordStore, metadata: CommitMetadata) -> bool:
    """Record that ``metadata.image`` was published from ``metadata.commit`` with ``metadata.signature``.

    Immutable: a record that exists is never rewritten (False), so parallel pipelines never lose one and
    re-running a pipeline costs one look-up."""
    return store.put_new(METADATA, metadata.key, metadata.to_json())


def read_metadata(store: RecordStore) -> list[CommitMetadata]:
    """Every metadata record: from the keys alone (one listing, no read) where the key holds commit and
    signature, else read (hashed keys of 64-hex commits). ``image`` is None for records known by key only:
    the signature names the image (a signature covers the image's name)."""
    result = []
    for key in store.keys(METADATA):
        parsed = parse_metadata_key(key)
        if parsed is not None:
            result.append(CommitMetadata(None, parsed[0], parsed[1]))
            continue
        data = store.get(METADATA, key)
        if data is None:
            continue
        try:
            result.append(CommitMetadata.from_json(data))
        except ValueError:
            continue
    return result


def list_managed_images(store: RecordStore) -> list[str | None]:
    """The managed image names (None = ``~``), nameless first, then sorted."""
    names: set[str | None] = set()
    for data in store.all(MANAGED):
        if "image" in data:
            names.add(optional(data["image"]))
    return sorted(names, key=lambda n: (n is not None, n or ""))


def add_managed_image(store: RecordStore, name: str | None) -> None:
    """Add ``name`` (None = ``~``) to the managed images; adding it again changes nothing.

    The record's content depends on the name only, so re-adding stores the identical manifest.
    """
    store.put(MANAGED, managed_key(name), {"schema": SCHEMA_VERSION, "image": name})


def remove_managed_image(store: RecordStore, name: str | None) -> bool:
    """Remove ``name`` from the managed images; False when it was not managed."""
    return store.delete(MANAGED, managed_key(name))
