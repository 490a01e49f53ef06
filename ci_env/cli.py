"""The `ci-env` command line: parsing and dispatch only.

Subcommands are loaded lazily (``LazyGroup``): ``ci-env setup`` imports only the
modules setup needs, so the start-up path of every CI job stays short.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from ci_env.errors import CiEnvError

#: command name -> "module:attribute" of its click command; one place to add a command.
COMMANDS: dict[str, str] = {
    "setup": "ci_env.commands.setup:setup",
    "gitlab": "ci_env.commands.setup:gitlab",
    "github": "ci_env.commands.setup:github",
    "detect": "ci_env.commands.detect:detect",
    "login": "ci_env.commands.login:login",
    "teardown": "ci_env.commands.teardown:teardown",
    "registry": "ci_env.commands.registry:registry",
    "build-and-publish": "ci_env.commands.build_publish:build_and_publish",
    "managed-images": "ci_env.commands.managed_images:managed_images",
    "record": "ci_env.commands.record:record",
    "cleanup": "ci_env.commands.cleanup:cleanup",
    "purge": "ci_env.commands.cleanup:purge",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked or listed."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._available()})

    def _available(self) -> list[str]:
        names = []
        for name, target in self.lazy.items():
            module = target.split(":", 1)[0]
            if importlib.util.find_spec(module) is not None:
                names.append(name)
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            module_name, attr = self.lazy[cmd_name].split(":", 1)
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    return None
                raise
            command = getattr(module, attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the version and the commit it was built from (read only when asked)."""
    if not value or ctx.resilient_parsing:
        return
    from ci_env.buildinfo import version_line

    click.echo(version_line())
    ctx.exit()


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version and the commit it was built from, and exit.")
def cli() -> None:
    """Registry work for CI jobs: a private Docker config per job, login, exports,
    build-and-publish and safe cleanup on every registry implementation."""


def usage_message(exc: click.ClickException) -> str:
    """Click's message on one line, lower-cased like ci-env's own, with where to read the usage
    (``no such option: '--bogus' (see 'ci-env setup --help')``)."""
    text = " ".join(exc.format_message().split())
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        text = f"{text.rstrip('.')} (see '{ctx.command_path} --help')"
    return text


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors print one line on stderr and exit with their code, never a traceback."""
    try:
        result = cli.main(args=argv, prog_name="ci-env", standalone_mode=False)
    except CiEnvError as exc:
        from ci_env.redact import strip_userinfo_in

        click.echo(f"ci-env: error: {strip_userinfo_in(exc.message)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("ci-env: aborted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: its help, as click shows it
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"ci-env: error: {usage_message(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    sys.exit(result if isinstance(result, int) else 0)
