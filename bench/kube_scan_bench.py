"""Scan a large cluster for the images in use: two contexts on the Kubernetes API test server (TLS),
each with N pods, N/4 ReplicaSets, N/10 Deployments and a few of the other kinds.

Prints the wall time of ``in_use.scan`` (one paged list call per kind and context, in parallel, each page
decoded as plain JSON) and, for comparison, of listing the same pods through the client's typed models
(``list_pod_for_all_namespaces()`` with its default deserialisation), plus ``users()`` lookups per second.
Run by hand: ``python -m bench.kube_scan_bench [--pods 5000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ci_env.cleanup.in_use import KubeSettings, scan
from ci_env.registry.reference import parse_address
from tests.services.kubeapi import Context, controller, cronjob, pod, start_kubeapi, write_kubeconfig

REG = "registry.example.com/team"


def objects(count: int, context: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(count):
        out.append(pod(f"{context}-p{i}", f"ns{i % 40}", [f"{REG}/app{i % 300}:v{i % 7}", "nginx:1.25"],
                       init=[f"{REG}/migrate:{i % 11}"],
                       image_ids=[f"docker-pullable://{REG}/app{i % 300}@sha256:{i:064x}"]))
    out += [controller("ReplicaSet", f"rs{i}", f"ns{i % 40}", [f"{REG}/app{i % 300}:v{i % 7}"])
            for i in range(count // 4)]
    out += [controller("Deployment", f"d{i}", f"ns{i % 40}", [f"{REG}/app{i % 300}:v{i % 7}"])
            for i in range(count // 10)]
    out += [cronjob(f"cj{i}", "batch", [f"{REG}/cron:{i}"]) for i in range(20)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        servers = []
        contexts = []
        for name in ("prod", "staging"):
            (tmp / name).mkdir()
            server = start_kubeapi(objects(args.pods, name), tokens={f"{name}-token"}, directory=tmp / name)
            servers.append(server)
            contexts.append(Context(name, server.url, f"{name}-token", server.ca_pem))
        config = write_kubeconfig(tmp / "config", contexts)
        try:
            started = time.perf_counter()
            found = scan(KubeSettings(kube_config=(config,)), {})
            scanned = time.perf_counter() - started
            requests = sum(len(s.list_calls()) for s in servers)
            print(f"scan: {found.objects} objects in 2 contexts, {requests} list requests, {scanned:.2f} s "
                  f"({found.objects / scanned:,.0f} objects/s); {found.summary()}")

            import kubernetes

            client = kubernetes.config.new_client_from_config(config_file=str(config), context="prod",
                                                              persist_config=False)
            started = time.perf_counter()
            typed = kubernetes.client.CoreV1Api(client).list_pod_for_all_namespaces()
            typed_time = time.perf_counter() - started
            started = time.perf_counter()
            raw = kubernetes.client.CoreV1Api(client).list_pod_for_all_namespaces(_preload_content=False)
            raw.data  # noqa: B018 - read the body
            import json

            json.loads(raw.data)
            raw_time = time.perf_counter() - started
            print(f"pods of one context ({len(typed.items)}): typed models {typed_time:.2f} s, "
                  f"plain JSON {raw_time:.2f} s ({typed_time / raw_time:.1f}x)")

            lookups = 20000
            repositories = [parse_address(f"{REG}/app{n}") for n in range(300)]  # as cleanup's tags carry them
            started = time.perf_counter()
            for i in range(lookups):
                repository = repositories[i % 300]
                assert repository is not None
                found.users(repository, f"v{i % 9}", f"sha256:{i:064x}")
            per_second = lookups / (time.perf_counter() - started)
            print(f"users(): {per_second:,.0f} lookups/s")
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
