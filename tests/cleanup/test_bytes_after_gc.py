"""The bytes-freed figure against the registry's own storage: a real cleanup (``python -m ci_env cleanup``) on the
CNCF registry, then its garbage collector (``garbage-collect --delete-untagged``, registry stopped, as its
documentation asks), and what the blob store lost compared with the JSON report's ``bytes``.

The images share layers: with kept images (in another repository too), between two removed images, between a
removed image and a tag cleanup leaves alone, and a removed index's platform manifest with a kept image. The
figure counts the images only: what else the collector frees (the placeholder manifests the removed tags were
moved onto, their config blob, the retired publication records) is accounted apart, blob by blob.
Single-platform kept images only: distribution 2.8's ``--delete-untagged`` also takes the platform manifests of
a tagged index (distribution#3004), which no cleanup figure should count."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ci_env.contract import IMAGE_NAME_LABEL
from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.test_cleanup_e2e import run_cli
from tests.cleanup.world import World
from tests.registry_client.images import PushedImage
from tests.services import require
from tests.services.registry import RegistryService

KIB = 1024


def _layer(name: str, size: int) -> bytes:
    """``size`` bytes of content unique to ``name``."""
    return (name.encode() + b"\0" * size)[:size]


def _push(client: RegistryClient, path: str, name: str, layers: Sequence[bytes],
          labels: dict[str, str] | None = None) -> PushedImage:
    """An image of ``layers`` (and a config unique to ``name``) pushed to ``path`` by digest only."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                         "rootfs": {"type": "layers", "diff_ids": []}, "name": name,
                         **({"config": {"Labels": labels}} if labels else {})}).encode()
    blobs = [config, *layers]
    for data in blobs:
        client.ensure_blob(path, mf.sha256_digest(data), data)
    body = json.dumps({
        "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": mf.sha256_digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": mf.sha256_digest(data),
                    "size": len(data)} for data in layers],
    }).encode()
    digest = client.put_manifest(path, mf.sha256_digest(body), body, mf.OCI_MANIFEST)
    return PushedImage(path, digest, mf.OCI_MANIFEST, tuple(mf.sha256_digest(d) for d in blobs))


def _push_index(client: RegistryClient, path: str, children: Sequence[PushedImage]) -> PushedImage:
    entries = []
    for arch, child in zip(("amd64", "arm64"), children, strict=False):
        body, _ = client.get_manifest(path, child.digest)
        entries.append({"mediaType": mf.OCI_MANIFEST, "digest": child.digest, "size": len(body),
                        "platform": {"architecture": arch, "os": "linux"}})
    body = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries}).encode()
    digest = client.put_manifest(path, mf.sha256_digest(body), body, mf.OCI_INDEX)
    return PushedImage(path, digest, mf.OCI_INDEX, (), tuple(c.digest for c in children))


def _blob_store(service: RegistryService) -> dict[str, bytes]:
    """Every blob the registry stores (digest -> content): layers, configs and manifests alike."""
    root = service.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    return {f"sha256:{data.parent.name}": data.read_bytes() for data in root.glob("*/*/data")}


def _garbage_collect(service: RegistryService) -> None:
    service.stop()  # the collector runs on the storage of a stopped registry
    binary = require("docker-registry", "the CNCF distribution registry, Debian package docker-registry")
    done = subprocess.run([binary, "garbage-collect", "--delete-untagged", str(service.root / "config.yml")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


class Scenario:
    """Images with shared layers, published for branches of which ``feature-*`` are then deleted."""

    def __init__(self, world: World, directory: Path) -> None:
        client = world.client
        self.api, self.web = world.images_repo.child("api").path, world.images_repo.child("web").path
        base, shared, kept_shared, foreign = (_layer(n, s) for n, s in (
            ("base", 64 * KIB), ("shared", 32 * KIB), ("kept-shared", 6 * KIB), ("foreign", 5 * KIB)))
        kept_api = _push(client, self.api, "kept-api", [_layer("kept-api", 4 * KIB), kept_shared])
        kept_web = _push(client, self.web, "kept-web", [base, _layer("kept-web", 2 * KIB)])
        one = _push(client, self.api, "one", [base, shared, _layer("one", 8 * KIB), foreign])
        two = _push(client, self.api, "two", [shared, _layer("two", 16 * KIB), kept_shared])
        amd = _push(client, self.api, "amd", [_layer("amd", 12 * KIB)])
        arm = _push(client, self.api, "arm", [_layer("arm", 10 * KIB), base])
        multi = _push_index(client, self.api, [amd, arm])
        # a tag cleanup leaves alone (its label names an image werf.yaml does not have) holds a removed layer
        other = _push(client, self.api, "other", [foreign], labels={IMAGE_NAME_LABEL: "not-managed"})
        client.put_manifest(self.api, "other-team", *_body(client, self.api, other.digest))
        git = GitRepo(directory)
        git.commit("one", date="2024-01-01T00:00:00Z")
        for branch in ("feature-a", "feature-b", "feature-c"):
            git.git("branch", branch)
        world.publish("api", "main", "git-branch", git_ref="main", like=kept_api)
        world.publish("web", "main", "git-branch", git_ref="main", like=kept_web)
        world.publish("api", "feature-a", "git-branch", git_ref="feature-a", like=one)
        world.publish("web", "feature-a", "git-branch", git_ref="feature-a", like=one)  # one image, two repos
        world.publish("api", "feature-b", "git-branch", git_ref="feature-b", like=two)
        world.publish("api", "feature-c", "git-branch", git_ref="feature-c", like=multi)
        for branch in ("feature-a", "feature-b", "feature-c"):
            git.git("branch", "-D", branch)
        self.directory = str(directory)
        self.images = (kept_api, kept_web, one, two, amd, arm, multi, other)
        self.removed = (one, two, amd, arm, multi)

    def image_blobs(self, client: RegistryClient) -> set[str]:
        """Every blob of the images: their layers, configs and manifests."""
        return {b for image in self.images for b in (image.digest, *image.blobs)}


def _body(client: RegistryClient, path: str, digest: str) -> tuple[bytes, str]:
    body, info = client.get_manifest(path, digest)
    return body, info.media_type


@pytest.fixture
def setup(fresh_registry: Callable[..., RegistryService], tmp_path: Path) -> tuple[RegistryService, World, Scenario]:
    service = fresh_registry()
    client = RegistryClient(service.host, docker_config=Path("/nonexistent"))
    world = World(client, RepoAddress(service.host, "acme/images"), RepoAddress(service.host, "acme/stages"))
    return service, world, Scenario(world, tmp_path / "project")


def test_the_exact_figure_is_what_the_blob_store_loses_after_garbage_collection(
    setup: tuple[RegistryService, World, Scenario], tmp_path: Path,
) -> None:
    service, world, scenario = setup
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory, "--without-kube"]
    image_blobs = scenario.image_blobs(world.client)
    before_run = _blob_store(service)
    assert image_blobs <= set(before_run)

    bound = tmp_path / "bound.json"
    dry = run_cli("cleanup", *args, "--dry-run", "--report", str(bound), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    report = tmp_path / "report.json"
    result = run_cli("cleanup", *args, "--measure-kept", "--report", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads(report.read_text())
    outcomes = {(d["image"], d["tag"]): d["outcome"] for d in document["decisions"] if d["kind"] == "tag"}
    assert outcomes == {("api", "main"): "kept", ("web", "main"): "kept", ("api", "feature-a"): "removed",
                        ("web", "feature-a"): "removed", ("api", "feature-b"): "removed",
                        ("api", "feature-c"): "removed"}
    before_gc = _blob_store(service)
    _garbage_collect(service)
    after_gc = _blob_store(service)

    lost = set(before_gc) - set(after_gc)
    lost_images = sum(len(before_gc[b]) for b in lost & image_blobs)
    figures = document["bytes"]
    assert figures["freed"] == lost_images > (32 + 8 + 16 + 12 + 10) * KIB  # the layers only removals use
    assert figures["at_most"] is False and figures["kept_unread"] == 0 and figures["unknown"] == 0
    assert f"; {_human(lost_images)} freed once the registry's garbage collection runs" in result.stderr
    # the removed images' own blobs are gone, what kept images and the tag left alone use is not
    assert {b for image in scenario.removed for b in (image.digest, *image.blobs)} - set(after_gc) == \
        lost & image_blobs
    assert image_blobs & set(after_gc) >= {b for image in scenario.images[:2] for b in image.blobs}
    # the rest the collector freed is ci-env's own bookkeeping: placeholders and the retired records
    for blob in lost - image_blobs:
        content = before_gc[blob]
        assert (mf.is_placeholder(content) or content == mf.PLACEHOLDER_CONFIG
                or blob in set(before_run) - image_blobs), content[:200]

    bounded = json.loads(bound.read_text())["bytes"]  # without --measure-kept: an upper bound, and said so
    assert bounded["at_most"] is True and bounded["kept_unread"] > 0 and bounded["freed"] > lost_images
    assert f"at most {_human(bounded['freed'])} would be freed once the registry's garbage" in dry.stderr


def _human(count: int) -> str:
    from ci_env.cleanup.sizes import human

    return human(count)


def test_purge_is_an_upper_bound_while_a_tag_it_leaves_alone_is_unread_and_exact_once_read(
    setup: tuple[RegistryService, World, Scenario], tmp_path: Path,
) -> None:
    """Purge keeps nothing it manages, but the tag it leaves alone (``other-team``) still holds a layer of a
    purged image: unread, the figure is "at most"; read (``--measure-kept``), it is what the store loses."""
    service, world, scenario = setup
    args = ["-i", str(world.images_repo), "-s", str(world.stages), "--dir", scenario.directory]
    image_blobs = scenario.image_blobs(world.client)
    bound = tmp_path / "bound.json"
    dry = run_cli("purge", *args, "--dry-run", "--report", str(bound), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    report = tmp_path / "report.json"
    result = run_cli("purge", *args, "--force", "--measure-kept", "--report", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert world.tags("api") == {"other-team"} and world.tags("web") == set()
    before_gc = _blob_store(service)
    _garbage_collect(service)
    lost = set(before_gc) - set(_blob_store(service))
    lost_images = sum(len(before_gc[b]) for b in lost & image_blobs)
    figures = json.loads(report.read_text())["bytes"]
    assert figures["freed"] == lost_images and figures["at_most"] is False
    bounded = json.loads(bound.read_text())["bytes"]
    assert bounded["at_most"] is True and bounded["kept_unread"] == 1
    assert bounded["freed"] == lost_images + 5 * KIB  # the layer the tag left alone holds
