"""Fixtures for the GitHub Action and GitLab template tests: an offline wheelhouse of ci-env."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integrations.wheelhouse import build_wheelhouse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the ci-env wheel of this checkout and every wheel it needs with [docker]."""
    directory = tmp_path_factory.mktemp("wheelhouse")
    build_wheelhouse(ROOT, directory, extras=("docker",))
    return directory


@pytest.fixture(scope="session")
def ci_env_wheel(wheelhouse: Path) -> Path:
    """The ci-env wheel built from this checkout."""
    return next(wheelhouse.glob("ci_env-*.whl"))
