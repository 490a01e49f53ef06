"""The environment exports `ci-env setup` prints: one table, computed from the job's facts and options.

Each row of :data:`EXPORTS` is one variable: its name, how its value is computed,
whether it is a secret, and whether a value the user already set wins. Adding an
export is adding one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ci_env.cascade import Resolved, from_option
from ci_env.ci.facts import JobFacts
from ci_env.contract import STAGES_SIGNATURE
from ci_env.errors import ConfigError
from ci_env.options import SetupSettings
from ci_env.registry.model import RepoModel
from ci_env.render import Export
from ci_env.tagging import docker_tag


@dataclass(frozen=True)
class ExportInputs:
    """What setup decided outside the CI facts: the job directory and the settings resolved by
    :func:`ci_env.options.resolve_setup` (each with its source; an option's value replaces a variable
    already set even without ``--override``)."""

    docker_config: Path
    settings: SetupSettings


@dataclass(frozen=True)
class Context:
    """Everything a row of :data:`EXPORTS` may read: the facts and the resolved settings."""

    facts: JobFacts
    inputs: ExportInputs

    @property
    def settings(self) -> SetupSettings:
        return self.inputs.settings

    @property
    def tagging_strategy(self) -> str:
        """The tagging strategy asked for, else the default."""
        return self.settings.tagging_strategy.value


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


def _replaces(model: RepoModel | None, variable: str) -> bool:
    """True when ``variable``, set in the environment, did not choose the model's implementation (it is for
    another registry): the computed value then replaces it."""
    return model is not None and model.implementation_source != variable


def _value(found: Resolved | None) -> str | None:
    return found.value if found is not None else None


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
    ExportDef("WERF_IMAGES_REPO", lambda c: _value(c.settings.images_repo),
              explicit=lambda c: from_option(c.settings.images_repo)),
    ExportDef("WERF_STAGES_STORAGE", lambda c: _value(c.settings.stages_storage),
              explicit=lambda c: from_option(c.settings.stages_storage)),
    ExportDef(
        "WERF_IMAGES_REPO_IMPLEMENTATION",
        lambda c: c.settings.images_model.implementation if c.settings.images_model else None,
        explicit=lambda c: _replaces(c.settings.images_model, "WERF_IMAGES_REPO_IMPLEMENTATION"),
    ),
    ExportDef(
        "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION",
        lambda c: c.settings.stages_model.implementation if c.settings.stages_model else None,
        explicit=lambda c: _replaces(c.settings.stages_model, "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION"),
    ),
    ExportDef(
        "WERF_IMAGES_REPO_MODE",
        lambda c: (c.settings.images_model.mode if c.settings.images_model else None)
        or (c.settings.images_repo_mode.value if from_option(c.settings.images_repo_mode) else None),
        explicit=lambda c: from_option(c.settings.images_repo_mode),
    ),
    ExportDef(
        "WERF_TAG_BY_STAGES_SIGNATURE",
        lambda c: "true" if c.tagging_strategy == STAGES_SIGNATURE else None,
        explicit=lambda c: from_option(c.settings.tagging_strategy),
    ),
    ExportDef("WERF_TAG_GIT_TAG", _tag_from_ref("tag"), explicit=lambda c: from_option(c.settings.tagging_strategy)),
    ExportDef("WERF_TAG_GIT_BRANCH", _tag_from_ref("branch"),
              explicit=lambda c: from_option(c.settings.tagging_strategy)),
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
    overridable, the value comes from an option, or the settings say ``--override``. No value
    that is not a secret carries URL credentials (``https://user:token@...``): they are stripped.
    Raises :class:`ConfigError` when ``tag-or-branch`` finds neither a tag nor a branch.
    """
    ctx = Context(facts, inputs)
    override = inputs.settings.override
    exports: list[Export] = []
    for row in table:
        value = row.compute(ctx)
        if value is None:
            continue
        existing = env.get(row.name)
        if existing and row.overridable and not override and not row.explicit(ctx):
            exports.append(Export(row.name, _published(existing, row), row.secret, row.overridable, kept=True))
        else:
            exports.append(Export(row.name, _published(value, row), row.secret, row.overridable))
    if ctx.tagging_strategy == "tag-or-branch" and not any(
        e.name in ("WERF_TAG_GIT_TAG", "WERF_TAG_GIT_BRANCH") for e in exports
    ):
        raise ConfigError(
            "--tagging-strategy tag-or-branch needs a git tag or branch, and the CI variables name neither: "
            "use --tagging-strategy stages-signature"
        )
    return exports
