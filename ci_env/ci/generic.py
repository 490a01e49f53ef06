"""Every other CI system: one table row each, read into generic JobFacts.

A row names the variable(s) that identify the system and the documented variables
that give the job's facts. Adding a CI system is adding a row to :data:`SYSTEMS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ci_env.ci.facts import JobFacts
from ci_env.ci.vars import first, parse_ref

#: Values of a pull-request variable that mean "not a pull request".
NOT_A_PULL_REQUEST = frozenset({"", "false", "0", "none"})


@dataclass(frozen=True)
class SystemSpec:
    """How to recognise one CI system and read its facts.

    ``identify``: (variable, value) pairs that must all hold; value None means "set
    and not empty", otherwise a case-insensitive match. ``job_id``: variables whose
    values, joined with ``-``, identify the job uniquely on a machine. Every other
    field lists variables tried in order, the first set one wins; ``ref`` variables
    hold full refs (``refs/heads/...``) or webhook triggers and fill branch, tag and
    pull request when the direct variables do not.
    """

    system: str
    identify: tuple[tuple[str, str | None], ...]
    job_id: tuple[str, ...] = ()
    pipeline_id: tuple[str, ...] = ()
    ref: tuple[str, ...] = ()
    branch: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    commit: tuple[str, ...] = ()
    pull_request: tuple[str, ...] = ()
    project_url: tuple[str, ...] = ()
    pipeline_url: tuple[str, ...] = ()
    job_url: tuple[str, ...] = ()

    def matches(self, env: Mapping[str, str]) -> bool:
        """True when every identifying variable holds in ``env``."""
        for name, value in self.identify:
            actual = env.get(name, "")
            if not actual or (value is not None and actual.strip().lower() != value):
                return False
        return True


#: The CI systems handled generically, in detection order (Woodpecker before Drone,
#: whose variables old Woodpecker versions also set).
SYSTEMS: tuple[SystemSpec, ...] = (
    SystemSpec(
        "jenkins",
        (("JENKINS_URL", None),),
        job_id=("BUILD_TAG",),
        pipeline_id=("BUILD_NUMBER",),
        branch=("BRANCH_NAME", "GIT_LOCAL_BRANCH", "GIT_BRANCH"),
        tag=("TAG_NAME",),
        commit=("GIT_COMMIT",),
        pull_request=("CHANGE_ID",),
        project_url=("GIT_URL",),
        pipeline_url=("RUN_DISPLAY_URL",),
        job_url=("BUILD_URL",),
    ),
    SystemSpec(
        "circleci",
        (("CIRCLECI", "true"),),
        job_id=("CIRCLE_WORKFLOW_JOB_ID",),
        pipeline_id=("CIRCLE_WORKFLOW_ID",),
        branch=("CIRCLE_BRANCH",),
        tag=("CIRCLE_TAG",),
        commit=("CIRCLE_SHA1",),
        pull_request=("CIRCLE_PR_NUMBER", "CIRCLE_PULL_REQUEST"),
        project_url=("CIRCLE_REPOSITORY_URL",),
        job_url=("CIRCLE_BUILD_URL",),
    ),
    SystemSpec(
        "bitbucket",
        (("BITBUCKET_BUILD_NUMBER", None),),
        job_id=("BITBUCKET_PIPELINE_UUID", "BITBUCKET_STEP_UUID"),
        pipeline_id=("BITBUCKET_BUILD_NUMBER",),
        branch=("BITBUCKET_BRANCH",),
        tag=("BITBUCKET_TAG",),
        commit=("BITBUCKET_COMMIT",),
        pull_request=("BITBUCKET_PR_ID",),
        project_url=("BITBUCKET_GIT_HTTP_ORIGIN",),
    ),
    SystemSpec(
        "azure",
        (("TF_BUILD", "true"),),
        job_id=("BUILD_BUILDID", "SYSTEM_JOBID"),
        pipeline_id=("BUILD_BUILDID",),
        ref=("BUILD_SOURCEBRANCH",),
        branch=("SYSTEM_PULLREQUEST_SOURCEBRANCH",),
        commit=("BUILD_SOURCEVERSION",),
        pull_request=("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "SYSTEM_PULLREQUEST_PULLREQUESTID"),
        project_url=("BUILD_REPOSITORY_URI",),
    ),
    SystemSpec(
        "buildkite",
        (("BUILDKITE", "true"),),
        job_id=("BUILDKITE_JOB_ID",),
        pipeline_id=("BUILDKITE_BUILD_ID",),
        branch=("BUILDKITE_BRANCH",),
        tag=("BUILDKITE_TAG",),
        commit=("BUILDKITE_COMMIT",),
        pull_request=("BUILDKITE_PULL_REQUEST",),
        project_url=("BUILDKITE_REPO",),
        pipeline_url=("BUILDKITE_BUILD_URL",),
    ),
    SystemSpec(
        "travis",
        (("TRAVIS", "true"),),
        job_id=("TRAVIS_JOB_ID",),
        pipeline_id=("TRAVIS_BUILD_ID",),
        branch=("TRAVIS_PULL_REQUEST_BRANCH", "TRAVIS_BRANCH"),
        tag=("TRAVIS_TAG",),
        commit=("TRAVIS_COMMIT",),
        pull_request=("TRAVIS_PULL_REQUEST",),
        pipeline_url=("TRAVIS_BUILD_WEB_URL",),
        job_url=("TRAVIS_JOB_WEB_URL",),
    ),
    SystemSpec(
        "woodpecker",
        (("CI", "woodpecker"),),
        job_id=("CI_REPO", "CI_PIPELINE_NUMBER", "CI_WORKFLOW_NUMBER"),
        pipeline_id=("CI_PIPELINE_NUMBER",),
        ref=("CI_COMMIT_REF",),
        branch=("CI_COMMIT_SOURCE_BRANCH", "CI_COMMIT_BRANCH"),
        tag=("CI_COMMIT_TAG",),
        commit=("CI_COMMIT_SHA",),
        pull_request=("CI_COMMIT_PULL_REQUEST",),
        project_url=("CI_REPO_URL",),
        pipeline_url=("CI_PIPELINE_URL",),
        job_url=("CI_STEP_URL",),
    ),
    SystemSpec(
        "drone",
        (("DRONE", "true"),),
        job_id=("DRONE_REPO", "DRONE_BUILD_NUMBER", "DRONE_STAGE_NUMBER"),
        pipeline_id=("DRONE_BUILD_NUMBER",),
        ref=("DRONE_COMMIT_REF",),
        branch=("DRONE_SOURCE_BRANCH", "DRONE_BRANCH"),
        tag=("DRONE_TAG",),
        commit=("DRONE_COMMIT_SHA",),
        pull_request=("DRONE_PULL_REQUEST",),
        project_url=("DRONE_REPO_LINK",),
        pipeline_url=("DRONE_BUILD_LINK",),
    ),
    SystemSpec(
        "teamcity",
        (("TEAMCITY_VERSION", None),),
        job_id=("TEAMCITY_BUILDCONF_NAME", "BUILD_NUMBER"),
        pipeline_id=("BUILD_NUMBER",),
        commit=("BUILD_VCS_NUMBER",),
    ),
    SystemSpec(
        "codebuild",
        (("CODEBUILD_BUILD_ID", None),),
        job_id=("CODEBUILD_BUILD_ID",),
        pipeline_id=("CODEBUILD_BUILD_NUMBER",),
        ref=("CODEBUILD_WEBHOOK_TRIGGER", "CODEBUILD_WEBHOOK_HEAD_REF"),
        commit=("CODEBUILD_RESOLVED_SOURCE_VERSION",),
        project_url=("CODEBUILD_SOURCE_REPO_URL",),
        job_url=("CODEBUILD_PUBLIC_BUILD_URL",),
    ),
)


def identify(env: Mapping[str, str]) -> SystemSpec | None:
    """The first row of :data:`SYSTEMS` that ``env`` matches, or None (not a known CI)."""
    for spec in SYSTEMS:
        if spec.matches(env):
            return spec
    return None


def _job_id(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    values = [env.get(name, "") for name in names]
    return "-".join(values) if names and all(values) else None


def facts(env: Mapping[str, str], spec: SystemSpec | None = None) -> JobFacts:
    """Generic facts from ``spec``'s variables (the detected system when None; ``none`` outside CI)."""
    spec = spec or identify(env)
    if spec is None:
        return JobFacts(family="generic", system="none")
    ref_branch = ref_tag = ref_pr = None
    for name in spec.ref:
        branch_, tag_, pr_ = parse_ref(env.get(name, ""))
        ref_branch, ref_tag, ref_pr = ref_branch or branch_, ref_tag or tag_, ref_pr or pr_
    tag = first(env, *spec.tag) or ref_tag
    branch = None if tag else first(env, *spec.branch) or ref_branch
    pull_request = first(env, *spec.pull_request)
    if pull_request is not None and pull_request.strip().lower() in NOT_A_PULL_REQUEST:
        pull_request = None
    pull_request = pull_request or ref_pr
    return JobFacts(
        family="generic",
        system=spec.system,
        job_id=_job_id(env, spec.job_id),
        pipeline_id=first(env, *spec.pipeline_id),
        ref_name=tag or branch,
        branch=branch,
        tag=tag,
        commit=first(env, *spec.commit),
        is_pull_request=pull_request is not None,
        pull_request=pull_request,
        project_url=first(env, *spec.project_url),
        pipeline_url=first(env, *spec.pipeline_url),
        job_url=first(env, *spec.job_url),
    )
