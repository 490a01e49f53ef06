"""`ci-env login REGISTRY -u USER --password-stdin`: add one registry to the job's private config."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import click

from ci_env.cli_options import docker_config_option, insecure_registry_option
from ci_env.errors import ConfigError, UsageError


def current_job_dir(option: str | None, env: Mapping[str, str]) -> Path:
    """The isolated config to write into: ``--docker-config`` > ``$WERF_DOCKER_CONFIG`` > ``$DOCKER_CONFIG`` (the
    cascade of :data:`ci_env.configjson.DOCKER_CONFIG` without its default: never ``~/.docker``).

    Raises UsageError when none is given and ConfigError when it is not a ci-env job
    directory, so a login never lands in ``~/.docker`` or another shared config by accident.
    """
    from ci_env.cascade import cascade, given
    from ci_env.configjson import DOCKER_CONFIG, location
    from ci_env.dockerconfig import is_job_dir

    found = cascade(given(option, DOCKER_CONFIG.flag), env, DOCKER_CONFIG.flag, DOCKER_CONFIG.variables)
    if found is None:
        raise UsageError(
            "no isolated Docker config: $DOCKER_CONFIG is not set; run `eval \"$(ci-env setup)\"` first "
            "(or pass --docker-config DIR naming the directory ci-env setup created)"
        )
    source = location(found, env).source  # as messages name it: --docker-config, $WERF_DOCKER_CONFIG, ...
    path = Path(found.value).expanduser()
    if not is_job_dir(path):
        raise ConfigError(
            f"{path} (from {source}) is not a ci-env job directory; ci-env login only writes into the private "
            "config ci-env setup created, never into a shared one such as ~/.docker: run `eval \"$(ci-env setup)\"` "
            "first, or use `docker login` for a shared config"
        )
    return path.absolute()


def read_password(stream: object) -> str:
    """The password from ``stream`` (stdin), without its trailing newline; UsageError when empty."""
    reader = getattr(stream, "read", None)
    data = reader() if reader is not None else ""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the password on stdin is not valid UTF-8") from None
    password = str(data).rstrip("\r\n")
    if not password:
        raise UsageError("no password on stdin: pipe it in, e.g. `printf %s \"$TOKEN\" | ci-env login REG -u USER "
                         "--password-stdin`")
    if "\n" in password or "\r" in password:
        raise UsageError("the password on stdin spans several lines; pass exactly one password")
    return password


@click.command()
@click.argument("registry")
@click.option("-u", "--username", required=True, help="User name for REGISTRY.")
@click.option("--password-stdin", "password_stdin", is_flag=True, help="Read the password from stdin (required).")
@docker_config_option("login")
@click.option("--no-verify", is_flag=True, help="Write the credentials without checking them against REGISTRY.")
@insecure_registry_option("insecure")
@click.option("-v", "--verbose", is_flag=True, help="Say what is checked and written (never the password).")
def login(
    registry: str,
    username: str,
    password_stdin: bool,
    docker_config: str | None,
    no_verify: bool,
    insecure: tuple[str, ...],
    verbose: bool,
) -> None:
    """Add REGISTRY credentials to the current job's private Docker config.

    The password is read from stdin only. The credentials are checked against the
    registry (GET /v2/ and its auth challenge) unless --no-verify, and written under a
    file lock, so parallel logins of one job never lose each other's entries.
    """
    if not password_stdin:
        raise UsageError("pass the password on stdin with --password-stdin (passwords on the command line leak)")
    if not registry.strip():
        raise UsageError("REGISTRY is empty; give a registry host such as registry.example.com")
    if not username:
        raise UsageError("--username is empty; give the user name for the registry")
    if ":" in username:
        raise UsageError("--username contains ':', which Docker's auth format cannot hold")
    target = current_job_dir(docker_config, os.environ)
    password = read_password(getattr(sys.stdin, "buffer", sys.stdin))

    def say(line: str) -> None:
        if verbose:
            click.echo(f"ci-env: {line}", err=True)

    say(f"writing into {target}/config.json")
    if not no_verify:
        from ci_env.registry.insecure import from_env as insecure_registries_from_env
        from ci_env.registry.probe import verify_login

        allowed = (*insecure, *insecure_registries_from_env(os.environ))
        verify_login(registry, username, password, allowed, credentials_hint=f"the password for {username}", log=say)
    from ci_env.dockerconfig import add_login

    add_login(target, registry, username, password)
    click.echo(f"ci-env: logged in to {registry} as {username} in {target}", err=True)
