"""Issue 18, item 1: a kept tag moved onto a doomed image between planning and removal keeps its image.

The demo: cleanup plans to remove ``feature-a`` (its branch is gone); right before the run's first DELETE, a
concurrent promote retags ``latest`` onto ``feature-a``'s image. Deleting that image by digest (what the plan
once did for an image no other tag held when it looked) would take ``latest`` with it, exit 0, and report
``latest`` kept. A proxy in front of the real registry makes the write land at that exact moment.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ci_env.registry.reference import RepoAddress
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.test_cleanup_e2e import run_cli
from tests.cleanup.world import World
from tests.registry_client.images import pulls, push_image
from tests.services.latency_proxy import LatencyProxy
from tests.services.registry import RegistryService


class PromoteBeforeFirstDelete:
    """The proxy's hook: once, right before the first DELETE of a manifest in ``path``, retag ``tag`` onto the
    image ``source`` points at (directly on the registry, as another job would)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.path = ""

    def arm(self, world: World, path: str, tag: str, source: str) -> None:
        self.world, self.tag, self.source = world, tag, source
        self.path = path

    def __call__(self, method: str, path: str) -> None:
        if not self.path or method != "DELETE" or f"/v2/{self.path}/manifests/" not in path:
            return
        with self.lock:
            if self.done.is_set():
                return
            body, info = self.world.client.get_manifest(self.path, self.source)
            self.world.client.put_manifest(self.path, self.tag, body, info.media_type)
            self.done.set()


def test_a_promote_onto_the_doomed_image_during_cleanup_keeps_latest(
    world: World, registry_open: RegistryService, tmp_path: Path,
) -> None:
    git = GitRepo(tmp_path / "project")
    head = git.commit("one")
    git.git("update-ref", "refs/heads/main", head)
    hook = PromoteBeforeFirstDelete()
    proxy = LatencyProxy(registry_open.host, delay=0, before=hook)
    try:  # the run sees the registry through the proxy (records name it so); the test and the hook write directly
        world = World(world.client, RepoAddress(proxy.host, world.images_repo.path),
                      RepoAddress(proxy.host, world.stages.path))
        api = world.images_repo.child("api")
        world.publish("api", "main", "git-branch", git_ref="main")
        feature = world.publish("api", "feature-a", "git-branch", git_ref="feature-a")  # no such branch: doomed
        world.publish("api", "latest", "custom")  # kept: no policy removes a custom tag
        hook.arm(world, api.path, "latest", "feature-a")
        report = tmp_path / "report.json"
        result = run_cli("cleanup", "-i", str(world.images_repo), "-s", str(world.stages), "--dir", str(git.path),
                         "--without-kube", "--report", str(report), cwd=tmp_path)
    finally:
        proxy.stop()
    assert hook.done.is_set(), "the promote never ran: the test would prove nothing\n" + result.stdout + result.stderr
    assert result.returncode == 0, result.stderr
    assert world.tags("api") == {"main", "latest"}
    assert world.client.resolve(api.path, "latest").digest == feature.digest  # type: ignore[union-attr]
    assert pulls(world.client, api.path, "latest")
    decisions = {d["tag"]: d for d in json.loads(report.read_text())["decisions"] if d["kind"] == "tag"}
    assert decisions["latest"]["action"] == "keep" and decisions["feature-a"]["outcome"] == "removed"


def test_a_promote_onto_the_image_of_an_untagged_tag_keeps_latest(
    registry_open: RegistryService, tmp_path: Path,
) -> None:
    from ci_env.registry.client import RegistryClient
    from tests.cli import environ_without, run_ci_env

    client = RegistryClient(registry_open.host)
    path = f"promote/{tmp_path.name[-20:].lower().replace('_', '-')}"
    doomed = push_image(client, path, ["feature-a"])
    push_image(client, path, ["latest"])
    world = World(client, RepoAddress(registry_open.host, path), RepoAddress(registry_open.host, path + "-s"))
    hook = PromoteBeforeFirstDelete()
    hook.arm(world, path, "latest", "feature-a")
    proxy = LatencyProxy(registry_open.host, delay=0, before=hook)
    try:
        done = run_ci_env("registry", "untag", f"{proxy.host}/{path}:feature-a",
                          env={**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none")}, cwd=tmp_path)
    finally:
        proxy.stop()
    assert hook.done.is_set(), "the promote never ran: the test would prove nothing"
    assert done.returncode == 0, done.stderr
    assert client.list_tags(path) == ["latest"]
    assert client.resolve(path, "latest").digest == doomed.digest  # type: ignore[union-attr]
    assert pulls(client, path, "latest")
