"""``ci-env managed-images ls|add|rm``: options and printing only (see :mod:`ci_env.steps.managed_images`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ci_env.cascade import value_of
from ci_env.cli_options import docker_config_option, insecure_registry_option, repo_options
from ci_env.errors import ConfigError
from ci_env.options import RepoOptions


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = insecure_registry_option("insecure_registry")(func)
    func = docker_config_option("credentials")(func)
    func = click.option("--config", "config", metavar="PATH",
                        help="werf.yaml, relative to --dir (needed for :local) [env: WERF_CONFIG]")(func)
    func = click.option("--dir", "directory", metavar="DIR",
                        help="Project directory (needed for :local) [env: WERF_DIR]")(func)
    return repo_options(func)


def _store(
    repo: RepoOptions,
    directory: str | None,
    config: str | None,
    docker_config: Path | None,
    insecure_registry: tuple[str, ...] = (),
) -> Any:
    from ci_env.registry.auth import docker_config_dir
    from ci_env.steps.managed_images import open_store

    env = dict(os.environ)
    if repo.stages_storage is None and not repo.stages_storage_local:
        raise ConfigError(
            "no stages storage: pass -s/--stages-storage (:local or a repository) or set WERF_STAGES_STORAGE"
        )
    if repo.stages_storage is not None and repo.stages_storage.is_registry_only:
        raise ConfigError(f"stages storage {repo.stages_storage} is a registry, not a repository: write a repository "
                          "address, or :local")
    project = ""
    if repo.stages_storage is None:
        from ci_env.werf_config import load_project

        flags = {"dir": directory, "config": config}
        project = load_project(value_of(flags, env, "--dir", ("WERF_DIR",)) or ".",
                               value_of(flags, env, "--config", ("WERF_CONFIG",)), env).project
    return open_store(repo.stages_storage, project, docker_config=docker_config_dir(docker_config, env), env=env,
                      insecure_registries=tuple(insecure_registry))


@click.group("managed-images")
def managed_images() -> None:
    """The images cleanup looks after, kept in the stages storage (~ is the nameless image)."""


@managed_images.command("ls")
@_common
def ls(repo: RepoOptions, **where: Any) -> None:
    """List the managed images, one per line."""
    from ci_env.steps.managed_images import list_names

    for name in list_names(_store(repo, **where)):
        click.echo(name)


@managed_images.command("add")
@click.argument("name")
@_common
def add(repo: RepoOptions, name: str, **where: Any) -> None:
    """Add NAME to the managed images (~ for the nameless image)."""
    from ci_env.records import parse_image_name
    from ci_env.steps.managed_images import add as add_name

    parse_image_name(name)  # a bad name fails before the storage is touched
    shown = add_name(_store(repo, **where), name)
    click.echo(f"managed image {shown} added")


@managed_images.command("rm")
@click.argument("name")
@_common
def rm(repo: RepoOptions, name: str, **where: Any) -> None:
    """Remove NAME from the managed images (~ for the nameless image)."""
    from ci_env.records import parse_image_name
    from ci_env.steps.managed_images import remove

    parse_image_name(name)
    shown = name if name != "" else "~"
    if remove(_store(repo, **where), name):
        click.echo(f"managed image {shown} removed")
    else:
        click.echo(f"managed image {shown} was not in the list")
