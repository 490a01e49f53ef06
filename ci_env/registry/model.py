"""The registry model of the repos a job names: for each address, the implementation that handles it (the
override that applies to that address, else detection by host) and, for the images repo, its mode.

One call, :func:`setup_models`, gives setup both repos (and the default stages storage); the registry
commands ask :func:`resolve_implementation` for one address. The override's rule differs from the plain
cascade: an option always beats a variable, and a variable applies only to addresses on the registry of
the repo the environment names (``WERF_IMAGES_REPO_IMPLEMENTATION`` describes ``WERF_IMAGES_REPO``'s
registry, not any address a later command is given).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ci_env.cascade import IMAGES_REPO, STAGES_STORAGE, Resolved, flag_name, param_name, variable_name
from ci_env.errors import ConfigError
from ci_env.registry.implementations import detect_implementation, get_implementation
from ci_env.registry.naming import check_mode, check_stages_storage, default_stages_storage, resolve_mode, validate
from ci_env.registry.reference import RepoAddress, parse_address

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


def _set(values: Mapping[str, Any], key: str, source: str) -> Resolved | None:
    """``values[key]`` when set and not empty, with ``source`` (the flag or variable) as its source."""
    raw = values.get(key)
    return Resolved(str(raw), source) if raw is not None and str(raw) != "" else None


def _checked(found: Resolved) -> Resolved:
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
        flag = flag_name(level, "implementation")
        found = _set(flags, param_name(flag), flag)
        if found is not None:
            return ImplementationChoice(_checked(found))
    variable_levels = (scope, "repo") if scope is not None else (IMAGES_REPO, STAGES_STORAGE, "repo")
    skipped: list[str] = []
    for level in variable_levels:
        variable = variable_name(level, "implementation")
        found = _set(env, variable, variable)
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


@dataclass(frozen=True)
class RepoModel:
    """What the registry model says of one address: its implementation (and which variable chose it, or
    ``detected``) and, for the images repo, its mode."""

    address: RepoAddress
    implementation: str
    implementation_source: str = "detected"
    mode: str | None = None


@dataclass(frozen=True)
class SetupModels:
    """The registry model of setup's repos, and the stages storage as given or defaulted."""

    images: RepoModel | None
    stages: RepoModel | None
    stages_storage: Resolved | None


def setup_models(
    images: Resolved | None, stages: Resolved | None, mode: Resolved, env: Mapping[str, str],
    variables: Mapping[str, str], ci_registry: str | None,
) -> SetupModels:
    """The registry model of the images repo (with ``mode``) and of the stages storage, which defaults to
    ``<images repo>/stages`` where the implementation can hold it. ``variables`` are the ``WERF_*``
    variables taken (none with ``--override``); ``env`` the whole environment, for detection.
    ConfigError naming the source for a malformed address or mode, an invalid combination, or a stages
    storage the implementation cannot hold."""
    images_model = repo_model(images, env, variables, IMAGES_REPO, ci_registry, mode)
    if stages is None and images is not None and images_model is not None:
        impl = get_implementation(images_model.implementation)
        default_stages_storage(images_model.address, impl, images.source)  # ConfigError when invalid
        stages = Resolved(f"{images.value.rstrip('/')}/stages", "the default")  # as the user spelled it
    return SetupModels(images_model, repo_model(stages, env, variables, STAGES_STORAGE, ci_registry), stages)


def repo_model(
    found: Resolved | None, env: Mapping[str, str], variables: Mapping[str, str], scope: str,
    ci_registry: str | None, mode: Resolved | None = None,
) -> RepoModel | None:
    """The registry model of ``found`` (None for no repo or ``:local``): the implementation the variables set
    for this address (:func:`choose_implementation`), else detected; the mode resolved for the images repo."""
    if found is None:
        return None
    source = found.source
    try:
        address = parse_address(found.value, allow_local=scope == STAGES_STORAGE)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None
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
        requested = check_mode(mode.value)
    except ConfigError as exc:
        raise ConfigError(f"{mode.source}: {exc.message}") from None
    try:
        resolved = resolve_mode(address, implementation, requested)
        validate(address, implementation, resolved, ())
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None
    return RepoModel(address, implementation.name, chosen_by, resolved)
