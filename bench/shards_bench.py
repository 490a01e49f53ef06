"""A namespace sweep by retention rules, split over 1, 2 and 4 shards: ``cleanup --repository NS/ --rule
keep-last=1 --shard I/N`` over 1,000 repositories of 1-3 tags each (a foreign builder's: no records), through
``tests.services.latency_proxy`` (40 ms per request and per new connection, 64 connections at once per shard:
each is a runner host of its own), the shards run as parallel
processes, as parallel CI jobs would. Each shard count cleans a namespace of its own (same shape), so every run
removes for real. Prints the wall time (until the last shard ends), the requests the proxy relayed, the tags
removed, and each wall time as a ratio of one shard's; then merges the shards' reports (``report merge``) and
checks that every repository was handled by exactly one shard.

Run by hand: ``python -m bench.shards_bench [--repositories 1000] [--latency-ms 40] [--shards 1,2,4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ci_env.registry.client import RegistryClient
from tests.registry_client.images import push_image
from tests.services.latency_proxy import LatencyProxy
from tests.services.registry import start_registry


def fill(client: RegistryClient, namespace: str, repositories: int) -> int:
    """``repositories`` repositories of 1-3 tags (a day apart) under ``namespace``; the tags keep-last=1 removes."""
    now = datetime.now(timezone.utc)

    def one(number: int) -> int:
        count = 1 + number % 3
        for age in range(count):
            created = (now - timedelta(days=age + 1)).isoformat().replace("+00:00", "Z")
            push_image(client, f"{namespace}/svc-{number:04d}", [f"t{age}"], created=created,
                       seed=f"{namespace}-{number}-{age}")
        return count - 1

    with ThreadPoolExecutor(max_workers=16) as pool:
        return sum(pool.map(one, range(repositories)))


def sweep(host: str, namespace: str, shards: int, tmp: Path, parallel: int) -> tuple[float, list[Path]]:
    """Run the shards as parallel processes; (wall seconds, their reports). Exits when one fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WERF_", "CI_", "GITHUB_", "GITLAB_"))}
    env.update(DOCKER_CONFIG=str(tmp / "none"), XDG_STATE_HOME=str(tmp / "state"), KUBECONFIG=str(tmp / "none"))
    reports = [tmp / f"{namespace}-{index}.json" for index in range(1, shards + 1)]
    started = time.monotonic()
    processes = [subprocess.Popen(
        [sys.executable, "-m", "ci_env", "cleanup", "--registry", host, "--repository", f"{namespace}/",
         "--rule", "keep-last=1", "--shard", f"{index}/{shards}", "--parallel", str(parallel),
         "--report", str(report)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for index, report in enumerate(reports, 1)]
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            sys.exit(f"a shard failed ({process.returncode}):\n{err[-2000:]}")
    return time.monotonic() - started, reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repositories", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--shards", default="1,2,4")
    parser.add_argument("--parallel", type=int, default=8, help="--parallel of each shard")
    parser.add_argument("--max-connections", type=int, default=64,
                        help="connections the proxy serves at once per shard (each shard is a runner host)")
    args = parser.parse_args()
    counts = [int(n) for n in args.shards.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        registry = start_registry(tmp / "registry")
        # each shard is a CI job on a runner of its own: the registry front's bound on connections per client host
        # (64, as in the other benches) holds per shard, not for all of them together
        proxy = LatencyProxy(registry.host, delay=args.latency_ms / 1000,
                             max_connections=args.max_connections * max(counts))
        try:
            client = RegistryClient(registry.host, docker_config=tmp / "none")  # filling goes directly
            stale = {n: fill(client, f"bench{n}", args.repositories) for n in counts}
            print(f"{args.repositories} repositories per namespace, 1-3 tags each; {args.latency_ms:.0f} ms per "
                  f"request through the proxy; --parallel {args.parallel} per shard")
            print(f"{'shards':>6}  {'wall s':>8}  {'requests':>8}  {'removed':>7}  {'vs 1 shard':>10}")
            first: float | None = None
            for shards in counts:
                before = proxy.requests
                wall, reports = sweep(proxy.host, f"bench{shards}", shards, tmp, args.parallel)
                requests = proxy.requests - before
                merged = tmp / f"merged-{shards}.json"
                subprocess.run([sys.executable, "-m", "ci_env", "report", "merge", *map(str, reports), "-o",
                                str(merged)], check=True, capture_output=True)
                document = json.loads(merged.read_text())
                handled = {d["repository"] for d in document["decisions"]}
                assert len(handled) == args.repositories, f"{len(handled)} repositories handled"
                removed = document["summary"]["removed"]
                assert removed == stale[shards], f"{removed} removed, {stale[shards]} expected"
                first = first or wall
                print(f"{shards:>6}  {wall:>8.1f}  {requests:>8}  {removed:>7}  {wall / first:>10.2f}")
        finally:
            proxy.stop()
            registry.stop()


if __name__ == "__main__":
    main()
