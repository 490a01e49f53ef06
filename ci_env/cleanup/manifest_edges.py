"""The edges of the engine's image graph (``ci_env.retention.engine.Edge``) that a repository's manifests give:
how the registry graph's child roles and referrer kinds read as edges, and what untagged manifests (no tag's graph
holds them) reach, read from the manifests themselves. Planning and the untagged re-check before removal both
read them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ci_env.retention.engine import (
    EDGE_ATTESTATION,
    EDGE_PLATFORM,
    EDGE_REFERRER,
    EDGE_SBOM,
    EDGE_SIGNATURE,
    Edge,
)

if TYPE_CHECKING:
    from ci_env.registry.client import RegistryClient

#: how the graph's child roles and referrer kinds read as the engine's edges (others: a referrer)
EDGE_KINDS = {"platform": EDGE_PLATFORM, "index": EDGE_PLATFORM, "attestation-manifest": EDGE_ATTESTATION,
               "signature": EDGE_SIGNATURE, "attestation": EDGE_ATTESTATION, "sbom": EDGE_SBOM}


def loose_edges(client: RegistryClient, path: str, digests: Sequence[str],
                parallel: int) -> dict[str, tuple[Edge, ...]]:
    """What the untagged manifests ``digests`` (no tag's graph holds them) reach, read once each: an index's
    manifests (an edge from it), and the subject a manifest names (an edge from the subject to it: a signature or
    attestation of that image). RegistryError when one cannot be read (a manifest that is gone has no edges):
    without its edges, an untagged manifest a kept image needs could look unreferenced."""
    import json

    from ci_env.registry.accessories import kind_of

    def read(digest: str) -> dict[str, Any]:
        found = client.find_manifest(path, digest)
        if found is None:
            return {}
        try:
            document = json.loads(found[0])
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}

    if not digests:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(digests)))) as pool:
        documents = dict(zip(digests, pool.map(read, digests), strict=True))
    edges: dict[str, list[Edge]] = {}
    for digest, document in documents.items():
        for entry in document.get("manifests") or []:
            if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
                annotations = entry.get("annotations") or {}
                attestation = isinstance(annotations, dict) and (
                    annotations.get("vnd.docker.reference.type") == "attestation-manifest")
                edges.setdefault(digest, []).append(
                    Edge(entry["digest"], EDGE_ATTESTATION if attestation else EDGE_PLATFORM))
        subject = document.get("subject")
        if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
            config = document.get("config")
            artifact_type = document.get("artifactType") or (
                config.get("mediaType") if isinstance(config, dict) else None)
            kind = EDGE_KINDS.get(kind_of(artifact_type if isinstance(artifact_type, str) else None), EDGE_REFERRER)
            edges.setdefault(subject["digest"], []).append(Edge(digest, kind))
    return {parent: tuple(found) for parent, found in edges.items()}
