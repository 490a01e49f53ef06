"""`ci-env registry ...`: inspect the registry model and operate on tags (subcommands load lazily)."""

from __future__ import annotations

import click

from ci_env.cli import LazyGroup

SUBCOMMANDS = {
    "info": "ci_env.commands.registry_info:info",
    "tags": "ci_env.commands.registry_ops:tags",
    "retag": "ci_env.commands.registry_ops:retag",
    "untag": "ci_env.commands.registry_ops:untag",
    "check": "ci_env.commands.registry_check:check",
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS)
def registry() -> None:
    """Inspect how an images repo is handled; list, retag, untag or check images on a registry."""
