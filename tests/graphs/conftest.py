"""Fixtures for the image graph tests: the registry client fixtures, and a registry front that answers the
referrers API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_env.registry.client import RegistryClient
from tests.registry_client.conftest import open_client, repo
from tests.services.referrers_front import ReferrersFront
from tests.services.registry import RegistryService

__all__ = ["open_client", "repo"]


@pytest.fixture
def front(registry_open: RegistryService) -> Iterator[ReferrersFront]:
    """The open registry behind a front that answers ``GET /v2/<name>/referrers/<digest>``."""
    service = ReferrersFront(registry_open)
    yield service
    service.stop()


@pytest.fixture
def front_client(front: ReferrersFront) -> RegistryClient:
    return RegistryClient(front.host, docker_config=Path("/nonexistent-docker-config"))
