"""Render exports for a shell or file format through the Jinja2 templates in ``templates/``.

One table, :data:`FORMATS`, says per format: its template, file extension, how a
value is quoted, which values it cannot hold, and what stdout carries when setup
fails. Values reach the target byte for byte; a value a format cannot hold is a
:class:`ConfigError` naming the variable (never its value). What it renders is a sequence of
:class:`Export` (the table of :mod:`ci_env.exports` computes them).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_env.errors import ConfigError


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


def posix_quote(value: str) -> str:
    """``value`` as one POSIX sh word (single quotes; ``'`` becomes ``'\\''``)."""
    return "'" + value.replace("'", "'\\''") + "'"


def fish_quote(value: str) -> str:
    """``value`` as one fish word: single quotes, where only ``\\`` and ``'`` need a backslash."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: The characters PowerShell treats as a single quote (ASCII and the typographic ones).
POWERSHELL_QUOTES = frozenset("'\u2018\u2019\u201a\u201b")


def powershell_quote(value: str) -> str:
    """``value`` as a PowerShell verbatim string: single quotes, each quote character doubled."""
    return "'" + "".join(c + c if c in POWERSHELL_QUOTES else c for c in value) + "'"


def cmd_quote(value: str) -> str:
    """``value`` for the inside of ``set "NAME=..."`` in a batch file: ``%`` doubled."""
    return value.replace("%", "%%")


def _identity(value: str) -> str:
    return value


def _forbid(chars: str, why: str) -> Callable[[Export], None]:
    def check(export: Export) -> None:
        bad = [c for c in chars if c in export.value]
        if bad:
            names = ", ".join(repr(c) for c in bad)
            raise ConfigError(
                f"{export.name} cannot be written in this format: its value contains {names} ({why}); "
                "choose another --shell, or change the value"
            )

    return check


def _dotenv_check(export: Export) -> None:
    _forbid("\n\r\0", "docker --env-file and GitLab dotenv reports hold one line per variable")(export)
    if export.value != export.value.strip():
        raise ConfigError(
            f"{export.name} cannot be written as dotenv: its value starts or ends with white space, "
            "which GitLab's dotenv report trims; choose another --shell, or change the value"
        )


@dataclass(frozen=True)
class Format:
    """How one ``--shell`` value is written.

    ``failure``: what stdout carries when setup fails, so that evaluating it fails
    (empty for data formats, whose consumers see the non-zero exit).
    ``check``: raises :class:`ConfigError` for an export the format cannot hold.
    """

    name: str
    template: str
    extension: str
    quote: Callable[[str], str]
    failure: str
    check: Callable[[Export], None] | None = None
    bom: bool = False


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "posix",
            "posix.sh.j2",
            ".sh",
            posix_quote,
            # in CI (a non-interactive shell, set -e or not) the job stops; a terminal only sees status 1
            "echo 'ci-env setup failed: see the error above' >&2; case $- in *i*) false ;; *) exit 1 ;; esac\n",
            _forbid("\0", "a shell variable cannot hold NUL"),
        ),
        Format(
            "fish",
            "fish.fish.j2",
            ".fish",
            fish_quote,
            # exit ends the text that source reads, but eval's exit ends the shell: a terminal only sees status 1
            "echo 'ci-env setup failed: see the error above' >&2; if status is-interactive; false; else; exit 1; end\n",
            _forbid("\0", "a shell variable cannot hold NUL"),
        ),
        Format(
            "powershell",
            "powershell.ps1.j2",
            ".ps1",
            powershell_quote,
            "throw 'ci-env setup failed: see the error above'\n",
            _forbid("\0", "a variable cannot hold NUL"),
            bom=True,
        ),
        Format(
            "cmdexe",
            "cmdexe.cmd.j2",
            ".cmd",
            cmd_quote,
            "@echo ci-env setup failed: see the error above 1>&2\r\n@exit /b 1\r\n",
            _forbid('\n\r\0"', 'a set "NAME=value" line holds no line break and no double quote'),
        ),
        Format("dotenv", "dotenv.env.j2", ".env", _identity, "", _dotenv_check),
        Format(
            "github-env",
            "github-env.j2",
            ".env",
            _identity,
            "",
            _forbid("\r\0", "the runner reads $GITHUB_ENV line by line and takes CR as a line end"),
        ),
        Format("json", "json.json.j2", ".json", _identity, "", _forbid("\0", "a variable cannot hold NUL")),
    )
}


@dataclass(frozen=True)
class Rendered:
    """The result of :func:`render`: ``text`` is the script or file content; ``stdout`` is what
    must additionally reach stdout (github-env: ``::add-mask::`` lines and notes), else empty."""

    text: str
    stdout: str = ""
    extension: str = ".sh"
    bom: bool = False


def template_loader() -> Any:
    """The Jinja2 loader of the templates: ``ci_env/templates`` in a wheel or a zipapp (read through the
    package's loader, so from inside a zip too), else the repository's ``templates/`` (a source checkout)."""
    import importlib.resources

    import jinja2

    if importlib.resources.files("ci_env").joinpath("templates").is_dir():
        return jinja2.PackageLoader("ci_env", "templates")
    return jinja2.FileSystemLoader(str(Path(__file__).resolve().parent.parent / "templates"))


def heredoc_delimiter(value: str) -> str:
    """A random ``ghadelimiter_<hex>`` that does not occur in ``value``."""
    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        if delimiter not in value:
            return delimiter


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)


def shell_format(shell: str) -> Format:
    """The :class:`Format` of ``--shell shell``; :class:`ConfigError` for an unknown one."""
    try:
        return FORMATS[shell]
    except KeyError:
        raise ConfigError(f"unknown --shell {shell!r}: use one of {', '.join(FORMATS)}") from None


def failure_text(shell: str) -> str:
    """What stdout carries when setup fails with ``--shell shell`` (evaluating it fails)."""
    return FORMATS[shell].failure if shell in FORMATS else ""


def render(exports: Sequence[Export], shell: str) -> Rendered:
    """Render ``exports`` in format ``shell``; raises :class:`ConfigError` before writing anything
    when a value cannot be held by the format."""
    fmt = shell_format(shell)
    for export in exports:
        if fmt.check is not None and not export.kept:
            fmt.check(export)
    import jinja2

    environment = jinja2.Environment(
        loader=template_loader(),
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["quote"] = fmt.quote
    environment.filters["json"] = _json
    environment.globals["heredoc_delimiter"] = heredoc_delimiter
    template = environment.get_template(fmt.template)
    text = template.render(
        exports=list(exports),
        exported={e.name: e.value for e in exports if not e.kept},
        kept=[e.name for e in exports if e.kept],
    )
    stdout = ""
    if fmt.name == "github-env":
        stdout = _github_stdout(exports)
    return Rendered(text=text, stdout=stdout, extension=fmt.extension, bom=fmt.bom)


def _github_stdout(exports: Sequence[Export]) -> str:
    """``::add-mask::`` for every line of every secret value, and a note per kept variable."""
    lines: list[str] = []
    for export in exports:
        if export.secret:
            lines.extend(f"::add-mask::{line}" for line in export.value.split("\n") if line.strip())
        if export.kept:
            lines.append(f"{export.name} is already set: kept (ci-env setup --override replaces it)")
    return "".join(f"{line}\n" for line in lines)


def kept_notes(exports: Sequence[Export], shell: str) -> list[str]:
    """Notes for stderr about kept variables in formats whose output cannot carry a comment."""
    if shell != "dotenv":
        return []
    return [f"{e.name} is already set: kept (ci-env setup --override replaces it)" for e in exports if e.kept]
