"""Credential levels and repo options: specific flag > specific variable > common flag > common variable."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from ci_env.cascade import IMAGES_REPO, SCOPES, variable_name
from ci_env.cli_options import repo_options
from ci_env.errors import ConfigError
from ci_env.options import RepoOptions, resolve_credentials, resolve_repo_options
from ci_env.registry.implementations import CREDENTIAL_KINDS

LEVELS = ["specific-flag", "specific-var", "common-flag", "common-var"]


def _setup(scope: str, kind: str, present: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Flags and env with a distinct value at each level in ``present``."""
    flag = kind.replace("-", "_")
    specific_flag = {"stages-storage": f"stages_storage_repo_{flag}", "images-repo": f"images_repo_{flag}"}[scope]
    flags, env = {}, {}
    if "specific-flag" in present:
        flags[specific_flag] = "specific-flag"
    if "specific-var" in present:
        env[variable_name(scope, kind)] = "specific-var"
    if "common-flag" in present:
        flags[f"repo_{flag}"] = "common-flag"
    if "common-var" in present:
        env[variable_name("repo", kind)] = "common-var"
    return flags, env


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
def test_precedence_for_every_kind_and_scope(scope: str, kind: str) -> None:
    for start in range(len(LEVELS)):
        flags, env = _setup(scope, kind, set(LEVELS[start:]))
        creds = resolve_credentials(scope, flags, env)
        assert creds.get(kind) == LEVELS[start]
    assert resolve_credentials(scope, {}, {}).get(kind) is None


def test_variable_names_match_the_documented_ones() -> None:
    assert variable_name("repo", "docker-hub-token") == "WERF_REPO_DOCKER_HUB_TOKEN"
    assert variable_name("images-repo", "docker-hub-token") == "WERF_IMAGES_REPO_DOCKER_HUB_TOKEN"
    assert variable_name("stages-storage", "docker-hub-token") == "WERF_STAGES_STORAGE_REPO_DOCKER_HUB_TOKEN"
    assert variable_name("repo", "gitlab-token") == "WERF_REPO_GITLAB_TOKEN"


def test_specific_level_of_other_scope_does_not_leak() -> None:
    env = {"WERF_STAGES_STORAGE_REPO_GITHUB_TOKEN": "s"}
    assert resolve_credentials(IMAGES_REPO, {}, env).get("github-token") is None


def test_empty_value_counts_as_unset() -> None:
    env = {"WERF_IMAGES_REPO_QUAY_TOKEN": "", "WERF_REPO_QUAY_TOKEN": "common"}
    creds = resolve_credentials(IMAGES_REPO, {}, env)
    assert creds.get("quay-token") == "common"
    assert creds.source("quay-token") == "WERF_REPO_QUAY_TOKEN"


def test_secrets_never_in_repr() -> None:
    env = {"WERF_REPO_DOCKER_HUB_PASSWORD": "hunter2-secret", "WERF_REPO_DOCKER_HUB_USERNAME": "bob"}
    options = resolve_repo_options({}, env)
    text = repr(options) + str(options)
    assert "hunter2-secret" not in text
    assert "bob" in text  # usernames are not secrets


def test_repo_options_precedence_and_parsing() -> None:
    env = {"WERF_IMAGES_REPO": "ghcr.io/acme", "WERF_IMAGES_REPO_MODE": "monorepo", "WERF_STAGES_STORAGE": ":local",
           "WERF_REPO_IMPLEMENTATION": "harbor", "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION": "quay"}
    options = resolve_repo_options({"images_repo": "quay.io/ns/app", "images_repo_implementation": "Quay"}, env)
    assert str(options.images_repo) == "quay.io/ns/app"
    assert options.images_repo_source == "--images-repo"
    assert (options.images_repo_mode, options.images_repo_mode_source) == ("monorepo", "WERF_IMAGES_REPO_MODE")
    assert options.stages_storage_local and options.stages_storage is None
    assert options.images_repo_implementation is not None
    assert options.images_repo_implementation.value == "quay"
    assert options.stages_storage_implementation is not None
    assert options.stages_storage_implementation.source == "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION"


def test_unknown_implementation_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^WERF_REPO_IMPLEMENTATION: unknown registry implementation 'hub'"):
        resolve_repo_options({}, {"WERF_REPO_IMPLEMENTATION": "hub"})


def test_click_decorator_adds_every_option_and_hands_over_resolved_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[RepoOptions] = []

    @click.command()
    @click.option("--other", default="x")
    @repo_options
    def command(repo: RepoOptions, other: str) -> None:
        seen.append(repo)

    monkeypatch.setenv("WERF_REPO_GITHUB_TOKEN", "from-env")
    result = CliRunner().invoke(
        command, ["-i", "ghcr.io/acme", "--images-repo-github-token", "flag-token", "-s", ":local"]
    )
    assert result.exit_code == 0, result.output
    (repo,) = seen
    assert repo.images_repo_credentials.get("github-token") == "flag-token"
    assert repo.stages_storage_credentials.get("github-token") == "from-env"
    help_text = CliRunner().invoke(command, ["--help"]).output
    for flag in ("--images-repo-mode", "--stages-storage-repo-docker-hub-token", "--repo-quay-token",
                 "--images-repo-harbor-password", "--stages-storage-repo-implementation", "WERF_REPO_GITLAB_TOKEN"):
        assert flag in help_text
