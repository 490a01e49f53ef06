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
from tests.cleanup.world import World, recent
from tests.registry_client.images import PushedImage, pulls, push_image
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


class RepublishAtFirstRead:
    """The proxy's hook: once, at the first read (``HEAD``/``GET``) of ``path:tag``, run ``publish`` (another job
    publishing that tag again, directly on the registry)."""

    def __init__(self, path: str, tag: str, publish: object) -> None:
        self.path, self.tag, self.publish = path, tag, publish
        self.done = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, method: str, path: str) -> None:
        if method not in ("HEAD", "GET") or not path.startswith(f"/v2/{self.path}/manifests/{self.tag}"):
            return
        with self.lock:
            if not self.done.is_set():
                self.publish()  # type: ignore[operator]
                self.done.set()


def test_a_tag_published_again_with_the_same_image_during_planning_is_not_removed(
    world: World, registry_open: RegistryService, tmp_path: Path,
) -> None:
    """A branch deleted and pushed again (or a content-addressed tag built again: same content, same digest) is
    published while cleanup plans: the publish finds the image and writes its record, and the tag's digest is
    the one the plan saw, so the removal's own check (the digest) cannot tell. Right before removing, the run lists
    the stages storage again, finds the new publication record, and leaves the tag alone (``moved``)."""
    git = GitRepo(tmp_path / "project")
    head = git.commit("one")
    git.git("update-ref", "refs/heads/main", head)
    proxy_box: dict[str, LatencyProxy] = {}
    try:
        api_path = world.images_repo.child("api").path

        def republish() -> None:
            git.git("update-ref", "refs/heads/feature-a", head)  # the branch is pushed again ...
            pw = proxy_world()  # ... and its pipeline publishes the same image under the same tag
            pw.publish("api", "feature-a", "git-branch", git_ref="feature-a", like=feature, published_at=recent())

        hook = RepublishAtFirstRead(api_path, "feature-a", republish)
        proxy = proxy_box["p"] = LatencyProxy(registry_open.host, delay=0, before=hook)

        def proxy_world() -> World:
            return World(world.client, RepoAddress(proxy.host, world.images_repo.path),
                         RepoAddress(proxy.host, world.stages.path))

        pw = proxy_world()
        pw.publish("api", "main", "git-branch", git_ref="main")
        feature = pw.publish("api", "feature-a", "git-branch", git_ref="feature-a")  # no such branch: doomed
        report = tmp_path / "report.json"
        result = run_cli("cleanup", "-i", str(pw.images_repo), "-s", str(pw.stages), "--dir", str(git.path),
                         "--without-kube", "--report", str(report), cwd=tmp_path)
    finally:
        if "p" in proxy_box:
            proxy_box["p"].stop()
    assert hook.done.is_set(), "the publish never ran: the test would prove nothing\n" + result.stderr
    assert result.returncode == 0, result.stderr
    assert world.tags("api") == {"main", "feature-a"}
    assert pulls(world.client, api_path, "feature-a")
    decisions = {d["tag"]: d for d in json.loads(report.read_text())["decisions"] if d["kind"] == "tag"}
    assert decisions["feature-a"]["action"] == "delete" and decisions["feature-a"]["outcome"] == "moved"
    assert "published again" in decisions["feature-a"]["error"]
    assert "1 moved since the plan (left alone)" in result.stderr
    assert any(name.endswith(":feature-a") for name in world.record_names())  # its new record is not forgotten


class RepublishAtFirstDelete:
    """The proxy's hook: once, right before the first DELETE in ``path`` (the end of the first slice), publish
    again every tag of ``doomed`` still at the image it was published with (those of the later slices)."""

    def __init__(self, world: World, path: str, doomed: dict[str, PushedImage]) -> None:
        self.world, self.path, self.doomed = world, path, doomed
        self.republished: set[str] = set()
        self.done = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, method: str, path: str) -> None:
        if method != "DELETE" or f"/v2/{self.path}/manifests/" not in path or path.endswith("0" * 64):
            return  # (the all-zero digest: the preflight's probe of deletion, before any slice)
        with self.lock:
            if self.done.is_set():
                return
            for tag, pushed in self.doomed.items():
                info = self.world.client.resolve(self.path, tag)
                if info is not None and info.digest == pushed.digest:
                    self.world.publish("api", tag, "git-branch", git_ref=tag, like=pushed, published_at=recent())
                    self.republished.add(tag)
            self.done.set()


def test_a_tag_published_again_during_an_earlier_slice_is_not_removed(
    world: World, registry_open: RegistryService, tmp_path: Path,
) -> None:
    """Under --time-budget the removals go in slices (8 tags per worker): the stages storage is listed again
    before each slice, so a tag published again while an earlier slice ran is left alone too."""
    git = GitRepo(tmp_path / "project")
    head = git.commit("one")
    git.git("update-ref", "refs/heads/main", head)
    doomed: dict[str, PushedImage] = {}
    hook: RepublishAtFirstDelete | None = None
    proxy = LatencyProxy(registry_open.host, delay=0, before=lambda m, p: hook(m, p) if hook is not None else None)
    try:
        pw = World(world.client, RepoAddress(proxy.host, world.images_repo.path),
                   RepoAddress(proxy.host, world.stages.path))
        pw.publish("api", "main", "git-branch", git_ref="main")
        for n in range(12):  # no such branches: all doomed, in two slices
            doomed[f"gone-{n}"] = pw.publish("api", f"gone-{n}", "git-branch", git_ref=f"gone-{n}")
        hook = RepublishAtFirstDelete(pw, world.images_repo.child("api").path, doomed)
        report = tmp_path / "report.json"
        result = run_cli("cleanup", "-i", str(pw.images_repo), "-s", str(pw.stages), "--dir", str(git.path),
                         "--without-kube", "--parallel", "1", "--time-budget", "10m", "--report", str(report),
                         cwd=tmp_path)
    finally:
        proxy.stop()
    assert hook.done.is_set() and hook.republished, "nothing was published again: the test would prove nothing"
    assert result.returncode == 0, result.stderr
    assert len(hook.republished) == 4  # the second slice's tags
    assert world.tags("api") == {"main"} | hook.republished
    decisions = {d["tag"]: d for d in json.loads(report.read_text())["decisions"] if d["kind"] == "tag"}
    assert {t for t, d in decisions.items() if d["outcome"] == "moved"} == hook.republished
    assert {t for t, d in decisions.items() if d["outcome"] == "removed"} == set(doomed) - hook.republished


def test_a_tag_published_again_during_planning_with_local_records_is_not_removed(
    world: World, registry_open: RegistryService, tmp_path: Path,
) -> None:
    """The same with a ``:local`` stages storage: the records are files, read again right before the removals."""
    from ci_env import records
    from tests.cleanup.test_cleanup_local_stages import write_werf_yaml

    project = f"p{tmp_path.name[-8:].lower().replace('_', '-')}x"
    state = tmp_path / "state"
    git = GitRepo(tmp_path / "project")
    write_werf_yaml(git.path, project)
    head = git.commit("one")
    git.git("update-ref", "refs/heads/main", head)
    api_path = world.images_repo.child("api").path
    box: dict[str, object] = {}

    def republish() -> None:
        pw = box["world"]
        assert isinstance(pw, World)
        pw.publish("api", "feature-a", "git-branch", git_ref="feature-a", like=box["feature"],  # type: ignore[arg-type]
                   published_at=recent())

    hook = RepublishAtFirstRead(api_path, "feature-a", republish)
    proxy = LatencyProxy(registry_open.host, delay=0, before=hook)
    try:
        pw = World(world.client, RepoAddress(proxy.host, world.images_repo.path),
                   RepoAddress(proxy.host, world.stages.path))
        pw.store = records.open_store(None, project, env={"XDG_STATE_HOME": str(state)})
        box["world"] = pw
        pw.publish("api", "main", "git-branch", git_ref="main")
        box["feature"] = pw.publish("api", "feature-a", "git-branch", git_ref="feature-a")  # no such branch
        report = tmp_path / "report.json"
        result = run_cli("cleanup", "-i", str(pw.images_repo), "-s", ":local", "--dir", str(git.path),
                         "--without-kube", "--report", str(report), cwd=tmp_path,
                         env={"DOCKER_HOST": f"unix://{tmp_path / 'no.sock'}", "XDG_STATE_HOME": str(state)})
    finally:
        proxy.stop()
    assert hook.done.is_set(), "the publish never ran: the test would prove nothing\n" + result.stderr
    assert result.returncode == 0, result.stderr
    assert world.tags("api") == {"main", "feature-a"}
    decisions = {d["tag"]: d for d in json.loads(report.read_text())["decisions"] if d["kind"] == "tag"}
    assert decisions["feature-a"]["outcome"] == "moved" and "published again" in decisions["feature-a"]["error"]
