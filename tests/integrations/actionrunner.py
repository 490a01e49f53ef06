"""Runs a composite action's steps the way the GitHub Actions runner does, for the tests.

What it reproduces of the runner (actions/runner, composite actions):
- inputs: the given values, else the declared defaults (their ``${{ }}`` evaluated); also set as
  ``INPUT_<NAME>`` (upper-case, spaces to ``_``) in each step's environment;
- ``${{ expr }}`` in ``env:``, ``name:`` and output values, and bare ``if:`` expressions, with the
  contexts ``inputs``, ``github``, ``env``, ``steps.<id>.outputs`` and ``runner``; the operators
  ``== != && || !`` and parentheses; GitHub's loose equality (strings case-insensitive, null equals '');
  the implicit ``success()`` of an ``if:``;
- ``shell: bash`` as ``bash --noprofile --norc -eo pipefail {0}``, the script in a temp file;
- between steps, the file commands: ``GITHUB_ENV`` (``K=V`` and ``K<<DELIM`` heredoc form) joins the
  job environment, ``GITHUB_OUTPUT`` becomes ``steps.<id>.outputs``, ``GITHUB_PATH`` lines are
  prepended to ``PATH``; each step gets fresh, empty files;
- ``::add-mask::VALUE`` lines register masks; the log keeps every line in order, masked as the
  runner would print it, and the raw lines for the assertions;
- ``uses: actions/cache/restore@...`` and ``actions/cache/save@...`` against a directory that stands in
  for the Actions cache service (``cache_store``), with actions/cache's documented behaviour: entries are
  immutable and found by exact ``key`` (then by ``restore-keys`` prefixes, newest first); restore
  recreates the ``path`` entries where they were and sets ``cache-hit`` (``'true'`` only for the exact
  key), ``cache-primary-key`` and ``cache-matched-key``; saving a key that exists warns and saves
  nothing; a miss is not an error. Any other ``uses:`` is refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))|(?P<ident>[A-Za-z_][\w.-]*(?:\(\))?))"
)


class ExpressionError(ValueError):
    """An expression this small evaluator does not understand."""


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return (a or "") == (b or "")
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def _truthy(value: Any) -> bool:
    return value not in (None, "", False, 0)


class _Parser:
    def __init__(self, text: str, lookup: Mapping[str, Any]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise ExpressionError(f"cannot parse {text!r} at {pos}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.lookup = lookup
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"trailing tokens in {self.tokens!r}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            value = value if _truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.compare()
        while self.peek() == "&&":
            self.take()
            right = self.compare()
            value = right if _truthy(value) else value
        return value

    def compare(self) -> Any:
        value = self.unary()
        while self.peek() in ("==", "!="):
            op = self.take()[1]
            right = self.unary()
            value = _equal(value, right) if op == "==" else not _equal(value, right)
        return value

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not _truthy(self.unary())
        if self.peek() == "(":
            self.take()
            value = self.or_()
            if self.take()[1] != ")":
                raise ExpressionError("missing )")
            return value
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if text.endswith("()"):
            return self.lookup["__functions__"][text[:-2]]
        return self.lookup.get(text.lower())


@dataclass
class StepResult:
    id: str | None
    name: str
    ran: bool
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ActionRun:
    """What a run of the action left: per-step results, the job env, outputs, masks and the log."""

    steps: list[StepResult]
    job_env: dict[str, str]
    outputs: dict[str, str]
    masks: list[str]
    raw_log: list[str]
    log: list[str]

    @property
    def ok(self) -> bool:
        return all(step.returncode == 0 for step in self.steps)


def _parse_env_file(text: str) -> dict[str, str]:
    """The runner's parser for GITHUB_ENV / GITHUB_OUTPUT: ``K=V`` lines and ``K<<DELIM`` blocks."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        eq, heredoc = line.find("="), line.find("<<")
        if heredoc != -1 and (eq == -1 or heredoc < eq):
            key, delimiter = line[:heredoc], line[heredoc + 2 :]
            body: list[str] = []
            while i < len(lines) and lines[i] != delimiter:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise ValueError(f"matching delimiter not found {delimiter!r}")
            i += 1
            values[key] = "\n".join(body)
        elif eq > 0:
            values[line[:eq]] = line[eq + 1 :]
        else:
            raise ValueError(f"invalid format {line!r}")
    return values


class CompositeActionRunner:
    """Runs ``action.yml`` in ``action_path`` with a job environment, step by step."""

    def __init__(
        self, action_path: Path, job_env: Mapping[str, str], work: Path, cache_store: Path | None = None
    ) -> None:
        self.action_path = action_path
        self.action = yaml.safe_load((action_path / "action.yml").read_text())
        self.job_env = dict(job_env)
        self.work = work
        self.cache_store = cache_store if cache_store is not None else work / "actions-cache"

    def _contexts(self, inputs: Mapping[str, str], outputs: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
        lookup: dict[str, Any] = {
            "github.action_path": str(self.action_path),
            "github.token": self.job_env.get("GITHUB_TOKEN", ""),
            "github.workspace": self.job_env.get("GITHUB_WORKSPACE", ""),
            "runner.temp": self.job_env.get("RUNNER_TEMP", ""),
            "runner.os": self.job_env.get("RUNNER_OS", ""),
            "runner.arch": self.job_env.get("RUNNER_ARCH", ""),
            "__functions__": {"success": self._success, "always": True, "failure": not self._success},
        }
        lookup.update({f"inputs.{k}".lower(): v for k, v in inputs.items()})
        lookup.update({f"env.{k}".lower(): v for k, v in self.job_env.items()})
        for step_id, values in outputs.items():
            lookup.update({f"steps.{step_id}.outputs.{k}".lower(): v for k, v in values.items()})
        return lookup

    def evaluate(self, expression: str, lookup: Mapping[str, Any]) -> Any:
        """Evaluate one bare expression."""
        return _Parser(expression, lookup).parse()

    def interpolate(self, text: Any, lookup: Mapping[str, Any]) -> str:
        """Replace every ``${{ expr }}`` in ``text`` with its string value."""
        def one(match: re.Match[str]) -> str:
            value = self.evaluate(match.group(1), lookup)
            if value is None:
                return ""
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)

        return _TEMPLATE.sub(one, str(text))

    def run(self, inputs: Mapping[str, str]) -> ActionRun:
        """Run every step; a failed step stops the run as the runner does (no ``always()`` here)."""
        declared: dict[str, dict[str, Any]] = self.action.get("inputs", {})
        unknown = set(inputs) - set(declared)
        if unknown:
            raise ValueError(f"unexpected inputs {sorted(unknown)}")
        self._success = True
        outputs: dict[str, dict[str, str]] = {}
        values: dict[str, str] = {}
        for name, spec in declared.items():
            default = self.interpolate(spec.get("default", ""), self._contexts({}, {}))
            values[name] = inputs.get(name, default)
        masks: list[str] = []
        raw_log: list[str] = []
        results: list[StepResult] = []
        for index, step in enumerate(self.action["runs"]["steps"]):
            lookup = self._contexts(values, outputs)
            name = self.interpolate(step.get("name", f"step {index}"), lookup)
            condition = step.get("if")
            wanted = self._success if condition is None else self._success and _truthy(
                self.evaluate(str(condition).replace("${{", "").replace("}}", ""), lookup)
            )
            if not wanted:
                results.append(StepResult(step.get("id"), name, ran=False))
                continue
            result = self._run_step(index, step, name, values, lookup)
            results.append(result)
            for stream in (result.stdout, result.stderr):
                for line in stream.splitlines():
                    raw_log.append(line)
                    if line.startswith("::add-mask::"):
                        masks.append(line[len("::add-mask::") :])
            if result.returncode != 0:
                self._success = False
                break
            if result.id:
                outputs[result.id] = self._step_outputs
        lookup = self._contexts(values, outputs)
        action_outputs = {
            name: self.interpolate(spec.get("value", ""), lookup)
            for name, spec in self.action.get("outputs", {}).items()
        }
        return ActionRun(results, dict(self.job_env), action_outputs, masks, raw_log, self._mask(raw_log, masks))

    @staticmethod
    def _mask(lines: list[str], masks: list[str]) -> list[str]:
        masked = []
        for line in lines:
            if line.startswith("::add-mask::"):
                masked.append("::add-mask::***")
                continue
            for secret in sorted(filter(None, masks), key=len, reverse=True):
                line = line.replace(secret, "***")
            masked.append(line)
        return masked

    def _run_step(
        self, index: int, step: Mapping[str, Any], name: str, inputs: Mapping[str, str], lookup: Mapping[str, Any]
    ) -> StepResult:
        uses = str(step.get("uses", ""))
        if re.fullmatch(r"actions/cache/(restore|save)@[0-9a-f]{40}", uses):
            with_ = {k: self.interpolate(v, lookup) for k, v in (step.get("with") or {}).items()}
            return self._cache_step(step, name, uses.split("@")[0].rsplit("/", 1)[1], with_)
        if step.get("shell") != "bash" or "run" not in step:
            raise ValueError(f"step {name!r}: only `run:` steps with `shell: bash` are supported")
        step_dir = self.work / f"step-{index}"
        step_dir.mkdir(parents=True)
        files = {kind: step_dir / kind.lower() for kind in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH")}
        for path in files.values():
            path.write_text("")
        env = dict(self.job_env)
        env.update({f"INPUT_{k.replace(' ', '_').upper()}": v for k, v in inputs.items()})
        env.update({k: self.interpolate(v, lookup) for k, v in (step.get("env") or {}).items()})
        env.update({k: str(v) for k, v in files.items()})
        env["GITHUB_ACTION_PATH"] = str(self.action_path)
        script = step_dir / "script.sh"
        script.write_text(str(step["run"]))  # the runner writes `run:` as is: no ${{ }} evaluated in it
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            env=env, cwd=self.job_env.get("GITHUB_WORKSPACE") or None,
            capture_output=True, text=True, timeout=600,
        )
        new_env = _parse_env_file(files["GITHUB_ENV"].read_text())
        self.job_env.update(new_env)
        for line in reversed(files["GITHUB_PATH"].read_text().splitlines()):
            if line.strip():
                self.job_env["PATH"] = line.strip() + os.pathsep + self.job_env.get("PATH", "")
        self._step_outputs = _parse_env_file(files["GITHUB_OUTPUT"].read_text())
        return StepResult(step.get("id"), name, True, proc.returncode, proc.stdout, proc.stderr, env)

    def _cache_entry(self, key: str) -> Path:
        return self.cache_store / (re.sub(r"[^\w.-]", "_", key) + ".tar")

    def _cache_step(self, step: Mapping[str, Any], name: str, verb: str, with_: Mapping[str, str]) -> StepResult:
        """actions/cache/restore or actions/cache/save, against ``self.cache_store``."""
        paths = [Path(p.strip()) for p in with_.get("path", "").splitlines() if p.strip()]
        if not paths or not all(p.is_absolute() for p in paths):
            raise ValueError(f"step {name!r}: the stand-in takes absolute paths only, got {with_.get('path')!r}")
        key = with_["key"]
        self.cache_store.mkdir(parents=True, exist_ok=True)
        if verb == "save":
            entry = self._cache_entry(key)
            if entry.exists():
                out = (f"::warning::Failed to save: Unable to reserve cache with key {key}, "
                       "another job may be creating this cache.")
            else:
                partial = entry.with_suffix(".partial")
                with tarfile.open(partial, "w") as archive:
                    for path in paths:
                        if path.exists():
                            archive.add(path, arcname=str(path).lstrip("/"))
                partial.rename(entry)
                out = f"Cache saved with key: {key}"
            self._step_outputs = {}
            return StepResult(step.get("id"), name, True, 0, out + "\n")
        candidates = [self._cache_entry(key)]
        for prefix in (with_.get("restore-keys") or "").splitlines():
            if prefix.strip():
                matches = self.cache_store.glob(re.sub(r"[^\w.-]", "_", prefix.strip()) + "*.tar")
                candidates += sorted(matches, key=lambda p: p.stat().st_mtime, reverse=True)
        found = next((c for c in candidates if c.exists()), None)
        outputs = {"cache-primary-key": key, "cache-hit": "false"}
        if found is None:
            out = f"Cache not found for input keys: {key}"
        else:
            started = time.monotonic()
            with tarfile.open(found) as archive:
                archive.extractall("/", filter="tar")
            outputs.update({"cache-hit": str(found == candidates[0]).lower(), "cache-matched-key": found.stem})
            out = f"Cache restored from key: {found.stem} in {time.monotonic() - started:.3f}s"
        self._step_outputs = outputs
        return StepResult(step.get("id"), name, True, 0, out + "\n")
