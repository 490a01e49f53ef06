"""`ci-env teardown`: remove this job's private Docker config directories.

Works without the job's exports (GitLab runs ``after_script`` in a new shell): the
directories are found from the job's identity and the tmp root, with the same rules
``ci-env setup`` used to create them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import click

from ci_env.ci.facts import JobFacts
from ci_env.cli_options import docker_config_option
from ci_env.errors import ConfigError

CI_CHOICES = ("auto", "gitlab", "github", "generic")


def job_facts(env: Mapping[str, str], requested: str) -> JobFacts:
    """The job's facts as ``ci-env setup`` computes them (``ci_env.ci.detect``)."""
    from ci_env.ci import detect

    return detect(env, requested)


def dirs_to_remove(
    env: Mapping[str, str], facts: JobFacts, tmp_dir: str | None, docker_config: str | None
) -> tuple[list[Path], list[str]]:
    """The job directories teardown removes, and notes on what it skipped (for stderr).

    ``--docker-config`` must be a job directory (ConfigError otherwise). ``$WERF_DOCKER_CONFIG`` /
    ``$DOCKER_CONFIG`` are taken when they are job directories. Then every directory of this job
    (its ``job_key``) under the tmp root.
    """
    from ci_env.dockerconfig import find_job_dirs, is_job_dir, tmp_root

    found: list[Path] = []
    notes: list[str] = []
    if docker_config:
        path = Path(docker_config).expanduser().absolute()
        if os.path.lexists(path) and not is_job_dir(path):
            raise ConfigError(f"{path} (from --docker-config) is not a ci-env job directory; refusing to remove it")
        found.append(path)
    for name in ("WERF_DOCKER_CONFIG", "DOCKER_CONFIG"):
        value = env.get(name)
        if not value:
            continue
        path = Path(value).expanduser().absolute()
        if is_job_dir(path):
            found.append(path)
        elif os.path.lexists(path):
            notes.append(f"${name} ({path}) is not a ci-env job directory; left alone")
    root = tmp_root(tmp_dir, env, facts)
    if facts.job_key is not None:
        found.extend(find_job_dirs(root, facts.job_key))
    else:
        notes.append("no CI job identity found (outside CI?); only $DOCKER_CONFIG / --docker-config are considered")
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique, notes


@click.command()
@click.argument("ci", type=click.Choice(CI_CHOICES), default="auto", required=False)
@click.option("--tmp-dir", "tmp_dir", metavar="DIR",
              help="Where setup created the directory (default: $WERF_TMP_DIR, $RUNNER_TEMP on GitHub, system temp).")
@docker_config_option("teardown")
@click.option("-v", "--verbose", is_flag=True, help="Say what is removed and why.")
def teardown(ci: str, tmp_dir: str | None, docker_config: str | None, verbose: bool) -> None:
    """Remove this job's private Docker config (every directory ci-env setup made for it).

    CI is the system given to `ci-env setup` (default: auto-detect). Directories of other
    jobs and anything not created by ci-env are never touched. Nothing to remove is fine.
    """
    from ci_env.dockerconfig import remove_job_dir

    env = dict(os.environ)
    facts = job_facts(env, ci)
    paths, notes = dirs_to_remove(env, facts, tmp_dir, docker_config)
    if verbose:
        for note in notes:
            click.echo(f"ci-env: {note}", err=True)
        click.echo(f"ci-env: job identity: {facts.job_key or 'none'}", err=True)
    removed = 0
    for path in paths:
        if not os.path.lexists(path):
            continue
        remove_job_dir(path)
        removed += 1
        click.echo(f"ci-env: removed {path}", err=True)
    if removed == 0:
        click.echo("ci-env: teardown: no ci-env directory of this job to remove", err=True)
