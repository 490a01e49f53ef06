"""GitLab CI: facts from GitLab's predefined CI/CD variables."""

from __future__ import annotations

from collections.abc import Mapping

from ci_env.ci.facts import JobFacts, RegistryLogin
from ci_env.ci.vars import first, is_true

#: The variable GitLab sets in every job.
IDENTIFY = "GITLAB_CI"

#: The username GitLab accepts together with ``$CI_JOB_TOKEN``.
JOB_TOKEN_USER = "gitlab-ci-token"


def identifies(env: Mapping[str, str]) -> bool:
    """True when ``env`` is a GitLab CI job's environment."""
    return is_true(env, IDENTIFY)


def logins(env: Mapping[str, str]) -> tuple[RegistryLogin, ...]:
    """The registry logins a GitLab job can make with the credentials GitLab provides.

    ``$CI_REGISTRY`` with ``$CI_REGISTRY_USER``/``$CI_REGISTRY_PASSWORD``, else with
    ``gitlab-ci-token``/``$CI_JOB_TOKEN``; and ``$CI_DEPENDENCY_PROXY_SERVER`` with its
    user and password when all three are set.
    """
    found: list[RegistryLogin] = []
    registry = first(env, "CI_REGISTRY")
    if registry:
        user, password = first(env, "CI_REGISTRY_USER"), first(env, "CI_REGISTRY_PASSWORD")
        token = first(env, "CI_JOB_TOKEN")
        if user and password:
            found.append(RegistryLogin(registry, user, password, "$CI_REGISTRY_USER and $CI_REGISTRY_PASSWORD"))
        elif token:
            found.append(RegistryLogin(registry, JOB_TOKEN_USER, token, "$CI_JOB_TOKEN"))
    proxy = first(env, "CI_DEPENDENCY_PROXY_SERVER")
    proxy_user, proxy_password = first(env, "CI_DEPENDENCY_PROXY_USER"), first(env, "CI_DEPENDENCY_PROXY_PASSWORD")
    if proxy and proxy_user and proxy_password and all(login.registry != proxy for login in found):
        found.append(
            RegistryLogin(
                proxy, proxy_user, proxy_password, "$CI_DEPENDENCY_PROXY_USER and $CI_DEPENDENCY_PROXY_PASSWORD"
            )
        )
    return tuple(found)


def _job_id(env: Mapping[str, str]) -> str | None:
    """``$CI_JOB_ID``, with ``-<$CI_NODE_INDEX>`` for a job of ``parallel:`` (each of its jobs gets its own
    index), so two jobs of one ``parallel:`` never share a job key even where their job ids are equal."""
    job_id = first(env, "CI_JOB_ID")
    index = first(env, "CI_NODE_INDEX")
    return f"{job_id}-{index}" if job_id and index else job_id


def facts(env: Mapping[str, str]) -> JobFacts:
    """The job's facts from GitLab's variables (fields GitLab does not set are None)."""
    tag = first(env, "CI_COMMIT_TAG")
    ref_name = first(env, "CI_COMMIT_REF_NAME")
    branch = (
        None if tag else first(env, "CI_COMMIT_BRANCH", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME")
    )
    merge_request = first(env, "CI_MERGE_REQUEST_IID")
    return JobFacts(
        family="gitlab",
        system="gitlab",
        job_id=_job_id(env),
        pipeline_id=first(env, "CI_PIPELINE_ID"),
        ref_name=ref_name,
        branch=branch,
        tag=tag,
        commit=first(env, "CI_COMMIT_SHA"),
        is_pull_request=merge_request is not None,
        pull_request=merge_request,
        registry=first(env, "CI_REGISTRY"),
        images_repo=first(env, "CI_REGISTRY_IMAGE"),
        project_url=first(env, "CI_PROJECT_URL"),
        pipeline_url=first(env, "CI_PIPELINE_URL"),
        job_url=first(env, "CI_JOB_URL"),
        environment=first(env, "CI_ENVIRONMENT_SLUG"),
        logins=logins(env),
        api_url=first(env, "CI_API_V4_URL"),
        token=first(env, "CI_JOB_TOKEN"),
    )
