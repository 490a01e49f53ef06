"""GitHub Actions, and Gitea and Forgejo Actions (same contract): facts from their default variables."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from ci_env.ci.facts import JobFacts, RegistryLogin
from ci_env.ci.vars import first, is_true, parse_ref

#: GitHub's container registry, and the older GitHub Packages Docker registry.
GITHUB_COM = "github.com"
GHCR = "ghcr.io"
PACKAGES_REGISTRY = "docker.pkg.github.com"

#: (variable that names the system, system); checked in order, then plain GITHUB_ACTIONS is ``github``.
FORKS: tuple[tuple[str, str], ...] = (("FORGEJO_ACTIONS", "forgejo"), ("GITEA_ACTIONS", "gitea"))

#: The matrix job's ``strategy.job-index``: Actions has no such variable, the action passes it under this name.
JOB_INDEX_VARIABLE = "CI_ENV_JOB_INDEX"

#: Events whose runs build a pull request.
PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})


def identifies(env: Mapping[str, str]) -> str | None:
    """``github``, ``gitea`` or ``forgejo`` when ``env`` is an Actions job's environment, else None."""
    if not is_true(env, "GITHUB_ACTIONS"):
        return None
    for variable, system in FORKS:
        if is_true(env, variable):
            return system
    return "github"


def _registry(system: str, server_url: str) -> str:
    """The container registry of the Actions server: ghcr.io for github.com, ``containers.HOST`` for GitHub
    Enterprise Server (the job's token is not valid anywhere else), the server's host for Gitea and Forgejo."""
    host = urlsplit(server_url).netloc.lower()
    if system == "github":
        return GHCR if host in ("", GITHUB_COM) else f"containers.{host}"
    return host or GHCR


def logins(env: Mapping[str, str], registry: str) -> tuple[tuple[RegistryLogin, ...], tuple[RegistryLogin, ...]]:
    """``registry`` with ``$GITHUB_ACTOR``/``$GITHUB_TOKEN``, and on github.com the same token for
    docker.pkg.github.com, used only when a repo of the job is there (``JobFacts.repo_logins``);
    nothing when the actor or token is missing."""
    actor, token = first(env, "GITHUB_ACTOR"), first(env, "GITHUB_TOKEN")
    if not (actor and token):
        return (), ()
    hint = "$GITHUB_ACTOR and $GITHUB_TOKEN (the workflow needs packages: write)"
    legacy = (RegistryLogin(PACKAGES_REGISTRY, actor, token, hint),) if registry == GHCR else ()
    return (RegistryLogin(registry, actor, token, hint),), legacy


def facts(env: Mapping[str, str]) -> JobFacts:
    """The job's facts from the Actions default variables (fields not set are None).

    ``job_id`` is ``<run id>-<run attempt>-<job>[-<job index>][-<runner name>]``: the same in every
    step of the job, and unique among the jobs running on one machine. Jobs of one matrix share
    ``$GITHUB_JOB``, so the key adds ``$CI_ENV_JOB_INDEX`` (``strategy.job-index``, which the action
    passes) when set, and ``$RUNNER_NAME``: one runner runs one job at a time, so two jobs running at
    once on one machine always run on runners of different names. The images repo is ``<registry>/<owner>/<repo>``
    lowercased (ghcr.io on GitHub, the server's host on Gitea and Forgejo).
    """
    system = identifies(env) or "github"
    server = (first(env, "GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    repository = first(env, "GITHUB_REPOSITORY")
    run_id = first(env, "GITHUB_RUN_ID")
    job = first(env, "GITHUB_JOB")
    parts = [run_id, first(env, "GITHUB_RUN_ATTEMPT") or "1", job or "job",
             first(env, JOB_INDEX_VARIABLE), first(env, "RUNNER_NAME")]
    job_id = "-".join(part for part in parts if part) if run_id else None
    ref = first(env, "GITHUB_REF") or ""
    ref_branch, ref_tag, pull_request = parse_ref(ref)
    ref_type = first(env, "GITHUB_REF_TYPE")
    ref_name = first(env, "GITHUB_REF_NAME")
    tag = ref_tag or (ref_name if ref_type == "tag" else None)
    head_ref = first(env, "GITHUB_HEAD_REF")
    branch = None if tag else (head_ref or ref_branch or (ref_name if ref_type == "branch" else None))
    is_pr = bool(head_ref) or first(env, "GITHUB_EVENT_NAME") in PULL_REQUEST_EVENTS or pull_request is not None
    registry = _registry(system, server)
    always, legacy = logins(env, registry)
    return JobFacts(
        family="github",
        system=system,
        job_id=job_id,
        pipeline_id=run_id,
        ref_name=ref_name,
        branch=branch,
        tag=tag,
        commit=first(env, "GITHUB_SHA"),
        is_pull_request=is_pr,
        pull_request=pull_request,
        registry=registry,
        images_repo=f"{registry}/{repository}".lower() if repository else None,
        project_url=f"{server}/{repository}" if repository else None,
        pipeline_url=f"{server}/{repository}/actions/runs/{run_id}" if repository and run_id else None,
        job_url=None,
        environment=None,
        logins=always,
        repo_logins=legacy,
        tmp_dir=first(env, "RUNNER_TEMP"),
        api_url=first(env, "GITHUB_API_URL"),
        token=first(env, "GITHUB_TOKEN"),
    )
