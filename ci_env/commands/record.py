"""``ci-env record``: options and printing only; the work is in :mod:`ci_env.steps.record`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ci_env.cascade import value_of
from ci_env.cli_options import docker_config_option, insecure_registry_option, repo_options
from ci_env.errors import UsageError
from ci_env.options import RepoOptions
from ci_env.steps.record import STRATEGY_CHOICES, GitSource


@click.command("record")
@click.argument("references", nargs=-1, metavar="REPOSITORY:TAG...")
@repo_options
@click.option("--image", "image", metavar="NAME",
              help="The image these tags belong to (~: the nameless image) [default: from where each repository is "
              "in the images repo; monorepo: ~]")
@click.option("--strategy", type=click.Choice(STRATEGY_CHOICES), default="auto", show_default=True,
              help="How cleanup decides these tags: auto (the branch's tag is git-branch, the git tag's git-tag, the "
              "commit's git-commit, any other by the keep policies through the commit), or one strategy for all")
@click.option("--tag-git-branch", metavar="BRANCH",
              help="The branch the images were built from [env: WERF_TAG_GIT_BRANCH; default: the CI's]")
@click.option("--tag-git-tag", metavar="TAG",
              help="The git tag the images were built from [env: WERF_TAG_GIT_TAG; default: the CI's]")
@click.option("--tag-git-commit", metavar="COMMIT",
              help="The commit the images were built from [env: WERF_TAG_GIT_COMMIT; default: the CI's, else HEAD "
              "of --dir]")
@click.option("--dir", "directory", metavar="DIR", help="Project directory (the git clone) [env: WERF_DIR; default: .]")
@click.option("--config", "config", metavar="PATH",
              help="werf.yaml, relative to --dir (its project names a :local stages storage) [env: WERF_CONFIG]")
@docker_config_option("credentials")
@insecure_registry_option("insecure_registry")
def record(
    references: tuple[str, ...],
    repo: RepoOptions,
    image: str | None,
    strategy: str,
    tag_git_branch: str | None,
    tag_git_tag: str | None,
    tag_git_commit: str | None,
    directory: str | None,
    config: str | None,
    docker_config: Path | None,
    insecure_registry: tuple[str, ...],
) -> None:
    """Record images another tool pushed (docker buildx, kaniko, buildah) as build-and-publish records its own,
    so cleanup looks after them: the digest each tag holds now, the image it belongs to, the branch, git tag
    and commit it was built from. Run it right after the push; running it again writes nothing.

    \f
    Size: a click command takes one parameter per option; the body resolves them, checks every reference and
    only then writes the records, in that order.
    """
    from ci_env.ci import detect
    from ci_env.output import Output, plural
    from ci_env.registry.auth import docker_config_dir
    from ci_env.registry.client import ClientPool
    from ci_env.registry.naming import image_label, resolve_images_repo
    from ci_env.steps import record as step

    if not references:
        raise UsageError("nothing to record: give the pushed images as REPOSITORY:TAG (see 'ci-env record --help')")
    env = dict(os.environ)
    if repo.images_repo is None:
        raise UsageError("no images repo: pass -i/--images-repo or set WERF_IMAGES_REPO (ci-env setup exports it)")
    repo.check_stages_storage(env)
    flags = {"tag_git_branch": tag_git_branch, "tag_git_tag": tag_git_tag, "tag_git_commit": tag_git_commit,
             "dir": directory, "config": config}
    root = Path(value_of(flags, env, "--dir", ("WERF_DIR",)) or ".")
    facts = detect(env)
    git = _git_source(
        value_of(flags, env, "--tag-git-branch", ("WERF_TAG_GIT_BRANCH",)),
        value_of(flags, env, "--tag-git-tag", ("WERF_TAG_GIT_TAG",)),
        value_of(flags, env, "--tag-git-commit", ("WERF_TAG_GIT_COMMIT",)),
        facts.branch, facts.tag, facts.commit, root)
    project = ""
    if repo.stages_storage is None:
        from ci_env.werf_config import load_project

        project = load_project(root, value_of(flags, env, "--config", ("WERF_CONFIG",)), env).project
    impl = repo.images_repo_implementation
    images_repo = resolve_images_repo(
        repo.images_repo, env, requested_mode=repo.images_repo_mode,
        implementation=impl.value if impl else None,
        implementation_source=impl.source if impl else "--repo-implementation",
    )
    settings = step.Settings(
        images_repo, repo.stages_storage, project, tuple(references), git,
        image=step.DERIVE if image is None else _image(image), strategy=strategy,
        docker_config=Path(docker_config_dir(docker_config, env)), insecure_registries=tuple(insecure_registry),
        env=env,
    )
    clients = ClientPool(settings.docker_config, settings.insecure_registries, env)
    try:
        found = step.resolve(settings, clients)
        from ci_env import records

        stages = settings.stages
        store = records.open_store(stages, project, client=clients(stages) if stages is not None else None, env=env)
        outcome = step.write(store, found, git)
    finally:
        clients.close()
    out = Output(facts.family)
    for item, what in outcome.lines:
        out.status(f"{what}: {item.reference} ({step.describe(item, git)})")
    for name in outcome.managed_added:
        out.status(f"managed image {image_label(name)} added")
    written = plural(outcome.metadata_written, "metadata record")
    out.status(f"record: {sum(1 for _i, w in outcome.lines if w == 'recorded')} recorded, "
               f"{sum(1 for _i, w in outcome.lines if w == 'unchanged')} unchanged, {written} written "
               f"(commit {git.commit[:12]}) in {store.description}")


def _image(text: str) -> str | None:
    from ci_env.records import parse_image_name

    return parse_image_name(text)


def _git_source(branch: str | None, tag: str | None, commit: str | None, ci_branch: str | None,
                ci_tag: str | None, ci_commit: str | None, directory: Path) -> GitSource:
    """The git source: the options' (a branch or tag given in its tag form names the CI's), else the CI's; the
    commit made full (through the clone in ``directory`` when abbreviated; HEAD when none is given). UsageError
    when there is no commit."""
    from ci_env.gitsource import resolve_commit
    from ci_env.steps.record import full_commit
    from ci_env.tagging import docker_tag

    def original(given: str | None, fact: str | None) -> str | None:
        if given is None:
            return fact
        return fact if fact and docker_tag(fact) == given else given

    wanted = commit or ci_commit
    full = full_commit(wanted, directory) if wanted else resolve_commit(directory)
    if full is None:
        raise UsageError(
            (f"commit {wanted!r} is neither a full commit id nor one the clone in {directory} knows: pass the full id"
             if wanted else f"no commit: {directory} is not a git clone and no CI commit is set; pass "
             "--tag-git-commit COMMIT (or WERF_TAG_GIT_COMMIT)") + " (git-history-based cleanup needs it)")
    return GitSource(full, original(branch, ci_branch), original(tag, ci_tag))
