"""The environment exports `ci-env setup` prints: one table, computed from the job's facts and options.

Each row of :data:`EXPORTS` is one variable: its name, how its value is computed,
whether it is a secret, and whether a value the user already set wins. Adding an
export is adding one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci_env.ci.facts import JobFacts
from ci_env.errors import ConfigError, UsageError
from ci_env.tagging import docker_tag

if TYPE_CHECKING:
    from ci_env.registry.reference import RepoAddress

#: ``--tagging-strategy`` values; the first is the default.
TAGGING_STRATEGIES: tuple[str, ...] = ("stages-signature", "tag-or-branch")


@dataclass(frozen=True)
class Export:
    """One variable of the script.

    ``overridable``: a value the user already set wins (kept unless ``--override``);
    False for the Docker config variables, which always point at the job's directory.
    ``kept``: the user's value is kept; ``value`` is then that value and the script
    only says so in a comment.
    """

    name: str
    value: str
    secret: bool = False
    overridable: bool = True
    kept: bool = False


@dataclass(frozen=True)
class ExportInputs:
    """What setup decided outside the CI facts (options, the registry model, the job directory).

    Strings are None when not given. ``images_repo``/``stages_storage`` are the
    command-line options (they beat ``$WERF_IMAGES_REPO``/``$WERF_STAGES_STORAGE``);
    ``implementation`` and ``images_repo_mode`` come from the registry model or options.
    """

    docker_config: Path
    images_repo: str | None = None
    stages_storage: str | None = None
    implementation: str | None = None
    stages_storage_implementation: str | None = None
    images_repo_mode: str | None = None
    tagging_strategy: str | None = None
    override: bool = False


@dataclass(frozen=True)
class Context:
    """Everything a row of :data:`EXPORTS` may read: facts, inputs and the resolved repos."""

    facts: JobFacts
    inputs: ExportInputs
    images_repo: str | None
    stages_storage: str | None
    images_model: RepoModel | None = None
    stages_model: RepoModel | None = None

    @property
    def tagging_strategy(self) -> str:
        """The tagging strategy asked for, else the default (the first of ``TAGGING_STRATEGIES``)."""
        return self.inputs.tagging_strategy or TAGGING_STRATEGIES[0]


Compute = Callable[[Context], "str | None"]


@dataclass(frozen=True)
class ExportDef:
    """A row of the table: ``compute`` returns the value, or None when the export does not apply.

    ``explicit`` returns True when the value must replace one already set in the environment even
    without ``--override``: it comes from a command-line option, or the value set no longer applies.
    """

    name: str
    compute: Compute
    secret: bool = False
    overridable: bool = True
    explicit: Callable[[Context], bool] = lambda ctx: False


@dataclass(frozen=True)
class RepoModel:
    """What the registry model says of one address: its implementation (and which variable chose it, or
    ``detected``) and, for the images repo, its mode."""

    address: RepoAddress
    implementation: str
    implementation_source: str = "detected"
    mode: str | None = None


def _replaces(model: RepoModel | None, variable: str) -> bool:
    """True when ``variable``, set in the environment, did not choose the model's implementation (it is for
    another registry): the computed value then replaces it."""
    return model is not None and model.implementation_source != variable


#: CI family -> the variable its default images repo comes from, for messages.
CI_IMAGES_REPO_VARIABLES: dict[str, str] = {"gitlab": "CI_REGISTRY_IMAGE", "github": "GITHUB_REPOSITORY"}


def repo_model(
    facts: JobFacts,
    repo: str | None,
    env: Mapping[str, str],
    requested_mode: str | None = None,
    *,
    local_ok: bool = False,
    source: str = "the images repo",
    scope: str = "images-repo",
    use_variables: bool = True,
) -> RepoModel | None:
    """The implementation (and the resolved mode when ``requested_mode`` is given) of ``repo``.

    None when there is no repo or it is ``:local``. The implementation is the one the implementation
    variables set for this address (see :func:`ci_env.options.choose_implementation`; not with
    ``use_variables=False``, i.e. ``--override``), else detected. In GitLab CI behaviour an address under
    the CI registry is ``gitlab`` even when the variables that usually say so (``GITLAB_CI``) are absent,
    e.g. with ``ci-env gitlab`` elsewhere. ConfigError, prefixed with ``source``, for a malformed address,
    an invalid images repo/mode combination, or a stages storage the implementation cannot hold.
    """
    if not repo:
        return None
    from ci_env.options import choose_implementation
    from ci_env.registry.implementations import detect_implementation, get_implementation
    from ci_env.registry.naming import check_stages_storage, resolve_mode, validate
    from ci_env.registry.reference import parse_address

    try:
        address = parse_address(repo, allow_local=local_ok)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None
    if address is None:
        return None
    chosen = choose_implementation(scope, {}, env, address).chosen if use_variables else None
    if chosen is not None:
        implementation = get_implementation(chosen.value).for_address(address)
        implementation_source = chosen.source
    else:
        model_env: Mapping[str, str] = env
        if facts.family == "gitlab" and facts.registry:
            model_env = {**env, "GITLAB_CI": "true", "CI_REGISTRY": facts.registry}
        implementation = detect_implementation(address, model_env).implementation
        implementation_source = "detected"
    if not requested_mode:
        check_stages_storage(address, implementation, source)
        return RepoModel(address, implementation.name, implementation_source)
    try:
        mode = resolve_mode(address, implementation, requested_mode)
        validate(address, implementation, mode, ())
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from None
    return RepoModel(address, implementation.name, implementation_source, mode)


def _tag_from_ref(kind: str) -> Compute:
    def compute(ctx: Context) -> str | None:
        if ctx.tagging_strategy != "tag-or-branch":
            return None
        if kind == "tag":
            return docker_tag(ctx.facts.tag) if ctx.facts.tag else None
        return docker_tag(ctx.facts.branch) if ctx.facts.branch and not ctx.facts.tag else None

    return compute


def _annotation(key: str, field: str, family: str) -> Compute:
    def compute(ctx: Context) -> str | None:
        value = getattr(ctx.facts, field)
        return f"{key}={value}" if value and ctx.facts.family == family else None

    return compute


def _annotation_any(key: str, field: str) -> Compute:
    def compute(ctx: Context) -> str | None:
        value = getattr(ctx.facts, field)
        return f"{key}={value}" if value else None

    return compute


#: The exports, in the order the script sets them.
EXPORTS: tuple[ExportDef, ...] = (
    ExportDef("DOCKER_CONFIG", lambda c: str(c.inputs.docker_config), overridable=False),
    ExportDef("WERF_DOCKER_CONFIG", lambda c: str(c.inputs.docker_config), overridable=False),
    ExportDef("REGISTRY_AUTH_FILE", lambda c: str(c.inputs.docker_config / "config.json"), overridable=False),
    ExportDef("WERF_IMAGES_REPO", lambda c: c.images_repo, explicit=lambda c: bool(c.inputs.images_repo)),
    ExportDef("WERF_STAGES_STORAGE", lambda c: c.stages_storage, explicit=lambda c: bool(c.inputs.stages_storage)),
    ExportDef(
        "WERF_IMAGES_REPO_IMPLEMENTATION",
        lambda c: c.inputs.implementation or (c.images_model.implementation if c.images_model else None),
        explicit=lambda c: bool(c.inputs.implementation)
        or _replaces(c.images_model, "WERF_IMAGES_REPO_IMPLEMENTATION"),
    ),
    ExportDef(
        "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION",
        lambda c: c.inputs.stages_storage_implementation or (c.stages_model.implementation if c.stages_model else None),
        explicit=lambda c: bool(c.inputs.stages_storage_implementation)
        or _replaces(c.stages_model, "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION"),
    ),
    ExportDef(
        "WERF_IMAGES_REPO_MODE",
        lambda c: (c.images_model.mode if c.images_model else None) or c.inputs.images_repo_mode,
        explicit=lambda c: bool(c.inputs.images_repo_mode),
    ),
    ExportDef(
        "WERF_TAG_BY_STAGES_SIGNATURE",
        lambda c: "true" if c.tagging_strategy == "stages-signature" else None,
        explicit=lambda c: bool(c.inputs.tagging_strategy),
    ),
    ExportDef("WERF_TAG_GIT_TAG", _tag_from_ref("tag"), explicit=lambda c: bool(c.inputs.tagging_strategy)),
    ExportDef("WERF_TAG_GIT_BRANCH", _tag_from_ref("branch"), explicit=lambda c: bool(c.inputs.tagging_strategy)),
    ExportDef("WERF_ENV", lambda c: c.facts.environment),
    ExportDef(
        "WERF_REPO_GITHUB_TOKEN",
        lambda c: c.facts.token if c.facts.family == "github" and c.facts.system == "github" else None,
        secret=True,
    ),
    ExportDef("WERF_ADD_ANNOTATION_PROJECT_GIT", _annotation_any("project.werf.io/git", "project_url")),
    ExportDef("WERF_ADD_ANNOTATION_CI_COMMIT", _annotation_any("ci.werf.io/commit", "commit")),
    ExportDef(
        "WERF_ADD_ANNOTATION_GITLAB_CI_PIPELINE_URL",
        _annotation("gitlab.ci.werf.io/pipeline-url", "pipeline_url", "gitlab"),
    ),
    ExportDef("WERF_ADD_ANNOTATION_GITLAB_CI_JOB_URL", _annotation("gitlab.ci.werf.io/job-url", "job_url", "gitlab")),
    ExportDef(
        "WERF_ADD_ANNOTATION_GITHUB_ACTIONS_RUN_URL",
        _annotation("github.ci.werf.io/workflow-run-url", "pipeline_url", "github"),
    ),
    ExportDef("WERF_ADD_ANNOTATION_CI_PIPELINE_URL", _annotation("ci.werf.io/pipeline-url", "pipeline_url", "generic")),
    ExportDef("WERF_ADD_ANNOTATION_CI_JOB_URL", _annotation("ci.werf.io/job-url", "job_url", "generic")),
)


def _user_value(env: Mapping[str, str], name: str, inputs: ExportInputs) -> str | None:
    """The user's value of ``name`` from the environment, unless ``--override`` ignores it."""
    return None if inputs.override else (env.get(name) or None)


def resolve_images_repo(facts: JobFacts, inputs: ExportInputs, env: Mapping[str, str]) -> str | None:
    """The images repo: ``--images-repo`` > ``$WERF_IMAGES_REPO`` (unless --override) > the CI's default."""
    return images_repo_source(facts, inputs, env)[0]


def images_repo_source(facts: JobFacts, inputs: ExportInputs, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The images repo (see :func:`resolve_images_repo`) and where it came from, for messages."""
    if inputs.images_repo:
        return inputs.images_repo, "--images-repo"
    if _user_value(env, "WERF_IMAGES_REPO", inputs):
        return env["WERF_IMAGES_REPO"], "WERF_IMAGES_REPO"
    return facts.images_repo, CI_IMAGES_REPO_VARIABLES.get(facts.family, "the CI's images repo")


def stages_storage_source(inputs: ExportInputs, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The stages storage given by ``--stages-storage`` or ``$WERF_STAGES_STORAGE`` and its source, or
    ``(None, "the default")`` when neither is set."""
    if inputs.stages_storage:
        return inputs.stages_storage, "--stages-storage"
    if _user_value(env, "WERF_STAGES_STORAGE", inputs):
        return env["WERF_STAGES_STORAGE"], "WERF_STAGES_STORAGE"
    return None, "the default"


def _published(value: str, row: ExportDef) -> str:
    """What is exported for ``row``: a secret as is; anything else without URL credentials (``user:token@``)."""
    from ci_env.redact import strip_userinfo_in

    return value if row.secret else strip_userinfo_in(value)


def compute_exports(
    facts: JobFacts, inputs: ExportInputs, env: Mapping[str, str], table: Sequence[ExportDef] = EXPORTS
) -> list[Export]:
    """The exports for this job, in table order.

    A row whose value does not apply is left out. A variable already set (non-empty)
    in ``env`` is kept (``Export.kept``, value = the user's) unless the row is not
    overridable, the value comes from an option, or ``inputs.override`` is set. No value
    that is not a secret carries URL credentials (``https://user:token@...``): they are stripped.
    Raises :class:`UsageError` for an unknown tagging strategy and :class:`ConfigError`
    when ``tag-or-branch`` finds neither a tag nor a branch.
    """
    strategy = inputs.tagging_strategy or TAGGING_STRATEGIES[0]
    if strategy not in TAGGING_STRATEGIES:
        raise UsageError(f"unknown tagging strategy {strategy!r}: use one of {', '.join(TAGGING_STRATEGIES)}")
    images_repo, images_source = images_repo_source(facts, inputs, env)
    stages_storage, stages_source = stages_storage_source(inputs, env)
    requested_mode = inputs.images_repo_mode or _user_value(env, "WERF_IMAGES_REPO_MODE", inputs) or "auto"
    use_variables = not inputs.override
    images_model = repo_model(facts, images_repo, env, requested_mode, source=images_source,
                              use_variables=use_variables)
    if stages_storage is None and images_model is not None:
        from ci_env.registry.implementations import get_implementation
        from ci_env.registry.naming import default_stages_storage

        implementation = get_implementation(images_model.implementation)
        default_stages_storage(images_model.address, implementation, images_source)  # ConfigError when invalid
        stages_storage = f"{str(images_repo).rstrip('/')}/stages"  # as the user spelled the images repo
    stages_model = repo_model(facts, stages_storage, env, local_ok=True, source=stages_source,
                              scope="stages-storage", use_variables=use_variables)
    ctx = Context(facts, inputs, images_repo, stages_storage, images_model, stages_model)
    exports: list[Export] = []
    for row in table:
        value = row.compute(ctx)
        if value is None:
            continue
        existing = env.get(row.name)
        if existing and row.overridable and not inputs.override and not row.explicit(ctx):
            exports.append(Export(row.name, _published(existing, row), row.secret, row.overridable, kept=True))
        else:
            exports.append(Export(row.name, _published(value, row), row.secret, row.overridable))
    if strategy == "tag-or-branch" and not any(e.name in ("WERF_TAG_GIT_TAG", "WERF_TAG_GIT_BRANCH") for e in exports):
        raise ConfigError(
            "--tagging-strategy tag-or-branch needs a git tag or branch, and the CI variables name neither: "
            "use --tagging-strategy stages-signature"
        )
    return exports
