"""The records' model: what build-and-publish writes into the stages storage for cleanup to read.

The words both sides share (strategies, labels, record kinds) are in ``ci_env.contract``.

**Publication record** (:class:`Publication`): one per published tag, because retagged
tags share one image and so one set of labels. It says which image (``None`` = the
nameless image ``~``) was published under which tag (``tag``: the tag as the user
gave it; ``stored_tag``: as stored in ``repository``, with the monorepo prefix), by which
strategy (``custom``, ``git-branch``, ``git-tag``, ``git-commit``, ``stages-signature``),
from which git branch, git tag and commit (the original ref names, before they were made
into valid tags), when (``published_at``, UTC ISO 8601), with which manifest ``digest``
and content ``signature``. A record is keyed by its full name (``repository:stored_tag``):
publishing the same full name again replaces the record.

**Managed images**: the names cleanup looks after (``None`` = ``~``). build-and-publish
adds every image it publishes; ``ci-env managed-images add/rm`` edit the list.

**Where they live.**

- Stages storage in a repository (``-s REGISTRY/REPO``): every record is a tiny OCI
  manifest (no layers; a constant config blob :data:`RECORD_CONFIG`) whose annotation
  :data:`RECORD_ANNOTATION` holds the record's JSON, stored under its own tag in the
  stages repository: ``ci-env-managed-<name>`` (``ci-env-managed-_nameless`` for ``~``),
  ``ci-env-meta-<commit>-<signature>`` and, for publication records, a new tag per write,
  ``ci-env-pub-<first 32 hex of sha256(full name)>-<version>``, which cleanup compacts into
  snapshots (``ci-env-snapshot-<version>``; see ``ci_env.records.snapshots``, which also reads the
  ``ci-env-publication-<32 hex>`` records of earlier versions). One tag per record
  means no read-modify-write of a shared object, so parallel jobs never lose each
  other's writes. Reading costs one tag listing, the snapshots, and one manifest GET per
  record written since the last compaction.
  Removing one record deletes its manifest by digest (which needs deletion enabled on the
  registry): each record's manifest is unique to its tag, so nothing else is touched.
  Removing many (cleanup) points their tags at one placeholder and deletes it once
  (:meth:`RegistryClient.retire_tags`): distribution scans every tag of the repository on
  each manifest DELETE, so one DELETE per record would cost O(records) each; the retired
  record manifests (a few hundred bytes each) stay untagged until the registry's garbage
  collection.
  Stage images themselves are tagged with their 64-hex content signature
  (:func:`is_stage_tag`); every ``ci-env-`` tag is a record (:func:`is_record_tag`),
  never a stage.
- ``:local``: JSON files under ``$XDG_STATE_HOME/ci-env/<project>/`` (else
  ``~/.local/state/ci-env/<project>/``): ``publications/<key>.json`` and
  ``managed/<name>.json``, each written atomically (temp file + rename).

One stages storage belongs to one project.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from ci_env.contract import LOCAL_STAGES_REPOSITORY, MANAGED, METADATA, PUBLICATIONS, SIGNATURE_LABEL, STRATEGIES
from ci_env.errors import ConfigError

__all__ = ["LOCAL_STAGES_REPOSITORY", "MANAGED", "METADATA", "PUBLICATIONS", "SIGNATURE_LABEL", "STRATEGIES"]

SCHEMA_VERSION = 1
PUBLICATION_PREFIX = "ci-env-publication-"
MANAGED_PREFIX = "ci-env-managed-"
METADATA_PREFIX = "ci-env-meta-"
RECORD_PREFIX = "ci-env-"
NAMELESS_KEY = "_nameless"
RECORD_ANNOTATION = "dev.ci-env.record"
RECORD_KIND_ANNOTATION = "dev.ci-env.record-kind"
SNAPSHOT_RECORDS_ANNOTATION = "dev.ci-env.snapshot-records"
SNAPSHOT_TAG_ANNOTATION = "dev.ci-env.snapshot-tag"
#: the media type of a publication snapshot's layers, and the record kind of its manifest (``records.snapshots``)
SNAPSHOT_LAYER = "application/vnd.ci-env.publications.v1.jsonl+gzip"
SNAPSHOT_KIND = "publication-snapshot"
RECORD_CONFIG = b'{"architecture":"none","os":"none","ci-env":"record: publication or managed image"}'
RECORD_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_STAGE_TAG = re.compile(r"[0-9a-f]{64}")
_IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
READ_PARALLELISM = 32  # see ci_env.registry.client.LISTING_PARALLELISM
_METADATA_KEY = re.compile(r"([0-9a-f]{40}|[0-9a-f]{64})-([0-9a-f]{64})")
#: A key longer than this (a SHA-256 git repository's 64-hex commits) is hashed to fit in a tag.
MAX_METADATA_KEY = 128 - len(METADATA_PREFIX)


@dataclass(frozen=True, slots=True)
class Publication:
    """What cleanup needs to know about one published tag (see the module docstring)."""

    image: str | None
    tag: str
    repository: str
    stored_tag: str
    strategy: str
    digest: str
    signature: str
    published_at: str
    git_branch: str | None = None
    git_tag: str | None = None
    git_commit: str | None = None

    @property
    def full_name(self) -> str:
        """``repository:stored_tag``, the name docker pulls."""
        return f"{self.repository}:{self.stored_tag}"

    @property
    def key(self) -> str:
        """The record's identity: 32 hex of sha256 of the full name."""
        return publication_key(self.full_name)

    def to_json(self) -> dict[str, Any]:
        """The record as stored: every field plus ``schema`` (:data:`SCHEMA_VERSION`)."""
        return {"schema": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Publication:
        """Parse a stored record; ValueError when it is not one."""
        try:  # the values many records share are interned: 100,000 records stay small in memory
            return cls(
                image=_shared(data.get("image")),
                tag=sys.intern(str(data["tag"])),  # (tag, stored tag and branch are often the same name)
                repository=sys.intern(str(data["repository"])),
                stored_tag=sys.intern(str(data["stored_tag"])),
                strategy=sys.intern(str(data["strategy"])),
                digest=str(data["digest"]),
                signature=sys.intern(str(data["signature"])),
                published_at=sys.intern(str(data["published_at"])),
                git_branch=_shared(data.get("git_branch")),
                git_tag=_shared(data.get("git_tag")),
                git_commit=_shared(data.get("git_commit")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a publication record: {exc}") from None


@dataclass(frozen=True)
class CommitMetadata:
    """Image metadata by commit: ``image`` (None = ``~``) was published from git ``commit`` with content
    ``signature`` (at ``recorded_at``, UTC ISO 8601). Written by every build-and-publish run, also when the
    signature existed already; git-history-based cleanup finds which commits of which references produced
    which signatures through these records."""

    image: str | None
    commit: str
    signature: str
    recorded_at: str = ""

    @property
    def key(self) -> str:
        """``<commit>-<signature>``: the record's identity (hashed to fit in a tag when too long)."""
        return metadata_key(self.commit, self.signature)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CommitMetadata:
        """Parse a stored record; ValueError when it is not one."""
        try:
            return cls(optional(data.get("image")), str(data["commit"]).lower(), str(data["signature"]),
                       str(data.get("recorded_at") or ""))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a metadata record: {exc}") from None


def metadata_key(commit: str, signature: str) -> str:
    """``<commit>-<signature>``, or ``h<sha256 of it>`` when that does not fit in a tag (64-hex commits)."""
    key = f"{commit.lower()}-{signature}"
    if len(key) <= MAX_METADATA_KEY:
        return key
    return "h" + hashlib.sha256(key.encode()).hexdigest()


def parse_metadata_key(key: str) -> tuple[str, str] | None:
    """(commit, signature) of a key written by :func:`metadata_key` in full, None for a hashed one."""
    match = _METADATA_KEY.fullmatch(key)
    return (match.group(1), match.group(2)) if match else None


def optional(value: object) -> str | None:
    """``value`` as a string, None kept."""
    return None if value is None else str(value)


def _shared(value: object) -> str | None:
    return None if value is None else sys.intern(str(value))


def utc_now() -> str:
    """The current time as UTC ISO 8601 with a ``Z`` suffix, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def publication_key(full_name: str) -> str:
    """32 hex digits identifying the record of ``full_name``."""
    return hashlib.sha256(full_name.encode()).hexdigest()[:32]


def managed_key(name: str | None) -> str:
    """The key of managed image ``name`` (``_nameless`` for ``~``); ConfigError for an invalid name."""
    if name is None:
        return NAMELESS_KEY
    if not _IMAGE_NAME.match(name) or len(name) > 64:
        raise ConfigError(
            f"invalid image name {name!r}: use lowercase letters and digits separated by '.', '_' or '-' "
            "(at most 64 characters), or '~' for the nameless image"
        )
    return name


def parse_image_name(text: str) -> str | None:
    """A name from the command line: ``~`` (or ``""``) is the nameless image; ConfigError when invalid."""
    name = None if text in ("~", "") else text
    managed_key(name)
    return name


def is_stage_tag(tag: str) -> bool:
    """True for a stage image's tag in a stages repository (its 64-hex content signature)."""
    return _STAGE_TAG.fullmatch(tag) is not None


def is_record_tag(tag: str) -> bool:
    """True for a tag holding a ci-env record (never an image, never a stage)."""
    return tag.startswith(RECORD_PREFIX)


class RecordStore(Protocol):
    """Where records live: one JSON object per (kind, key); writes are atomic per record."""

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> None: ...

    def put_new(self, kind: str, key: str, record: Mapping[str, Any]) -> bool: ...

    def all(self, kind: str) -> list[dict[str, Any]]: ...

    def keys(self, kind: str) -> list[str]: ...

    def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    def delete(self, kind: str, key: str) -> bool: ...

    def delete_many(self, kind: str, keys: Sequence[str], parallel: int = 8) -> int: ...

    @property
    def description(self) -> str: ...
