"""Fixtures for the registry client tests: unique repository names and clients for each auth mode."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from ci_env.registry.client import RegistryClient
from tests.conftest import USERS
from tests.services.registry import RegistryService
from tests.vendors.conftest import fake_api


@pytest.fixture
def repo() -> str:
    """A repository path no other test uses."""
    return f"test/{uuid.uuid4().hex[:12]}"


def docker_config_for(directory: Path, registry: str, user: str, password: str) -> Path:
    """A Docker config directory whose config.json holds user:password for ``registry`` (as docker login writes)."""
    import base64

    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth}}}))
    return directory


@pytest.fixture
def open_client(registry_open: RegistryService) -> RegistryClient:
    return RegistryClient(registry_open.host, docker_config=Path("/nonexistent-docker-config"))


@pytest.fixture
def htpasswd_client(registry_htpasswd: RegistryService, tmp_path: Path) -> RegistryClient:
    config = docker_config_for(tmp_path / "docker", registry_htpasswd.host, "alice", USERS["alice"])
    return RegistryClient(registry_htpasswd.host, docker_config=config)


@pytest.fixture
def token_client(registry_token: RegistryService, tmp_path: Path) -> RegistryClient:
    config = docker_config_for(tmp_path / "docker", registry_token.host, "bob", USERS["bob"])
    return RegistryClient(registry_token.host, docker_config=config)


__all__ = ["fake_api"]
