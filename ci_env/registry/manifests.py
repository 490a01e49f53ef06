"""Manifest media types, digests, references between manifests, and the placeholder manifest.

Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass

from ci_env import untrusted_json

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

#: the four manifest types, in the order sent in ``Accept``; asking for all four is what keeps a registry
#: from answering a manifest list with the digest of one of its children.
MANIFEST_TYPES: tuple[str, ...] = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
ACCEPT_ALL = ", ".join(MANIFEST_TYPES)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

#: the content of the placeholder's config blob: constant, so it is uploaded once per repository, and
#: recognisable, so nobody mistakes it for an image.
PLACEHOLDER_CONFIG = b'{"architecture":"none","os":"none","ci-env":"placeholder: a removed tag pointed here"}'
PLACEHOLDER_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
PLACEHOLDER_ANNOTATION = "dev.ci-env.placeholder"

_FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


def sha256_digest(data: bytes) -> str:
    """The ``sha256:<hex>`` digest of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(ref: str) -> bool:
    """True when ``ref`` is a digest (``algorithm:hex``) rather than a tag."""
    return ":" in ref


def media_type_of(body: bytes, header: str | None) -> str:
    """The manifest's media type: the ``Content-Type`` a registry sent, else the body's ``mediaType``."""
    if header:
        value = header.split(";", 1)[0].strip()
        if value in MANIFEST_TYPES:
            return value
    try:
        declared = untrusted_json.loads(body).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    if isinstance(declared, str) and declared:
        return declared
    return header.split(";", 1)[0].strip() if header else OCI_MANIFEST


def is_manifest_document(body: bytes) -> bool:
    """True when ``body`` is a JSON object with a ``schemaVersion`` (any manifest or index, schema 1 included)."""
    try:
        doc = untrusted_json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and "schemaVersion" in doc


@dataclass(frozen=True)
class References:
    """What a manifest points at: blobs (config and layers) for an image, child manifests for an index."""

    blobs: tuple[str, ...]
    children: tuple[str, ...]


def references(body: bytes) -> References:
    """The blobs and child manifests a manifest body references (foreign, non-distributable layers left out).

    Raises ValueError for a body that is not a schema 2 / OCI manifest or index.
    """
    try:
        doc = untrusted_json.loads(body)
    except ValueError as exc:
        raise ValueError("manifest is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
        raise ValueError("only schema 2 / OCI manifests are supported (this one is schema 1 or unknown)")
    if isinstance(doc.get("manifests"), list):
        children = tuple(str(item["digest"]) for item in doc["manifests"] if isinstance(item, dict))
        return References(blobs=(), children=children)
    blobs: list[str] = []
    config = doc.get("config")
    if isinstance(config, dict) and config.get("digest"):
        blobs.append(str(config["digest"]))
    for layer in doc.get("layers") or []:
        if not isinstance(layer, dict) or not layer.get("digest"):
            continue
        if layer.get("mediaType") in _FOREIGN_LAYER_TYPES or layer.get("urls"):
            continue
        blobs.append(str(layer["digest"]))
    return References(blobs=tuple(blobs), children=())


def child_descriptors(body: bytes) -> tuple[tuple[str, str | None], ...]:
    """(digest, media type or None) of each child manifest an index body lists; () for anything else."""
    try:
        doc = untrusted_json.loads(body)
    except ValueError:
        return ()
    entries = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return ()
    return tuple(
        (str(e["digest"]), e["mediaType"] if isinstance(e.get("mediaType"), str) else None)
        for e in entries if isinstance(e, dict) and e.get("digest")
    )


def placeholder_manifest(marker: str | None = None) -> bytes:
    """A tiny OCI image manifest with no layers, made unique by ``marker`` (a fresh UUID by default).

    Its config is ``PLACEHOLDER_CONFIG``, which must exist as a blob in the repository before the PUT.
    """
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": PLACEHOLDER_CONFIG_TYPE,
            "digest": sha256_digest(PLACEHOLDER_CONFIG),
            "size": len(PLACEHOLDER_CONFIG),
        },
        "layers": [],
        "annotations": {PLACEHOLDER_ANNOTATION: marker or uuid.uuid4().hex},
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def is_placeholder(body: bytes) -> bool:
    """True when ``body`` is a placeholder manifest ci-env made (:func:`placeholder_manifest`): no image."""
    try:
        doc = untrusted_json.loads(body)
    except ValueError:
        return False
    annotations = doc.get("annotations") if isinstance(doc, dict) else None
    config = doc.get("config") if isinstance(doc, dict) else None
    return (isinstance(annotations, dict) and PLACEHOLDER_ANNOTATION in annotations and isinstance(config, dict)
            and config.get("digest") == sha256_digest(PLACEHOLDER_CONFIG) and not doc.get("layers"))


def created_of(body: bytes) -> str | None:
    """The creation time a manifest declares in its annotations (``org.opencontainers.image.created``)."""
    try:
        doc = untrusted_json.loads(body)
    except ValueError:
        return None
    annotations = doc.get("annotations") if isinstance(doc, dict) else None
    if isinstance(annotations, dict):
        value = annotations.get("org.opencontainers.image.created")
        if isinstance(value, str):
            return value
    return None
