"""A dry run tells the truth about the real run: it runs the real run's preflight (which deletes nothing) on
every repository it would remove from, says when the real run would stop there, and exits with the real run's
code. Against the real registry with deletion disabled, and a GitHub images repo without a token."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import jsonschema

from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.test_cleanup_e2e import SCHEMA, run_cli
from tests.cleanup.world import World, publish_scenario
from tests.services.registry import RegistryService
from tests.vendors.fakeapi import FakeApi
from tests.vendors.servers import TOKEN as GITHUB_TOKEN
from tests.vendors.servers import GitHubPackages


def _world(registry: RegistryService) -> World:
    base = f"dry-{uuid.uuid4().hex[:10]}"
    return World(RegistryClient(registry.host, docker_config=Path("/nonexistent")),
                 RepoAddress(registry.host, f"{base}/images"), RepoAddress(registry.host, f"{base}/stages"))


def _state(world: World) -> tuple[set[str], set[str], set[str]]:
    return world.tags("api"), world.tags("web"), world.stage_tags()


def test_a_dry_run_on_a_registry_with_deletion_disabled_fails_as_the_real_run_does(
    registry_nodelete: RegistryService, tmp_path: Path,
) -> None:
    world = _world(registry_nodelete)
    scenario = publish_scenario(world, tmp_path / "project")
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory]
    before = _state(world)
    report = tmp_path / "dry.json"
    summary = tmp_path / "summary.md"

    dry = run_cli("cleanup", *args, "--dry-run", "--report", str(report), cwd=tmp_path,
                  env={"GITHUB_STEP_SUMMARY": str(summary)})
    real = run_cli("cleanup", *args, cwd=tmp_path)

    assert dry.returncode == real.returncode == 1, dry.stderr
    assert _state(world) == before  # neither removed anything
    assert "feature-a" in dry.stdout and "delete" in dry.stdout  # the plan is still shown
    error = dry.stderr.split("ci-env: error: ", 1)[1]
    assert error.startswith("dry run: the real cleanup would fail before removing anything (exit 1)")
    assert "deletion is disabled" in error and "REGISTRY_STORAGE_DELETE_ENABLED=true" in error
    assert "deletion is disabled" in real.stderr  # the same cause stops the real run
    assert "Traceback" not in dry.stderr
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    refused = {entry["repository"] for entry in document["would_fail"]}
    assert refused == {str(world.images_repo.child("api")), str(world.images_repo.child("web")), str(world.stages)}
    assert {entry["exit_code"] for entry in document["would_fail"]} == {1}
    assert document["summary"]["would_remove"] > 0 and document["summary"]["removed"] == 0
    assert "The real cleanup would fail" in summary.read_text()


def test_a_dry_run_whose_vendor_has_no_credentials_fails_naming_the_setting(
    registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path,
) -> None:
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages, repo")
    base = f"gh{uuid.uuid4().hex[:8]}"
    world = World(RegistryClient(registry_open.host, docker_config=Path("/nonexistent")),
                  RepoAddress(registry_open.host, f"acme/{base}"), RepoAddress(registry_open.host, f"{base}/stages"))
    scenario = publish_scenario(world, tmp_path / "project", stage_like=False)
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory,
            "--images-repo-implementation", "github"]
    env = {"WERF_GITHUB_API_URL": packages.api.url}
    before = _state(world)

    dry = run_cli("cleanup", *args, "--dry-run", cwd=tmp_path, env=env)
    real = run_cli("cleanup", *args, cwd=tmp_path, env=env)

    assert dry.returncode == real.returncode == 1, dry.stderr
    assert _state(world) == before
    assert not [c for c in packages.api.calls if c.method == "DELETE"]
    error = dry.stderr.split("ci-env: error: ", 1)[1]
    assert "the real cleanup would fail" in error and "no token" in error and "--repo-github-token" in error
    assert "no token" in real.stderr

    with_token = run_cli("cleanup", *args, "--repo-github-token", GITHUB_TOKEN, "--dry-run", cwd=tmp_path, env=env)
    assert with_token.returncode == 0, with_token.stderr
    assert "would fail" not in with_token.stderr + with_token.stdout
    assert GITHUB_TOKEN not in dry.stderr + with_token.stderr + with_token.stdout
    assert _state(world) == before
