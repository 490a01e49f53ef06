"""Detection of the CI system and the job's facts from realistic variable sets."""

from __future__ import annotations

import pytest

from ci_env.ci import detect, identify
from ci_env.errors import UsageError

GITLAB = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_JOB_ID": "5001",
    "CI_PIPELINE_ID": "901",
    "CI_COMMIT_REF_NAME": "feature/login",
    "CI_COMMIT_BRANCH": "feature/login",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "CI_REGISTRY": "registry.gitlab.com",
    "CI_REGISTRY_IMAGE": "registry.gitlab.com/group/project",
    "CI_PROJECT_URL": "https://gitlab.com/group/project",
    "CI_PIPELINE_URL": "https://gitlab.com/group/project/-/pipelines/901",
    "CI_JOB_URL": "https://gitlab.com/group/project/-/jobs/5001",
    "CI_ENVIRONMENT_SLUG": "review-feature-x1",
    "CI_API_V4_URL": "https://gitlab.com/api/v4",
    "CI_JOB_TOKEN": "job-token-secret",
    "CI_REGISTRY_USER": "gitlab-ci-token",
    "CI_REGISTRY_PASSWORD": "registry-password-secret",
}

GITHUB = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_RUN_ID": "7001",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_JOB": "build",
    "GITHUB_REF": "refs/pull/12/merge",
    "GITHUB_REF_NAME": "12/merge",
    "GITHUB_REF_TYPE": "branch",
    "GITHUB_HEAD_REF": "feature/x",
    "GITHUB_BASE_REF": "main",
    "GITHUB_EVENT_NAME": "pull_request",
    "GITHUB_SHA": "feedface",
    "GITHUB_REPOSITORY": "Octo-Org/Hello-World",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_API_URL": "https://api.github.com",
    "RUNNER_TEMP": "/home/runner/work/_temp",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_TOKEN": "ghs_secret",
}


def test_gitlab_facts_come_from_gitlab_variables() -> None:
    facts = detect(GITLAB)
    assert (facts.family, facts.system, facts.job_id, facts.pipeline_id) == ("gitlab", "gitlab", "5001", "901")
    assert (facts.branch, facts.tag, facts.ref_name) == ("feature/login", None, "feature/login")
    assert facts.images_repo == "registry.gitlab.com/group/project"
    assert facts.job_url == "https://gitlab.com/group/project/-/jobs/5001"
    assert facts.environment == "review-feature-x1"
    assert facts.job_key == "gitlab-5001"
    assert [(lg.registry, lg.username, lg.password) for lg in facts.logins] == [
        ("registry.gitlab.com", "gitlab-ci-token", "registry-password-secret")
    ]


def test_gitlab_falls_back_to_job_token_and_adds_dependency_proxy() -> None:
    env = {k: v for k, v in GITLAB.items() if not k.startswith("CI_REGISTRY_")}
    env.update(
        CI_REGISTRY="registry.gitlab.com",
        CI_DEPENDENCY_PROXY_SERVER="gitlab.com:443",
        CI_DEPENDENCY_PROXY_USER="gitlab-ci-token",
        CI_DEPENDENCY_PROXY_PASSWORD="proxy-secret",
    )
    logins = [(lg.registry, lg.username, lg.password) for lg in detect(env).logins]
    assert logins == [
        ("registry.gitlab.com", "gitlab-ci-token", "job-token-secret"),
        ("gitlab.com:443", "gitlab-ci-token", "proxy-secret"),
    ]


def test_gitlab_tag_pipeline_and_merge_request() -> None:
    tag = detect({**GITLAB, "CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_REF_NAME": "v1.2.3", "CI_COMMIT_BRANCH": ""})
    assert (tag.tag, tag.branch) == ("v1.2.3", None)
    mr = detect({**GITLAB, "CI_MERGE_REQUEST_IID": "42"})
    assert mr.is_pull_request and mr.pull_request == "42"


def test_github_pull_request_facts() -> None:
    facts = detect(GITHUB)
    assert (facts.family, facts.system) == ("github", "github")
    assert facts.job_id == "7001-2-build"
    assert (facts.branch, facts.tag, facts.is_pull_request, facts.pull_request) == ("feature/x", None, True, "12")
    assert facts.images_repo == "ghcr.io/octo-org/hello-world"
    assert facts.pipeline_url == "https://github.com/Octo-Org/Hello-World/actions/runs/7001"
    assert facts.tmp_dir == "/home/runner/work/_temp"
    assert [(lg.registry, lg.username) for lg in facts.logins] == [("ghcr.io", "octocat")]


def test_github_job_ids_differ_between_attempts_and_jobs() -> None:
    keys = {detect({**GITHUB, "GITHUB_RUN_ATTEMPT": a, "GITHUB_JOB": j}).job_key for a in "12" for j in ("a", "b")}
    assert len(keys) == 4


def test_github_tag_push_and_packages_registry_login() -> None:
    env = {
        **GITHUB,
        "GITHUB_REF": "refs/tags/v2.0",
        "GITHUB_REF_NAME": "v2.0",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_HEAD_REF": "",
        "GITHUB_EVENT_NAME": "push",
    }
    facts = detect(env)
    assert (facts.tag, facts.branch, facts.is_pull_request) == ("v2.0", None, False)
    assert [lg.registry for lg in facts.logins_for(["docker.pkg.github.com"])] == ["ghcr.io", "docker.pkg.github.com"]
    assert [lg.registry for lg in facts.logins_for(["ghcr.io"])] == ["ghcr.io"]


def test_github_enterprise_server_logs_in_to_its_own_registry_not_ghcr() -> None:
    env = {**GITHUB, "GITHUB_SERVER_URL": "https://ghes.example.com", "GITHUB_API_URL": "https://ghes.example.com/api/v3"}
    facts = detect(env)
    assert facts.images_repo == "containers.ghes.example.com/octo-org/hello-world"
    assert [lg.registry for lg in facts.logins] == ["containers.ghes.example.com"]


@pytest.mark.parametrize(("marker", "system"), [("GITEA_ACTIONS", "gitea"), ("FORGEJO_ACTIONS", "forgejo")])
def test_gitea_and_forgejo_use_their_own_server_registry(marker: str, system: str) -> None:
    env = {**GITHUB, marker: "true", "GITHUB_SERVER_URL": "https://git.example.org"}
    facts = detect(env)
    assert (facts.family, facts.system) == ("github", system)
    assert facts.images_repo == "git.example.org/octo-org/hello-world"
    assert [lg.registry for lg in facts.logins] == ["git.example.org"]


OTHERS = [
    (
        "jenkins",
        {
            "JENKINS_URL": "https://ci.example/",
            "BUILD_TAG": "jenkins-app-17",
            "BUILD_NUMBER": "17",
            "BRANCH_NAME": "main",
            "GIT_COMMIT": "c0ffee",
            "BUILD_URL": "https://ci.example/job/app/17/",
        },
        {"job_id": "jenkins-app-17", "branch": "main", "commit": "c0ffee", "job_url": "https://ci.example/job/app/17/"},
    ),
    (
        "circleci",
        {
            "CI": "true",
            "CIRCLECI": "true",
            "CIRCLE_WORKFLOW_JOB_ID": "wj-1",
            "CIRCLE_WORKFLOW_ID": "wf-1",
            "CIRCLE_TAG": "v1",
            "CIRCLE_SHA1": "abc",
            "CIRCLE_PULL_REQUEST": "",
        },
        {"job_id": "wj-1", "pipeline_id": "wf-1", "tag": "v1", "is_pull_request": False},
    ),
    (
        "bitbucket",
        {
            "CI": "true",
            "BITBUCKET_BUILD_NUMBER": "3",
            "BITBUCKET_PIPELINE_UUID": "{p-1}",
            "BITBUCKET_STEP_UUID": "{s-1}",
            "BITBUCKET_BRANCH": "dev",
            "BITBUCKET_PR_ID": "9",
        },
        {"job_id": "{p-1}-{s-1}", "branch": "dev", "pull_request": "9"},
    ),
    (
        "azure",
        {
            "TF_BUILD": "True",
            "BUILD_BUILDID": "55",
            "SYSTEM_JOBID": "j-uuid",
            "BUILD_SOURCEBRANCH": "refs/tags/v3",
            "BUILD_SOURCEVERSION": "abc",
        },
        {"job_id": "55-j-uuid", "tag": "v3", "branch": None},
    ),
    (
        "buildkite",
        {
            "CI": "true",
            "BUILDKITE": "true",
            "BUILDKITE_JOB_ID": "bj",
            "BUILDKITE_BUILD_ID": "bb",
            "BUILDKITE_BRANCH": "main",
            "BUILDKITE_PULL_REQUEST": "false",
        },
        {"job_id": "bj", "is_pull_request": False, "branch": "main"},
    ),
    (
        "travis",
        {
            "CI": "true",
            "TRAVIS": "true",
            "TRAVIS_JOB_ID": "tj",
            "TRAVIS_BUILD_ID": "tb",
            "TRAVIS_BRANCH": "main",
            "TRAVIS_PULL_REQUEST": "15",
            "TRAVIS_PULL_REQUEST_BRANCH": "fix",
        },
        {"job_id": "tj", "branch": "fix", "pull_request": "15"},
    ),
    (
        "woodpecker",
        {
            "CI": "woodpecker",
            "CI_REPO": "org/app",
            "CI_PIPELINE_NUMBER": "8",
            "CI_WORKFLOW_NUMBER": "1",
            "CI_COMMIT_BRANCH": "main",
            "CI_COMMIT_SHA": "abc",
            "DRONE": "true",
        },
        {"job_id": "org/app-8-1", "branch": "main"},
    ),
    (
        "drone",
        {
            "CI": "true",
            "DRONE": "true",
            "DRONE_REPO": "org/app",
            "DRONE_BUILD_NUMBER": "4",
            "DRONE_STAGE_NUMBER": "1",
            "DRONE_TAG": "v9",
            "DRONE_BRANCH": "main",
        },
        {"job_id": "org/app-4-1", "tag": "v9", "branch": None},
    ),
    (
        "teamcity",
        {
            "TEAMCITY_VERSION": "2024.03",
            "TEAMCITY_BUILDCONF_NAME": "Build",
            "BUILD_NUMBER": "12",
            "BUILD_VCS_NUMBER": "abc",
        },
        {"job_id": "Build-12", "commit": "abc"},
    ),
    (
        "codebuild",
        {
            "CODEBUILD_BUILD_ID": "proj:1234-abcd",
            "CODEBUILD_WEBHOOK_TRIGGER": "pr/5",
            "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/feature",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": "abc",
        },
        {"job_id": "proj:1234-abcd", "pull_request": "5", "branch": "feature"},
    ),
]


@pytest.mark.parametrize(("system", "env", "expected"), OTHERS, ids=[o[0] for o in OTHERS])
def test_other_ci_systems_are_named_and_generic(system: str, env: dict[str, str], expected: dict[str, object]) -> None:
    facts = detect(env)
    assert (facts.family, facts.system) == ("generic", system)
    assert facts.logins == () and facts.images_repo is None
    for field, value in expected.items():
        assert getattr(facts, field) == value, field
    assert facts.job_key is not None and "/" not in facts.job_key and ":" not in facts.job_key


def test_outside_ci_is_generic_none() -> None:
    facts = detect({"HOME": "/root", "PATH": "/usr/bin"})
    assert (facts.family, facts.system, facts.job_key) == ("generic", "none", None)
    assert identify({}) == ("generic", "none")


def test_forcing_generic_in_gitlab_keeps_identity_but_drops_vendor_behaviour() -> None:
    facts = detect(GITLAB, "generic")
    assert facts.family == "generic" and facts.job_key == "gitlab-5001"
    assert facts.logins == () and facts.images_repo is None and facts.token is None


def test_forcing_a_family_reads_its_variables() -> None:
    assert detect(GITLAB, "github").family == "github"


def test_unknown_request_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="auto, gitlab, github, generic"):
        detect(GITLAB, "gitlabci")


def test_secrets_never_in_repr() -> None:
    text = repr(detect(GITLAB)) + repr(detect(GITHUB))
    for secret in ("job-token-secret", "registry-password-secret", "ghs_secret"):
        assert secret not in text
