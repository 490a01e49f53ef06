"""Peak memory of listing and planning 100,000 tags: the real data structures, in a process of its own.

A first process writes a snapshot of 100,000 publication records with ``ci_env.records.snapshots`` (gzipped JSON-lines
layers, into files). The measuring process then goes through cleanup's own code, in the order of a run, with
in-process inputs where the network is not the point:

1. the snapshot read back by its reader (``Publication`` objects, the per-key winners, what it accounts for);
2. ``collect_tags`` over a listing of 100,000 tags with digests (a vendor listing, ``TagLister``): ``FoundTag``;
3. ``plan_cleanup``: 100,000 ``Decision`` (half the branches deleted);
4. the compaction's new snapshot (the records of the kept tags, compressed);
5. the output of a run: the table on stdout, the ``--report`` JSON, the step summary (``Result``).

After each phase it prints the process's peak resident memory (``VmHWM``). Budget: 200 MB.
Run by hand: ``python -m bench.cleanup_memory_bench [--tags 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MB = 200.0


def peak_mb() -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_snapshot(count: int, directory: Path) -> None:
    """Write the snapshot of ``count`` records (as a compaction would) into ``directory``, one file per layer."""
    from ci_env import records
    from ci_env.records import snapshots

    repository = "registry.example.com/acme/app/app"
    layers = snapshots.snapshot_layers([
        snapshots.Entry(snapshots.new_version(), records.Publication(
            "app", tag, repository, tag, "git-branch", digest(n), f"{n % 5000:064x}", "2024-01-01T00:00:00Z",
            git_branch=tag, git_commit=f"{n % 5000:040x}"), compacted=True)
        for n, tag in enumerate(tag_names(count))
    ], [])
    for index, layer in enumerate(layers):
        (directory / f"{index:04d}.gz").write_bytes(layer)


def tag_names(count: int) -> list[str]:
    return [f"feature-{n:06d}-some-branch-name" for n in range(count)]


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def child(count: int, directory: Path) -> None:
    from datetime import datetime, timezone

    from ci_env import records
    from ci_env.cleanup import report as rpt
    from ci_env.cleanup import step_summary
    from ci_env.cleanup.collect import collect_tags
    from ci_env.cleanup.policies import Policy, plan_cleanup
    from ci_env.gitinfo import GitFacts
    from ci_env.records import snapshots
    from ci_env.registry.client import TagInfo
    from ci_env.registry.naming import resolve_images_repo
    from ci_env.registry.reference import RepoAddress

    phases: list[tuple[str, float, float]] = []
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        phases.append((name, peak_mb(), now - clock))
        clock = now

    phase("start (ci_env imported)")
    images = RepoAddress("registry.example.com", "acme/app")
    files = sorted(directory.glob("*.gz"))

    class Snapshot:
        """The stages repository as the reader sees it: one snapshot, no record written since."""

        description = "bench"
        manifest = json.dumps({"layers": [{"digest": f"sha256:{i:064x}"} for i in range(len(files))]}).encode()

        def listed_tags(self, *, fresh: bool = False) -> list[str]:
            return ["ci-env-snapshot-20240101000000000000-00000000"]

        def read_manifest(self, tag: str) -> tuple[bytes | None, str]:
            return self.manifest, "sha256:" + "f" * 64

        def read_blob(self, layer: str) -> bytes | None:
            return files[int(layer.split(":")[1], 16)].read_bytes()

    state = snapshots.read_state(Snapshot())  # type: ignore[arg-type]
    read = records.PublicationsRead(state.publications, state, 0)
    phase(f"records read from the snapshot ({len(read.publications)} publications)")
    tags = tag_names(count)

    class Listing:
        def list_tags(self, repo: RepoAddress) -> list[TagInfo]:
            return [TagInfo(tag, digest(n), "application/vnd.oci.image.manifest.v1+json", None)
                    for n, tag in enumerate(tags)]

    images_repo = resolve_images_repo(images, {}, image_names=("app",))
    found, skipped = collect_tags(images_repo.naming(["app"]), read.publications, lambda _r: None,  # type: ignore[arg-type,return-value]
                                  lister=Listing())
    phase(f"tags collected ({len(found)} FoundTag)")

    facts = GitFacts(branches=frozenset(tags[: count // 2]))
    plan = plan_cleanup(found, [], facts, Policy(), datetime.now(timezone.utc))
    deletions = plan.deletions
    phase(f"planned ({len(plan.decisions)} decisions, {len(deletions)} deletions)")

    gone = {records.publication_key(f"{d.repository}:{d.stored_tag}") for d in deletions}
    layers = snapshots.snapshot_layers([e for k, e in state.winners.items() if k not in gone], [])
    phase(f"compaction's snapshot made ({len(layers)} layers, {sum(map(len, layers)) / 1e6:.1f} MB)")
    del layers

    outcomes = {d.key: ("removed", "") for d in deletions}
    result = rpt.Result("cleanup", False, str(images), "registry.example.com/acme/stages", plan, outcomes,
                        tuple(skipped), "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z")
    with open(os.devnull, "w") as sink:
        for line in rpt.table_lines(result):
            sink.write(line + "\n")
    phase("table printed")
    with tempfile.TemporaryDirectory() as tmp:
        result.write_json(Path(tmp) / "report.json")
        size = (Path(tmp) / "report.json").stat().st_size
    phase(f"--report written ({size / 1e6:.0f} MB)")
    summary = step_summary.markdown(result)
    phase(f"step summary ({len(summary) / 1e6:.1f} MB)")
    print(json.dumps(phases))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tags", type=int, default=100_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.tags, args.child)
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        write_snapshot(args.tags, Path(tmp))
        done = subprocess.run([sys.executable, "-m", "bench.cleanup_memory_bench", "--child", tmp,
                               "--tags", str(args.tags)], capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-3000:])
        raise SystemExit("the measuring process failed")
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"listing and planning {args.tags} tags (peak RSS of the process after each phase):")
    for name, peak, seconds in phases:
        print(f"  {peak:7.1f} MB  {seconds:6.1f}s  {name}")
    peak = max(p for _, p, _ in phases)
    print(f"peak {peak:.1f} MB; within budget ({BUDGET_MB:.0f} MB): {peak <= BUDGET_MB}; "
          f"{time.monotonic() - started:.0f}s in all")


if __name__ == "__main__":
    main()
