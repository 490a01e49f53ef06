"""One randomized soak run: ``ci-env cleanup`` of a few hundred stale tags against the real registry while
concurrent writers retag kept tags onto the images the plan removes and push new tags.

Set up (seeded): ``images`` tiny images in one repository; ``stale`` tags of branches that do not exist (the plan
removes them) and ``kept`` tags that no policy removes (``custom`` strategy, and ``main`` of the one branch), each
published with its record onto a random image, so stale and kept tags share images. Then ``writers`` threads,
each owning some of the kept tags, run from just before the cleanup starts until it ends: they retag their kept
tags onto images stale tags hold (the images whose deletion would take those tags along) and push new tags onto
them, pausing a random few milliseconds between writes. Writers never touch a stale tag.

Checked after each run (``SoakResult.problems``; empty when all holds):

- every tag a writer set holds the digest the writer set last, and every kept tag no writer touched its own;
- the report matches the registry: each tag reported ``removed`` is gone, each tag kept is there, nothing
  ``failed`` or ``moved`` (no writer moved a stale tag), and cleanup exited 0.

``python -m bench.soak_bench`` runs many; ``tests/soak/test_soak.py`` a few within the normal suite.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.world import World
from tests.registry_client.images import PushedImage, push_image

#: runs ``ci-env ARGS`` in ``cwd`` (a fresh process), returning (exit code, stdout + stderr).
Cli = Callable[[list[str], Path], tuple[int, str]]


@dataclass
class SoakResult:
    """What one run did and found."""

    seed: int
    stale: int
    kept: int
    writes: int = 0
    removed: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def soak_run(host: str, workdir: Path, git_dir: Path, seed: int, cli: Cli, *, stale: int = 200, kept: int = 30,
             images: int = 24, writers: int = 3) -> SoakResult:
    """One run on the registry at ``host`` (``git_dir``: a repository whose only branch is ``main``)."""
    rnd = random.Random(seed)
    client = RegistryClient(host)
    base = f"soak-{seed}-{rnd.getrandbits(32):08x}"
    world = World(client, RepoAddress(host, f"{base}/images"), RepoAddress(host, f"{base}/stages"))
    path = world.images_repo.child("app").path
    pushed = [push_image(client, path) for _ in range(images)]
    stale_tags = {f"stale-{n}": rnd.choice(pushed) for n in range(stale)}
    kept_tags = {f"keep-{n}": rnd.choice(pushed) for n in range(kept)}

    def publish(item: tuple[str, PushedImage]) -> None:
        tag, image = item
        if tag == "keep-0":
            world.publish("app", "main", "git-branch", git_ref="main", like=image)
        strategy = "git-branch" if tag.startswith("stale-") else "custom"
        world.publish("app", tag, strategy, git_ref=tag if strategy == "git-branch" else None, like=image)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(publish, [*stale_tags.items(), *kept_tags.items()]))
    kept_tags["main"] = kept_tags["keep-0"]
    doomed = sorted({image.digest for image in stale_tags.values()})
    bodies = {d: client.get_manifest(path, d) for d in doomed}
    result = SoakResult(seed, stale, len(kept_tags))

    final: dict[str, str] = {}  # tag -> the digest a writer set last
    lock = threading.Lock()
    stop = threading.Event()
    owned = [sorted(kept_tags)[i::writers] for i in range(writers)]

    def writer(number: int) -> None:
        own = random.Random(seed * 1009 + number)
        count = 0
        while not stop.is_set():
            digest = own.choice(doomed)
            body, info = bodies[digest]
            retag = own.random() < 0.6 and bool(owned[number])
            tag = own.choice(owned[number]) if retag else f"new-{number}-{count}"
            count += 1
            writer_client.put_manifest(path, tag, body, info.media_type)
            with lock:
                final[tag] = digest
                result.writes += 1
            stop.wait(own.uniform(0.0, 0.01))

    writer_client = RegistryClient(host)
    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(writers)]
    report = workdir / f"report-{seed}.json"
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        code, output = cli(["cleanup", "-i", str(world.images_repo), "-s", str(world.stages), "--dir",
                            str(git_dir), "--without-kube", "--report", str(report)], workdir)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    result.seconds = time.monotonic() - started
    problems = result.problems
    if code != 0:
        problems.append(f"cleanup exited {code}: {output[-2000:]}")
    now = _tag_map(client, path)
    for tag, digest in sorted(final.items()):
        if now.get(tag) != digest:
            problems.append(f"{tag}: a writer set it to {digest}, the registry has {now.get(tag)}")
    for tag, image in sorted(kept_tags.items()):
        if tag not in final and now.get(tag) != image.digest:
            problems.append(f"{tag}: kept at {image.digest}, the registry has {now.get(tag)}")
    try:
        decisions = [d for d in json.loads(report.read_text())["decisions"] if d["kind"] == "tag"]
    except (OSError, ValueError, KeyError) as exc:
        problems.append(f"no readable report: {exc}")
        decisions = []
    for decision in decisions:
        tag, outcome = decision["stored_tag"], decision["outcome"]
        if outcome == "removed":
            result.removed += 1
            if tag in now:
                problems.append(f"{tag}: reported removed, the registry has it at {now[tag]}")
        elif decision["action"] == "keep" and tag not in now:
            problems.append(f"{tag}: reported kept, the registry does not have it")
        elif outcome in ("failed", "moved", "not-attempted"):
            problems.append(f"{tag}: {outcome} {decision.get('error', '')}")
    reported = {d["stored_tag"] for d in decisions}
    for tag in stale_tags:
        if tag not in reported:
            problems.append(f"{tag}: a stale tag the report does not name")
    return result


def _tag_map(client: RegistryClient, path: str) -> dict[str, str]:
    tags = client.list_tags(path)
    with ThreadPoolExecutor(16) as pool:
        infos = list(pool.map(lambda t: client.resolve(path, t), tags))
    return {tag: info.digest for tag, info in zip(tags, infos, strict=True) if info is not None}
