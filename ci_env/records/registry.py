"""The record store of a stages repository: records as tiny tagged OCI manifests (``ci_env.records.model``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ci_env.errors import RegistryError, RepositoryUnknownError
from ci_env.records.model import (
    MANAGED,
    MANAGED_PREFIX,
    METADATA,
    METADATA_PREFIX,
    OCI_MANIFEST,
    PUBLICATION_PREFIX,
    PUBLICATIONS,
    READ_PARALLELISM,
    RECORD_ANNOTATION,
    RECORD_CONFIG,
    RECORD_CONFIG_TYPE,
    RECORD_KIND_ANNOTATION,
    SNAPSHOT_KIND,
    SNAPSHOT_LAYER,
    SNAPSHOT_RECORDS_ANNOTATION,
    SNAPSHOT_TAG_ANNOTATION,
)

if TYPE_CHECKING:
    from ci_env.registry.client import RegistryClient
    from ci_env.registry.reference import RepoAddress

#: Manifest writes tried when the registry says the record config blob is unknown (see ``_put_manifest``).
CONFIG_RACE_ATTEMPTS = 4


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
            except RepositoryUnknownError:
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
