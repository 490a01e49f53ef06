"""One precedence model for repo options and credentials: flag > variable > default.

Repo options: ``-i/--images-repo`` (``WERF_IMAGES_REPO``), ``--images-repo-mode`` (``WERF_IMAGES_REPO_MODE``,
default ``auto``), ``-s/--stages-storage`` (``WERF_STAGES_STORAGE``), and the implementation override
``--repo-implementation`` / ``--images-repo-implementation`` / ``--stages-storage-repo-implementation``.

Credentials have three levels. For each kind (``docker-hub-token``, ``github-token``, ...) and each scope
(``stages-storage``, ``images-repo``) the value is the first set of:

1. the specific flag (``--images-repo-docker-hub-token``),
2. the specific variable (``WERF_IMAGES_REPO_DOCKER_HUB_TOKEN``),
3. the common flag (``--repo-docker-hub-token``),
4. the common variable (``WERF_REPO_DOCKER_HUB_TOKEN``).

The implementation override is different (:func:`choose_implementation`): an option always beats a
variable, and a variable applies only to addresses on the registry of the repo the environment names
(``WERF_IMAGES_REPO_IMPLEMENTATION`` describes ``WERF_IMAGES_REPO``'s registry, not any address a later
command is given). An empty value counts as unset at every step.
:func:`repo_options` / :func:`credential_options` add the flags to a click command and hand it one frozen
:class:`RepoOptions` / :class:`Credentials`; :func:`resolve_repo_options` does the same from plain mappings.
Secret values never appear in ``repr`` or messages.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ci_env.boolean import boolean_word, parse_boolean
from ci_env.errors import ConfigError
from ci_env.registry.implementations import CREDENTIAL_KINDS
from ci_env.registry.reference import RepoAddress, parse_address

if TYPE_CHECKING:
    from ci_env.ci.facts import JobFacts

F = TypeVar("F", bound=Callable[..., Any])

IMAGES_REPO = "images-repo"
STAGES_STORAGE = "stages-storage"
SCOPES = (STAGES_STORAGE, IMAGES_REPO)

#: kind -> is its value a secret
SECRET_KINDS = frozenset(k for k in CREDENTIAL_KINDS if k.endswith(("-token", "-password")))

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


def param_name(flag: str) -> str:
    """The click parameter name of a long flag (``--repo-github-token`` -> ``repo_github_token``)."""
    return flag.lstrip("-").replace("-", "_")


def setting_names(scope: str, kind: str) -> tuple[str, ...]:
    """Where a user can set ``kind`` for ``scope``, in precedence order: for messages like "set X or Y"."""
    return (flag_name(scope, kind), variable_name(scope, kind), flag_name("repo", kind), variable_name("repo", kind))


@dataclass(frozen=True)
class Resolved:
    """One resolved value and where it came from (a flag or variable name, or ``"default"``)."""

    value: str = field(repr=False)
    source: str
    secret: bool = False

    def __repr__(self) -> str:
        shown = "***" if self.secret else repr(self.value)
        return f"Resolved(value={shown}, source={self.source!r})"


def _first(
    flags: Mapping[str, Any], env: Mapping[str, str], steps: Sequence[tuple[str, str]], secret: bool = False
) -> Resolved | None:
    """The first non-empty value among ``steps`` ((\"flag\", name) or (\"env\", name))."""
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
    found = _first(flags, env, (("flag", option), *(("env", name) for name in variables)), secret)
    if found is None and ci_default is not None and ci_default[0]:
        found = Resolved(ci_default[0], ci_default[1], secret)
    if found is None and default is not None:
        found = Resolved(default, "default", secret)
    return found


def from_option(found: Resolved | None) -> bool:
    """Whether ``found`` was given on the command line (its source is a flag, not a variable or default)."""
    return found is not None and found.source.startswith("-")


def _four_levels(scope: str, kind: str) -> tuple[tuple[str, str], ...]:
    return (
        ("flag", flag_name(scope, kind)),
        ("env", variable_name(scope, kind)),
        ("flag", flag_name("repo", kind)),
        ("env", variable_name("repo", kind)),
    )


@dataclass(frozen=True)
class Credentials:
    """The credentials resolved for one scope (``images-repo`` or ``stages-storage``); values are hidden in repr."""

    scope: str
    entries: tuple[tuple[str, Resolved], ...] = ()

    def _lookup(self, kind: str) -> Resolved | None:
        if kind not in CREDENTIAL_KINDS:
            raise KeyError(f"unknown credential kind {kind!r}")
        for name, resolved in self.entries:
            if name == kind:
                return resolved
        return None

    def get(self, kind: str) -> str | None:
        """The value of ``kind``, or None when unset at every level."""
        found = self._lookup(kind)
        return found.value if found else None

    def has(self, kind: str) -> bool:
        """Whether ``kind`` is set at some level."""
        return self._lookup(kind) is not None

    def source(self, kind: str) -> str | None:
        """The flag or variable name ``kind`` came from, or None."""
        found = self._lookup(kind)
        return found.source if found else None

    def setting_names(self, kind: str) -> tuple[str, ...]:
        """Flags and variables that set ``kind`` for this scope, in precedence order."""
        return setting_names(self.scope, kind)

    def satisfied_set(self, sets: Sequence[Sequence[str]]) -> tuple[str, ...] | None:
        """The first complete set among ``sets`` (alternatives), or None when none is complete."""
        for candidate in sets:
            if all(self.has(kind) for kind in candidate):
                return tuple(candidate)
        return None


def resolve_credentials(scope: str, flags: Mapping[str, Any], env: Mapping[str, str]) -> Credentials:
    """Resolve every credential kind for ``scope``: specific flag > specific variable > common flag > common variable.

    ``flags`` maps click parameter names (``images_repo_github_token``) to values (None when not given).
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    entries = []
    for kind in CREDENTIAL_KINDS:
        found = _first(flags, env, _four_levels(scope, kind), kind in SECRET_KINDS)
        if found is not None:
            entries.append((kind, found))
    return Credentials(scope, tuple(entries))


@dataclass(frozen=True)
class RepoOptions:
    """Repo options and credentials resolved from flags and variables."""

    images_repo: RepoAddress | None
    images_repo_source: str | None
    images_repo_mode: str
    images_repo_mode_source: str
    stages_storage: RepoAddress | None  #: None with ``stages_storage_local`` for ``:local``, or when unset
    stages_storage_local: bool
    stages_storage_source: str | None
    images_repo_implementation: Resolved | None
    stages_storage_implementation: Resolved | None
    images_repo_credentials: Credentials
    stages_storage_credentials: Credentials

    def credentials(self, scope: str) -> Credentials:
        """The credentials for ``images-repo`` or ``stages-storage``."""
        return self.images_repo_credentials if scope == IMAGES_REPO else self.stages_storage_credentials

    def check_stages_storage(self, env: Mapping[str, str]) -> None:
        """ConfigError (exit 2) unless the stages storage is ``:local`` or one repository its implementation
        (the resolved one, else detected from the host) can hold; the message names where it came from."""
        from ci_env.errors import ConfigError

        stages = self.stages_storage
        if stages is None and not self.stages_storage_local:
            raise ConfigError(
                "no stages storage: pass -s/--stages-storage (:local, or a repository such as "
                "REGISTRY/PROJECT/stages) or set WERF_STAGES_STORAGE (ci-env setup exports it)"
            )
        if stages is None:
            return
        from ci_env.registry.implementations import detect_implementation
        from ci_env.registry.naming import check_stages_storage

        chosen = self.stages_storage_implementation
        detected = detect_implementation(stages, env, chosen.value if chosen else None,
                                         explicit_source=chosen.source if chosen else "")
        check_stages_storage(stages, detected.implementation, self.stages_storage_source or "-s/--stages-storage")


def _mode(flags: Mapping[str, Any], env: Mapping[str, str]) -> Resolved:
    """``--images-repo-mode`` > ``WERF_IMAGES_REPO_MODE`` > ``auto`` (unchecked)."""
    found = cascade(flags, env, "--images-repo-mode", ("WERF_IMAGES_REPO_MODE",), default="auto")
    assert found is not None
    return found


T = TypeVar("T")


def _named(check: Callable[..., T], found: Resolved, **kwargs: Any) -> T:
    """``check(found.value)``, its ConfigError prefixed with the flag or variable the value came from."""

    try:
        return check(found.value, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{found.source}: {exc.message}") from None


def resolve_repo_options(flags: Mapping[str, Any], env: Mapping[str, str]) -> RepoOptions:
    """Resolve repo options from click parameter values and variables; ConfigError for a malformed address or mode."""
    from ci_env.registry.naming import check_mode

    images = cascade(flags, env, "--images-repo", ("WERF_IMAGES_REPO",))
    stages = cascade(flags, env, "--stages-storage", ("WERF_STAGES_STORAGE",))
    mode = _mode(flags, env)
    images_address = _named(parse_address, images, allow_local=False) if images else None
    stages_address = _named(parse_address, stages, allow_local=True) if stages else None
    return RepoOptions(
        images_repo=images_address,
        images_repo_source=images.source if images else None,
        images_repo_mode=_named(check_mode, mode),
        images_repo_mode_source=mode.source,
        stages_storage=stages_address,
        stages_storage_local=bool(stages) and stages_address is None,
        stages_storage_source=stages.source if stages else None,
        images_repo_implementation=resolve_implementation(IMAGES_REPO, flags, env, images_address),
        stages_storage_implementation=resolve_implementation(STAGES_STORAGE, flags, env, stages_address),
        images_repo_credentials=resolve_credentials(IMAGES_REPO, flags, env),
        stages_storage_credentials=resolve_credentials(STAGES_STORAGE, flags, env),
    )


#: level -> the variables naming the repos whose registry that level's implementation variable describes
_DESCRIBED_REPOS: dict[str, tuple[str, ...]] = {
    IMAGES_REPO: ("WERF_IMAGES_REPO",),
    STAGES_STORAGE: ("WERF_STAGES_STORAGE",),
    "repo": ("WERF_IMAGES_REPO", "WERF_STAGES_STORAGE"),
}


@dataclass(frozen=True)
class ImplementationChoice:
    """The implementation override that applies to one address, and the variables that did not apply.

    ``chosen`` is None when nothing applies (the implementation is then detected from the host).
    ``skipped`` holds one sentence per variable set for another registry, for ``registry info``.
    """

    chosen: Resolved | None
    skipped: tuple[str, ...] = ()


def _described_registries(level: str, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """(variable, registry) for each repo variable of ``level`` that names a registry (``:local`` names none).

    ConfigError naming the variable when its address is malformed.
    """

    found = []
    for name in _DESCRIBED_REPOS[level]:
        raw = env.get(name, "")
        if not raw:
            continue
        try:
            address = parse_address(raw, allow_local=name == "WERF_STAGES_STORAGE")
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc.message}") from None
        if address is not None:
            found.append((name, address.registry))
    return tuple(found)


def _checked(found: Resolved) -> Resolved:
    from ci_env.registry.implementations import get_implementation

    try:
        impl = get_implementation(found.value)
    except ConfigError as exc:
        raise ConfigError(f"{found.source}: {exc.message}") from None
    return Resolved(impl.name, found.source)


def choose_implementation(
    scope: str | None, flags: Mapping[str, Any], env: Mapping[str, str], address: RepoAddress | None = None
) -> ImplementationChoice:
    """The implementation override for ``address`` in ``scope`` (``None``: either repo, as registry commands).

    Options always beat variables: the specific flag (``--images-repo-implementation``), then the common one
    (``--repo-implementation``). A variable describes the repo that the environment names: it applies only
    to addresses on that repo's registry (``WERF_IMAGES_REPO_IMPLEMENTATION`` on the registry of
    ``WERF_IMAGES_REPO``, ``WERF_STAGES_STORAGE_REPO_IMPLEMENTATION`` on that of ``WERF_STAGES_STORAGE``,
    ``WERF_REPO_IMPLEMENTATION`` on either), and everywhere when that repo variable is not set or
    ``address`` is None. ConfigError naming the flag or variable when a name is unknown.
    """
    flag_levels = (scope, "repo") if scope is not None else ("repo",)
    for level in flag_levels:
        found = _first(flags, {}, (("flag", flag_name(level, "implementation")),))
        if found is not None:
            return ImplementationChoice(_checked(found))
    variable_levels = (scope, "repo") if scope is not None else (IMAGES_REPO, STAGES_STORAGE, "repo")
    skipped: list[str] = []
    for level in variable_levels:
        found = _first({}, env, (("env", variable_name(level, "implementation")),))
        if found is None:
            continue
        checked = _checked(found)
        described = _described_registries(level, env)
        if address is None or not described or address.registry in {registry for _n, registry in described}:
            return ImplementationChoice(checked, tuple(skipped))
        where = " and ".join(f"{registry} (the registry of {name})" for name, registry in described)
        skipped.append(f"{found.source}={checked.value} not applied: it is for {where}")
    return ImplementationChoice(None, tuple(skipped))


def resolve_implementation(
    scope: str | None, flags: Mapping[str, Any], env: Mapping[str, str], address: RepoAddress | None = None
) -> Resolved | None:
    """The implementation override that applies to ``address`` (see :func:`choose_implementation`), or None."""
    return choose_implementation(scope, flags, env, address).chosen


# ---------------------------------------------------------------- setup's repos


#: CI family -> the variable its default images repo comes from, for messages.
CI_IMAGES_REPO_VARIABLES: dict[str, str] = {"gitlab": "CI_REGISTRY_IMAGE", "github": "GITHUB_REPOSITORY"}
#: ``--tagging-strategy`` values; the first is the default.
TAGGING_STRATEGIES: tuple[str, ...] = ("stages-signature", "tag-or-branch")


#: The variables setup takes from the environment, checked before anything is created; the ones
#: ``--override`` replaces are not taken then.
SETUP_VARIABLES: tuple[str, ...] = (
    "WERF_IMAGES_REPO", "WERF_STAGES_STORAGE", "WERF_IMAGES_REPO_MODE", "WERF_IMAGES_REPO_IMPLEMENTATION",
    "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION", "WERF_REPO_IMPLEMENTATION", "WERF_TAG_BY_STAGES_SIGNATURE",
)


@dataclass(frozen=True)
class RepoModel:
    """What the registry model says of one address: its implementation (and which variable chose it, or
    ``detected``) and, for the images repo, its mode."""

    address: RepoAddress
    implementation: str
    implementation_source: str = "detected"
    mode: str | None = None


@dataclass(frozen=True)
class SetupSettings:
    """Setup's repo settings, each resolved once with its source: images repo, stages storage, mode and
    tagging strategy as given or defaulted (as the user spelled them), and the registry model of each repo."""

    images_repo: Resolved | None
    stages_storage: Resolved | None
    images_repo_mode: Resolved
    tagging_strategy: Resolved
    images_model: RepoModel | None = None
    stages_model: RepoModel | None = None
    override: bool = False
    #: ``--insecure-registry`` (repeatable) and ``$WERF_INSECURE_REGISTRY`` together (``*``: every registry)
    insecure_registries: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line saying each value and where it came from (never a secret): for ``setup -v``."""
        parts = [f"{name} {found.value} (from {found.source})" if found else f"no {name}"
                 for name, found in (("images repo", self.images_repo), ("stages storage", self.stages_storage))]
        parts += [f"{name} {found.value} (from {found.source})"
                  for name, found in (("images repo mode", self.images_repo_mode),
                                      ("tagging strategy", self.tagging_strategy))]
        if self.override:
            parts.append("WERF_* variables not taken (--override)")
        return "; ".join(parts)

    @property
    def login_registries(self) -> tuple[str, ...]:
        """The registries whose CI logins depend on a repo being there: the images repo's (none without one)."""
        return (self.images_model.address.registry,) if self.images_model is not None else ()


def resolve_setup(
    flags: Mapping[str, Any], env: Mapping[str, str], facts: JobFacts, *, override: bool = False
) -> SetupSettings:
    """Resolve setup's repos once: option > variable (none with ``override``) > the CI's default (from
    ``facts``) > built-in default, then the registry model of each repo.

    In GitLab CI behaviour an address under the CI registry is ``gitlab`` even when the variables that
    usually say so are absent (``ci-env gitlab`` elsewhere). The stages storage defaults to
    ``<images repo>/stages`` where the implementation can hold it. ConfigError naming the source for a
    malformed address or mode, an invalid combination, or a stages storage the implementation cannot hold.
    """
    from ci_env.registry.implementations import get_implementation
    from ci_env.registry.insecure import from_env as insecure_from_env
    from ci_env.registry.naming import default_stages_storage

    check_variables(env, ("WERF_INSECURE_REGISTRY", *(() if override else SETUP_VARIABLES)))
    variables = {} if override else env
    ci_images_repo = (facts.images_repo, CI_IMAGES_REPO_VARIABLES.get(facts.family, "the CI's images repo"))
    ci_registry = facts.registry if facts.family == "gitlab" else None
    images = cascade(flags, variables, "--images-repo", ("WERF_IMAGES_REPO",), ci_default=ci_images_repo)
    mode = _mode(flags, variables)
    strategy = cascade(flags, {}, "--tagging-strategy", default=TAGGING_STRATEGIES[0])
    assert strategy is not None
    if strategy.value not in TAGGING_STRATEGIES:
        raise ConfigError(f"{strategy.source}: unknown tagging strategy {strategy.value!r}: use one of "
                          f"{', '.join(TAGGING_STRATEGIES)}")
    images_model = _repo_model(images, env, variables, IMAGES_REPO, ci_registry, mode)
    stages = cascade(flags, variables, "--stages-storage", ("WERF_STAGES_STORAGE",))
    if stages is None and images is not None and images_model is not None:
        impl = get_implementation(images_model.implementation)
        default_stages_storage(images_model.address, impl, images.source)  # ConfigError when invalid
        stages = Resolved(f"{images.value.rstrip('/')}/stages", "the default")  # as the user spelled it
    stages_model = _repo_model(stages, env, variables, STAGES_STORAGE, ci_registry)
    insecure = (*(flags.get("insecure_registry") or ()), *insecure_from_env(env))
    return SetupSettings(images, stages, mode, strategy, images_model, stages_model, override, insecure)


def _repo_model(
    found: Resolved | None, env: Mapping[str, str], variables: Mapping[str, str], scope: str,
    ci_registry: str | None, mode: Resolved | None = None,
) -> RepoModel | None:
    """The registry model of ``found`` (None for no repo or ``:local``): the implementation the variables set
    for this address (:func:`choose_implementation`), else detected; the mode resolved for the images repo."""
    if found is None:
        return None
    from ci_env.registry.implementations import detect_implementation, get_implementation
    from ci_env.registry.naming import check_mode, check_stages_storage, resolve_mode, validate

    source = found.source
    address = _named(parse_address, found, allow_local=scope == STAGES_STORAGE)
    if address is None:
        return None
    chosen = choose_implementation(scope, {}, variables, address).chosen
    if chosen is not None:
        implementation = get_implementation(chosen.value).for_address(address)
    else:
        implementation = detect_implementation(address, env, ci_registry=ci_registry).implementation
    chosen_by = chosen.source if chosen is not None else "detected"
    if mode is None:
        check_stages_storage(address, implementation, source)
        return RepoModel(address, implementation.name, chosen_by)
    try:
        resolved = resolve_mode(address, implementation, _named(check_mode, mode))
        validate(address, implementation, resolved, ())
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None
    return RepoModel(address, implementation.name, chosen_by, resolved)


def _check_registry_list(text: str) -> None:
    from ci_env.registry.reference import canonical_registry

    if boolean_word(text) is not None:
        return
    for part in text.replace(",", " ").split():
        host = part.split("://", 1)[-1].split("/", 1)[0]  # as the registry client reads it
        try:
            canonical_registry(host)
        except ConfigError:
            raise ConfigError(
                f"{part!r} is not a registry HOST[:PORT]: list registries separated by commas, or write true "
                "for every registry"
            ) from None


def _variable_checks() -> dict[str, Callable[[str], object]]:
    from ci_env.registry.implementations import get_implementation
    from ci_env.registry.naming import check_mode

    return {
        "WERF_IMAGES_REPO": parse_address,
        "WERF_STAGES_STORAGE": functools.partial(parse_address, allow_local=True),
        "WERF_IMAGES_REPO_MODE": check_mode,
        variable_name(IMAGES_REPO, "implementation"): get_implementation,
        variable_name(STAGES_STORAGE, "implementation"): get_implementation,
        variable_name("repo", "implementation"): get_implementation,
        "WERF_TAG_BY_STAGES_SIGNATURE": parse_boolean,
        "WERF_INSECURE_REGISTRY": _check_registry_list,
    }


#: The variables :func:`check_variables` knows how to check.
CHECKED_VARIABLES = (
    "WERF_IMAGES_REPO", "WERF_STAGES_STORAGE", "WERF_IMAGES_REPO_MODE", "WERF_IMAGES_REPO_IMPLEMENTATION",
    "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION", "WERF_REPO_IMPLEMENTATION", "WERF_TAG_BY_STAGES_SIGNATURE",
    "WERF_INSECURE_REGISTRY",
)


def check_variables(env: Mapping[str, str], names: Sequence[str] = CHECKED_VARIABLES) -> None:
    """Check each of ``names`` that is set (non-empty) in ``env`` as its option would be checked.

    ConfigError ``NAME: what is wrong: what to write`` for the first bad value (exit 2).
    """
    checks = _variable_checks()
    for name in names:
        raw = env.get(name, "")
        if raw:
            try:
                checks[name](raw)
            except ConfigError as exc:
                raise ConfigError(f"{name}: {exc.message}") from None


# ---------------------------------------------------------------- click decorators


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
        click.Option(["--repo-implementation"], default=None, metavar="NAME",
                     help="Registry implementation of both repos (detected by host when unset) "
                     "[env: WERF_REPO_IMPLEMENTATION]"),
        click.Option(["--images-repo-implementation"], default=None, metavar="NAME",
                     help="Registry implementation of the images repo [env: WERF_IMAGES_REPO_IMPLEMENTATION]"),
        click.Option(["--stages-storage-repo-implementation"], default=None, metavar="NAME",
                     help="Registry implementation of the stages storage "
                     "[env: WERF_STAGES_STORAGE_REPO_IMPLEMENTATION]"),
    ]


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
