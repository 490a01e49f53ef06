"""The click declarations of the options several commands share: each option is declared once here.

Commands import the decorators they need; the values they hand over are resolved by the options cascade
(:mod:`ci_env.cascade`, :mod:`ci_env.options`). ``--docker-config`` names a directory whose meaning the
command states (:data:`DOCKER_CONFIG_MEANINGS`); ``--repo-implementation`` says which variables it stands
above for the scope the command resolves it in; the repo options and credential flags come together as
:func:`repo_options` and :func:`credential_options`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from ci_env.cascade import IMAGES_REPO, SCOPES, STAGES_STORAGE, flag_name, variable_name
from ci_env.options import resolve_credentials, resolve_repo_options
from ci_env.registry.implementations import CREDENTIAL_KINDS

F = TypeVar("F", bound=Callable[..., Any])


class _ConfigDir(click.Path):
    """A directory option whose empty value counts as unset (as everywhere in the cascade)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "":
            return None
        return super().convert(value, param, ctx)


_LOCATION = "[env: WERF_DOCKER_CONFIG, DOCKER_CONFIG; default ~/.docker]"
#: meaning -> (help, type): what the ``--docker-config`` directory is to a command. ``base``: the config a job's
#: private copy starts from (setup); ``credentials``: where registry credentials are read (a Path);
#: ``login``: the job directory written into; ``teardown``: the job directory removed.
DOCKER_CONFIG_MEANINGS: dict[str, tuple[str, click.ParamType[Any] | None]] = {
    "base": ("Base Docker config (default: $WERF_DOCKER_CONFIG, $DOCKER_CONFIG, ~/.docker).", None),
    "credentials": (f"Docker config directory holding the registry credentials {_LOCATION}",
                    _ConfigDir(file_okay=False, path_type=Path)),
    "login": ("The ci-env job directory to write into (default: $WERF_DOCKER_CONFIG, then $DOCKER_CONFIG).", None),
    "teardown": ("Remove this ci-env job directory.", None),
}


def _with(param: click.Option) -> Callable[[F], F]:
    """A decorator adding ``param`` to a click command (as ``click.option`` does)."""

    def decorator(func: F) -> F:
        func.__click_params__ = [*getattr(func, "__click_params__", []), param]  # type: ignore[attr-defined]
        return func

    return decorator


def docker_config_param(meaning: str) -> click.Option:
    """``--docker-config DIR`` (parameter ``docker_config``) with the help and type of ``meaning``
    (:data:`DOCKER_CONFIG_MEANINGS`): a ``str`` for ``base``, ``login`` and ``teardown``, a ``Path`` for
    ``credentials``; None when not given."""
    help_text, kind = DOCKER_CONFIG_MEANINGS[meaning]
    return click.Option(["--docker-config", "docker_config"], type=kind, default=None, metavar="DIR", help=help_text)


def docker_config_option(meaning: str) -> Callable[[F], F]:
    """:func:`docker_config_param` as a decorator."""
    return _with(docker_config_param(meaning))


def insecure_registry_param(param: str = "insecure_registries") -> click.Option:
    """``--insecure-registry HOST[:PORT]`` (repeatable), handed over as the tuple ``param``; the command adds
    ``$WERF_INSECURE_REGISTRY`` (:func:`ci_env.registry.insecure.from_env`)."""
    return click.Option(
        ["--insecure-registry", param], multiple=True, metavar="HOST[:PORT]",
        help="Allow plain HTTP or unverified TLS for this registry (repeatable) "
        "[env: WERF_INSECURE_REGISTRY, comma separated]",
    )


def insecure_registry_option(param: str = "insecure_registries") -> Callable[[F], F]:
    """:func:`insecure_registry_param` as a decorator."""
    return _with(insecure_registry_param(param))


def _implementation_variables(scope: str | None) -> str:
    from ci_env.cascade import IMAGES_REPO, STAGES_STORAGE, variable_name

    levels = (IMAGES_REPO, STAGES_STORAGE, "repo") if scope is None else (scope, "repo")
    return ", ".join(variable_name(level, "implementation") for level in levels)


def repo_implementation_option(scope: str | None = None) -> Callable[[F], F]:
    """``--repo-implementation NAME`` for a command that resolves it with
    :func:`ci_env.options.resolve_implementation` in ``scope`` (None: either repo, each variable only on its
    repo's registry); the help names the variables it stands above."""
    where = ", each only on its repo's registry" if scope is None else ""
    return _with(click.Option(
        ["--repo-implementation"], default=None, metavar="NAME",
        help="Registry implementation (detected from the host when unset; beats every variable) "
        f"[env: {_implementation_variables(scope)}{where}]",
    ))


def _credential_params(scopes: Sequence[str]) -> list[click.Option]:
    params = []
    for level in (*scopes, "repo"):
        for kind in CREDENTIAL_KINDS:
            flag = flag_name(level, kind)
            where = "both stages storage and images repo" if level == "repo" else f"the {level.replace('-', ' ')}"
            params.append(
                click.Option(
                    [flag],
                    default=None,
                    metavar="TEXT",
                    help=f"{kind.replace('-', ' ').title()} for {where} [env: {variable_name(level, kind)}]",
                )
            )
    return params


def _repo_params() -> list[click.Option]:
    return [
        click.Option(["-i", "--images-repo"], default=None, metavar="ADDRESS",
                     help="Where images go: registry, account or repository [env: WERF_IMAGES_REPO]"),
        click.Option(["--images-repo-mode"], default=None, metavar="auto|monorepo|multirepo",
                     help="monorepo: REPO:IMAGE-TAG; multirepo: REPO/IMAGE:TAG; auto (default) per implementation "
                     "[env: WERF_IMAGES_REPO_MODE]"),
        click.Option(["-s", "--stages-storage"], default=None, metavar="ADDRESS|:local",
                     help="Stages storage address, or :local [env: WERF_STAGES_STORAGE]"),
        *(_implementation_param(level) for level in ("repo", IMAGES_REPO, STAGES_STORAGE)),
    ]


def _implementation_param(level: str) -> click.Option:
    """``--repo-implementation`` (both repos), ``--images-repo-implementation`` or
    ``--stages-storage-repo-implementation``, as :func:`repo_options` resolves them."""
    what = "both repos (detected by host when unset)" if level == "repo" else f"the {level.replace('-', ' ')}"
    return click.Option([flag_name(level, "implementation")], default=None, metavar="NAME",
                        help=f"Registry implementation of {what} [env: {variable_name(level, 'implementation')}]")


def _attach(params: list[click.Option], convert: Callable[[dict[str, Any]], tuple[str, Any]]) -> Callable[[F], F]:
    """Decorator adding ``params`` to a command; their values are popped and handed over as one keyword."""
    names = [p.name for p in params]

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names if name is not None and name in kwargs}
            key, value = convert(values)
            kwargs[key] = value
            return func(*args, **kwargs)

        existing = getattr(func, "__click_params__", [])
        wrapper.__click_params__ = [*existing, *reversed(params)]  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def credential_options(scopes: Sequence[str] = SCOPES, *, keyword: str = "credentials") -> Callable[[F], F]:
    """Add the credential flags of ``scopes`` plus the common ``--repo-*`` level to a click command.

    The command receives ``keyword`` = ``{scope: Credentials}``, resolved against ``os.environ``.
    """

    def convert(values: dict[str, Any]) -> tuple[str, Any]:
        return keyword, {scope: resolve_credentials(scope, values, os.environ) for scope in scopes}

    return _attach(_credential_params(scopes), convert)


def repo_options(func: F) -> F:
    """Add every repo option and all credential flags to a click command; it receives ``repo: RepoOptions``.

    Used by build-and-publish, cleanup and purge. Resolution errors (malformed address or mode) are
    ConfigError, printed by the CLI with exit 2.
    """

    def convert(values: dict[str, Any]) -> tuple[str, Any]:
        return "repo", resolve_repo_options(values, os.environ)

    return _attach([*_repo_params(), *_credential_params(SCOPES)], convert)(func)


def repo_options_in(func: F) -> F:
    """:func:`repo_options` for a command that chooses the environment they resolve in: it receives ``repo``, a
    function of the environment (``os.environ`` or less) that returns the RepoOptions (ConfigError as
    :func:`repo_options`, when called). Used by cleanup, whose rules mode ignores the images repo's variables."""

    def convert(values: dict[str, Any]) -> tuple[str, Any]:
        return "repo", functools.partial(resolve_repo_options, values)

    return _attach([*_repo_params(), *_credential_params(SCOPES)], convert)(func)
