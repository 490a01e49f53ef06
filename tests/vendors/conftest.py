"""Fixtures for the vendor removers: a context like the dispatcher's, and recording fake APIs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.vendors.fakeapi import FakeApi


@dataclass(frozen=True)
class Ctx:
    """What ``ci_env.registry.untag.RemoverContext`` carries: the removers need only these fields."""

    env: Mapping[str, str] = field(default_factory=dict)
    credentials: Any = None
    docker_config: Path | None = None
    insecure_registries: Sequence[str] = ()


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
