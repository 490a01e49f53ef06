"""Benchmark: the first publish of a project against the second (reused) publish of the same inputs.

Starts a real registry and a real Docker daemon (the test services), writes a project with
several images carrying a few MB of random data each, and runs ``ci-env build-and-publish``
twice as a user would (new tags on the second run). Reports wall time, blob-upload requests
(from the registry's access log) and bytes added to the registry's blob store.

Target: the reused run uploads no layer bytes and takes under a fifth of the first.
Run by hand: ``python bench/publish_bench.py [--images N] [--megabytes M] [--stages local|registry]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.services.dockerd import start_dockerd  # noqa: E402
from tests.services.registry import RegistryService, start_registry  # noqa: E402


def blob_bytes(registry: RegistryService) -> int:
    """Bytes in the registry's blob store (layers, configs and manifests)."""
    total = 0
    for folder, _dirs, files in os.walk(registry.root / "data"):
        if "/blobs/" in folder + "/":
            total += sum(os.path.getsize(os.path.join(folder, name)) for name in files)
    return total


def upload_requests(registry: RegistryService, since: int) -> int:
    """Requests carrying blob bytes (PATCH or PUT to an upload) after access-log line ``since``."""
    return sum(1 for method, path, _ in registry.requests()[since:]
               if "/blobs/uploads/" in path and method in ("PATCH", "PUT"))


def write_project(root: Path, images: int, megabytes: int) -> None:
    docs = ["project: bench\nconfigVersion: 1\n"]
    for index in range(images):
        context = root / f"image{index}"
        context.mkdir(parents=True)
        (context / "Dockerfile").write_text("FROM scratch\nCOPY . /data/\n")
        (context / "payload.bin").write_bytes(os.urandom(megabytes * 1024 * 1024))
        docs.append(f"image: image{index}\ncontext: image{index}\n")
    (root / "werf.yaml").write_text("---\n".join(docs))


def run(env: dict[str, str], cwd: Path, args: list[str]) -> float:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "ci_env", "build-and-publish", *args], cwd=cwd, env=env,
                            capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"build-and-publish failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=8)
    parser.add_argument("--stages", choices=("registry", "local"), default="registry")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="publish-bench-") as tmp:
        base = Path(tmp)
        daemon = start_dockerd(base / "dockerd")
        registry = start_registry(base / "registry")
        try:
            project = base / "project"
            write_project(project, options.images, options.megabytes)
            (base / "docker-config").mkdir()
            (base / "docker-config" / "config.json").write_text("{}")
            env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_CONFIG": str(base / "docker-config"),
                   "XDG_STATE_HOME": str(base / "state"), "PYTHONPATH": str(ROOT)}
            env = {k: v for k, v in env.items() if not k.startswith("WERF_")}
            stages = f"{registry.host}/bench/stages" if options.stages == "registry" else ":local"
            common = ["-i", f"{registry.host}/bench", "-s", stages]
            rows = []
            for label, tag in (("first", "run1"), ("second (reused)", "run2")):
                mark, size = len(registry.requests()), blob_bytes(registry)
                seconds = run(env, project, [*common, "--tag-custom", tag])
                rows.append((label, seconds, upload_requests(registry, mark), blob_bytes(registry) - size))
        finally:
            registry.stop()
            daemon.stop()
    print(f"{options.images} images x {options.megabytes} MB, stages storage: {options.stages}, "
          f"docker storage driver: {daemon.storage_driver}")
    print(f"{'run':<16} {'wall time':>10} {'blob uploads':>13} {'bytes added':>12}")
    for label, seconds, uploads, added in rows:
        print(f"{label:<16} {seconds:>9.2f}s {uploads:>13} {added:>12}")
    print("(bytes added on the reused run: the new tags' manifests and publication records, no layer)")
    ratio = rows[1][1] / rows[0][1]
    print(f"second/first wall time: {ratio:.3f} (target < 0.2); second-run blob uploads: {rows[1][2]} (target 0)")
    if rows[1][2] != 0 or ratio >= 0.2:
        raise SystemExit("target missed")


if __name__ == "__main__":
    main()
