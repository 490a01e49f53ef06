"""Push tiny images to a real registry through the Registry API (for the vendor tests)."""

from __future__ import annotations

import json

from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient


def push_image(client: RegistryClient, path: str, tags: list[str], marker: str) -> str:
    """Push one tiny image (config + one layer, unique by ``marker``) under every tag; returns its digest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "marker": marker}).encode()
    layer = f"layer of {marker}".encode()
    client.ensure_blob(path, mf.sha256_digest(config), config)
    client.ensure_blob(path, mf.sha256_digest(layer), layer)
    body = json.dumps({
        "schemaVersion": 2,
        "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": mf.sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": mf.sha256_digest(layer),
                    "size": len(layer)}],
    }).encode()
    digest = ""
    for tag in tags:
        digest = client.put_manifest(path, tag, body, mf.OCI_MANIFEST)
    return digest


def tag_map(client: RegistryClient, path: str) -> dict[str, str]:
    """tag -> digest of every tag in ``path`` as the registry lists them now."""
    result: dict[str, str] = {}
    for tag in client.list_tags(path):
        info = client.resolve(path, tag)
        if info is not None:
            result[tag] = info.digest
    return result
