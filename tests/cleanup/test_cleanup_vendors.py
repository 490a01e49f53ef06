"""The same cleanup scenario end to end against ECR (moto's server), Docker Hub and GitHub (ghcr.io).

The images repo is the vendor (selected with ``--images-repo-implementation``, since the vendor's test
server listens on 127.0.0.1); the stages storage, with the publication records and managed images, is
the local real registry, as a job using a vendor images repo with ``-s`` on another registry does.
Each vendor keeps one state for its Registry API and its native API (see ``tests.cleanup.vendors``).
ECR and Docker Hub are listed through their own API (``describe_images``, the tag listing): planning sends
no tag list and no manifest HEAD per tag to their Registry API; GitHub is listed through the Registry API.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest

from ci_env.registry.client import RegistryClient
from ci_env.registry.naming import image_repository
from ci_env.registry.reference import RepoAddress
from tests.cleanup.test_cleanup_e2e import SCHEMA, run_cli
from tests.cleanup.vendors import HUB_PAT, HUB_USER, DockerHubOverRegistry, EcrRegistryApi, ecr_manifest
from tests.cleanup.world import Scenario, World, publish_scenario
from tests.registry_client.images import PushedImage
from tests.services.registry import RegistryService
from tests.vendors.fakeapi import FakeApi
from tests.vendors.servers import TOKEN as GITHUB_TOKEN
from tests.vendors.servers import GitHubPackages

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "eu-west-1"}


@dataclass
class EcrWorld(World):
    """Images in ECR (moto, ``put_image``), records and stages on the real registry."""

    ecr: EcrRegistryApi | None = None
    manifests: dict[str, str] = field(default_factory=dict)

    def push(self, repo: RepoAddress, stored: str, like: PushedImage | None) -> PushedImage:
        assert self.ecr is not None
        manifest = self.manifests[like.digest] if like is not None else ecr_manifest(uuid.uuid4().hex)
        digest = self.ecr.put(repo.path, stored, manifest)
        self.manifests[digest] = manifest
        return PushedImage(repo.path, digest, "", ())

    def tags(self, image: str | None) -> set[str]:
        assert self.ecr is not None
        return self.ecr.tags(image_repository(self.images_repo, self.mode, image).path)


@dataclass
class Vendor:
    """A vendor images repo ready for the scenario: the world, the CLI arguments and environment it needs,
    and what its API was asked to delete."""

    world: World
    args: list[str]
    env: dict[str, str]
    secret: str | None = None
    deletions: Callable[[], int] = lambda: 0
    #: (tag lists, manifest HEADs) the images repo's Registry API has answered so far
    registry_reads: Callable[[], tuple[int, int]] = lambda: (0, 0)
    #: tag listings its own API has answered so far; None: it has none (listed through the Registry API)
    vendor_listings: Callable[[], int] | None = None


def _reads(requests: list[tuple[str, str]], prefix: str) -> tuple[int, int]:
    """(tag lists, manifest HEADs) among ``requests`` (method, path) under ``/v2/PREFIX``."""
    ours = [(m, path.split("?")[0]) for m, path in requests if path.startswith(f"/v2/{prefix}")]
    return (sum(1 for m, path in ours if m == "GET" and path.endswith("/tags/list")),
            sum(1 for m, path in ours if m == "HEAD" and "/manifests/" in path))


def _ecr(registry: RegistryService, fake_api: Callable[[], FakeApi], moto_url: str) -> Vendor:
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    base = f"ecr{uuid.uuid4().hex[:8]}"
    for image in ("api", "web"):
        client.create_repository(repositoryName=f"{base}/app/{image}")
    shim = EcrRegistryApi(fake_api(), client)
    world = EcrWorld(RegistryClient(registry.host, docker_config=Path("/nonexistent")),
                     RepoAddress(shim.host, f"{base}/app"), RepoAddress(registry.host, f"{base}/stages"), ecr=shim)
    return Vendor(world, ["--images-repo-implementation", "ecr"], {"AWS_ENDPOINT_URL_ECR": moto_url, **AWS},
                  registry_reads=lambda: _reads(shim.api.requests(), f"{base}/"), vendor_listings=lambda: 0)


def _dockerhub(registry: RegistryService, fake_api: Callable[[], FakeApi], moto_url: str) -> Vendor:
    hub = DockerHubOverRegistry(fake_api(), registry)
    base = f"hub{uuid.uuid4().hex[:8]}"
    world = World(RegistryClient(registry.host, docker_config=Path("/nonexistent")),
                  RepoAddress(registry.host, base), RepoAddress(registry.host, f"{base}-stages/stages"))
    args = ["--images-repo-implementation", "dockerhub", "--repo-docker-hub-username", HUB_USER,
            "--repo-docker-hub-token", HUB_PAT]
    return Vendor(world, args, {"WERF_DOCKER_HUB_API_URL": hub.api.url}, HUB_PAT, lambda: len(hub.deleted()),
                  lambda: _reads([(m, path) for m, path, _s in registry.requests()], f"{base}/"),
                  lambda: len(hub.listings()))


def _github(registry: RegistryService, fake_api: Callable[[], FakeApi], moto_url: str) -> Vendor:
    packages = GitHubPackages(fake_api(), registry, "read:packages, delete:packages, repo")
    base = f"gh{uuid.uuid4().hex[:8]}"
    world = World(RegistryClient(registry.host, docker_config=Path("/nonexistent")),
                  RepoAddress(registry.host, f"acme/{base}"), RepoAddress(registry.host, f"{base}/stages"))
    args = ["--images-repo-implementation", "github", "--repo-github-token", GITHUB_TOKEN]
    return Vendor(world, args, {"WERF_GITHUB_API_URL": packages.api.url}, GITHUB_TOKEN,
                  lambda: sum(1 for c in packages.api.calls if c.method == "DELETE"),
                  lambda: _reads([(m, path) for m, path, _s in registry.requests()], f"acme/{base}/"))


VENDORS = {"ecr": _ecr, "dockerhub": _dockerhub, "github": _github}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest, registry_open: RegistryService, fake_api: Callable[[], FakeApi],
           clean_env: None) -> Iterator[Vendor]:
    moto = request.getfixturevalue("moto_url") if request.param == "ecr" else ""
    yield VENDORS[request.param](registry_open, fake_api, moto)


def _cli(vendor: Vendor, scenario: Scenario, tmp_path: Path, *extra: str) -> Any:
    world = vendor.world
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory, *vendor.args]
    return run_cli("cleanup", *args, *extra, cwd=tmp_path, env=vendor.env)


def test_cleanup_removes_exactly_the_stale_tags_on_the_vendor(vendor: Vendor, tmp_path: Path) -> None:
    world = vendor.world
    scenario = publish_scenario(world, tmp_path / "project", stage_like=False)
    before = (world.tags("api"), world.tags("web"), world.stage_tags())
    reads = vendor.registry_reads()
    dry = _cli(vendor, scenario, tmp_path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lists, heads = (after - earlier for after, earlier in zip(vendor.registry_reads(), reads, strict=True))
    assert (world.tags("api"), world.tags("web"), world.stage_tags()) == before
    assert vendor.deletions() == 0
    if vendor.vendor_listings is None:  # the Registry API: a tag list per repository, a HEAD per tag
        assert lists == 2 and heads >= len(before[0]) + len(before[1])
    else:  # the vendor's own listing: nothing per tag on the Registry API
        assert (lists, heads) == (0, 0)
        if not isinstance(world, EcrWorld):  # (moto records no calls; ECR's listing is describe_images)
            assert vendor.vendor_listings() == 2  # one page for each of api and web

    report = tmp_path / "report.json"
    result = _cli(vendor, scenario, tmp_path, "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert world.tags("api") == scenario.expected_api()  # latest shared feature-a's image: it stays
    assert world.tags("web") == scenario.expected_web
    assert world.stage_tags() == scenario.expected_stages
    if not isinstance(world, EcrWorld):
        assert vendor.deletions() == 4  # exactly one API deletion per stale tag (api: 3, web: 1)
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    assert document["summary"]["failed"] == 0 and document["summary"]["removed"] == 4 + 4  # 4 tags, 4 stages
    if vendor.secret:
        assert vendor.secret not in result.stderr + result.stdout + report.read_text()

    again = _cli(vendor, scenario, tmp_path)
    assert again.returncode == 0, again.stderr
    assert world.tags("api") == scenario.expected_api()


def test_github_delete_untagged_keeps_the_platforms_of_an_image_pushed_during_the_run(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    # a build pushes a multi-platform image while cleanup runs: its platform manifests are untagged versions the
    # plan never saw; --delete-untagged reads the untagged versions after the tag removals and must not take them
    from tests.graphs.shapes import push_index_of
    from tests.registry_client.images import push_image

    packages = GitHubPackages(fake_api(), registry_open, "read:packages, delete:packages, repo")
    vendor = _github(registry_open, fake_api, "")
    vendor.env["WERF_GITHUB_API_URL"] = packages.api.url
    world = vendor.world
    scenario = publish_scenario(world, tmp_path / "project", stage_like=False)
    api = image_repository(world.images_repo, world.mode, "api").path
    leftover = push_image(world.client, api).digest  # untagged before the run, nothing reaches it: it goes
    pushed: list[tuple[str, list[str]]] = []

    def build_during_the_run(_listing: int) -> None:
        if not pushed and any(c.method == "DELETE" for c in packages.api.calls):  # the removals have begun
            platforms = [push_image(world.client, api).digest for _ in range(2)]
            pushed.append((push_index_of(world.client, api, platforms, ["hotfix"]), platforms))

    packages.before_listing = build_during_the_run
    report = tmp_path / "report.json"
    result = _cli(vendor, scenario, tmp_path, "--delete-untagged", "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert pushed, "the build did not run during the cleanup"
    index, platforms = pushed[0]
    resolved = world.client.resolve(api, "hotfix")
    assert resolved is not None and resolved.digest == index
    for digest in platforms:
        assert world.client.find_manifest(api, digest) is not None, digest
    assert world.client.find_manifest(api, leftover) is None
    assert world.tags("api") == {*scenario.expected_api(), "hotfix"}
    document = json.loads(report.read_text())
    outcomes = {u["digest"]: u["outcome"] for u in document["untagged"]}
    assert outcomes[leftover] == "removed"
    assert {outcomes.get(d) for d in platforms} <= {"left", None}
