"""Untag 1,000 tags on a local registry: ``ci-env registry untag`` (the CLI as a user runs it, one command for all
the tags, default settings unless ``--parallel`` is given) against `skopeo delete` one tag at a time.

Half the tags are alone on their image, half share it with a kept tag. ci-env moves every tag onto a placeholder
and deletes the placeholder (a HEAD and a PUT per tag, one DELETE per batch): no image is deleted. skopeo
deletes by digest, so it also removes the kept tags: the benchmark reports how many it destroyed.

``--latency-ms 40`` puts both behind ``tests.services.latency_proxy`` (40 ms per request and per new connection,
at most ``--max-connections`` connections at once), as a registry far away would be; the images are pushed
directly, only the removals go through the proxy.
Run by hand: ``python -m bench.untag_bench [--tags N] [--parallel N] [--latency-ms MS]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ci_env.registry import manifests as mf
from ci_env.registry.client import PROBE_DIGEST, RegistryClient
from tests.services.latency_proxy import LatencyProxy
from tests.services.registry import RegistryService, start_registry


def populate(
    client: RegistryClient, repo: str, lone: int, shared: int
) -> tuple[list[str], list[str], list[str], set[str]]:
    """Push ``lone`` images with one tag each and ``shared`` images with a kept and a dropped tag.

    Returns the lone tags, the dropped shared tags, the kept tags and the digests of the lone images.
    """
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    layer = b"bench layer"
    client.ensure_blob(repo, mf.sha256_digest(config), config)
    client.ensure_blob(repo, mf.sha256_digest(layer), layer)

    def manifest(n: int) -> bytes:
        return json.dumps({
            "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": mf.sha256_digest(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": mf.sha256_digest(layer),
                        "size": len(layer)}],
            "annotations": {"bench": str(n)},
        }).encode()

    lone_tags = [f"lone-{n}" for n in range(lone)]
    shared_tags = [f"drop-{n}" for n in range(shared)]
    kept_tags = [f"keep-{n}" for n in range(shared)]
    jobs = [(t, manifest(n)) for n, t in enumerate(lone_tags)]
    jobs += [(t, manifest(lone + n)) for n, t in enumerate(shared_tags)]
    jobs += [(t, manifest(lone + n)) for n, t in enumerate(kept_tags)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda job: client.put_manifest(repo, job[0], job[1], mf.OCI_MANIFEST), jobs))
    return lone_tags, shared_tags, kept_tags, {mf.sha256_digest(manifest(n)) for n in range(lone)}


def run_ours(service: RegistryService, repo: str, tags: list[str], parallel: int | None, host: str,
             ) -> dict[str, float]:
    """One ``ci-env registry untag`` of every tag, timed from start to exit; requests from the access log."""
    command = [shutil.which("ci-env") or "", "registry", "untag"] if shutil.which("ci-env") else [
        sys.executable, "-m", "ci_env", "registry", "untag"]
    command += [f"{host}/{repo}:{tag}" for tag in tags] + ([f"--parallel={parallel}"] if parallel else [])
    log0 = len(service.requests())
    start = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "DOCKER_CONFIG": tempfile.mkdtemp()})
    wall = time.monotonic() - start
    made = service.requests()[log0:]
    if done.returncode != 0:
        raise SystemExit(f"ci-env registry untag failed ({done.returncode}): {done.stderr[-2000:]}")
    kinds = {kind: sum(1 for m, p, _ in made if m == kind and "/manifests/" in p) for kind in ("HEAD", "PUT", "DELETE")}
    return {"wall": wall, "total": len(made), "listing": sum(1 for _, p, _ in made if p.endswith("/tags/list")),
            "probe": sum(1 for m, p, _ in made if m == "DELETE" and p.endswith(PROBE_DIGEST)), **kinds}


def run_skopeo(host: str, repo: str, tags: list[str]) -> float:
    skopeo = shutil.which("skopeo")
    assert skopeo, "skopeo is not installed"
    start = time.monotonic()
    for tag in tags:
        subprocess.run([skopeo, "delete", "--tls-verify=false", f"docker://{host}/{repo}:{tag}"],
                       capture_output=True, check=False)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=1000, help="tags to remove (half lone, half shared)")
    parser.add_argument("--parallel", type=int, default=None, help="ci-env's --parallel (default: its own)")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay per request and per new connection, through a proxy (0: direct)")
    parser.add_argument("--max-connections", type=int, default=64, help="connections the proxy serves at once")
    parser.add_argument("--skopeo-sample", type=int, default=0,
                        help="time skopeo on this many tags only and extrapolate (0: all)")
    args = parser.parse_args()
    lone_n, shared_n = args.tags // 2, args.tags - args.tags // 2
    with tempfile.TemporaryDirectory() as tmp:
        service = start_registry(Path(tmp) / "registry")
        proxy = LatencyProxy(service.host, delay=args.latency_ms / 1000,
                             max_connections=args.max_connections) if args.latency_ms else None
        host = proxy.host if proxy else service.host
        try:
            client = RegistryClient(service.host)
            lone, shared, kept, _ = populate(client, "bench/ours", lone_n, shared_n)
            ours = run_ours(service, "bench/ours", lone + shared, args.parallel, host)
            left = set(client.list_tags("bench/ours"))
            ours_kept_lost = sum(1 for t in kept if t not in left)
            ours_not_removed = sum(1 for t in lone + shared if t in left)

            populate(client, "bench/skopeo", lone_n, shared_n)
            victims = lone + shared
            if args.skopeo_sample:  # every other tag of each kind, evenly spread
                step = max(1, len(victims) // args.skopeo_sample)
                victims = victims[::step][:args.skopeo_sample]
            skopeo_wall = run_skopeo(host, "bench/skopeo", victims) * (len(lone + shared) / len(victims))
            left = set(client.list_tags("bench/skopeo"))
            skopeo_kept_lost = sum(1 for t in kept if t not in left)
        finally:
            if proxy:
                proxy.stop()
            service.stop()
    removed = len(lone) + len(shared)
    where = (f"through a proxy adding {args.latency_ms:.0f} ms per request and per connection "
             f"(at most {args.max_connections} connections)") if args.latency_ms else "loopback, no proxy"
    setting = f"--parallel {args.parallel}" if args.parallel else "default settings"
    print(f"tags removed per run: {args.tags} ({lone_n} alone on their image, {shared_n} sharing it with a kept tag; "
          f"{len(kept)} kept tags in the repository), `ci-env registry untag` at {setting}, {where}")
    print(f"ci-env : {ours['wall']:8.2f} s  {ours['total']:.0f} requests = {ours['total'] / removed:.2f} per removed "
          f"tag (target <= 2.5): {ours['HEAD']:.0f} HEAD, {ours['PUT']:.0f} PUT, {ours['DELETE']:.0f} DELETE of "
          f"manifests ({ours['probe']:.0f} the preflight's probe), {ours['listing']:.0f} tag list")
    print(f"         kept tags destroyed: {ours_kept_lost}; tags not removed: {ours_not_removed}")
    sampled = f", extrapolated from {args.skopeo_sample} tags" if args.skopeo_sample else ""
    print(f"skopeo : {skopeo_wall:8.2f} s  (one `skopeo delete` per tag{sampled}); kept tags destroyed: "
          f"{skopeo_kept_lost} of {len(kept)}")
    print(f"speed-up: {skopeo_wall / ours['wall']:.1f}x (target >= 10x)")
    full = not args.skopeo_sample
    if ours_kept_lost or ours_not_removed or (full and skopeo_kept_lost != len(kept)):
        raise SystemExit("benchmark check failed: ci-env lost a kept tag or left a tag, or skopeo kept shared tags")


if __name__ == "__main__":
    main()
