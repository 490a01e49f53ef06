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

The implementation override is different (:func:`ci_env.registry.model.choose_implementation`): an
option always beats a variable, and a variable applies only to addresses on the registry of the repo the
environment names. An empty value counts as unset at every step. The precedence itself is
:func:`ci_env.cascade.cascade`; :func:`resolve_setup` resolves every setting of ``ci-env setup`` in one call.
:func:`ci_env.cli_options.repo_options` / :func:`ci_env.cli_options.credential_options` add the flags to a
click command and hand it one frozen :class:`RepoOptions` / :class:`Credentials`; :func:`resolve_repo_options`
does the same from plain mappings. Secret values never appear in ``repr`` or messages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ci_env.boolean import boolean_word, parse_boolean
from ci_env.cascade import (
    IMAGES_REPO,
    SCOPES,
    STAGES_STORAGE,
    Option,
    Resolved,
    cascade,
    first,
    flag_name,
    named,
    resolve,
    resolve_all,
    variable_name,
)
from ci_env.contract import TAGGING_STRATEGIES
from ci_env.errors import ConfigError
from ci_env.registry.implementations import CREDENTIAL_KINDS
from ci_env.registry.model import RepoModel, resolve_implementation
from ci_env.registry.reference import RepoAddress, parse_address

if TYPE_CHECKING:
    from pathlib import Path

    from ci_env.ci.facts import JobFacts, RegistryLogin
    from ci_env.configjson import BaseConfig

#: kind -> is its value a secret
SECRET_KINDS = frozenset(k for k in CREDENTIAL_KINDS if k.endswith(("-token", "-password")))

def setting_names(scope: str, kind: str) -> tuple[str, ...]:
    """Where a user can set ``kind`` for ``scope``, in precedence order: for messages like "set X or Y"."""
    return (flag_name(scope, kind), variable_name(scope, kind), flag_name("repo", kind), variable_name("repo", kind))


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
        found = first(flags, env, _four_levels(scope, kind), kind in SECRET_KINDS)
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


#: ``--images-repo-mode`` as the cascade reads it.
IMAGES_REPO_MODE = Option("--images-repo-mode", ("WERF_IMAGES_REPO_MODE",), "auto")


def images_repo_mode(flags: Mapping[str, Any], env: Mapping[str, str]) -> Resolved:
    """``--images-repo-mode`` > ``WERF_IMAGES_REPO_MODE`` > ``auto`` (unchecked), with its source."""
    found = resolve(flags, env, IMAGES_REPO_MODE)
    assert found is not None
    return found


def resolve_repo_options(flags: Mapping[str, Any], env: Mapping[str, str]) -> RepoOptions:
    """Resolve repo options from click parameter values and variables; ConfigError for a malformed address or mode."""
    from ci_env.registry.naming import check_mode

    images = cascade(flags, env, "--images-repo", ("WERF_IMAGES_REPO",))
    stages = cascade(flags, env, "--stages-storage", ("WERF_STAGES_STORAGE",))
    mode = images_repo_mode(flags, env)
    images_address = named(parse_address, images, allow_local=False) if images else None
    stages_address = named(parse_address, stages, allow_local=True) if stages else None
    return RepoOptions(
        images_repo=images_address,
        images_repo_source=images.source if images else None,
        images_repo_mode=named(check_mode, mode),
        images_repo_mode_source=mode.source,
        stages_storage=stages_address,
        stages_storage_local=bool(stages) and stages_address is None,
        stages_storage_source=stages.source if stages else None,
        images_repo_implementation=resolve_implementation(IMAGES_REPO, flags, env, images_address),
        stages_storage_implementation=resolve_implementation(STAGES_STORAGE, flags, env, stages_address),
        images_repo_credentials=resolve_credentials(IMAGES_REPO, flags, env),
        stages_storage_credentials=resolve_credentials(STAGES_STORAGE, flags, env),
    )


# ---------------------------------------------------------------- setup's repos


#: CI family -> the variable its default images repo comes from, for messages.
CI_IMAGES_REPO_VARIABLES: dict[str, str] = {"gitlab": "CI_REGISTRY_IMAGE", "github": "GITHUB_REPOSITORY"}
#: ``--tagging-strategy`` values; the first is the default.


#: The variables setup takes from the environment, checked before anything is created; the ones
#: ``--override`` replaces are not taken then.
SETUP_VARIABLES: tuple[str, ...] = (
    "WERF_IMAGES_REPO", "WERF_STAGES_STORAGE", "WERF_IMAGES_REPO_MODE", "WERF_IMAGES_REPO_IMPLEMENTATION",
    "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION", "WERF_REPO_IMPLEMENTATION", "WERF_TAG_BY_STAGES_SIGNATURE",
)


@dataclass(frozen=True)
class SetupSettings:
    """Setup's settings, each resolved once with its source: images repo, stages storage, mode and tagging
    strategy as given or defaulted (as the user spelled them), the registry model of each repo, the Docker
    config the job's copy starts from, where job directories live, and the CI logins to write."""

    images_repo: Resolved | None
    stages_storage: Resolved | None
    images_repo_mode: Resolved
    tagging_strategy: Resolved
    images_model: RepoModel | None
    stages_model: RepoModel | None
    override: bool
    #: ``--insecure-registry`` (repeatable) and ``$WERF_INSECURE_REGISTRY`` together (``*``: every registry)
    insecure_registries: tuple[str, ...]
    #: ``--docker-config`` > ``$WERF_DOCKER_CONFIG`` > ``$DOCKER_CONFIG`` > ``~/.docker`` (unexpanded)
    docker_config: Resolved
    #: The base Docker config the job's copy starts from (at :attr:`docker_config`)
    base: BaseConfig
    #: ``--tmp-dir`` > ``$WERF_TMP_DIR`` > the CI's temp dir > the system's (unexpanded), and as a path
    tmp_dir: Resolved
    tmp_root: Path
    #: The CI's logins for this job (none with ``--no-login``): its registry, and the legacy GitHub
    #: registry when the images repo is there
    logins: tuple[RegistryLogin, ...]

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


def setup_table() -> dict[str, Option]:
    """Setup's options as the cascade reads them, keyed by click parameter name."""
    from ci_env.configjson import DOCKER_CONFIG
    from ci_env.dockerconfig import TMP_DIR

    return {
        "images_repo": Option("--images-repo", ("WERF_IMAGES_REPO",)),
        "stages_storage": Option("--stages-storage", ("WERF_STAGES_STORAGE",)),
        "images_repo_mode": IMAGES_REPO_MODE,
        "tagging_strategy": Option("--tagging-strategy", (), TAGGING_STRATEGIES[0]),
        "docker_config": DOCKER_CONFIG,
        "tmp_dir": TMP_DIR,
    }


def resolve_setup(
    flags: Mapping[str, Any], env: Mapping[str, str], facts: JobFacts, *, override: bool = False
) -> SetupSettings:
    """Resolve every setting of setup once, before anything is created: option > variable (none of
    :data:`SETUP_VARIABLES` with ``override``) > the CI's default (from ``facts``) > built-in default in one
    pass, then the registry model of both repos (one call), the logins, and the base Docker config.

    ``flags`` maps click parameter names to values (``images_repo``, ``docker_config``, ``no_login``, ...;
    missing ones are not given). In GitLab CI behaviour an address under the CI registry is ``gitlab`` even
    when the variables that usually say so are absent (``ci-env gitlab`` elsewhere). The stages storage
    defaults to ``<images repo>/stages`` where the implementation can hold it. ConfigError naming the source
    for a malformed address, mode or variable, an invalid combination, a stages storage the implementation
    cannot hold, or a base Docker config that cannot be used.
    """
    from ci_env.configjson import expand_home, read_base
    from ci_env.dockerconfig import ci_tmp_dir
    from ci_env.registry.insecure import from_env as insecure_from_env
    from ci_env.registry.model import setup_models

    check_variables(env, ("WERF_INSECURE_REGISTRY", *(() if override else SETUP_VARIABLES)))
    taken = {name: value for name, value in env.items() if not (override and name in SETUP_VARIABLES)}
    ci_images_repo = (facts.images_repo, CI_IMAGES_REPO_VARIABLES.get(facts.family, "the CI's images repo"))
    found = resolve_all(setup_table(), flags, taken,
                        {"images_repo": ci_images_repo, "tmp_dir": ci_tmp_dir(env, facts.family)})
    images, stages, mode, strategy = (found["images_repo"], found["stages_storage"], found["images_repo_mode"],
                                      found["tagging_strategy"])
    docker_config, tmp_dir = found["docker_config"], found["tmp_dir"]
    assert mode is not None and strategy is not None and docker_config is not None and tmp_dir is not None
    if strategy.value not in TAGGING_STRATEGIES:
        raise ConfigError(f"{strategy.source}: unknown tagging strategy {strategy.value!r}: use one of "
                          f"{', '.join(TAGGING_STRATEGIES)}")
    models = setup_models(images, stages, mode, env, taken, facts.registry if facts.family == "gitlab" else None)
    logins = () if flags.get("no_login") else facts.logins_for(
        (models.images.address.registry,) if models.images is not None else ())
    return SetupSettings(
        images, models.stages_storage, mode, strategy, models.images, models.stages, override,
        insecure_registries=(*(flags.get("insecure_registry") or ()), *insecure_from_env(env)),
        docker_config=docker_config, base=read_base(docker_config, env, facts.family),
        tmp_dir=tmp_dir, tmp_root=expand_home(tmp_dir.value, env).absolute(), logins=logins,
    )


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
