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
    """Return the job's facts read from ``env``.

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
        return FAMILIES[requested](env)
    if requested == "auto" and family in FAMILIES:
        return FAMILIES[family](env)
    if family in FAMILIES:  # generic behaviour inside GitLab or GitHub
        facts = FAMILIES[family](env)
        return replace(facts, family="generic", logins=(), registry=None, images_repo=None, token=None)
    return generic.facts(env)
