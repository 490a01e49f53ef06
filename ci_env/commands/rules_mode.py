"""Which ``cleanup`` options a cleanup by retention rules (``--rules FILE``, ``--repository``/``--rule``) has no use
for, and the usage error when one is given on the command line.

One table (:data:`NOT_FOR_RULES`): each option that only managed-image cleanup reads, with what a rules run does
instead. Only the option itself is refused: the variables (``WERF_IMAGES_REPO`` and the others a CI job exports
for every step, ``ci-env setup`` among them) stay silently ignored in rules mode.
"""

from __future__ import annotations

from collections.abc import Mapping

import click

from ci_env.cascade import STAGES_STORAGE, flag_name, param_name
from ci_env.errors import UsageError
from ci_env.registry.implementations import CREDENTIAL_KINDS

#: what a rules run does instead of each group of options
SELECTS = "the rules select the repositories with name:, glob: or namespace: (or --repository)"
DECIDE = "the rules decide every tag (keep:/remove: of the rules file, or --rule)"
UNTAGGED = "the rules say what becomes of untagged manifests (untagged: of the rules file, or --untagged)"

#: click parameter name -> what a rules run does instead (the options a rules run never reads)
NOT_FOR_RULES: dict[str, str] = {
    "images_repo": SELECTS,
    "images_repo_mode": SELECTS,
    "stages_storage": SELECTS,
    param_name(flag_name(STAGES_STORAGE, "implementation")): SELECTS,
    **{param_name(flag_name(STAGES_STORAGE, kind)): SELECTS for kind in CREDENTIAL_KINDS},
    "directory": DECIDE,
    "config": DECIDE,
    "git_tag_strategy_limit": DECIDE,
    "git_tag_strategy_expiry_days": DECIDE,
    "git_commit_strategy_limit": DECIDE,
    "git_commit_strategy_expiry_days": DECIDE,
    "stages_signature_strategy_limit": DECIDE,
    "stages_signature_strategy_expiry_days": DECIDE,
    "keep_published_within": DECIDE,
    "git_history_synchronization": DECIDE,
    "git_history_based_cleanup": DECIDE,
    "git_history_based_cleanup_strict": DECIDE,
    "removed_branch": DECIDE,
    "delete_untagged": UNTAGGED,
}


#: the variables of the images repo and stages storage (``ci-env setup`` exports them for every step of a job),
#: left out of the environment a rules run resolves its repo options in; a prefix ends with ``_``
IGNORED_VARIABLES = ("WERF_IMAGES_REPO", "WERF_IMAGES_REPO_MODE", "WERF_IMAGES_REPO_IMPLEMENTATION",
                     "WERF_STAGES_STORAGE", "WERF_STAGES_STORAGE_REPO_")


def rules_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without :data:`IGNORED_VARIABLES`: what a rules run resolves its repo options in (the
    implementation ``--images-repo-implementation``/``--repo-implementation``/``WERF_REPO_IMPLEMENTATION`` names,
    and the credentials), so an images repo's implementation never becomes that of the rules' repositories."""
    return {name: value for name, value in env.items()
            if name not in IGNORED_VARIABLES
            and not any(name.startswith(prefix) for prefix in IGNORED_VARIABLES if prefix.endswith("_"))}


def given_on_command_line(ctx: click.Context) -> list[click.Parameter]:
    """The parameters of :data:`NOT_FOR_RULES` given on the command line (not through a variable), in the
    command's order."""
    return [param for param in ctx.command.params
            if param.name in NOT_FOR_RULES
            and ctx.get_parameter_source(param.name) == click.core.ParameterSource.COMMANDLINE]


def _flag(param: click.Parameter) -> str:
    """How the option reads in ``--help``: ``-i/--images-repo``, ``--git-history-synchronization/--no-...``."""
    names = [name for name in (*param.opts, *param.secondary_opts) if name.startswith("-")]
    return "/".join(sorted(names, key=len))


def refuse_managed_options(ctx: click.Context) -> None:
    """UsageError (exit 2) naming every option of :data:`NOT_FOR_RULES` given on the command line, with what a
    rules run does instead; nothing when none is."""
    given = given_on_command_line(ctx)
    if not given:
        return
    flags = [_flag(param) for param in given]
    hints = list(dict.fromkeys(NOT_FOR_RULES[str(param.name)] for param in given))
    names = flags[0] if len(flags) == 1 else ", ".join(flags[:-1]) + " and " + flags[-1]
    verb = "does" if len(flags) == 1 else "do"
    raise UsageError(f"{names} {verb} not apply to cleanup by retention rules (--rules, --repository/--rule): "
                     + "; ".join(hints) + f"; drop {'it' if len(flags) == 1 else 'them'} "
                     "(the WERF_* variables of these options are ignored in rules mode)")
