"""What a real registry holds, read through the Registry API (for the vendor tests)."""

from __future__ import annotations

from ci_env.registry.client import RegistryClient


def tag_map(client: RegistryClient, path: str) -> dict[str, str]:
    """tag -> digest of every tag in ``path`` as the registry lists them now."""
    result: dict[str, str] = {}
    for tag in client.list_tags(path):
        info = client.resolve(path, tag)
        if info is not None:
            result[tag] = info.digest
    return result
