"""Plan and clean a repository of 5,000 tags (1,000 stale) on a local registry, with a real git repository.

4,000 tags belong to branches that exist, 1,000 to branches that were deleted; half of the stale tags are
alone on their image (plain path), half share it with a kept tag (placeholder path). Every tag has its
publication record, as build-and-publish writes. Prints the wall time of the plan (``--dry-run``) and of
the cleanup, and HTTP requests (from the registry's access log) per removed tag.
``--latency-ms 40`` runs the two commands through ``tests.services.latency_proxy`` (40 ms per request and per new
connection, at most ``--max-connections`` connections at once), as against a registry far away; publishing
goes directly. Run by hand: ``python -m bench.cleanup_bench [--tags 5000] [--stale 1000] [--latency-ms 40]``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from ci_env import records
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from tests.cleanup.gitrepo import GitRepo
from tests.registry_client.images import push_image
from tests.services.latency_proxy import LatencyProxy
from tests.services.registry import start_registry

BUDGET_SECONDS = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=5000)
    parser.add_argument("--stale", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay per request and per new connection, through a proxy (0: direct)")
    parser.add_argument("--max-connections", type=int, default=64, help="connections the proxy serves at once")
    parser.add_argument("--parallel", type=int, default=int(os.environ.get("BENCH_PARALLEL", "16")))
    args = parser.parse_args()
    kept_count = args.tags - args.stale
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        proxy = LatencyProxy(registry.host, delay=args.latency_ms / 1000,
                             max_connections=args.max_connections) if args.latency_ms else None
        try:
            client = RegistryClient(registry.host, docker_config=tmp / "none")  # publishing goes directly
            far = proxy.host if proxy else registry.host  # the address the records name and the commands use
            images = RepoAddress(far, "bench/images")
            stages = RepoAddress(far, "bench/stages")
            store = records.open_store(stages, "", client=client)
            records.add_managed_image(store, "app")
            path = images.child("app").path
            git = GitRepo(tmp / "project")
            head = git.commit("one")
            kept = [f"keep-{n}" for n in range(kept_count)]
            stale = [f"gone-{n}" for n in range(args.stale)]
            subprocess.run(["git", "-C", str(git.path), "update-ref", "--stdin"], check=True, text=True,
                           input="".join(f"create refs/heads/{b} {head}\n" for b in kept))
            started = time.monotonic()

            def publish(index: int) -> None:
                tag = kept[index] if index < kept_count else stale[index - kept_count]
                shared_with = index - kept_count < args.stale // 2 and index >= kept_count
                if shared_with:  # this stale tag shares the image of a kept tag
                    body, info = client.get_manifest(path, kept[index - kept_count])
                    client.put_manifest(path, tag, body, info.media_type)
                    digest = info.digest
                else:
                    digest = push_image(client, path, [tag], seed=tag).digest
                records.write_publication(store, records.Publication(
                    image="app", tag=tag, repository=str(images.child("app")), stored_tag=tag,
                    strategy="git-branch", digest=digest, signature="0" * 64, published_at="2024-01-01T00:00:00Z",
                    git_branch=tag))

            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(publish, range(kept_count)))
                list(pool.map(publish, range(kept_count, args.tags)))
            print(f"published {args.tags} tags with records in {time.monotonic() - started:.1f}s")
            env = {**os.environ, "DOCKER_CONFIG": str(tmp / "none")}
            print("commands run " + (f"through a proxy adding {args.latency_ms:.0f} ms per request and per connection "
                                     f"(at most {args.max_connections} connections)" if proxy else "on loopback")
                  + f", --parallel {args.parallel}")
            base = [sys.executable, "-m", "ci_env", "cleanup", "-i", str(images),
                    "-s", str(stages), "--dir", str(git.path), "--parallel",
                    str(args.parallel), "--without-kube"]
            timings: dict[str, tuple[float, int]] = {}
            for label, extra in (("plan (--dry-run)", ["--dry-run"]), ("cleanup", [])):
                before = len(registry.requests())
                started = time.monotonic()
                result = subprocess.run([*base, *extra], env=env, capture_output=True, text=True)
                elapsed = time.monotonic() - started
                requests = len(registry.requests()) - before
                if result.returncode != 0:
                    print(result.stderr[-2000:])
                    raise SystemExit(f"{label} failed")
                progress = [line for line in result.stderr.splitlines() if line.startswith("ci-env: ")]
                breakdown = Counter(request_kind(method, request_path) for method, request_path, _status
                                    in registry.requests()[before:])
                timings[label] = (elapsed, requests)
                print(f"{label}: {elapsed:.1f}s, {requests} HTTP requests, {len(progress)} progress lines on stderr")
                print("  " + ", ".join(f"{kind}: {count}" for kind, count in breakdown.most_common()))
                print("  when (s from the first request, by the registry's access log): " + ", ".join(
                    f"{kind} {first:.0f}-{last:.0f}" for kind, (first, last) in _spans(registry.log_path, before)))
            remaining = set(client.list_tags(path))
            removed = args.stale
            print(f"cleanup removed {args.tags - len(remaining)} of {args.stale} stale tags; "
                  f"kept tags intact: {set(kept) <= remaining}; no stale tag left: {not (set(stale) & remaining)}")
            plan_time, plan_requests = timings["plan (--dry-run)"]
            elapsed, requests = timings["cleanup"]
            print(f"HTTP requests per removed tag: {requests / removed:.2f} for the whole cleanup run (planning, "
                  f"removal, forgetting records); {(requests - plan_requests) / removed:.2f} beyond planning")
            print(f"time per removed tag beyond planning: {(elapsed - plan_time) / removed * 1000:.0f} ms")
            print(f"within budget ({BUDGET_SECONDS:.0f}s for the cleanup run): {elapsed <= BUDGET_SECONDS}")
        finally:
            if proxy:
                proxy.stop()
            registry.stop()


_STAMPED = re.compile(r'\[([^\]]+)\] "(GET|HEAD|PUT|POST|DELETE|PATCH) (\S+) HTTP')


def _spans(log: Path, skip: int) -> list[tuple[str, tuple[float, float]]]:
    """Each request kind's first and last second (from the first request after ``skip``), in order of start."""
    stamped = [(datetime.strptime(when, "%d/%b/%Y:%H:%M:%S %z").timestamp(), request_kind(method, path))
               for when, method, path in _STAMPED.findall(log.read_text(errors="replace"))][skip:]
    if not stamped:
        return []
    origin = stamped[0][0]
    spans: dict[str, tuple[float, float]] = {}
    for when, kind in stamped:
        first, _ = spans.get(kind, (when - origin, 0.0))
        spans[kind] = (first, when - origin)
    return sorted(spans.items(), key=lambda item: item[1][0])


def request_kind(method: str, path: str) -> str:
    """``METHOD repository/what`` of a Registry API request (``images/manifests``, ``stages/tags``...)."""
    parts = path.split("?", 1)[0].split("/")
    repository = "stages" if "/stages/" in path else "images"
    what = next((p for p in ("manifests", "blobs", "tags") if p in parts), "other")
    if what == "manifests" and parts[-1].startswith("ci-env-"):
        what = "records"
    return f"{method} {repository}/{what}"


if __name__ == "__main__":
    main()
