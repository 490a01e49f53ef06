"""Benchmark (run by hand, not a test): what installing ci-env costs a job, in the GitLab template's install
step and in the Action's, cold and warm, against `python3 -m venv` alone and the install steps before.

    python bench/install_bench.py [-n 5] [--skip-old]

Each run is a fresh runner: a new HOME (empty pip and uv caches; this machine's pip configuration file
copied in, so packages come from the configured index), an empty install home, PYTHONDONTWRITEBYTECODE
unset. The steps are the real ones: the template's `.ci-env:install` script (run with `sh`), the Action's
"Plan the install" and "Install ci-env" scripts (run with `bash` as the runner does), and, for the "before"
rows, the same steps taken from the `main` branch. ci-env is not on the index here, so it comes as a wheel
(pip/uv rows; its dependencies from the configured index) or as the zipapp (built once by
scripts/build-zipapp, served from a local HTTP server as a release download would be; the Action's rows
use a release checkout's dist/ci-env.pyz). "warm" is the same step when the install is already there
(restored by GitLab's or the Actions cache, or kept by a self-hosted runner). "first setup" is the
first `ci-env setup --as-file --no-login` after a cold install (it byte-compiles what it imports).
Prints medians in seconds. Targets on this machine: cold <= 2 s, warm <= 0.2 s.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
#: The runner's python3: this interpreter's base (outside any virtualenv), or $CI_ENV_PYTHON.
PYTHON = os.environ.get("CI_ENV_PYTHON") or getattr(sys, "_base_executable", sys.executable)


def template_step(text: str) -> str:
    """The install script of a GitLab template text."""
    return str(yaml.safe_load(text)[".ci-env:install"]["script"][0])


def action_steps(text: str) -> list[tuple[str, dict[str, str]]]:
    """The Action's install-related bash steps (run script, env without ${{ }} values) of an action.yml text."""
    wanted = {"Plan the install", "Install ci-env"}
    steps = yaml.safe_load(text)["runs"]["steps"]
    return [(s["run"], {k: v for k, v in (s.get("env") or {}).items() if "${{" not in str(v)})
            for s in steps if s.get("name") in wanted]


def from_main(path: str) -> str | None:
    result = subprocess.run(["git", "show", f"main:{path}"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else None


class Runner:
    """A fresh runner per call: new HOME and install home under ``base``."""

    def __init__(self, base: Path, uv: str | None) -> None:
        self.base = base
        self.uv = uv
        self.count = 0

    def env(self, with_uv: bool) -> dict[str, str]:
        """A new runner's environment (HOME, caches), with uv on PATH or not."""
        self.count += 1
        home = self.base / f"run-{self.count}"
        (home / ".config" / "pip").mkdir(parents=True)
        user_conf = Path("~/.config/pip/pip.conf").expanduser()
        if user_conf.is_file():
            shutil.copy(user_conf, home / ".config" / "pip" / "pip.conf")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV")}
        path = [d for d in env["PATH"].split(os.pathsep) if d and not (Path(d) / "uv").exists()]
        if with_uv and self.uv:
            tools = home / "tools"
            tools.mkdir()
            (tools / "uv").symlink_to(self.uv)
            path.insert(0, str(tools))
        env.update(HOME=str(home), PATH=os.pathsep.join(path), XDG_CACHE_HOME=str(home / ".cache"))
        return env


def timed(command: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed: {command[:3]}...\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return elapsed


def run_template(script: str, env: dict[str, str], variables: dict[str, str], home: Path) -> float:
    env = {**env, **variables, "CI_ENV_HOME": str(home), "CI_ENV_PYTHON": PYTHON}
    return timed(["sh", "-ec", script + '\ncommand -v ci-env >/dev/null\n'], env)


def run_action(steps: list[tuple[str, dict[str, str]]], env: dict[str, str], inputs: dict[str, str],
               tool_cache: Path, action_path: Path) -> float:
    """The plan and install steps in order, each with the env the runner gives it; returns their total."""
    total = 0.0
    outputs: dict[str, str] = {}
    for index, (script, step_env) in enumerate(steps):
        files = {name: tool_cache.parent / f"{name.lower()}-{index}" for name in ("GITHUB_OUTPUT", "GITHUB_PATH")}
        for path in files.values():
            path.write_text("")
        full = {**env, **step_env, **{k: str(v) for k, v in files.items()}, "RUNNER_TOOL_CACHE": str(tool_cache),
                "CI_ENV_ACTION_PATH": str(action_path), "CI_ENV_PYTHON": PYTHON, **inputs}
        full.update({"CI_ENV_SPEC": outputs.get("spec", ""), "CI_ENV_EXTRAS_PLANNED": outputs.get("extras", "")})
        script_file = tool_cache.parent / f"step-{index}.sh"
        script_file.write_text(script)
        total += timed(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)], full)
        for line in files["GITHUB_OUTPUT"].read_text().splitlines():
            key, _, value = line.partition("=")
            outputs[key] = value
    return total


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(directory: Path) -> str:
    """Serve ``directory`` over HTTP on a free loopback port (a release download); return its URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def median(runs: int, one: Callable[[], float]) -> float:
    return statistics.median(one() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--skip-old", action="store_true", help="leave out the steps of the main branch")
    args = parser.parse_args()
    uv = shutil.which("uv")
    with tempfile.TemporaryDirectory(prefix="ci-env-install-bench-") as tmp:
        base = Path(tmp)
        dist = base / "dist"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(dist), str(ROOT)], check=True, capture_output=True)
        wheel = next(dist.glob("ci_env-*.whl"))
        subprocess.run([sys.executable, str(ROOT / "scripts" / "build-zipapp"), "-o", str(dist / "ci-env.pyz"),
                        "--wheel", str(wheel)], check=True, capture_output=True)
        url = serve(dist) + "/ci-env.pyz"
        release = base / "release-checkout"
        shutil.copytree(ROOT, release, ignore=shutil.ignore_patterns(".git", ".venv", "*cache*", "dist", "tests"))
        (release / "dist").mkdir()
        shutil.copy(dist / "ci-env.pyz", release / "dist" / "ci-env.pyz")
        runner = Runner(base / "runners", uv)
        counter = iter(range(1_000_000))

        def fresh(kind: str) -> Path:
            path = base / f"{kind}-{next(counter)}"
            path.mkdir()
            return path

        template = template_step((ROOT / ".gitlab-ci-template.yml").read_text())
        action = action_steps((ROOT / "action.yml").read_text())
        rows: list[tuple[str, str, float]] = []

        def add(path: str, scenario: str, one: Callable[[], float]) -> None:
            seconds = median(args.runs, one)
            rows.append((path, scenario, seconds))
            print(f"{path:<9} {scenario:<58} {seconds:6.2f} s", flush=True)

        add("baseline", "python3 -m venv", lambda: timed([PYTHON, "-m", "venv", str(fresh("venv") / "v")],
                                                         runner.env(False)))

        digest = hashlib.sha256((dist / "ci-env.pyz").read_bytes()).hexdigest()
        zipapp_vars = {"CI_ENV_INSTALL_SPEC": url, "CI_ENV_SHA256": digest}  # pinned, as the template pins a release
        wheel_vars = {"CI_ENV_INSTALL_SPEC": str(wheel)}
        add("template", "cold, zipapp downloaded (CI_ENV_VERSION's default)",
            lambda: run_template(template, runner.env(False), zipapp_vars, fresh("home")))
        warm_home = fresh("home")
        run_template(template, runner.env(False), zipapp_vars, warm_home)
        add("template", "warm, zipapp (restored by the cache)",
            lambda: run_template(template, runner.env(False), zipapp_vars, warm_home))

        def first_setup(variables: dict[str, str], with_uv: bool) -> float:
            home, env = fresh("home"), runner.env(with_uv)
            run_template(template, env, variables, home)
            launcher = next(home.glob("*/bin/ci-env"))
            job = {**env, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "1",
                   "GITHUB_JOB": "j", "RUNNER_TEMP": str(fresh("tmp"))}
            return timed([str(launcher), "setup", "--no-login", "--as-file"], job)

        add("template", "first setup after a cold zipapp install", lambda: first_setup(zipapp_vars, False))
        add("template", "cold, wheel + index with pip (no uv on PATH)",
            lambda: run_template(template, runner.env(False), wheel_vars, fresh("home")))
        if uv:
            add("template", "cold, wheel + index with uv",
                lambda: run_template(template, runner.env(True), wheel_vars, fresh("home")))
            add("template", "first setup after a cold uv install", lambda: first_setup(wheel_vars, True))
        warm_home = fresh("home")
        run_template(template, runner.env(False), wheel_vars, warm_home)
        add("template", "warm, virtualenv (restored by the cache)",
            lambda: run_template(template, runner.env(False), wheel_vars, warm_home))

        setup_inputs = {"CI_ENV_COMMAND": "setup", "CI_ENV_LOGIN": "true", "CI_ENV_DRY_RUN": "false",
                        "CI_ENV_CACHE": "true", "CI_ENV_KUBE": "auto"}
        add("action", "cold, release checkout's dist/ci-env.pyz (default version)",
            lambda: run_action(action, runner.env(False), {**setup_inputs, "CI_ENV_VERSION": ""},
                               fresh("tc") / "tool-cache", release))
        warm_cache = fresh("tc") / "tool-cache"
        run_action(action, runner.env(False), {**setup_inputs, "CI_ENV_VERSION": ""}, warm_cache, release)
        add("action", "warm, zipapp (restored by the Actions cache)",
            lambda: run_action(action, runner.env(False), {**setup_inputs, "CI_ENV_VERSION": ""}, warm_cache,
                               release))
        wheel_inputs = {**setup_inputs, "CI_ENV_VERSION": str(wheel)}
        add("action", "cold, version: <wheel> + index with pip",
            lambda: run_action(action, runner.env(False), wheel_inputs, fresh("tc") / "tool-cache", ROOT))
        if uv:
            add("action", "cold, version: <wheel> + index with uv",
                lambda: run_action(action, runner.env(True), wheel_inputs, fresh("tc") / "tool-cache", ROOT))
        warm_cache = fresh("tc") / "tool-cache"
        run_action(action, runner.env(False), wheel_inputs, warm_cache, ROOT)
        add("action", "warm, virtualenv (restored by the Actions cache)",
            lambda: run_action(action, runner.env(False), wheel_inputs, warm_cache, ROOT))

        old_template, old_action = from_main(".gitlab-ci-template.yml"), from_main("action.yml")
        if not args.skip_old and old_template and "install-ci-env" not in old_template:
            old_vars = {**wheel_vars, "CI_ENV_EXTRAS": ""}
            add("before", "template (main): python3 -m venv + pip install, cold",
                lambda: run_template(template_step(old_template), runner.env(False), old_vars, fresh("home")))
        if not args.skip_old and old_action and "install-ci-env" not in old_action:
            old_steps = [(s["run"], {}) for s in yaml.safe_load(old_action)["runs"]["steps"]
                         if s.get("name") == "Install ci-env"]
            add("before", "action (main): version: <wheel>, python3 -m venv + pip, cold",
                lambda: run_action(old_steps, runner.env(False), wheel_inputs, fresh("tc") / "tool-cache", ROOT))
        print(f"\nmedian of {args.runs} runs each; python3 = {PYTHON} ({sys.version.split()[0]}); "
              f"uv = {uv or 'absent'}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
