"""Fixtures for the vendor removers: a context like the dispatcher's, recording fake APIs, and moto's server."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ci_env.registry.api import RegistryApi
from ci_env.registry.untag import referenced_by_tags
from tests.services import free_port, require, wait_until
from tests.vendors.fakeapi import FakeApi


@dataclass(frozen=True)
class Ctx:
    """What ``ci_env.registry.untag.RemoverContext`` carries: the removers need only these fields."""

    env: Mapping[str, str] = field(default_factory=dict)
    credentials: Any = None
    docker_config: Path | None = None
    insecure_registries: Sequence[str] = ()
    referenced: Callable[[RegistryApi, str], frozenset[str]] = referenced_by_tags


@pytest.fixture
def fake_api() -> Iterator[Callable[[], FakeApi]]:
    """A factory of started FakeApi servers, stopped after the test."""
    started: list[FakeApi] = []

    def make() -> FakeApi:
        api = FakeApi().start()
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No vendor or CI variables from the machine running the tests leak into a test."""
    prefixes = ("WERF_", "GITHUB_", "GITLAB_", "CI_", "AZURE_", "AWS_", "DOCKER_")
    for name in list(os.environ):
        if name.startswith(prefixes):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """The URL of a moto_server (AWS API mock) started for the module, stopped after it."""
    binary = require("moto_server", "AWS API mock server, pip install 'moto[server]'")
    port = free_port()
    process = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return True
        except OSError:
            return False

    try:
        wait_until(ready, 30, "moto_server")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
