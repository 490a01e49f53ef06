"""Push tiny images and indexes through the Registry API, and check that a reference still pulls.

For tests: every image is made of small, unique blobs (a config and ``layers`` layers) so two pushes
never share a digest unless asked to. Works with any auth mode (it goes through ``RegistryClient``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient


@dataclass(frozen=True)
class PushedImage:
    """A manifest pushed by these helpers: where, its digest and type, and what it references."""

    path: str
    digest: str
    media_type: str
    blobs: tuple[str, ...]
    children: tuple[str, ...] = ()


def push_image(
    client: RegistryClient, path: str, tags: Sequence[str] = (), *, layers: int = 1, seed: str | None = None,
    media_type: str = mf.OCI_MANIFEST, labels: Mapping[str, str] | None = None, created: str = "2024-01-02T03:04:05Z",
) -> PushedImage:
    """Push a tiny image to ``path`` and tag it with ``tags`` (none: pushed by digest only).

    Unique unless ``seed`` is given: the same seed (and labels, created) gives the same digest. ``labels`` go
    into the image config as docker writes them (``config.Labels``), as build-and-publish labels images.
    """
    seed = seed or uuid.uuid4().hex
    oci = media_type == mf.OCI_MANIFEST
    image_config: dict[str, object] = {"architecture": "amd64", "os": "linux", "created": created,
                                       "rootfs": {"type": "layers", "diff_ids": []}, "seed": seed}
    if labels:
        image_config["config"] = {"Labels": dict(labels)}
    config = json.dumps(image_config).encode()
    config_digest = mf.sha256_digest(config)
    client.ensure_blob(path, config_digest, config)
    layer_descs = []
    layer_digests: list[str] = []
    for number in range(layers):
        data = f"layer {number} of {seed}".encode()
        digest = mf.sha256_digest(data)
        client.ensure_blob(path, digest, data)
        layer_digests.append(digest)
        layer_descs.append({
            "mediaType": "application/vnd.oci.image.layer.v1.tar" if oci
            else "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "digest": digest, "size": len(data),
        })
    manifest = {
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json" if oci
                   else "application/vnd.docker.container.image.v1+json", "digest": config_digest,
                   "size": len(config)},
        "layers": layer_descs,
    }
    body = json.dumps(manifest).encode()
    digest = mf.sha256_digest(body)
    client.put_manifest(path, digest, body, media_type)
    for tag in tags:
        client.put_manifest(path, tag, body, media_type)
    return PushedImage(path, digest, media_type, (config_digest, *layer_digests))


def push_index(
    client: RegistryClient, path: str, tags: Sequence[str] = (), *, children: int = 2, seed: str | None = None,
    media_type: str = mf.OCI_INDEX,
) -> PushedImage:
    """Push ``children`` untagged images and an index of them, tagged with ``tags``."""
    seed = seed or uuid.uuid4().hex
    child_type = mf.OCI_MANIFEST if media_type == mf.OCI_INDEX else mf.DOCKER_MANIFEST
    pushed = [push_image(client, path, seed=f"{seed}-{n}", media_type=child_type) for n in range(children)]
    arches = ["amd64", "arm64", "ppc64le", "s390x"]
    entries = []
    for number, child in enumerate(pushed):
        body, _ = client.get_manifest(path, child.digest)
        entries.append({"mediaType": child_type, "digest": child.digest, "size": len(body),
                        "platform": {"architecture": arches[number % 4], "os": "linux"}})
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
    digest = mf.sha256_digest(body)
    client.put_manifest(path, digest, body, media_type)
    for tag in tags:
        client.put_manifest(path, tag, body, media_type)
    blobs = tuple(b for child in pushed for b in child.blobs)
    return PushedImage(path, digest, media_type, blobs, tuple(child.digest for child in pushed))


def pulls(client: RegistryClient, path: str, ref: str) -> bool:
    """True when ``path:ref`` can be pulled: its manifest, child manifests and every blob answer 200."""
    try:
        body, _ = client.get_manifest(path, ref)
    except Exception:
        return False
    refs = mf.references(body)
    for blob in refs.blobs:
        response = client.request("GET", f"/v2/{path}/blobs/{blob}", scopes=[f"repository:{path}:pull"])
        if response.status_code != 200:
            return False
    return all(pulls(client, path, child) for child in refs.children)
