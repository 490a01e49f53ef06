"""Benchmark (run by hand, not a test): wall time of `ci-env setup --as-file` (and `ci-env registry info`)
against `python3 -c pass`.

    python bench/setup_bench.py [-n 30]

Builds this checkout's wheel with its real build backend (hatchling, ``pip wheel
--no-build-isolation``) and installs it into a temporary venv that sees this interpreter's
packages, so the console script runs from byte-compiled modules as in a CI job (an editable
install with ``PYTHONDONTWRITEBYTECODE`` would recompile every module on each run). Runs it
without login, and with login verification against a local htpasswd registry when
``docker-registry`` and ``htpasswd`` are installed. Prints medians and ratios. Target on a
2-core machine: at most 150 ms median without verification.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


def median_ms(command: Sequence[str], env: dict[str, str], runs: int) -> float:
    """Median wall time in milliseconds of ``runs`` runs of ``command`` (each must succeed)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def install_wheel(tmp: Path) -> Path:
    """Build the project's wheel and install it (byte-compiled) into a venv under ``tmp``; return the venv."""
    project = Path(__file__).resolve().parent.parent
    wheels, venv = tmp / "wheels", tmp / "venv"
    pip = [sys.executable, "-m", "pip"]

    def run(*args: str) -> None:
        subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL)

    run(*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(project))
    run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv))
    wheel = next(wheels.glob("ci_env-*.whl"))
    run(*pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps", str(wheel))
    return venv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        venv = install_wheel(Path(tmp))
        command = [str(venv / "bin" / "ci-env")]
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": tmp,
            "WERF_TMP_DIR": f"{tmp}/jobs",
            "GITLAB_CI": "true",
            "CI_JOB_ID": "1",
            "CI_REGISTRY_IMAGE": "registry.example/g/p",
        }
        baseline = median_ms([str(venv / "bin" / "python"), "-c", "pass"], env, args.runs)
        setup = median_ms([*command, "setup", "--as-file", "--no-login"], env, args.runs)
        print(f"python -c pass:               {baseline:7.1f} ms")
        print(f"ci-env setup --no-login:      {setup:7.1f} ms  ({setup / baseline:.1f}x; target <= 150 ms)")
        info = median_ms([*command, "registry", "info", "docker.io/acme/app", "--image", "api"], env, args.runs)
        print(f"ci-env registry info:         {info:7.1f} ms  ({info / baseline:.1f}x; target well under 150 ms)")
        if shutil.which("docker-registry") and shutil.which("htpasswd"):
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.services.registry import start_registry

            service = start_registry(Path(tmp) / "registry", auth="htpasswd", users={"alice": "alice-pass"})
            try:
                login_env = {
                    **env,
                    "CI_REGISTRY": service.host,
                    "CI_REGISTRY_USER": "alice",
                    "CI_REGISTRY_PASSWORD": "alice-pass",
                }
                before = len(service.requests())
                login = median_ms([*command, "setup", "--as-file"], login_env, args.runs)
                per_setup = (len(service.requests()) - before) / args.runs
                print(
                    f"ci-env setup (verify login):  {login:7.1f} ms  ({login / baseline:.1f}x; "
                    f"+{login - setup:.1f} ms, {per_setup:.1f} HTTP requests per setup)"
                )
            finally:
                service.stop()
        else:
            print("docker-registry/htpasswd not installed: login verification not measured")


if __name__ == "__main__":
    main()
