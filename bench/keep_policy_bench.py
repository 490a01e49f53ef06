"""Git-history-based cleanup at size: 5,000 content-signature tags, 2,000 commits, 50 branches.

A real git repository (made with ``git fast-import``, commits spread over a year): ``main`` with 1,500
commits and 50 branches of 10 commits each, forked from main at different points. Three images; every
commit publishes ``api``, and ``web`` or ``worker`` or both (5,000 tags in all), each with its publication
record and its metadata record, as build-and-publish writes them. Then, with werf's default keep policies:

- the git walk alone (references, commit graph, evaluation) in-process;
- ``ci-env cleanup --dry-run`` end to end: wall time and HTTP requests by kind.

Run by hand: ``python -m bench.keep_policy_bench [--commits 2000] [--branches 50]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.cleanup_bench import request_kind
from ci_env import records
from ci_env.cleanup.history import Published, list_references, read_history
from ci_env.gitinfo import GitRepository
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from ci_env.werf_config.cleanup import default_policies
from tests.cleanup.gitrepo import GIT_ENV
from tests.registry_client.images import push_image
from tests.services.registry import start_registry

IMAGES = ("api", "web", "worker")


def make_history(path: Path, commits: int, branches: int) -> list[tuple[str, str]]:
    """A repository of ``commits`` commits: main, then ``branches`` branches of 10 commits; returns every
    (ref, commit id) in creation order, read back with ``git rev-list``."""
    now = datetime.now(timezone.utc)
    per_branch = 10
    main_commits = commits - branches * per_branch
    step = timedelta(days=365) / commits
    lines: list[str] = []
    mark = 0

    def commit(ref: str, when: datetime, parent: int | None) -> int:
        nonlocal mark
        mark += 1
        message = f"commit {mark}"
        stamp = f"{int(when.timestamp())} +0000"
        lines.extend([f"commit {ref}", f"mark :{mark}", f"committer Bench <b@example.com> {stamp}",
                      f"data {len(message)}", message])
        if parent is not None:
            lines.append(f"from :{parent}")
        lines.append("")
        return mark

    when = now - timedelta(days=365)
    main_marks = []
    previous = None
    for _ in range(main_commits):
        previous = commit("refs/heads/main", when, previous)
        main_marks.append(previous)
        when += step
    for b in range(branches):
        fork = main_marks[int(len(main_marks) * (b + 1) / (branches + 1))]
        parent = fork
        start = now - timedelta(days=branches - b)  # branch heads from 50 days ago to today
        for c in range(per_branch):
            parent = commit(f"refs/heads/feature-{b}", start + timedelta(hours=c), parent)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env={**os.environ, **GIT_ENV})
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input="\n".join(lines) + "\n", text=True,
                   check=True, env={**os.environ, **GIT_ENV})
    out = subprocess.run(["git", "-C", str(path), "rev-list", "--all", "--reverse"], capture_output=True, text=True,
                         check=True).stdout
    return [("", sha) for sha in out.split()]


def images_of(index: int) -> tuple[str, ...]:
    """api always; web unless index % 4 == 0; worker unless index % 4 == 1: 2.5 images per commit."""
    return tuple(name for name in IMAGES if not (name == "web" and index % 4 == 0)
                 and not (name == "worker" and index % 4 == 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--branches", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        started = time.monotonic()
        commits = [sha for _ref, sha in make_history(tmp / "project", args.commits, args.branches)]
        print(f"git history: {len(commits)} commits, {args.branches + 1} branches in "
              f"{time.monotonic() - started:.1f}s")
        publications = [(image, sha) for index, sha in enumerate(commits) for image in images_of(index)]
        registry = start_registry(tmp / "registry")
        try:
            client = RegistryClient(registry.host, docker_config=tmp / "none")
            images = RepoAddress(registry.host, "bench/images")
            stages = RepoAddress(registry.host, "bench/stages")
            store = records.open_store(stages, "", client=client)
            for image in IMAGES:
                records.add_managed_image(store, image)
            started = time.monotonic()

            def publish(item: tuple[str, str]) -> None:
                image, sha = item
                signature = hashlib.sha256(f"{image}:{sha}".encode()).hexdigest()
                repository = images.child(image)
                digest = push_image(client, repository.path, [signature], seed=signature).digest
                records.write_publication(store, records.Publication(
                    image=image, tag=signature, repository=str(repository), stored_tag=signature,
                    strategy="stages-signature", digest=digest, signature=signature,
                    published_at="2024-01-01T00:00:00Z"))
                records.write_metadata(store, records.CommitMetadata(image, sha, signature))

            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(publish, publications))
            print(f"published {len(publications)} content-signature tags with publication and metadata records in "
                  f"{time.monotonic() - started:.1f}s")

            git = GitRepository(tmp / "project")
            published = [Published(image, sha, hashlib.sha256(f"{image}:{sha}".encode()).hexdigest())
                         for image, sha in publications]
            started = time.monotonic()
            refs = list_references(git)
            read = time.monotonic() - started
            verdict = read_history(default_policies(), refs, git, published, datetime.now(timezone.utc))
            walk = time.monotonic() - started - read
            print(f"git walk: {len(refs)} references listed in {read * 1000:.0f} ms; history read and evaluated in "
                  f"{walk * 1000:.0f} ms ({verdict.commits} commits read); {verdict.references} references selected, "
                  f"{len(verdict.kept)} signatures kept, {len(published) - len(verdict.kept)} not")

            env = {**os.environ, "DOCKER_CONFIG": str(tmp / "none")}
            command = [sys.executable, "-m", "ci_env", "cleanup", "-i", str(images), "-s", str(stages),
                       "--dir", str(tmp / "project"), "--dry-run", "--parallel", "16"]
            before = len(registry.requests())
            started = time.monotonic()
            result = subprocess.run(command, env=env, capture_output=True, text=True)
            elapsed = time.monotonic() - started
            if result.returncode != 0:
                print(result.stderr[-2000:])
                raise SystemExit("cleanup --dry-run failed")
            made = registry.requests()[before:]
            kinds = Counter(request_kind(method, path) for method, path, _status in made)
            plan_line = next(line for line in result.stderr.splitlines() if line.startswith("plan:"))
            print(f"cleanup --dry-run: {elapsed:.1f}s, {len(made)} HTTP requests; {plan_line}")
            print("  " + ", ".join(f"{kind}: {count}" for kind, count in kinds.most_common()))
        finally:
            registry.stop()


if __name__ == "__main__":
    main()
