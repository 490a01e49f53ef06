"""Benchmark (run by hand, not a test): wall time of `ci-env setup --as-file` against `python3 -c pass`.

    python bench/setup_bench.py [-n 30]

Runs the installed console script (next to ``sys.executable``, else ``python -m ci_env``)
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


def ci_env_command() -> list[str]:
    script = Path(sys.executable).parent / "ci-env"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ci_env"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": tmp,
            "WERF_TMP_DIR": f"{tmp}/jobs",
            "GITLAB_CI": "true",
            "CI_JOB_ID": "1",
            "CI_REGISTRY_IMAGE": "registry.example/g/p",
        }
        baseline = median_ms([sys.executable, "-c", "pass"], env, args.runs)
        setup = median_ms([*ci_env_command(), "setup", "--as-file", "--no-login"], env, args.runs)
        print(f"python -c pass:               {baseline:7.1f} ms")
        print(f"ci-env setup --no-login:      {setup:7.1f} ms  ({setup / baseline:.1f}x; target <= 150 ms)")
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
                login = median_ms([*ci_env_command(), "setup", "--as-file"], login_env, args.runs)
                print(f"ci-env setup (verify login):  {login:7.1f} ms  ({login / baseline:.1f}x)")
            finally:
                service.stop()
        else:
            print("docker-registry/htpasswd not installed: login verification not measured")


if __name__ == "__main__":
    main()
