"""The one precedence model for every option ci-env reads: option > variables in order (scoped, then
unscoped) > the CI's default > the built-in default. Each value is resolved with its source (the flag,
the variable, the CI variable or ``default``), for ``-v``, ``registry info`` and error messages.

Standard library only (and :mod:`ci_env.errors`): the Docker config location, setup's settings, the
repo options of every command and build-and-publish's tagging options all resolve through it. werf's
scoped names (:func:`flag_name`, :func:`variable_name`) are here too: a scoped variable precedes the
unscoped one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ci_env.errors import ConfigError

T = TypeVar("T")

# werf's scoped names: an option of a repo has a scoped flag and variable (``--images-repo-...``,
# ``WERF_IMAGES_REPO_...``) and an unscoped one for both repos (``--repo-...``, ``WERF_REPO_...``).
IMAGES_REPO = "images-repo"
STAGES_STORAGE = "stages-storage"
SCOPES = (STAGES_STORAGE, IMAGES_REPO)

#: scope -> (flag prefix, variable prefix); "repo" is the common level for both scopes
_LEVELS: dict[str, tuple[str, str]] = {
    STAGES_STORAGE: ("--stages-storage-repo-", "WERF_STAGES_STORAGE_REPO_"),
    IMAGES_REPO: ("--images-repo-", "WERF_IMAGES_REPO_"),
    "repo": ("--repo-", "WERF_REPO_"),
}


def flag_name(scope: str, kind: str) -> str:
    """The flag for ``kind`` at ``scope`` (``"repo"`` for the common level), e.g. ``--images-repo-github-token``."""
    return _LEVELS[scope][0] + kind


def variable_name(scope: str, kind: str) -> str:
    """The variable for ``kind`` at ``scope`` (``"repo"`` for the common level), e.g. ``WERF_REPO_GITHUB_TOKEN``."""
    return _LEVELS[scope][1] + kind.upper().replace("-", "_")


@dataclass(frozen=True)
class Resolved:
    """One resolved value and where it came from (a flag or variable name, or ``"default"``)."""

    value: str = field(repr=False)
    source: str
    secret: bool = False

    def __repr__(self) -> str:
        shown = "***" if self.secret else repr(self.value)
        return f"Resolved(value={shown}, source={self.source!r})"


def param_name(flag: str) -> str:
    """The click parameter name of a long flag (``--repo-github-token`` -> ``repo_github_token``)."""
    return flag.lstrip("-").replace("-", "_")


def first(
    flags: Mapping[str, Any], env: Mapping[str, str], steps: Sequence[tuple[str, str]], secret: bool = False
) -> Resolved | None:
    """The first non-empty value among ``steps`` (``("flag", "--long-flag")`` or ``("env", "NAME")``)."""
    for where, name in steps:
        raw = flags.get(param_name(name)) if where == "flag" else env.get(name)
        if raw is not None and str(raw) != "":
            return Resolved(str(raw), name, secret)
    return None


def cascade(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    option: str,
    variables: Sequence[str] = (),
    *,
    ci_default: tuple[str | None, str] | None = None,
    default: str | None = None,
    secret: bool = False,
) -> Resolved | None:
    """The one precedence model: ``option`` > ``variables`` in order (scoped, then unscoped) > the CI's
    default > the built-in ``default``; the first non-empty value, with its source, or None.

    ``flags`` maps click parameter names to values (None when not given); ``option`` is the long flag.
    ``ci_default`` is ``(value, the CI variable it comes from)``; the built-in default's source is ``default``.
    """
    found = first(flags, env, (("flag", option), *(("env", name) for name in variables)), secret)
    if found is None and ci_default is not None and ci_default[0]:
        found = Resolved(ci_default[0], ci_default[1], secret)
    if found is None and default is not None:
        found = Resolved(default, "default", secret)
    return found


@dataclass(frozen=True)
class Option:
    """One option as the cascade reads it: its long flag, its variables (scoped first), its built-in
    default (a callable is asked at resolution time, e.g. the system's temp dir)."""

    flag: str
    variables: tuple[str, ...] = ()
    default: str | Callable[[], str] | None = None


def resolve(
    flags: Mapping[str, Any], env: Mapping[str, str], option: Option, ci_default: tuple[str | None, str] | None = None
) -> Resolved | None:
    """``option`` through :func:`cascade`."""
    default = option.default() if callable(option.default) else option.default
    return cascade(flags, env, option.flag, option.variables, ci_default=ci_default, default=default)


def resolve_all(
    table: Mapping[str, Option], flags: Mapping[str, Any], env: Mapping[str, str],
    ci_defaults: Mapping[str, tuple[str | None, str] | None] | None = None,
) -> dict[str, Resolved | None]:
    """Every option of ``table`` (key -> :class:`Option`) resolved in one pass, keyed as the table is; the CI's
    defaults by the same keys."""
    found = ci_defaults or {}
    return {key: resolve(flags, env, option, found.get(key)) for key, option in table.items()}


def value_of(
    flags: Mapping[str, Any], env: Mapping[str, str], option: str, variables: Sequence[str] = ()
) -> str | None:
    """The value :func:`cascade` finds for an option without a default (its source unneeded), or None."""
    found = cascade(flags, env, option, variables)
    return found.value if found is not None else None


def given(value: object, option: str) -> dict[str, object]:
    """The ``flags`` mapping of one option's value, for :func:`cascade` outside a click command."""
    return {param_name(option): value}


def from_option(found: Resolved | None) -> bool:
    """Whether ``found`` was given on the command line (its source is a flag, not a variable or default)."""
    return found is not None and found.source.startswith("-")


def named(check: Callable[..., T], found: Resolved, **kwargs: Any) -> T:
    """``check(found.value)``, its ConfigError prefixed with the flag or variable the value came from."""
    try:
        return check(found.value, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{found.source}: {exc.message}") from None
