"""What frees the space after the placeholder route: the registry's own garbage collection (distribution's
``garbage-collect --delete-untagged``) removes the images whose tags were removed, and keeps every tagged one."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.registry.client import RegistryClient
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService


def test_garbage_collection_frees_the_untagged_images_and_keeps_the_tagged(
    fresh_registry: Callable[..., RegistryService],
) -> None:
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if binary is None:
        pytest.skip("no distribution registry binary")
    service = fresh_registry()
    client = RegistryClient(service.host)
    kept = push_image(client, "app", ["kept", "stale-shared"])
    gone = [push_image(client, "app", [f"stale-{n}"]) for n in range(3)]
    assert client.untag_many("app", ["stale-shared", *(f"stale-{n}" for n in range(3))]) == dict.fromkeys(
        ["stale-shared", "stale-0", "stale-1", "stale-2"], "removed")
    service.stop()
    done = subprocess.run([binary, "garbage-collect", "--delete-untagged", str(service.root / "config.yml")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    revisions = Path(service.root, "data/docker/registry/v2/repositories/app/_manifests/revisions/sha256")
    left = {p.name for p in revisions.iterdir()}
    assert kept.digest.partition(":")[2] in left
    assert not any(image.digest.partition(":")[2] in left for image in gone)
    blobs = Path(service.root, "data/docker/registry/v2/blobs/sha256")
    assert all((blobs / b.partition(":")[2][:2] / b.partition(":")[2] / "data").exists() for b in kept.blobs)
    assert not any((blobs / b.partition(":")[2][:2] / b.partition(":")[2]).exists() for i in gone for b in i.blobs)
