"""Publication records and the managed-images list, kept in the stages storage.

This is the contract between build-and-publish (which writes) and cleanup (which reads).

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
  snapshots (``ci-env-snapshot-<version>``; see ``ci_env.snapshots``, which also reads the
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

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ci_env.errors import CiEnvError, ConfigError, RegistryError

if TYPE_CHECKING:
    from ci_env.registry.client import RegistryClient
    from ci_env.registry.reference import RepoAddress

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
RECORD_CONFIG = b'{"architecture":"none","os":"none","ci-env":"record: publication or managed image"}'
RECORD_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
STRATEGIES = ("custom", "git-branch", "git-tag", "git-commit", "stages-signature")
_STAGE_TAG = re.compile(r"[0-9a-f]{64}")
_IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
READ_PARALLELISM = 32  # see ci_env.registry.client.LISTING_PARALLELISM
#: Manifest writes tried when the registry says the record config blob is unknown (see ``_put_manifest``).
CONFIG_RACE_ATTEMPTS = 4
#: ``:local`` stages: build-and-publish tags each locally built image ``ci-env-stages/<project>:<signature>``
#: and labels it ``werf-content-signature=<signature>``; cleanup finds the stages by both.
LOCAL_STAGES_REPOSITORY = "ci-env-stages"
SIGNATURE_LABEL = "werf-content-signature"

PUBLICATIONS = "publications"
MANAGED = "managed"
METADATA = "metadata"
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
            return cls(_optional(data.get("image")), str(data["commit"]).lower(), str(data["signature"]),
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


def _optional(value: object) -> str | None:
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


class LocalStore:
    """Records as JSON files under one per-project directory (stages storage ``:local``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def description(self) -> str:
        return str(self.directory)

    def _path(self, kind: str, key: str) -> Path:
        return self.directory / kind / f"{key}.json"

    def _unwritable(self, exc: OSError) -> ConfigError:
        return ConfigError(
            f"cannot write the records of the :local stages storage under {self.directory} "
            f"({exc.strerror or type(exc).__name__}); set XDG_STATE_HOME to a writable directory"
        )

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> None:
        folder = self.directory / kind
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, temp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(record), handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self._path(kind, key))
        except OSError as exc:
            Path(temp).unlink(missing_ok=True)
            raise self._unwritable(exc) from None
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def put_new(self, kind: str, key: str, record: Mapping[str, Any]) -> bool:
        """Write the record unless one exists under ``key`` (never replaced); True when written."""
        if self._path(kind, key).exists():
            return False
        folder = self.directory / kind
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(dict(record), handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(temp, self._path(kind, key))  # atomic, and fails when another writer was first
            return True
        except FileExistsError:
            return False
        finally:
            Path(temp).unlink(missing_ok=True)

    def keys(self, kind: str) -> list[str]:
        folder = self.directory / kind
        return sorted(path.stem for path in folder.glob("*.json")) if folder.is_dir() else []

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._path(kind, key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def all(self, kind: str) -> list[dict[str, Any]]:
        result = []
        for key in self.keys(kind):
            data = self.get(kind, key)
            if data is not None:
                result.append(data)
        return result

    def delete(self, kind: str, key: str) -> bool:
        path = self._path(kind, key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._unwritable(exc) from None
        return True

    def delete_many(self, kind: str, keys: Sequence[str], parallel: int = 8) -> int:
        """Delete the records of ``keys``; returns how many existed."""
        return sum(self.delete(kind, key) for key in keys)


class RegistryStore:
    """Records as tiny tagged OCI manifests in the stages repository (see the module docstring)."""

    PREFIXES = {PUBLICATIONS: PUBLICATION_PREFIX, MANAGED: MANAGED_PREFIX, METADATA: METADATA_PREFIX}

    def __init__(self, client: RegistryClient, repository: RepoAddress) -> None:
        self.client = client
        self.repository = repository
        self._config_ready = False
        self._config_lock = threading.Lock()
        self._listing: list[str] | None = None  #: the stages repository's tags, listed once until a write

    @property
    def description(self) -> str:
        return str(self.repository)

    def _tag(self, kind: str, key: str) -> str:
        return self.PREFIXES[kind] + key

    def put(self, kind: str, key: str, record: Mapping[str, Any]) -> None:
        self.put_tag(self._tag(kind, key), kind, record)

    def _ensure_config(self) -> None:
        from ci_env.registry.manifests import sha256_digest

        with self._config_lock:  # once per store, also when many threads write their first record at once
            if not self._config_ready:
                self.client.ensure_blob(self.repository.path, sha256_digest(RECORD_CONFIG), RECORD_CONFIG)
                self._config_ready = True

    def put_tag(self, tag: str, kind: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` (of ``kind``) as the manifest of ``tag``."""
        annotations = {
            RECORD_KIND_ANNOTATION: kind,
            RECORD_ANNOTATION: json.dumps(dict(record), sort_keys=True, separators=(",", ":")),
        }
        self._put_manifest(tag, [], annotations)

    def _put_manifest(self, tag: str, layers: list[dict[str, Any]], annotations: Mapping[str, str]) -> str:
        from ci_env.registry.manifests import sha256_digest

        self._ensure_config()
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": RECORD_CONFIG_TYPE,
                "digest": sha256_digest(RECORD_CONFIG),
                "size": len(RECORD_CONFIG),
            },
            "layers": layers,
            "annotations": dict(annotations),
        }
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        self._listing = None
        for attempt in range(CONFIG_RACE_ATTEMPTS):
            try:
                return self.client.put_manifest(self.repository.path, tag, data, OCI_MANIFEST)
            except RegistryError as exc:
                # Jobs that write the first records of a new stages repository at once upload the config blob
                # at once; distribution may then refuse a manifest as naming an unknown blob: upload it again.
                if "BLOB_UNKNOWN" not in str(exc) or attempt == CONFIG_RACE_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
                with self._config_lock:
                    self._config_ready = False
                self._ensure_config()
        raise AssertionError("unreachable")

    def write_snapshot(self, tag: str, layers: Sequence[bytes], records: int) -> str:
        """Upload the snapshot's ``layers`` and tag the manifest holding them ``tag``; returns its digest."""
        from ci_env.registry.manifests import sha256_digest
        from ci_env.snapshots import SNAPSHOT_KIND, SNAPSHOT_LAYER

        descriptors = []
        for layer in layers:
            digest = sha256_digest(layer)
            self.client.ensure_blob(self.repository.path, digest, layer)
            descriptors.append({"mediaType": SNAPSHOT_LAYER, "digest": digest, "size": len(layer)})
        return self._put_manifest(tag, descriptors, {
            RECORD_KIND_ANNOTATION: SNAPSHOT_KIND, SNAPSHOT_RECORDS_ANNOTATION: str(records),
            SNAPSHOT_TAG_ANNOTATION: tag,  # makes every snapshot's manifest unique, so deleting one never takes another
        })

    def listed_tags(self, *, fresh: bool = False) -> list[str]:
        """The stages repository's tags (listed once per instance unless ``fresh``)."""
        if fresh:
            self._listing = None
        return self._tags()

    def read_manifest(self, tag: str) -> tuple[bytes | None, str]:
        """(manifest body, digest) of ``tag``; (None, "") when it does not exist."""
        try:
            body, info = self.client.get_manifest(self.repository.path, tag)
        except RegistryError as exc:
            if "does not exist" in str(exc):
                return None, ""
            raise
        return body, info.digest

    def read_tag(self, tag: str) -> tuple[dict[str, Any] | None, str] | None:
        """(the record ``tag`` holds, or None when it holds none; its manifest digest), None when it is gone."""
        body, digest = self.read_manifest(tag)
        if body is None:
            return None
        return _record_of(body), digest

    def read_blob(self, digest: str) -> bytes | None:
        """The content of blob ``digest`` in the stages repository; None when it is gone."""
        from ci_env.registry.auth import repository_scope

        path = self.repository.path
        response = self.client.request("GET", f"/v2/{path}/blobs/{digest}", scopes=[repository_scope(path, "pull")])
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(f"reading the blob {digest} of {self.repository} failed ({response.status_code})")
        return response.content

    def retire(self, tags: Sequence[str], parallel: int = 8) -> int:
        """Retire record ``tags`` in one batch (see the module docstring); returns how many went."""
        self._listing = None
        outcomes = self.client.retire_tags(self.repository.path, list(tags), parallel=parallel)
        errors = [o for o in outcomes.values() if not isinstance(o, str)]
        removed = len(outcomes) - len(errors)
        if errors and not removed:
            raise errors[0]
        return removed

    def delete_digest(self, digest: str) -> bool:
        """Delete the manifest ``digest`` and the tags still on it (a manifest already gone is no error)."""
        self._listing = None
        self.client.delete_manifest(self.repository.path, digest)
        return True

    def put_new(self, kind: str, key: str, record: Mapping[str, Any]) -> bool:
        """Write the record unless its tag exists (one HEAD; a record is never replaced); True when written."""
        if self.client.resolve(self.repository.path, self._tag(kind, key)) is not None:
            return False
        self.put(kind, key, record)
        return True

    def _tags(self) -> list[str]:
        if self._listing is None:
            try:
                self._listing = self.client.list_tags(self.repository.path)
            except RegistryError as exc:
                if "NAME_UNKNOWN" not in str(exc):
                    raise
                self._listing = []
        return self._listing

    def keys(self, kind: str) -> list[str]:
        """The keys of every record of ``kind``, from one tag listing (no record is read)."""
        prefix = self.PREFIXES[kind]
        return sorted(tag[len(prefix):] for tag in self._tags() if tag.startswith(prefix))

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return self._read(self._tag(kind, key))

    def all(self, kind: str) -> list[dict[str, Any]]:
        tags = [self._tag(kind, key) for key in self.keys(kind)]
        with ThreadPoolExecutor(max_workers=READ_PARALLELISM) as pool:
            records = list(pool.map(self._read, tags))
        return [record for record in records if record is not None]

    def _read(self, tag: str) -> dict[str, Any] | None:
        found = self.read_tag(tag)
        return None if found is None else found[0]

    def delete(self, kind: str, key: str) -> bool:
        """Delete the record's manifest: resolve its tag, delete that digest (2 requests, no listing).

        A record's manifest holds the record itself, so no other tag shares it; a tag already gone is False.
        """
        path = self.repository.path
        info = self.client.resolve(path, self._tag(kind, key))
        if info is None:
            return False
        self._listing = None
        self.client.delete_manifest(path, info.digest)
        return True

    def delete_many(self, kind: str, keys: Sequence[str], parallel: int = 8) -> int:
        """Retire the records of ``keys`` in one batch (see the module docstring); returns how many went.

        Raises the first failure after the batch when none could be removed, so a caller can report it.
        """
        tags = [self._tag(kind, key) for key in keys]
        self._listing = None
        outcomes = self.client.retire_tags(self.repository.path, tags, parallel=parallel)
        errors = [o for o in outcomes.values() if not isinstance(o, str)]
        removed = len(outcomes) - len(errors)
        if errors and not removed:
            raise errors[0]
        return removed


def _record_of(body: bytes) -> dict[str, Any] | None:
    """The record a record manifest holds in its annotation, None when it holds none."""
    try:
        annotations = json.loads(body).get("annotations") or {}
        data = json.loads(annotations[RECORD_ANNOTATION])
    except (ValueError, KeyError, AttributeError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def state_directory(project: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/ci-env/<project>``, else ``~/.local/state/ci-env/<project>``."""
    environment = os.environ if env is None else env
    base = environment.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path(environment.get("HOME") or Path.home()) / (
        ".local/state"
    )
    return root / "ci-env" / project


def open_store(
    stages: RepoAddress | None,
    project: str,
    *,
    client: RegistryClient | None = None,
    env: Mapping[str, str] | None = None,
) -> RecordStore:
    """The record store of a stages storage: ``stages`` None is ``:local`` (needs ``project``),
    else the stages repository, read and written through ``client`` (a RegistryClient for its registry)."""
    if stages is None:
        return LocalStore(state_directory(project, env))
    if client is None:
        raise ValueError("a registry stages storage needs a RegistryClient")
    return RegistryStore(client, stages)


# ---------------------------------------------------------------- the API cleanup and build use


def write_publication(store: RecordStore, publication: Publication) -> None:
    """Record ``publication`` (it replaces an earlier record of the same full name for every reader).

    In a registry stages storage every write is a new tag (``ci_env.snapshots``): nothing is read first."""
    if isinstance(store, RegistryStore):
        from ci_env.snapshots import record_tag

        store.put_tag(record_tag(publication.key), PUBLICATIONS, publication.to_json())
    else:
        store.put(PUBLICATIONS, publication.key, publication.to_json())


def read_publications(store: RecordStore) -> list[Publication]:
    """Every publication record in the store (unreadable ones skipped), sorted by full name."""
    return read_publication_state(store).publications


@dataclass
class PublicationsRead:
    """The publication records read from a store, and what a compaction of a registry store starts from."""

    publications: list[Publication]
    #: ``ci_env.snapshots.PublicationState`` of a registry store; None for ``:local``
    state: Any = None
    read_individually: int = 0  #: records read one by one (not from a snapshot)


def read_publication_state(
    store: RecordStore, *, parallel: int = READ_PARALLELISM, progress: Callable[[str, int, int], None] | None = None,
) -> PublicationsRead:
    """Every publication record in the store, sorted by full name: for a registry store from its snapshots and
    the record tags written since (``ci_env.snapshots``), for ``:local`` from its files."""
    if isinstance(store, RegistryStore):
        from ci_env.snapshots import read_state

        state = read_state(store, parallel=parallel, progress=progress)
        return PublicationsRead(state.publications, state, state.read_individually)
    result = []
    for data in store.all(PUBLICATIONS):
        try:
            result.append(Publication.from_json(data))
        except ValueError:
            continue
    return PublicationsRead(sorted(result, key=lambda p: p.full_name), None, len(result))


def forget_publications(
    store: RecordStore, read: PublicationsRead, full_names: Sequence[str], *, parallel: int = 8,
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """Forget the records of ``full_names`` (of the records in ``read``); returns how many were forgotten.

    A registry store is compacted at the same time (``ci_env.snapshots.compact``): one new snapshot holds every
    other record read, and the record tags and snapshots it accounts for are retired. ``:local`` deletes the
    files of ``full_names`` in batches of 250."""
    if isinstance(store, RegistryStore) and read.state is not None:
        from ci_env.snapshots import compact

        done = compact(store, read.state, forget=[publication_key(name) for name in full_names], parallel=parallel,
                       progress=progress)
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
            names.add(_optional(data["image"]))
    return sorted(names, key=lambda n: (n is not None, n or ""))


def add_managed_image(store: RecordStore, name: str | None) -> None:
    """Add ``name`` (None = ``~``) to the managed images; adding it again changes nothing.

    The record's content depends on the name only, so re-adding stores the identical manifest.
    """
    store.put(MANAGED, managed_key(name), {"schema": SCHEMA_VERSION, "image": name})


def remove_managed_image(store: RecordStore, name: str | None) -> bool:
    """Remove ``name`` from the managed images; False when it was not managed."""
    return store.delete(MANAGED, managed_key(name))
