"""Each output format read back by its real consumer: values arrive byte for byte."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ci_env.errors import ConfigError
from ci_env.render import POWERSHELL_QUOTES, Export, cmd_quote, failure_text, posix_quote, powershell_quote, render
from tests.services import require

ROOT = Path(__file__).resolve().parents[2]

ADVERSARIAL = [
    "plain",
    "",
    "it's",
    'say "hi"',
    "$HOME and ${PATH}",
    "`id` $(id)",
    "back\\slash\\",
    "\\'",
    "'\\''",
    "two\nlines",
    "trailing newline\n",
    "\n",
    "tab\there",
    "ünïcødé €𝄞 日本",
    "*.glob ?",
    "-n",
    "%PATH% !x!",
    "semi; colon & amp | pipe",
    "# not a comment",
    "set -gx X y",
    "\u2019smart\u2019 \u2018quotes\u2018 \u201a\u201b",
]
EXPORTS = [Export(f"CI_ENV_T{i}", value) for i, value in enumerate(ADVERSARIAL)]
DUMP = "import json, os, sys; sys.stdout.write(json.dumps({n: os.environ.get(n) for n in sys.argv[1:]}))"


def read_back(shell: list[str], script: Path, source: str) -> dict[str, str | None]:
    names = [e.name for e in EXPORTS]
    command = f"{source} {script}\n{sys.executable} -c '{DUMP}' {' '.join(names)}\n"
    result = subprocess.run([*shell, "-c", command], capture_output=True, check=True, timeout=30)
    values: dict[str, str | None] = json.loads(result.stdout)
    return values


@pytest.mark.parametrize(("program", "source"), [("bash", "."), ("dash", "."), ("zsh", "."), ("fish", "source")])
def test_shell_scripts_set_every_value_exactly(tmp_path: Path, program: str, source: str) -> None:
    path = require(program, "the exports are sourced by the real shell")
    script = tmp_path / "env"
    script.write_text(render(EXPORTS, "fish" if program == "fish" else "posix").text, encoding="utf-8")
    assert read_back([path], script, source) == {e.name: e.value for e in EXPORTS}


def test_kept_variables_are_a_comment_and_untouched(tmp_path: Path) -> None:
    bash = require("bash", "the exports are sourced by the real shell")
    text = render([Export("CI_ENV_KEEP", "new", kept=True)], "posix").text
    assert "CI_ENV_KEEP is already set: kept" in text and "new" not in text
    result = subprocess.run(
        [bash, "-c", f'CI_ENV_KEEP=old; {text}\nprintf %s "$CI_ENV_KEEP"'], capture_output=True, check=True
    )
    assert result.stdout == b"old"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(exclude_characters="\0", exclude_categories=["Cs"]), max_size=40))
def test_posix_round_trips_any_text(value: str) -> None:
    script = render([Export("CI_ENV_P", value)], "posix").text
    for program in ("bash", "dash"):
        path = require(program, "property test of posix quoting")
        out = subprocess.run([path, "-c", f'{script}\nprintf %s "$CI_ENV_P"'], capture_output=True, check=True)
        assert out.stdout == value.encode(), program


def _powershell_unquote(text: str) -> str:
    """PowerShell's rule for a verbatim string: starts with a quote char; a quote char followed by
    another quote char is one literal (the first); a lone quote char ends the string."""
    assert text[0] in POWERSHELL_QUOTES
    out, i = [], 1
    while i < len(text):
        c = text[i]
        if c in POWERSHELL_QUOTES:
            if i + 1 < len(text) and text[i + 1] in POWERSHELL_QUOTES:
                out.append(c)
                i += 2
                continue
            assert i == len(text) - 1, "string ended before the end of the token"
            return "".join(out)
        out.append(c)
        i += 1
    raise AssertionError("unterminated string")


@pytest.mark.parametrize("value", ADVERSARIAL)
def test_powershell_verbatim_strings_hold_every_value(value: str) -> None:
    assert _powershell_unquote(powershell_quote(value)) == value
    assert f"$env:CI_ENV_X = {powershell_quote(value)}" in render([Export("CI_ENV_X", value)], "powershell").text


def _cmd_set_value(line: str) -> tuple[str, str]:
    """cmd.exe on ``@set "NAME=VALUE"`` in a batch file: ``%%`` becomes ``%`` (a lone ``%``
    would expand), then set takes the text between the first and the last double quote."""
    assert line.startswith('@set "') and line.endswith('"')
    expanded, i = [], 0
    while i < len(line):
        if line[i] == "%":
            assert line[i + 1] == "%", "a lone % would be expanded"
            expanded.append("%")
            i += 2
            continue
        expanded.append(line[i])
        i += 1
    body = "".join(expanded)
    name, _, value = body[body.index('"') + 1 : body.rindex('"')].partition("=")
    return name, value


@pytest.mark.parametrize("value", [v for v in ADVERSARIAL if not set(v) & set('\n\r"')])
def test_cmd_set_lines_hold_values_without_quotes_or_newlines(value: str) -> None:
    lines = render([Export("CI_ENV_X", value)], "cmdexe").text.splitlines()
    assert [_cmd_set_value(line) for line in lines if line.startswith("@set")] == [("CI_ENV_X", value)]
    assert cmd_quote("100%") == "100%%"


@pytest.mark.parametrize(
    ("shell", "value"),
    [("cmdexe", "a\nb"), ("cmdexe", 'say "x"'), ("dotenv", "a\nb"), ("dotenv", " padded "), ("github-env", "a\rb")],
)
def test_values_a_format_cannot_hold_are_an_error_naming_only_the_variable(shell: str, value: str) -> None:
    with pytest.raises(ConfigError, match="CI_ENV_SECRET") as info:
        render([Export("CI_ENV_SECRET", value, secret=True)], shell)
    assert value.strip() not in info.value.message


def test_dotenv_is_read_by_python_like_docker_env_file() -> None:
    values = [v for v in ADVERSARIAL if "\n" not in v and v == v.strip()]
    text = render([Export(f"CI_ENV_T{i}", v) for i, v in enumerate(values)], "dotenv").text
    parsed = dict(line.split("=", 1) for line in text.splitlines())
    assert parsed == {f"CI_ENV_T{i}": v for i, v in enumerate(values)}
    assert "#" not in "".join(line[0] for line in text.splitlines())


def _read_github_env(text: str) -> dict[str, str]:
    """The runner's $GITHUB_ENV parser: NAME=VALUE lines and NAME<<DELIM ... DELIM blocks."""
    lines, result, i = text.split("\n"), {}, 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        eq, heredoc = line.find("="), line.find("<<")
        if eq >= 0 and (heredoc < 0 or eq < heredoc):
            result[line[:eq]] = line[eq + 1 :]
            i += 1
            continue
        name, delimiter = line[:heredoc], line[heredoc + 2 :]
        end = lines.index(delimiter, i + 1)
        result[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return result


def test_github_env_uses_heredocs_and_masks_secrets() -> None:
    exports = [*[e for e in EXPORTS if "\r" not in e.value], Export("CI_ENV_TOKEN", "tok\nen", secret=True)]
    rendered = render(exports, "github-env")
    assert _read_github_env(rendered.text) == {e.name: e.value for e in exports}
    assert rendered.stdout == "::add-mask::tok\n::add-mask::en\n"


def test_json_holds_every_value_and_lists_kept_names() -> None:
    rendered = render([*EXPORTS, Export("CI_ENV_KEPT", "x", kept=True)], "json")
    assert json.loads(rendered.text) == {"exports": {e.name: e.value for e in EXPORTS}, "kept": ["CI_ENV_KEPT"]}


@pytest.mark.parametrize("program", ["bash", "dash", "zsh"])
def test_posix_failure_text_stops_eval_under_set_e(program: str) -> None:
    path = require(program, "the failure text is evaluated by the real shell")
    script = f'set -e\neval "$(printf %s {posix_quote(failure_text("posix"))})"\necho reached\n'
    result = subprocess.run([path, "-c", script], capture_output=True)
    assert result.returncode != 0 and b"reached" not in result.stdout


SETUP_THAT_FAILS = f"{shlex.quote(sys.executable)} -m ci_env setup --shell posix --images-repo-mode bogus"


@pytest.mark.parametrize("program", ["bash", "dash", "zsh"])
def test_failed_setup_in_an_interactive_shell_leaves_the_terminal_open(program: str, tmp_path: Path) -> None:
    """eval "$(ci-env setup)" typed in a terminal: the error and status 1, the shell goes on."""
    path = require(program, "the failure text is evaluated by the real shell")
    script = f'eval "$({SETUP_THAT_FAILS})"; echo "still here, status $?"'
    result = subprocess.run([path, "-i", "-c", script], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "HOME": str(tmp_path), "ZDOTDIR": str(tmp_path), "ENV": ""},
                            cwd=ROOT, timeout=60)
    assert "still here, status 1" in result.stdout, result.stderr
    assert "ci-env setup failed: see the error above" in result.stderr


@pytest.mark.parametrize("program", ["bash", "dash", "zsh"])
def test_failed_setup_stops_a_ci_script_without_set_e(program: str) -> None:
    path = require(program, "the failure text is evaluated by the real shell")
    script = f'eval "$({SETUP_THAT_FAILS})"\necho reached\n'
    result = subprocess.run([path, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1 and "reached" not in result.stdout


FISH_FORMS = {"source": "{setup} | source", "eval": "eval ({setup})"}


@pytest.mark.parametrize("form", sorted(FISH_FORMS))
def test_failed_setup_in_an_interactive_fish_leaves_it_open(tmp_path: Path, form: str) -> None:
    """``ci-env setup --shell fish | source`` and ``eval (ci-env setup --shell fish)`` typed in a terminal (an
    ``exit`` that eval runs ends the shell itself, closing the terminal)."""
    path = require("fish", "the failure text is evaluated by the real shell")
    setup = FISH_FORMS[form].format(setup=SETUP_THAT_FAILS.replace("posix", "fish"))
    script = f"{setup}; echo still here, status $status"
    result = subprocess.run([path, "-i", "-c", script], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}, cwd=ROOT,
                            timeout=60)
    assert "still here, status 1" in result.stdout, result.stderr


def test_failed_setup_stops_a_fish_script_that_evals_it(tmp_path: Path) -> None:
    path = require("fish", "the failure text is evaluated by the real shell")
    script = f"eval ({SETUP_THAT_FAILS.replace('posix', 'fish')})\necho reached\n"
    result = subprocess.run([path, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)})
    assert result.returncode == 1 and "reached" not in result.stdout
