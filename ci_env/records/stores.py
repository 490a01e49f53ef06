"""Which record store a stages storage has: a directory for ``:local``, else the stages repository."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ci_env.records.local import LocalStore, state_directory
from ci_env.records.model import RecordStore
from ci_env.records.registry import RegistryStore

if TYPE_CHECKING:
    from ci_env.registry.client import RegistryClient
    from ci_env.registry.reference import RepoAddress


def open_store(
    stages: RepoAddress | None,
    project: str,
    *,
    client: RegistryClient | None = None,
    env: Mapping[str, str] | None = None,
) -> RecordStore:
    """The record store of a stages storage: ``stages`` None is ``:local`` (needs ``project``),
    else the stages repository, read and written through ``client`` (a RegistryClient for its registry)."""
    if stages is None:
        return LocalStore(state_directory(project, env))
    if client is None:
        raise ValueError("a registry stages storage needs a RegistryClient")
    return RegistryStore(client, stages)
