"""Push the shapes of a modern repository through the Registry API, for the graph tests: nested indexes (buildx
with attestations), cosign signatures under cosign's tag names, OCI 1.1 artifacts with a ``subject`` (and the
referrers tag schema's index, as a client keeps it on a registry without the referrers API).

Every manifest is pushed the way the tools push them (bytes as JSON, blobs first), so the graph is built from
real manifests on the real registry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient
from tests.registry_client.images import PushedImage, push_image

COSIGN_SIGNATURE_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SBOM_SPDX = "application/spdx+json"
EMPTY_CONFIG = b"{}"
EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"


def _put(client: RegistryClient, path: str, doc: Mapping[str, Any], tags: Sequence[str] = ()) -> tuple[str, bytes]:
    body = json.dumps(doc).encode()
    media = str(doc["mediaType"])
    digest = mf.sha256_digest(body)
    client.put_manifest(path, digest, body, media)
    for tag in tags:
        client.put_manifest(path, tag, body, media)
    return digest, body


def descriptor(client: RegistryClient, path: str, digest: str, **extra: Any) -> dict[str, Any]:
    """The descriptor of the manifest ``digest`` in ``path`` (media type and size read back)."""
    body, info = client.get_manifest(path, digest)
    return {"mediaType": info.media_type, "digest": digest, "size": len(body), **extra}


def push_index_of(client: RegistryClient, path: str, children: Sequence[str], tags: Sequence[str] = (),
                  annotations: Sequence[Mapping[str, str] | None] = ()) -> str:
    """Push an OCI index of the manifests ``children`` (digests, any type), tagged ``tags``; its digest."""
    entries = []
    for number, child in enumerate(children):
        arch = ["amd64", "arm64", "s390x"][number % 3]
        extra: dict[str, Any] = {"platform": {"architecture": arch, "os": "linux"}}
        if number < len(annotations) and annotations[number]:
            extra = {"platform": {"architecture": "unknown", "os": "unknown"},
                     "annotations": dict(annotations[number] or {})}
        entries.append(descriptor(client, path, child, **extra))
    digest, _ = _put(client, path, {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries}, tags)
    return digest


def push_buildx(client: RegistryClient, path: str, tags: Sequence[str] = ()) -> tuple[str, list[str], list[str]]:
    """What ``docker buildx build --platform linux/amd64,linux/arm64 --attest ...`` pushes: an index of two
    platform images and, for each, an attestation manifest (``vnd.docker.reference.type``). Returns (index,
    platform digests, attestation digests)."""
    seed = uuid.uuid4().hex
    platforms = [push_image(client, path, seed=f"{seed}-{n}").digest for n in range(2)]
    attestations = [push_attestation_manifest(client, path, p) for p in platforms]
    annotations: list[Mapping[str, str] | None] = [None, None] + [
        {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": p} for p in platforms
    ]
    index = push_index_of(client, path, [*platforms, *attestations], tags, annotations)
    return index, platforms, attestations


def push_attestation_manifest(client: RegistryClient, path: str, subject: str) -> str:
    """An in-toto attestation image manifest as buildx writes it (untagged; the index names it)."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [{"digest": subject}],
                            "nonce": uuid.uuid4().hex}).encode()
    layer = mf.sha256_digest(statement)
    client.ensure_blob(path, layer, statement)
    config = json.dumps({"architecture": "unknown", "os": "unknown", "rootfs": {"type": "layers", "diff_ids": []},
                         "nonce": uuid.uuid4().hex}).encode()
    client.ensure_blob(path, mf.sha256_digest(config), config)
    digest, _ = _put(client, path, {
        "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": mf.sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": IN_TOTO, "digest": layer, "size": len(statement),
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}],
    })
    return digest


def cosign_tag(digest: str, suffix: str) -> str:
    """cosign's tag for the signature (``sig``), attestation (``att``) or SBOM (``sbom``) of ``digest``."""
    algorithm, _, hexa = digest.partition(":")
    return f"{algorithm}-{hexa}.{suffix}"


def push_cosign(client: RegistryClient, path: str, subject: str, suffix: str = "sig") -> str:
    """What ``cosign sign`` (``sig``), ``cosign attest`` (``att``) or ``cosign attach sbom`` (``sbom``) pushes: an
    image manifest of one layer per signature, tagged ``sha256-<hex>.<suffix>``. Returns its digest."""
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subject}, "type": "cosign container image "
                          "signature"}, "optional": {"nonce": uuid.uuid4().hex}}).encode()
    layer = mf.sha256_digest(payload)
    client.ensure_blob(path, layer, payload)
    config = json.dumps({"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode()
    client.ensure_blob(path, mf.sha256_digest(config), config)
    media = {"sig": COSIGN_SIGNATURE_LAYER, "att": "application/vnd.dsse.envelope.v1+json", "sbom": SBOM_SPDX}[suffix]
    digest, _ = _put(client, path, {
        "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": mf.sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": media, "digest": layer, "size": len(payload),
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ-test"}}],
    }, [cosign_tag(subject, suffix)])
    return digest


def push_artifact(client: RegistryClient, path: str, subject: str, artifact_type: str = SBOM_SPDX, *,
                  fallback: bool = True, tags: Sequence[str] = ()) -> str:
    """An OCI 1.1 artifact whose ``subject`` is ``subject`` (as ``oras attach`` pushes it); with ``fallback`` the
    referrers tag schema's index ``sha256-<hex>`` is updated to list it, as a client does on a registry without the
    referrers API. Returns the artifact's digest."""
    data = json.dumps({"spdxVersion": "SPDX-2.3", "name": uuid.uuid4().hex}).encode()
    blob = mf.sha256_digest(data)
    client.ensure_blob(path, blob, data)
    client.ensure_blob(path, mf.sha256_digest(EMPTY_CONFIG), EMPTY_CONFIG)
    subject_body, subject_info = client.get_manifest(path, subject)
    doc = {
        "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_CONFIG_TYPE, "digest": mf.sha256_digest(EMPTY_CONFIG), "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": blob, "size": len(data)}],
        "subject": {"mediaType": subject_info.media_type, "digest": subject, "size": len(subject_body)},
        "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z"},
    }
    digest, body = _put(client, path, doc, tags)
    if fallback:
        tag = subject.replace(":", "-")
        entries: list[dict[str, Any]] = []
        if client.resolve(path, tag) is not None:
            current, _ = client.get_manifest(path, tag)
            entries = list(json.loads(current).get("manifests") or [])
        entries.append({"mediaType": mf.OCI_MANIFEST, "digest": digest, "size": len(body),
                        "artifactType": artifact_type})
        _put(client, path, {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries}, [tag])
    return digest


def push_nested(client: RegistryClient, path: str, tags: Sequence[str] = ()) -> tuple[str, str, PushedImage]:
    """tag -> index I1 -> index I2 -> image M (plus another platform beside I2). Returns (I1, I2, M)."""
    seed = uuid.uuid4().hex
    image = push_image(client, path, seed=f"{seed}-m")
    other = push_image(client, path, seed=f"{seed}-o")
    inner = push_index_of(client, path, [image.digest])
    outer = push_index_of(client, path, [inner, other.digest], tags)
    return outer, inner, image
