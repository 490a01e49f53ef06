"""Which CI system runs this job, and the job's facts (:class:`JobFacts`).

One table, :data:`FAMILIES`, maps each behaviour family (``gitlab``, ``github``,
``generic``) to the module that reads its variables; the other CI systems are rows
of :data:`ci_env.ci.generic.SYSTEMS`. Adding a CI system is one row there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from ci_env.ci import generic, github, gitlab
from ci_env.ci.facts import JobFacts, RegistryLogin
from ci_env.errors import UsageError

__all__ = ["FAMILIES", "REQUESTS", "JobFacts", "RegistryLogin", "detect", "identify"]

#: family -> function turning the environment into that family's facts.
FAMILIES: dict[str, Callable[[Mapping[str, str]], JobFacts]] = {
    "gitlab": gitlab.facts,
    "github": github.facts,
}

#: What a user may ask for: ``auto`` detects, the others force a family.
REQUESTS: tuple[str, ...] = ("auto", "gitlab", "github", "generic")


def identify(env: Mapping[str, str]) -> tuple[str, str]:
    """Return ``(family, system)`` of the CI running with ``env``; ``("generic", "none")`` outside CI."""
    if gitlab.identifies(env):
        return "gitlab", "gitlab"
    system = github.identifies(env)
    if system is not None:
        return "github", system
    spec = generic.identify(env)
    if spec is not None:
        return "generic", spec.system
    return "generic", "none"


def detect(env: Mapping[str, str], requested: str = "auto") -> JobFacts:
    """Return the job's facts read from ``env``; its URLs never carry credentials (``ci_env.redact``).

    ``requested`` is ``auto`` (detect the CI system), or ``gitlab``, ``github``,
    ``generic`` to force a behaviour family. Forcing ``generic`` inside GitLab or
    GitHub keeps the job's identity (``job_key``) but drops the vendor behaviour:
    no registry logins, no images repo, no vendor token. Raises :class:`UsageError`
    for any other value.
    """
    if requested not in REQUESTS:
        raise UsageError(f"unknown CI system {requested!r}: use one of {', '.join(REQUESTS)}")
    family, _system = identify(env)
    if requested in FAMILIES:
        return _without_credentials(FAMILIES[requested](env))
    if requested == "auto" and family in FAMILIES:
        return _without_credentials(FAMILIES[family](env))
    if family in FAMILIES:  # generic behaviour inside GitLab or GitHub
        facts = FAMILIES[family](env)
        generic_facts = replace(facts, family="generic", logins=(), repo_logins=(), registry=None, images_repo=None,
                                token=None)
        return _without_credentials(generic_facts)
    return _without_credentials(generic.facts(env))


def _without_credentials(facts: JobFacts) -> JobFacts:
    """``facts`` with ``user:token@`` removed from its URLs (``$GIT_URL``, ``$CI_REPO_URL``, ... may carry one),
    so no export, label, annotation or printed line repeats it."""
    from ci_env.redact import strip_userinfo

    def clean(url: str | None) -> str | None:
        return strip_userinfo(url) if url else url

    return replace(facts, project_url=clean(facts.project_url), pipeline_url=clean(facts.pipeline_url),
                   job_url=clean(facts.job_url))
