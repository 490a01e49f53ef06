"""JobFacts: what every later step needs to know about the CI job, whatever the CI system."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials the CI system provides for one registry (never printed)."""

    registry: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class JobFacts:
    """The CI system and the job's facts, as read from its documented variables.

    ``family`` is the behaviour this package applies: ``gitlab``, ``github`` or
    ``generic``. ``system`` names the detected CI (``gitlab``, ``github``,
    ``gitea``, ``forgejo``, ``jenkins``, ``circleci``, ... or ``none`` outside CI).
    Every other field is ``None`` when the CI system does not provide it.
    """

    family: str
    system: str
    job_id: str | None = None
    pipeline_id: str | None = None
    ref_name: str | None = None
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    is_pull_request: bool = False
    registry: str | None = None
    images_repo: str | None = None
    project_url: str | None = None
    pipeline_url: str | None = None
    job_url: str | None = None
    environment: str | None = None
    logins: tuple[RegistryLogin, ...] = ()
    tmp_dir: str | None = None
    api_url: str | None = None
    token: str | None = field(default=None, repr=False)

    @property
    def job_key(self) -> str | None:
        """A stable identity of this job, unique among the jobs running on one machine, or None."""
        if self.job_id is None:
            return None
        return f"{self.system}-{self.job_id}"
