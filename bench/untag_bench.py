"""Untag 1,000 tags on a local registry: ci-env against `skopeo delete` one tag at a time.

Half the tags are alone on their digest (the plain path: HEAD + DELETE), half share their digest with a
kept tag (the placeholder path). skopeo deletes by digest, so it also removes the kept tags: the
benchmark reports how many it destroyed. Run by hand: ``python -m bench.untag_bench [--tags N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from ci_env.registry.untag import DefaultRemover, RemoverContext, untag_all
from tests.services.registry import RegistryService, start_registry


def populate(client: RegistryClient, repo: str, lone: int, shared: int) -> tuple[list[str], list[str], list[str]]:
    """Push ``lone`` images with one tag each and ``shared`` images with a kept and a dropped tag."""
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
    return lone_tags, shared_tags, kept_tags


def run_ours(
    service: RegistryService, repo: str, lone: list[str], shared: list[str], parallel: int
) -> dict[str, float]:
    remover = DefaultRemover(RemoverContext())
    address = RepoAddress(service.host, repo)
    client = remover.client(address)
    start = time.monotonic()
    log0 = len(service.requests())
    remover.preflight(address)
    client.prepare(repo)
    log1 = len(service.requests())
    summary_lone = untag_all([(address, t) for t in lone], lambda _: remover, parallel=parallel)
    log2 = len(service.requests())
    summary_shared = untag_all([(address, t) for t in shared], lambda _: remover, parallel=parallel)
    log3 = len(service.requests())
    wall = time.monotonic() - start
    failed = len(summary_lone.failed) + len(summary_shared.failed)
    return {"wall": wall, "listing_requests": log1 - log0, "plain_per_tag": (log2 - log1) / max(1, len(lone)),
            "placeholder_per_tag": (log3 - log2) / max(1, len(shared)), "failed": failed}


def run_skopeo(service: RegistryService, repo: str, tags: list[str]) -> float:
    skopeo = shutil.which("skopeo")
    assert skopeo, "skopeo is not installed"
    start = time.monotonic()
    for tag in tags:
        subprocess.run([skopeo, "delete", "--tls-verify=false", f"docker://{service.host}/{repo}:{tag}"],
                       capture_output=True, check=False)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=1000, help="tags to remove (half lone, half shared)")
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    lone_n, shared_n = args.tags // 2, args.tags - args.tags // 2
    with tempfile.TemporaryDirectory() as tmp:
        service = start_registry(Path(tmp) / "registry")
        try:
            client = RegistryClient(service.host)
            lone, shared, kept = populate(client, "bench/ours", lone_n, shared_n)
            ours = run_ours(service, "bench/ours", lone, shared, args.parallel)
            left = set(client.list_tags("bench/ours"))
            ours_kept_lost = sum(1 for t in kept if t not in left)
            ours_not_removed = sum(1 for t in lone + shared if t in left)

            populate(client, "bench/skopeo", lone_n, shared_n)
            skopeo_wall = run_skopeo(service, "bench/skopeo", lone + shared)
            left = set(client.list_tags("bench/skopeo"))
            skopeo_kept_lost = sum(1 for t in kept if t not in left)
        finally:
            service.stop()
    print(f"tags removed per run: {args.tags} ({lone_n} alone on their digest, {shared_n} sharing it with a kept tag)")
    print(f"ci-env : {ours['wall']:8.2f} s  (listing + map: {ours['listing_requests']} requests once)")
    print(f"         plain path {ours['plain_per_tag']:.2f} requests/tag, placeholder path "
          f"{ours['placeholder_per_tag']:.2f} requests/tag")
    print(f"         kept tags destroyed: {ours_kept_lost}; tags not removed: {ours_not_removed}; "
          f"failed: {ours['failed']:.0f}")
    print(f"skopeo : {skopeo_wall:8.2f} s  (one `skopeo delete` per tag); kept tags destroyed: "
          f"{skopeo_kept_lost} of {len(kept)}")
    print(f"speed-up: {skopeo_wall / ours['wall']:.1f}x (target >= 10x)")


if __name__ == "__main__":
    main()
