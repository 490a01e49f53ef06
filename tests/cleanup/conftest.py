"""Fixtures for the cleanup tests: a World on the real registry, and the vendor test servers of
``tests/vendors`` reused for end-to-end runs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.world import World
from tests.services.registry import RegistryService
from tests.vendors.conftest import clean_env, fake_api, moto_url

__all__ = ["clean_env", "fake_api", "moto_url", "world"]


@pytest.fixture
def world(registry_open: RegistryService) -> World:
    """An images repo and a stages storage of their own on the open real registry."""
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    base = f"cleanup-{uuid.uuid4().hex[:10]}"
    return World(client, RepoAddress(registry_open.host, f"{base}/images"),
                 RepoAddress(registry_open.host, f"{base}/stages"))
