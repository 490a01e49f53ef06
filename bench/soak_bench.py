"""The long run of the concurrent-writer soak test (``tests/soak/scenario.py``): ``--runs`` randomized cleanups of
``--stale`` stale tags each (random within the range given) on a local registry, while ``--writers`` threads retag
kept tags onto the images being removed and push new tags. Prints each run and the totals; exits 1 at the first
run with a problem, printing its seed (replay it with ``--seed``).

Run by hand: ``python -m bench.soak_bench [--runs 20] [--stale 150-300] [--seed N]``.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.cleanup.gitrepo import GitRepo
from tests.services.registry import start_registry
from tests.soak.scenario import soak_run


def cli(args: list[str], cwd: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "ci_env", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "DOCKER_CONFIG": str(cwd / "none"), "HOME": str(cwd)},
                          timeout=600, check=False)
    return done.returncode, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stale", default="150-300", help="stale tags per run: N or LOW-HIGH")
    parser.add_argument("--kept", default="10-40", help="kept tags per run: N or LOW-HIGH")
    parser.add_argument("--writers", default="2-4", help="writer threads per run: N or LOW-HIGH")
    parser.add_argument("--seed", type=int, default=None, help="run this one seed (a failure prints it)")
    args = parser.parse_args()

    def pick(rnd: random.Random, text: str) -> int:
        low, _, high = text.partition("-")
        return rnd.randint(int(low), int(high or low))

    seeds = [args.seed] if args.seed is not None else [random.randrange(1 << 30) for _ in range(args.runs)]
    totals = {"stale": 0, "writes": 0, "seconds": 0.0}
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        try:
            git = GitRepo(tmp / "project")
            git.commit("one")
            for number, seed in enumerate(seeds, 1):
                rnd = random.Random(seed)
                result = soak_run(registry.host, tmp, git.path, seed, cli, stale=pick(rnd, args.stale),
                                  kept=pick(rnd, args.kept), writers=pick(rnd, args.writers))
                print(f"run {number}/{len(seeds)} seed {seed}: {result.stale} stale removed {result.removed}, "
                      f"{result.kept} kept, {result.writes} concurrent writes, cleanup {result.seconds:.1f} s: "
                      + ("ok" if not result.problems else f"{len(result.problems)} PROBLEMS"), flush=True)
                if result.problems:
                    print("\n".join(result.problems[:50]))
                    raise SystemExit(f"soak failed: replay with --seed {seed}")
                totals["stale"] += result.stale
                totals["writes"] += result.writes
                totals["seconds"] += result.seconds
        finally:
            registry.stop()
    print(f"{len(seeds)} runs in {time.monotonic() - started:.0f} s: {totals['stale']:.0f} stale tags removed while "
          f"{totals['writes']:.0f} concurrent writes landed; every tag a writer set kept its digest, every report "
          f"matched the registry")


if __name__ == "__main__":
    main()
