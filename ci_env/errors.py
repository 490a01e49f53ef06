"""Errors a user can cause. Each carries the message to print and the exit code.

A traceback is for bugs only: every failure a user can provoke (bad input, bad
credentials, a registry that refuses) is raised as one of these types, and the
CLI prints ``ci-env: error: <message>`` on stderr and exits with ``exit_code``.
Messages never contain secrets.
"""

from __future__ import annotations

from collections.abc import Iterable


class CiEnvError(Exception):
    """Base of every user-facing error; ``exit_code`` 1 unless a subclass says otherwise."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(CiEnvError):
    """A flag, argument or variable has a value the command cannot use (exit 2)."""

    exit_code = 2


class ConfigError(CiEnvError):
    """Configuration is inconsistent or invalid: werf.yaml, addresses, modes (exit 2)."""

    exit_code = 2


class AuthError(CiEnvError):
    """A registry or vendor API refused the credentials (exit 1)."""


class RegistryError(CiEnvError):
    """A registry or vendor API answered with an error we cannot work around (exit 1)."""


class RepositoryUnknownError(RegistryError):
    """The Registry API said the repository does not exist: a 404 whose error code is ``NAME_UNKNOWN``. Callers
    that read a missing repository as an empty one catch this type, never match the text: a registry's or a
    front's own message (any status) may mention NAME_UNKNOWN, and a real failure must not read as "no tags"."""


class PreflightError(CiEnvError):
    """A destructive operation cannot proceed; nothing was changed (exit 1)."""


class BuildError(CiEnvError):
    """A docker build or push failed (exit 1)."""


class KubernetesError(CiEnvError):
    """Kubernetes could not be read, so cleanup cannot know which images run there; nothing was removed (exit 1)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``": did you mean 'X'?"`` for the choice closest to ``word`` (a typo, another case), or "" when none is
    close: for the messages that name an unknown key or value."""
    import difflib

    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f": did you mean '{by_lower[close[0]]}'?" if close else ""
