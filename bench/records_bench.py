"""A nightly cleanup of a large repository: what the second run reads when only a few tags are new.

On a local registry: ``--tags`` tags of one image (each a branch of a real git repository, all kept), each with
its publication record. The records and the listing are the point, not the images, so the first night is set up
quickly: the tags are written straight into the registry's storage (the tag link files distribution keeps, all on
one tiny image), and their records as the one snapshot a first cleanup leaves (written by ``ci_env.records.snapshots``'
compaction). Then, through the Registry API as build-and-publish does:

1. ``--new`` more tags are published (new branches, each tag PUT and its record written), and the branches of
   ``--removed`` of the first night's tags are deleted (the plan removes those tags);
2. ``cleanup --dry-run`` and ``cleanup``: the second night. Counted from the registry's access log: every request
   by kind, and the objects read (manifest and blob GETs, HEADs) besides the tag listing pages.

``--one-by-one`` writes the first night's records one by one instead (as before snapshots; slow for 50,000) and
measures the first cleanup, which reads them all and compacts them.

The stages repository holds the records only (no stage images: stages cost one HEAD each, see the docs).
``--latency-ms 40`` runs the measured runs of step 3 through a latency proxy (``tests.services.latency_proxy``).
Run by hand: ``python -m bench.records_bench [--tags 50000] [--new 500] [--removed 50] [--latency-ms 0]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ci_env import records
from ci_env.records import snapshots
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.gitrepo import GitRepo
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService, start_registry

#: The issue's targets: objects read by the second run besides the tag listing pages, at most 1000 (50,000 tags,
#: 500 new) and at most 2 per new tag plus 2 per removed tag (issue 18).
TARGET_READS = 1000
PER_NEW = PER_REMOVED = 2


def publish(client: RegistryClient, store: records.RecordStore, images: RepoAddress, named: RepoAddress,
            names: list[str], digest: str, body: bytes, media_type: str) -> None:
    """Tag ``names`` on the one image and write their records (naming the repository ``named``: the address
    cleanup will use), 16 at a time."""

    def one(name: str) -> None:
        client.put_manifest(images.path, name, body, media_type)
        records.write_publication(store, publication(named, name, digest))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, names))


def tag_in_storage(registry: RegistryService, path: str, names: list[str], digest: str) -> None:
    """Tag ``names`` on manifest ``digest`` of ``path`` by writing distribution's tag link files directly."""
    tags = registry.root / "data/docker/registry/v2/repositories" / path / "_manifests/tags"
    algorithm, hexa = digest.split(":", 1)
    for name in names:
        for link in (tags / name / "current/link", tags / name / "index" / algorithm / hexa / "link"):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.write_text(digest)


def snapshot_of(store: records.RegistryStore, images: RepoAddress, names: list[str], digest: str) -> None:
    """Write the records of ``names`` as the one snapshot a compaction writes (nothing else in the store)."""
    entries = [snapshots.Entry(snapshots.new_version(), publication(images, name, digest), True) for name in names]
    tag = f"{snapshots.SNAPSHOT_PREFIX}{snapshots.new_version()}"
    store.write_snapshot(tag, snapshots.snapshot_layers(entries, []), len(entries))


def publication(images: RepoAddress, name: str, digest: str) -> records.Publication:
    return records.Publication(image="app", tag=name, repository=str(images), stored_tag=name, strategy="git-branch",
                               digest=digest, signature="0" * 64, published_at="2024-01-01T00:00:00Z",
                               git_branch=name)


def branches(git: GitRepo, names: list[str]) -> None:
    head = git.git("rev-parse", "HEAD").strip()
    subprocess.run(["git", "-C", str(git.path), "update-ref", "--stdin"], check=True, text=True,
                   input="".join(f"create refs/heads/{n} {head}\n" for n in names))


def timed_cleanup(label: str, registry: RegistryService, images: str, stages: str, git: GitRepo, tmp: Path,
                  *extra: str) -> tuple[float, list[tuple[str, str, int]], str]:
    """``ci-env cleanup`` in a fresh process, as users run it: (seconds, the registry's requests it made, its
    stderr); exits naming ``label`` when it fails."""
    env = {**os.environ, "DOCKER_CONFIG": str(tmp / "none")}
    args = [sys.executable, "-m", "ci_env", "cleanup", "-i", images, "-s", stages,
            "--dir", str(git.path), "--without-kube", "--parallel", os.environ.get("BENCH_PARALLEL", "16"), *extra]
    before = len(registry.requests())
    started = time.monotonic()
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        print(result.stderr[-2000:])
        raise SystemExit(f"{label} failed")
    return elapsed, registry.requests()[before:], result.stderr


def run(label: str, registry: RegistryService, host: str, git: GitRepo, tmp: Path, *extra: str,
        target: int = TARGET_READS) -> None:
    """Run cleanup against ``host`` (the registry, or the proxy in front of it) and print what it cost."""
    elapsed, made, _stderr = timed_cleanup(label, registry, f"{host}/bench/images", f"{host}/bench/stages", git, tmp,
                                           *extra)
    kinds = Counter(kind(method, path) for method, path, _status in made)
    reads = sum(n for k, n in kinds.items() if k.split()[0] in ("GET", "HEAD") and not k.endswith("/tags"))
    print(f"{label}: {elapsed:.1f}s, {len(made)} requests; objects read besides the tag listings: {reads}")
    print("  " + ", ".join(f"{k}: {n}" for k, n in kinds.most_common()))
    if "--dry-run" in extra:  # the target is the dry run's (the real run also reads what it removes)
        print(f"  within the target (at most {target} objects read): {reads <= target}")


def kind(method: str, path: str) -> str:
    """``METHOD repository/what``: the tag listing, records, snapshots, other manifests, blobs."""
    parts = path.split("?", 1)[0].split("/")
    repository = "stages" if "/stages/" in path else "images"
    what = next((p for p in ("manifests", "blobs", "tags") if p in parts), "other")
    if what == "manifests" and parts[-1].startswith("ci-env-snapshot-"):
        what = "snapshot"
    elif what == "manifests" and parts[-1].startswith("ci-env-"):
        what = "records"
    return f"{method} {repository}/{what}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=50_000)
    parser.add_argument("--new", type=int, default=500)
    parser.add_argument("--removed", type=int, default=50, help="first-night tags whose branch is deleted")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--one-by-one", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        proxy = None
        try:
            host: str = registry.host  # the address cleanup uses, and the records name
            if args.latency_ms:
                from tests.services.latency_proxy import LatencyProxy

                proxy = LatencyProxy(registry.host, delay=args.latency_ms / 1000)
                host = proxy.host
            client = RegistryClient(registry.host, docker_config=tmp / "none")  # publishing: straight to it
            images = RepoAddress(registry.host, "bench/images").child("app")
            named = RepoAddress(host, "bench/images").child("app")
            store = records.open_store(RepoAddress(registry.host, "bench/stages"), "", client=client)
            records.add_managed_image(store, "app")
            pushed = push_image(client, images.path, ["seed"], seed="bench")
            body, info = client.get_manifest(images.path, pushed.digest)
            git = GitRepo(tmp / "project")
            git.commit("one")
            names = [f"branch-{n:06d}" for n in range(args.tags - 1)]  # with "seed": --tags tags
            branches(git, [*names, "seed"])
            started = time.monotonic()
            if args.one_by_one:
                publish(client, store, images, named, names, pushed.digest, body, info.media_type)
                print(f"published {args.tags} tags with records one by one in {time.monotonic() - started:.0f}s")
                run("first cleanup (reads every record, compacts them)", registry, host, git, tmp)
            else:
                tag_in_storage(registry, images.path, names, pushed.digest)
                assert isinstance(store, records.RegistryStore)
                snapshot_of(store, named, names, pushed.digest)
                print(f"the first night: {args.tags} tags and the snapshot of their records, set up in "
                      f"{time.monotonic() - started:.0f}s")
            new = [f"new-{n:05d}" for n in range(args.new)]
            branches(git, new)
            publish(client, store, images, named, new, pushed.digest, body, info.media_type)
            gone = names[:args.removed]
            subprocess.run(["git", "-C", str(git.path), "update-ref", "--stdin"], check=True, text=True,
                           input="".join(f"delete refs/heads/{n}\n" for n in gone))
            where = f"{args.latency_ms:.0f} ms per request" if args.latency_ms else "loopback"
            print(f"the second night: {args.new} new tags, {len(gone)} tags whose branch is gone ({where})")
            target = min(TARGET_READS, PER_NEW * args.new + PER_REMOVED * len(gone))
            run("second night, cleanup --dry-run", registry, host, git, tmp, "--dry-run", target=target)
            run("second night, cleanup", registry, host, git, tmp, target=target)
        finally:
            if proxy is not None:
                proxy.stop()
            registry.stop()


if __name__ == "__main__":
    main()
