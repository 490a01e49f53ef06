"""Fixtures for the cleanup tests: a World on the real registry, the vendor test servers of
``tests/vendors`` reused for end-to-end runs, and Kubernetes API test servers.

No cleanup test reads the kubeconfig of the machine running it: ``KUBECONFIG`` points at a file that
does not exist unless a test writes its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.world import World
from tests.services.kubeapi import KubeApi, start_kubeapi
from tests.services.registry import RegistryService
from tests.vendors.conftest import clean_env, fake_api, moto_url

__all__ = ["clean_env", "fake_api", "kube_servers", "moto_url", "no_machine_kubeconfig", "world"]


@pytest.fixture(autouse=True)
def no_machine_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """``KUBECONFIG`` names a file that does not exist, so neither the machine's ``KUBECONFIG`` nor its
    ``~/.kube/config`` (nor, in a pod, its service account) reaches a cleanup run (in-process or through
    ``environ_without``)."""
    absent = tmp_path / "no-kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(absent))
    for name in ("WERF_KUBE_CONFIG", "WERF_KUBECONFIG", "WERF_KUBE_CONTEXT", "WERF_WITHOUT_KUBE",
                 "WERF_SCAN_CONTEXT_NAMESPACE_ONLY", "WERF_KUBE_SCAN_NAMESPACES", "KUBERNETES_SERVICE_HOST",
                 "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    return absent


@pytest.fixture
def kube_servers(tmp_path: Path) -> Iterator[Callable[..., KubeApi]]:
    """A factory of Kubernetes API test servers (``start_kubeapi`` arguments), stopped after the test."""
    started: list[KubeApi] = []

    def make(**kwargs: object) -> KubeApi:
        directory = tmp_path / f"kubeapi-{len(started)}"
        directory.mkdir()
        api = start_kubeapi(directory=directory, **kwargs)  # type: ignore[arg-type]
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()


@pytest.fixture
def world(registry_open: RegistryService) -> World:
    """An images repo and a stages storage of their own on the open real registry."""
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    base = f"cleanup-{uuid.uuid4().hex[:10]}"
    return World(client, RepoAddress(registry_open.host, f"{base}/images"),
                 RepoAddress(registry_open.host, f"{base}/stages"))
