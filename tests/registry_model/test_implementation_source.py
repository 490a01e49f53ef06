"""`registry info` says which source chose the implementation, and which variable was set for another registry."""

from __future__ import annotations

import json

import pytest

from ci_env.cascade import IMAGES_REPO, STAGES_STORAGE
from ci_env.errors import ConfigError
from ci_env.options import resolve_repo_options
from ci_env.registry.model import choose_implementation
from ci_env.registry.reference import parse_address
from tests.cli import environ_without, run_ci_env

GITLAB_JOB = {"WERF_IMAGES_REPO": "registry.gitlab.com/group/project", "WERF_IMAGES_REPO_IMPLEMENTATION": "gitlab"}


def info(*args: str, env: dict[str, str]) -> dict[str, object]:
    result = run_ci_env("registry", "info", *args, "--json", env={**environ_without(), **env})
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_variable_for_the_images_repo_is_not_applied_to_another_registry() -> None:
    data = info("quay.io/acme/app", env=GITLAB_JOB)
    assert (data["implementation"], data["implementation_source"]) == ("quay", "detected")
    assert data["implementation_not_applied"] == [
        "WERF_IMAGES_REPO_IMPLEMENTATION=gitlab not applied: it is for registry.gitlab.com "
        "(the registry of WERF_IMAGES_REPO)"
    ]


def test_variable_applies_on_the_images_repo_registry_and_says_so() -> None:
    data = info("registry.gitlab.com/group/other", env=GITLAB_JOB)
    assert (data["implementation"], data["implementation_source"]) == ("gitlab", "WERF_IMAGES_REPO_IMPLEMENTATION")
    assert data["implementation_reason"] == "set by WERF_IMAGES_REPO_IMPLEMENTATION"


def test_option_beats_the_variable_and_the_text_report_names_it() -> None:
    result = run_ci_env("registry", "info", "registry.gitlab.com/group/other", "--implementation", "default",
                        env={**environ_without(), **GITLAB_JOB})
    assert result.returncode == 0, result.stderr
    assert "implementation:       default (Default): set by --implementation" in result.stdout


def test_text_report_explains_a_variable_it_did_not_apply() -> None:
    result = run_ci_env("registry", "info", "ghcr.io/acme", env={**environ_without(), **GITLAB_JOB})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "implementation:       github (GitHub Packages (ghcr.io)): host ghcr.io matches github"
    assert "WERF_IMAGES_REPO_IMPLEMENTATION=gitlab not applied: it is for registry.gitlab.com" in lines[2]


def test_flags_beat_variables_at_every_level() -> None:
    env = {**GITLAB_JOB, "WERF_REPO_IMPLEMENTATION": "harbor"}
    address = parse_address("registry.gitlab.com/group/project")
    common_flag = choose_implementation(IMAGES_REPO, {"repo_implementation": "default"}, env, address).chosen
    assert common_flag is not None and (common_flag.value, common_flag.source) == ("default", "--repo-implementation")


def test_common_variable_applies_on_either_repo_registry_or_everywhere_without_repos() -> None:
    env = {"WERF_IMAGES_REPO": "ghcr.io/acme", "WERF_STAGES_STORAGE": "harbor.example.com/p/stages",
           "WERF_REPO_IMPLEMENTATION": "harbor"}
    on_stages = choose_implementation(STAGES_STORAGE, {}, env, parse_address("harbor.example.com/p/stages"))
    assert on_stages.chosen is not None and on_stages.chosen.value == "harbor"
    elsewhere = choose_implementation(None, {}, env, parse_address("quay.io/x/y"))
    assert elsewhere.chosen is None and len(elsewhere.skipped) == 1
    unscoped = choose_implementation(None, {}, {"WERF_REPO_IMPLEMENTATION": "harbor"}, parse_address("quay.io/x/y"))
    assert unscoped.chosen is not None and unscoped.chosen.value == "harbor"


def test_images_repo_option_on_another_registry_drops_the_variable_of_the_environment() -> None:
    options = resolve_repo_options({"images_repo": "quay.io/acme/app"}, GITLAB_JOB)
    assert options.images_repo_implementation is None


def test_malformed_repo_variable_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^WERF_IMAGES_REPO: "):
        choose_implementation(IMAGES_REPO, {}, {**GITLAB_JOB, "WERF_IMAGES_REPO": "Bad//x"},
                              parse_address("quay.io/a"))
