"""A year of metadata records: what they cost every cleanup before pruning, and on the night after.

On a local registry and a real git repository: ``--days`` days of ``--builds`` builds a day on ``main`` (one commit
each, made at once by ``git fast-import``), ``--images`` images. Every build writes one metadata record per image
(``ci-env-meta-<commit>-<signature>``), as build-and-publish does, also when the image did not change; an image's
content signature changes every ``--every`` builds. Earlier nights removed the old images already: the images repo
holds the content-signature tags of the newest ``--kept`` signatures per image (with their publication records and
stages), the stages repository every record of the year. The records are written straight into the registry's
storage (the tag link files distribution keeps, all on one record manifest: cleanup reads a record from its tag name
alone), so the year is set up in seconds.

Measured, each in a fresh process, with requests counted from the registry's access log:

1. the stages repository's tag listing (what every cleanup, and every reader of the records, pays);
2. ``cleanup --dry-run`` before pruning (werf's default keep policies: ``main`` keeps 10 images of each);
3. ``cleanup``: the night that prunes (the records of kept images but those of the commits that keep them, and
   those of images no longer there, as werf does);
4. the tag listing and ``cleanup --dry-run`` of the night after.

Run by hand: ``python -m bench.metadata_bench [--days 365] [--builds 30] [--images 3]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.records_bench import tag_in_storage, timed_cleanup
from ci_env import records
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.world import World, signature_of
from tests.services.registry import RegistryService, start_registry


def listing(registry: RegistryService, client: RegistryClient, path: str) -> tuple[int, float, int]:
    """(tags, seconds, requests) of one listing of ``path``'s tags."""
    before = len(registry.requests())
    started = time.monotonic()
    tags = client.list_tags(path)
    return len(tags), time.monotonic() - started, len(registry.requests()) - before


def cleanup(label: str, registry: RegistryService, world: World, git: GitRepo, tmp: Path, *extra: str) -> str:
    """Run ``ci-env cleanup`` in a fresh process; print its time, requests and its summary line."""
    elapsed, made, stderr = timed_cleanup(label, registry, str(world.images_repo), str(world.stages), git, tmp,
                                          *extra)
    kinds = Counter(f"{method} {'stages' if '/stages/' in path else 'images'}"
                    f"/{next((p for p in ('manifests', 'blobs', 'tags') if p in path.split('?')[0].split('/')), '')}"
                    for method, path, _status in made)
    summary = [line for line in stderr.splitlines() if line.startswith("cleanup: ")][-1]
    print(f"{label}: {elapsed:.1f}s, {len(made)} requests ({', '.join(f'{k}: {n}' for k, n in kinds.most_common())})")
    print(f"  {summary}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--builds", type=int, default=30, help="builds (commits) a day")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--every", type=int, default=10, help="builds per content signature of an image")
    parser.add_argument("--kept", type=int, default=12, help="content-signature tags per image left by earlier nights")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        try:
            client = RegistryClient(registry.host, docker_config=tmp / "none")
            world = World(client, RepoAddress(registry.host, "bench/images"),
                          RepoAddress(registry.host, "bench/stages"))
            started = time.monotonic()
            git = GitRepo(tmp / "project")
            count = args.days * args.builds
            step = 86400 // args.builds
            commits = list(reversed(git.long_history(count, int(time.time()) - 3600, step)))  # oldest first
            images = [f"img{n}" for n in range(args.images)]

            def signature(image: str, index: int) -> str:
                return signature_of(f"{image}-{index // args.every}")

            names = [f"{records.METADATA_PREFIX}{records.metadata_key(commit, signature(image, index))}"
                     for index, commit in enumerate(commits) for image in images]
            blocks = (count + args.every - 1) // args.every
            for image in images:  # the images earlier nights kept, with their records and stages
                for block in range(max(0, blocks - args.kept), blocks):
                    sig = signature(image, block * args.every)
                    pushed = world.publish(image, sig, "stages-signature", signature=sig)
                    world.stage(sig, like=pushed)
            one = records.CommitMetadata(images[0], commits[-1], signature(images[0], count - 1))
            records.write_metadata(world.store, one)
            resolved = client.resolve(world.stages.path, names[-args.images])
            assert resolved is not None
            tag_in_storage(registry, world.stages.path, names, resolved.digest)
            print(f"a year: {count} commits, {len(names)} metadata records of {args.images} images, "
                  f"{args.kept * args.images} content-signature tags and stages; set up in "
                  f"{time.monotonic() - started:.0f}s")
            tags, seconds, requests = listing(registry, client, world.stages.path)
            print(f"before pruning: the stages repository's listing: {tags} tags, {seconds * 1000:.0f} ms, "
                  f"{requests} requests")
            cleanup("before pruning, cleanup --dry-run", registry, world, git, tmp, "--dry-run")
            cleanup("the night that prunes, cleanup", registry, world, git, tmp)
            after_tags, after_seconds, after_requests = listing(registry, client, world.stages.path)
            print(f"the night after: the stages repository's listing: {after_tags} tags, "
                  f"{after_seconds * 1000:.0f} ms, {after_requests} requests "
                  f"({tags / max(after_tags, 1):.0f}x fewer tags, {seconds / max(after_seconds, 1e-6):.1f}x faster)")
            cleanup("the night after, cleanup --dry-run", registry, world, git, tmp, "--dry-run")
            left = records.read_metadata(records.open_store(world.stages, "", client=client))
            print(f"metadata records left: {len(left)}")
        finally:
            registry.stop()


if __name__ == "__main__":
    main()
