"""JobFacts: what every later step needs to know about the CI job, whatever the CI system."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegistryLogin:
    """Credentials the CI system provides for one registry (never printed)."""

    registry: str
    username: str
    password: str = field(repr=False)
    #: Where the credentials come from, for error messages (names variables, never values).
    hint: str = "the username and password"


@dataclass(frozen=True)
class JobFacts:
    """The CI system and the job's facts, as read from its documented variables.

    ``family`` is the behaviour this package applies: ``gitlab``, ``github`` or
    ``generic``. ``system`` names the detected CI (``gitlab``, ``github``,
    ``gitea``, ``forgejo``, ``jenkins``, ``circleci``, ... or ``none`` outside CI).
    Every other field is ``None`` when the CI system does not provide it.
    ``pull_request`` is the pull/merge request number when the CI gives it.
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
    pull_request: str | None = None
    registry: str | None = None
    images_repo: str | None = None
    project_url: str | None = None
    pipeline_url: str | None = None
    job_url: str | None = None
    environment: str | None = None
    logins: tuple[RegistryLogin, ...] = ()
    #: Logins the job's credentials also open, used only for a repo on their registry (:meth:`logins_for`).
    repo_logins: tuple[RegistryLogin, ...] = ()
    tmp_dir: str | None = None
    api_url: str | None = None
    token: str | None = field(default=None, repr=False)

    def logins_for(self, registries: Collection[str]) -> tuple[RegistryLogin, ...]:
        """The CI's logins, plus each of :attr:`repo_logins` whose registry is among ``registries`` (the
        registries of the job's repos, as setup resolved them)."""
        return (*self.logins, *(login for login in self.repo_logins if login.registry in registries))

    @property
    def job_key(self) -> str | None:
        """A stable identity of this job, unique among the jobs running on one machine, or None.

        Safe as a file name: ``[A-Za-z0-9_][A-Za-z0-9_.-]*``; an id that had to be changed
        gets a short hash of the original appended, so two jobs never share a key.
        """
        if self.job_id is None:
            return None
        from ci_env.tagging import safe_name

        return safe_name(f"{self.system}-{self.job_id}")
