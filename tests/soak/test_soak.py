"""The soak test of issue 18, bounded for the normal suite: randomized cleanups of a few hundred stale tags on the
real registry while writers retag kept tags onto the images being removed and push new tags
(``tests/soak/scenario.py``). Runs until ``CI_ENV_SOAK_SECONDS`` (default 30) have passed, at least two runs;
``CI_ENV_SOAK_SEED`` replays one seed. ``python -m bench.soak_bench --runs N`` is the long run."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from tests.cleanup.gitrepo import GitRepo
from tests.cli import environ_without, run_ci_env
from tests.services.registry import RegistryService
from tests.soak.scenario import soak_run


def _cli(args: list[str], cwd: Path) -> tuple[int, str]:
    done = run_ci_env(*args, env={**environ_without(), "DOCKER_CONFIG": str(cwd / "no-docker-config")}, cwd=cwd,
                      timeout=300)
    return done.returncode, done.stdout + done.stderr


def test_concurrent_writers_never_lose_a_tag_and_the_report_matches_the_registry(
    registry_open: RegistryService, tmp_path: Path,
) -> None:
    git = GitRepo(tmp_path / "project")
    git.commit("one")
    budget = float(os.environ.get("CI_ENV_SOAK_SECONDS", "30"))
    replay = os.environ.get("CI_ENV_SOAK_SEED")
    seeds = [int(replay)] if replay else [random.randrange(1 << 30) for _ in range(50)]
    deadline = time.monotonic() + budget
    for runs, seed in enumerate(seeds):
        if runs >= 2 and time.monotonic() > deadline:
            break
        rnd = random.Random(seed)
        result = soak_run(registry_open.host, tmp_path, git.path, seed, _cli, stale=rnd.randrange(150, 301),
                          kept=rnd.randrange(10, 40), writers=rnd.randrange(2, 5))
        assert not result.problems, (f"seed {seed} (replay: CI_ENV_SOAK_SEED={seed}): "
                                     + "\n".join(result.problems[:20]))
        assert result.writes > 0 and result.removed == result.stale, f"seed {seed}: {result}"
        print(f"soak seed {seed}: {result.stale} stale, {result.kept} kept, {result.writes} concurrent writes, "
              f"{result.seconds:.1f} s")
