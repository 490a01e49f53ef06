"""Fixtures for the image graph tests: the registry client fixtures, reused."""

from __future__ import annotations

from tests.registry_client.conftest import open_client, repo

__all__ = ["open_client", "repo"]
