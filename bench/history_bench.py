"""Long git histories: reading the history the keep policies walk, at 100,000 and 1,000,000 commits.

A synthetic repository made with ``git fast-import`` (no files, one commit every few minutes back from now):
``main`` with ``--commits`` commits, ``--branches`` branches of 5 fresh commits forked from main's last week,
and ``--tags`` annotated git tags spread over main's newest 10,000 commits. Three images; the metadata records
a real project would have: every 10th commit of main's newest 3,000 publishes each image, every branch commit
publishes ``api``, every 1,000th commit of main's whole history published ``web`` long ago, and 200 records
name commits the clone does not have (branches deleted since). Then, with werf's default keep policies, in a
fresh process per size: list the references, read the history, evaluate; wall time, commits read, and the
peak memory of the Python process and of the git processes it ran (``ru_maxrss``).

Run by hand: ``python -m bench.history_bench [--commits 100000 1000000] [--branches 20] [--tags 50]``
(the repositories are cached in ``--cache``, default a temporary directory).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tests.cleanup.gitrepo import GIT_ENV

IMAGES = ("api", "web", "worker")
STEP = 300  #: seconds between main's commits (5 minutes): 1,000,000 commits span 9.5 years
BRANCH_COMMITS = 5


def make_repository(path: Path, commits: int, branches: int, tags: int) -> None:
    """The synthetic repository (see the module docstring), made by one ``git fast-import`` stream."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env={**os.environ, **GIT_ENV})
    now = int(time.time()) - 3600
    process = subprocess.Popen(["git", "-C", str(path), "fast-import", "--quiet", "--done"],
                               stdin=subprocess.PIPE, env={**os.environ, **GIT_ENV})
    assert process.stdin is not None
    write = process.stdin.write

    def commit(ref: str, mark: int, when: int, parent: int | None) -> None:
        message = f"c{mark}\n".encode()
        write(f"commit {ref}\nmark :{mark}\ncommitter B <b@example.com> {when} +0000\ndata {len(message)}\n"
              .encode() + message + (f"from :{parent}\n".encode() if parent else b"") + b"\n")

    for n in range(1, commits + 1):  # mark n: main's n-th commit, oldest first
        commit("refs/heads/main", n, now - (commits - n) * STEP, n - 1 or None)
    mark = commits
    for b in range(branches):
        base = commits - 1 - (b * 97) % min(commits - 1, 2000)  # within main's last week
        parent = base
        for k in range(BRANCH_COMMITS):
            mark += 1
            commit(f"refs/heads/feature-{b}", mark, now - (commits - base) * STEP + (k + 1) * 60, parent)
            parent = mark
    for t in range(tags):
        target = commits - (t * 10_000 // max(tags, 1))
        note = f"v{t}\n"
        write(f"tag v{t}\nfrom :{target}\ntagger B <b@example.com> {now - (commits - target) * STEP} +0000\n"
              f"data {len(note)}\n{note}\n".encode())
    write(b"done\n")
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit("git fast-import failed")


def records_of(path: Path, commits: int) -> list[tuple[str, str, str]]:
    """(image, commit, signature) of the metadata records described in the module docstring."""
    main = subprocess.run(["git", "-C", str(path), "rev-list", "--first-parent", "main"], capture_output=True,
                          text=True, check=True).stdout.split()  # newest first
    found: list[tuple[str, str, str]] = []

    def signature(*parts: object) -> str:
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    for index in range(0, min(3000, len(main)), 10):
        found += [(image, main[index], signature(image, index)) for image in IMAGES]
    for index in range(0, len(main), 1000):
        found.append(("web", main[index], signature("old", index)))
    branches = subprocess.run(["git", "-C", str(path), "for-each-ref", "--format=%(refname)", "refs/heads/feature-*"],
                              capture_output=True, text=True, check=True).stdout.split()
    for ref in branches:
        for sha in subprocess.run(["git", "-C", str(path), "rev-list", f"-{BRANCH_COMMITS}", ref],
                                  capture_output=True, text=True, check=True).stdout.split():
            found.append(("api", sha, signature("branch", sha)))
    for n in range(200):
        found.append(("api", hashlib.sha1(f"gone {n}".encode()).hexdigest(), signature("gone", n)))
    return found


def measure(path: Path, records_file: Path) -> dict[str, float]:
    """One measurement, in this process: references, history, evaluation with werf's default policies."""
    from ci_env.cleanup.history import Published, list_references, read_history
    from ci_env.gitinfo import GitRepository
    from ci_env.werf_config.cleanup import default_policies

    published = [Published(image, commit, signature) for image, commit, signature
                 in json.loads(records_file.read_text())]
    started = time.perf_counter()
    git = GitRepository(path)
    refs = list_references(git)
    verdict = read_history(default_policies(), refs, git, published, datetime.now(timezone.utc))
    elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "python_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "git_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "commits_read": verdict.commits,
        "references": verdict.references,
        "kept": len(verdict.kept),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--branches", type=int, default=20)
    parser.add_argument("--tags", type=int, default=50)
    parser.add_argument("--cache", type=Path, default=None, help="keep the repositories here between runs")
    parser.add_argument("--measure", nargs=2, metavar=("REPO", "RECORDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]))))
        return
    cache = args.cache or Path(tempfile.mkdtemp(prefix="history-bench-"))
    cache.mkdir(parents=True, exist_ok=True)
    print(f"{'commits':>10} {'make s':>8} {'read+evaluate s':>16} {'commits read':>13} {'python MB':>10} "
          f"{'git MB':>8} {'refs':>5} {'kept':>5}")
    for commits in args.commits:
        repo = cache / f"repo-{commits}-{args.branches}-{args.tags}"
        records_file = repo.with_suffix(".records.json")
        started = time.perf_counter()
        if not records_file.exists():
            make_repository(repo, commits, args.branches, args.tags)
            records_file.write_text(json.dumps(records_of(repo, commits)))
        made = time.perf_counter() - started
        out = subprocess.run([sys.executable, "-m", "bench.history_bench", "--measure", str(repo), str(records_file)],
                             capture_output=True, text=True, check=True).stdout
        result = json.loads(out)
        print(f"{commits:>10,} {made:>8.1f} {result['seconds']:>16.2f} {result['commits_read']:>13,} "
              f"{result['python_mb']:>10.0f} {result['git_mb']:>8.0f} {result['references']:>5} "
              f"{result['kept']:>5}", flush=True)


if __name__ == "__main__":
    main()
