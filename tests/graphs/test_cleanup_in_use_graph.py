"""What Kubernetes runs by digest stays in the registry even when no tag holds it any more: the platform manifest
of a multi-platform image a workload pins, and (``--delete-untagged``) an untagged image a workload runs.

End to end through the CLI, against the real registry (and ghcr.io's packages API derived from it) and a
Kubernetes API test server."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.conftest import kube_servers, no_machine_kubeconfig, world
from tests.cleanup.test_cleanup_e2e import run_cli
from tests.cleanup.world import World, publish_scenario
from tests.graphs.shapes import cosign_tag, push_cosign
from tests.graphs.test_cleanup_graphs import _publish_index
from tests.registry_client.images import push_image
from tests.services.kubeapi import Context, KubeApi, write_kubeconfig
from tests.services.kubeapi import controller as workload
from tests.services.registry import RegistryService
from tests.vendors.conftest import clean_env, fake_api
from tests.vendors.fakeapi import FakeApi
from tests.vendors.servers import TOKEN as GITHUB_TOKEN
from tests.vendors.servers import GitHubPackages

__all__ = ["clean_env", "fake_api", "kube_servers", "no_machine_kubeconfig", "world"]

TOKEN = "prod-token-77"


def _kubeconfig(tmp_path: Path, kube_servers: Callable[..., KubeApi], images: list[str]) -> Path:
    prod = kube_servers(tokens={TOKEN}, objects=[workload("Deployment", "pinned", "apps", images)])
    return write_kubeconfig(tmp_path / "kube" / "config", [Context("prod", prod.url, TOKEN, prod.ca_pem)])


def test_a_platform_manifest_a_workload_pins_stays_when_its_index_tag_goes(
    world: World, tmp_path: Path, kube_servers: Callable[..., KubeApi],
) -> None:
    scenario = publish_scenario(world, tmp_path / "project")
    client: RegistryClient = world.client
    path = world.images_repo.child("api").path
    index, platforms, _attestations = _publish_index(world, "feature-b", "feature-b")  # its branch is gone
    pinned_signature = push_cosign(client, path, platforms[0])
    repository = str(world.images_repo.child("api"))
    config = _kubeconfig(tmp_path, kube_servers, [f"{repository}@{platforms[0]}"])
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory,
            "--kube-config", str(config)]

    result = run_cli("cleanup", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    tags = set(client.list_tags(path))
    assert "feature-b" not in tags  # the tag no workload names goes ...
    assert client.resolve(path, platforms[0]) is not None  # ... but what the workload runs stays, signed
    assert client.resolve(path, pinned_signature) is not None and cosign_tag(platforms[0], "sig") in tags
    assert client.resolve(path, index) is not None  # untagged: the registry's garbage collection removes it


def test_delete_untagged_never_takes_an_image_a_workload_runs(
    registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path,
    kube_servers: Callable[..., KubeApi],
) -> None:
    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages, repo")
    base = f"gh{uuid.uuid4().hex[:8]}"
    world = World(RegistryClient(registry_open.host, docker_config=Path("/nonexistent")),
                  RepoAddress(registry_open.host, f"acme/{base}"), RepoAddress(registry_open.host, f"{base}/stages"))
    scenario = publish_scenario(world, tmp_path / "project", stage_like=False)
    path = world.images_repo.child("api").path
    running = push_image(world.client, path)  # an older build of `main`: its tag moved on, it still runs
    leftover = push_image(world.client, path)  # untagged, nothing uses it
    repository = str(world.images_repo.child("api"))
    config = _kubeconfig(tmp_path, kube_servers, [f"{repository}@{running.digest}"])
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory,
            "--images-repo-implementation", "github", "--repo-github-token", GITHUB_TOKEN,
            "--kube-config", str(config), "--delete-untagged"]

    result = run_cli("cleanup", *args, cwd=tmp_path, env={"WERF_GITHUB_API_URL": packages.api.url})
    assert result.returncode == 0, result.stderr
    holds = set(packages._revisions(path))
    assert leftover.digest not in holds
    assert running.digest in holds
