"""Shared fixtures: real registries (open, htpasswd, token, delete disabled).

Each registry is started once per test session and stopped at the end. Tests
that need a fresh, empty registry use ``fresh_registry`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.registry_client.nameproxy import NameProxy
from tests.services.dockerd import DockerDaemon, start_dockerd
from tests.services.registry import RegistryService, start_registry

USERS = {"alice": "alice-pass-1", "bob": "b0b$`\"'\\pass"}


@pytest.fixture(autouse=True)
def _fresh_request_budgets() -> Iterator[None]:
    """Each test starts with no host paused or paced by an earlier one (``ci_env.registry.budget``)."""
    from ci_env.registry.budget import reset_shared

    reset_shared()
    yield
    reset_shared()


@pytest.fixture(scope="session")
def registry_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryService]:
    service = start_registry(tmp_path_factory.mktemp("registry-open"), auth="none")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def registry_htpasswd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryService]:
    service = start_registry(tmp_path_factory.mktemp("registry-htpasswd"), auth="htpasswd", users=USERS)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryService]:
    service = start_registry(tmp_path_factory.mktemp("registry-token"), auth="token", users=USERS)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def registry_nodelete(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryService]:
    service = start_registry(tmp_path_factory.mktemp("registry-nodelete"), auth="none", delete_enabled=False)
    yield service
    service.stop()


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[Callable[..., RegistryService]]:
    """A factory for registries that live for one test (any auth mode)."""
    started: list[RegistryService] = []

    def make(**kwargs: object) -> RegistryService:
        service = start_registry(tmp_path / f"registry-{len(started)}", **kwargs)  # type: ignore[arg-type]
        started.append(service)
        return service

    yield make
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A real Docker daemon for the whole session (overlay2, else vfs)."""
    daemon = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    yield daemon
    daemon.stop()


@pytest.fixture
def name_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, int]], NameProxy]]:
    """Start a NameProxy for the given routes (made-up name -> local port) and send this process's requests
    for those names through it (HTTP_PROXY/HTTPS_PROXY), so a test gets hosts that are not loopback."""
    proxies: list[NameProxy] = []

    def start(routes: dict[str, int]) -> NameProxy:
        proxy = NameProxy(routes)
        proxies.append(proxy)
        for key, value in proxy.env().items():
            monkeypatch.setenv(key, value)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()
