"""managed-images: the list of images cleanup looks after, kept in the stages storage.

The storage is :mod:`ci_env.records` (tags in a stages repository, or files for ``:local``);
these functions open it from the resolved options and edit the list.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ci_env import records
from ci_env.registry.reference import RepoAddress


def open_store(
    stages: RepoAddress | None,
    project: str,
    *,
    docker_config: Path,
    env: Mapping[str, str],
    insecure_registries: tuple[str, ...] = (),
) -> records.RecordStore:
    """The record store of ``stages`` (None: ``:local`` for ``project``), with a client for its registry."""
    if stages is None:
        return records.open_store(None, project, env=env)
    from ci_env.registry.client import RegistryClient

    client = RegistryClient(
        stages.api_host(), docker_config=docker_config, insecure_registries=insecure_registries, env=env
    )
    return records.open_store(stages, project, client=client, env=env)


def list_names(store: records.RecordStore) -> list[str]:
    """The managed images as users write them (``~`` for the nameless image)."""
    return ["~" if name is None else name for name in records.list_managed_images(store)]


def add(store: records.RecordStore, text: str) -> str:
    """Add the image ``text`` (``~``: nameless); returns the name as shown."""
    name = records.parse_image_name(text)
    records.add_managed_image(store, name)
    return "~" if name is None else name


def remove(store: records.RecordStore, text: str) -> bool:
    """Remove the image ``text`` (``~``: nameless); False when it was not managed."""
    return records.remove_managed_image(store, records.parse_image_name(text))
