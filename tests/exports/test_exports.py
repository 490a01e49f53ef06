"""The export table: which variables a job gets, what is kept, and refs made into tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_env.ci import detect
from ci_env.errors import ConfigError
from ci_env.exports import ExportInputs, compute_exports
from ci_env.options import resolve_setup
from ci_env.render import Export
from ci_env.tagging import TAG_PATTERN, docker_tag
from tests.ci.test_detect import GITHUB, GITLAB

DIR = Path("/tmp/ci-env.job.x")


def exports_of(env: dict[str, str], override: bool = False, **options: str) -> list[Export]:
    """The exports of a job with ``env`` and setup's repo ``options`` (click parameter names)."""
    facts = detect(env)
    settings = resolve_setup(options, env, facts, override=override)
    return compute_exports(facts, ExportInputs(DIR, settings), env)


def exported(env: dict[str, str], override: bool = False, **options: str) -> dict[str, str]:
    return {e.name: e.value for e in exports_of(env, override, **options) if not e.kept}


def test_gitlab_exports() -> None:
    got = exported(GITLAB)
    assert got == {
        "DOCKER_CONFIG": str(DIR),
        "WERF_DOCKER_CONFIG": str(DIR),
        "REGISTRY_AUTH_FILE": f"{DIR}/config.json",
        "WERF_IMAGES_REPO": "registry.gitlab.com/group/project",
        "WERF_STAGES_STORAGE": "registry.gitlab.com/group/project/stages",
        "WERF_IMAGES_REPO_IMPLEMENTATION": "gitlab",
        "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION": "gitlab",
        "WERF_IMAGES_REPO_MODE": "multirepo",
        "WERF_TAG_BY_STAGES_SIGNATURE": "true",
        "WERF_ENV": "review-feature-x1",
        "WERF_ADD_ANNOTATION_PROJECT_GIT": "project.werf.io/git=https://gitlab.com/group/project",
        "WERF_ADD_ANNOTATION_CI_COMMIT": "ci.werf.io/commit=0123456789abcdef0123456789abcdef01234567",
        "WERF_ADD_ANNOTATION_GITLAB_CI_PIPELINE_URL": "gitlab.ci.werf.io/pipeline-url=https://gitlab.com/group/project/-/pipelines/901",
        "WERF_ADD_ANNOTATION_GITLAB_CI_JOB_URL": "gitlab.ci.werf.io/job-url=https://gitlab.com/group/project/-/jobs/5001",
    }


def test_github_exports_token_as_secret_and_run_url() -> None:
    exports = exports_of(GITHUB)
    by_name = {e.name: e for e in exports}
    assert by_name["WERF_REPO_GITHUB_TOKEN"].value == "ghs_secret" and by_name["WERF_REPO_GITHUB_TOKEN"].secret
    assert [e.name for e in exports if e.secret] == ["WERF_REPO_GITHUB_TOKEN"]
    assert by_name["WERF_IMAGES_REPO"].value == "ghcr.io/octo-org/hello-world"
    assert by_name["WERF_IMAGES_REPO_IMPLEMENTATION"].value == "github"
    assert by_name["WERF_ADD_ANNOTATION_GITHUB_ACTIONS_RUN_URL"].value.endswith("/actions/runs/7001")


def test_repo_outside_the_ci_registry_gets_the_implementation_of_its_host() -> None:
    got = exported(GITLAB, images_repo="docker.io/acme/app", stages_storage="docker.io/acme/app-stages")
    assert got["WERF_IMAGES_REPO"] == "docker.io/acme/app"
    assert got["WERF_IMAGES_REPO_IMPLEMENTATION"] == "dockerhub"
    assert got["WERF_IMAGES_REPO_MODE"] == "monorepo"
    account = exported(GITLAB, images_repo="acme")
    assert (account["WERF_IMAGES_REPO_IMPLEMENTATION"], account["WERF_IMAGES_REPO_MODE"]) == ("dockerhub", "multirepo")
    quay = exported(GITLAB, images_repo="quay.io/acme/app", stages_storage=":local")
    assert (quay["WERF_IMAGES_REPO_IMPLEMENTATION"], quay["WERF_IMAGES_REPO_MODE"]) == ("quay", "monorepo")
    assert quay["WERF_STAGES_STORAGE"] == ":local"
    assert "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION" not in quay


def test_user_values_are_kept_except_docker_config_and_override_replaces() -> None:
    env = {**GITLAB, "WERF_IMAGES_REPO": "mine.example/app", "WERF_ENV": "prod", "DOCKER_CONFIG": "/home/u/.docker"}
    exports = {e.name: e for e in exports_of(env)}
    assert exports["WERF_IMAGES_REPO"].kept and exports["WERF_ENV"].kept
    assert exports["WERF_STAGES_STORAGE"].value == "mine.example/app/stages"
    assert not exports["DOCKER_CONFIG"].kept and exports["DOCKER_CONFIG"].value == str(DIR)
    replaced = exported(env, override=True)
    assert replaced["WERF_IMAGES_REPO"] == "registry.gitlab.com/group/project"
    assert replaced["WERF_ENV"] == "review-feature-x1"


def test_option_beats_a_variable_already_set() -> None:
    env = {**GITLAB, "WERF_IMAGES_REPO": "mine.example/app"}
    assert exported(env, images_repo="opt.example/app")["WERF_IMAGES_REPO"] == "opt.example/app"


def test_mode_is_resolved_by_the_registry_model_or_taken_from_the_option() -> None:
    assert exported(GITLAB)["WERF_IMAGES_REPO_MODE"] == "multirepo"
    assert exported(GITLAB, images_repo_mode="monorepo")["WERF_IMAGES_REPO_MODE"] == "monorepo"
    assert "WERF_IMAGES_REPO_MODE" not in exported({"HOME": "/root"})


def test_an_invalid_images_repo_or_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Upper"):
        exported(GITLAB, images_repo="registry.example.com/Upper/app")
    with pytest.raises(ConfigError):
        exported(GITLAB, images_repo="registry.example.com", images_repo_mode="monorepo")


def test_tag_or_branch_strategy() -> None:
    branch = exported(GITLAB, tagging_strategy="tag-or-branch")
    assert "WERF_TAG_BY_STAGES_SIGNATURE" not in branch
    assert branch["WERF_TAG_GIT_BRANCH"] == docker_tag("feature/login")
    tag_env = {**GITLAB, "CI_COMMIT_TAG": "v1.0", "CI_COMMIT_BRANCH": ""}
    assert exported(tag_env, tagging_strategy="tag-or-branch")["WERF_TAG_GIT_TAG"] == "v1.0"
    with pytest.raises(ConfigError, match="tag-or-branch"):
        exported({"HOME": "/root"}, tagging_strategy="tag-or-branch")


@pytest.mark.parametrize("ref", ["main", "v1.2.3", "release_2024", "A" * 128])
def test_valid_refs_are_tags_unchanged(ref: str) -> None:
    assert docker_tag(ref) == ref


@pytest.mark.parametrize("ref", ["feature/x", "feature-x/", ".hidden", "-dash", "ü", "a" * 129, "x y", ""])
def test_changed_refs_are_valid_and_carry_a_hash(ref: str) -> None:
    tag = docker_tag(ref)
    assert TAG_PATTERN.fullmatch(tag), tag
    assert tag != ref


def test_refs_that_clean_up_alike_get_different_tags() -> None:
    refs = ["feature/x", "feature:x", "feature x", "feature//x", "feature-x/", "a" * 129, "a" * 130]
    assert len({docker_tag(r) for r in refs}) == len(refs)
