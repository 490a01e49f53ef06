"""``ci-env build-and-publish``: options and wiring only; the work is in :mod:`ci_env.steps.build_publish`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import click

from ci_env.boolean import parse_boolean
from ci_env.cascade import cascade, given, named, value_of
from ci_env.cli_options import docker_config_option, insecure_registry_option, repo_options
from ci_env.errors import UsageError
from ci_env.options import RepoOptions


def bool_flag_or_env(value: bool, env: Mapping[str, str], name: str, option: str = "--flag") -> bool:
    """True when the flag is given, else the variable ``name`` read as a boolean (ConfigError, exit 2, naming
    it when not one), else False."""
    found = cascade(given(True if value else None, option), env, option, (name,))
    return named(parse_boolean, found) if found else False


def custom_tags(values: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``--tag-custom`` values, else ``WERF_TAG_CUSTOM`` split on commas."""
    if values:
        return list(values)
    return [item.strip() for item in env.get("WERF_TAG_CUSTOM", "").split(",") if item.strip()]


def parallel_value(value: int | None, env: Mapping[str, str]) -> int:
    """``--parallel`` else ``WERF_PARALLEL`` else 1; UsageError unless a positive integer."""
    if value is not None:
        if value < 1:
            raise UsageError(f"--parallel {value}: give a number of images to build at once, 1 or more")
        return value
    raw = env.get("WERF_PARALLEL", "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"WERF_PARALLEL={raw!r}: give a number of images to build at once, 1 or more")
    return int(raw)


@click.command("build-and-publish")
@repo_options
@click.option("--tag-custom", "tag_custom", multiple=True, metavar="TAG",
              help="Publish with this tag (repeatable) [env: WERF_TAG_CUSTOM, comma separated]")
@click.option("--tag-git-branch", metavar="BRANCH",
              help="Publish with the branch name as tag [env: WERF_TAG_GIT_BRANCH]")
@click.option("--tag-git-tag", metavar="TAG", help="Publish with the git tag name as tag [env: WERF_TAG_GIT_TAG]")
@click.option("--tag-git-commit", metavar="COMMIT", help="Publish with the commit as tag [env: WERF_TAG_GIT_COMMIT]")
@click.option("--tag-by-stages-signature", is_flag=True, default=False,
              help="Publish with each image's content signature as tag [env: WERF_TAG_BY_STAGES_SIGNATURE=true]")
@click.option("--dir", "directory", metavar="DIR", help="Project directory [env: WERF_DIR; default: .]")
@click.option("--config", "config", metavar="PATH", help="werf.yaml to use, relative to --dir [env: WERF_CONFIG]")
@click.option("--parallel", type=int, default=None, metavar="N",
              help="Build and publish N images at once [env: WERF_PARALLEL; default: 1]")
@docker_config_option("credentials")
@insecure_registry_option("insecure_registry")
def build_and_publish(
    repo: RepoOptions,
    tag_custom: tuple[str, ...],
    tag_git_branch: str | None,
    tag_git_tag: str | None,
    tag_git_commit: str | None,
    tag_by_stages_signature: bool,
    directory: str | None,
    config: str | None,
    parallel: int | None,
    docker_config: Path | None,
    insecure_registry: tuple[str, ...],
) -> None:
    """Build the images of werf.yaml and publish them to the images repo.

    An image whose content signature is already in the stages storage is not built again and no
    layer is uploaded: it is only tagged on the registry. Every option can come from the WERF_*
    variable that `ci-env setup` exports.

    \f
    Size: a click command takes one parameter per option; the body resolves them and runs the build in order.
    """
    from ci_env.ci import detect
    from ci_env.output import Output
    from ci_env.registry.auth import docker_config_dir
    from ci_env.registry.naming import resolve_images_repo
    from ci_env.steps.build_publish import Settings, publish, tag_requests
    from ci_env.werf_config import load_project

    env = dict(os.environ)
    flags = {"tag_git_branch": tag_git_branch, "tag_git_tag": tag_git_tag, "tag_git_commit": tag_git_commit,
             "dir": directory, "config": config}
    tags = tag_requests(
        custom=custom_tags(tag_custom, env),
        git_branch=value_of(flags, env, "--tag-git-branch", ("WERF_TAG_GIT_BRANCH",)),
        git_tag=value_of(flags, env, "--tag-git-tag", ("WERF_TAG_GIT_TAG",)),
        git_commit=value_of(flags, env, "--tag-git-commit", ("WERF_TAG_GIT_COMMIT",)),
        by_signature=bool_flag_or_env(tag_by_stages_signature, env, "WERF_TAG_BY_STAGES_SIGNATURE",
                                      "--tag-by-stages-signature"),
    )
    workers = parallel_value(parallel, env)
    if repo.images_repo is None:
        raise UsageError("no images repo: pass -i/--images-repo or set WERF_IMAGES_REPO (ci-env setup exports it)")
    repo.check_stages_storage(env)
    project = load_project(value_of(flags, env, "--dir", ("WERF_DIR",)) or ".",
                           value_of(flags, env, "--config", ("WERF_CONFIG",)), env)
    implementation = repo.images_repo_implementation
    images_repo = resolve_images_repo(
        repo.images_repo, env, requested_mode=repo.images_repo_mode,
        implementation=implementation.value if implementation else None,
        implementation_source=implementation.source if implementation else "--repo-implementation",
        image_names=[image.name for image in project.images],
    )
    facts = detect(env)
    settings = Settings(
        project=project,
        images_repo=images_repo,
        stages=repo.stages_storage,
        tags=tags,
        facts=facts,
        docker_config=Path(docker_config_dir(docker_config, env)),
        env=env,
        parallel=workers,
        insecure_registries=tuple(insecure_registry),
    )
    publish(settings, Output(facts.family, live=workers == 1))
