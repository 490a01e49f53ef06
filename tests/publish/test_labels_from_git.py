"""The OCI source and revision labels outside CI come from the project's clone: origin without credentials, HEAD."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ci_env.gitsource import source_url
from tests.publish.conftest import Cli, RegistryFactory, RegistryReader, write_project

SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout.strip()


def clone_with_origin(root: Path, origin: str) -> str:
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    git(root, "remote", "add", "origin", origin)
    return git(root, "rev-parse", "HEAD")


def test_labels_outside_ci_come_from_git_without_credentials(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {"index.html": "hi"}})
    head = clone_with_origin(cli.cwd, "https://ci-user:s3cret-token@git.example.com/acme/app.git")
    result = cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages",
                 "--tag-custom", "v1")
    labels = RegistryReader(registry).labels("acme/web", "v1")
    assert labels[SOURCE] == "https://git.example.com/acme/app"
    assert labels[REVISION] == head
    assert "s3cret-token" not in result.stdout + result.stderr


def test_ci_values_win_over_git(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {"index.html": "ci"}})
    clone_with_origin(cli.cwd, "git@git.example.com:acme/app.git")
    cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages",
        "--tag-custom", "v1", extra_env={"GITLAB_CI": "true", "CI_PROJECT_URL": "https://gitlab.example.com/g/p",
                                         "CI_COMMIT_SHA": "c" * 40, "CI_JOB_ID": "1"})
    labels = RegistryReader(registry).labels("acme/web", "v1")
    assert (labels[SOURCE], labels[REVISION]) == ("https://gitlab.example.com/g/p", "c" * 40)


def test_no_git_no_source_labels(cli: Cli, fresh_registry: RegistryFactory) -> None:
    registry = fresh_registry()
    write_project(cli.cwd, {"web": {"index.html": "plain"}})
    cli("build-and-publish", "-i", f"{registry.host}/acme", "-s", f"{registry.host}/acme/stages", "--tag-custom", "v1")
    labels = RegistryReader(registry).labels("acme/web", "v1")
    assert SOURCE not in labels and REVISION not in labels


@pytest.mark.parametrize(("remote", "url"), [
    ("git@github.com:acme/app.git", "https://github.com/acme/app"),
    ("ssh://git@gitlab.example.com:2222/group/sub/app.git", "https://gitlab.example.com/group/sub/app"),
    ("https://oauth2:glpat-xyz@gitlab.com/group/app.git", "https://gitlab.com/group/app"),
    ("http://gitea.local:3000/acme/app", "http://gitea.local:3000/acme/app"),
    ("/srv/git/app.git", None),
    ("file:///srv/git/app.git", None),
    # a query or fragment may carry a token, and is no part of the project's web address
    ("https://git.example.com/acme/app.git?private_token=glpat-xyz", "https://git.example.com/acme/app"),
    ("https://git.example.com/acme/app#main", "https://git.example.com/acme/app"),
    ("https://ci:p@ss@github.com/acme/app.git", "https://github.com/acme/app"),
    # git's remote helpers are no web address
    ("ext::ssh -p 2222 git.example.com %S acme/app", None),
    ("persistent-https::github.com/acme/app", None),
])
def test_remote_becomes_a_web_url_without_credentials(remote: str, url: str | None) -> None:
    assert source_url(remote) == url
