"""What rate limits cost shows in the cleanup report and its last line: the real registry behind a proxy that
answers some requests 429 with Retry-After (``tests.registry_client.faultproxy``), the real CLI."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from ci_env.registry.reference import RepoAddress
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.world import World
from tests.cli import environ_without, run_ci_env
from tests.registry_client.faultproxy import FaultProxy
from tests.services.registry import RegistryService

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "cleanup-report.schema.json").read_text())


@pytest.fixture
def limited(registry_open: RegistryService) -> Iterator[FaultProxy]:
    proxy = FaultProxy(registry_open.host, seed=3, p429=0.08, p500=0.0, p_drop_before=0.0, p_drop_after=0.0)
    yield proxy
    proxy.stop()


def test_the_report_counts_the_rate_limited_answers_and_the_waits(
    world: World, limited: FaultProxy, tmp_path: Path,
) -> None:
    far = World(world.client, RepoAddress(limited.host, world.images_repo.path),
                RepoAddress(limited.host, world.stages.path))
    git = GitRepo(tmp_path / "project")
    head = git.commit("one")
    git.git("update-ref", "refs/heads/keep", head)
    far.publish("app", "keep", "git-branch", git_ref="keep")
    for n in range(12):
        far.publish("app", f"gone-{n}", "git-branch", git_ref=f"gone-{n}")
    report = tmp_path / "report.json"
    env = {"PATH": os.environ["PATH"], **environ_without(), "DOCKER_CONFIG": str(tmp_path / "none")}
    result = run_ci_env("cleanup", "-i", str(far.images_repo), "-s", str(far.stages), "--dir", str(git.path),
                        "--keep-published-within", "0", "--without-kube", "--report", str(report),
                        env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert far.tags("app") == {"keep"}
    answered_429 = sum(1 for fault, _, _ in limited.faults if fault == "429")
    assert answered_429 > 0
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    limits = document["rate_limits"]
    assert limits["rate_limited_answers"] == answered_429
    assert limits["waits"] >= answered_429 and limits["waited_seconds"] >= 0.9 * answered_429
    assert [h["host"] for h in limits["hosts"]] == [limited.host]
    last = result.stderr.strip().splitlines()[-1]
    assert re.search(rf"{answered_429} rate-limited answers?, \d+ waits? for rate limits \(\d+\.\d s\)", last), last
