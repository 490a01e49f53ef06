"""Pruning the metadata records (``ci-env-meta-<commit>-<signature>``), as werf's cleanup prunes its image metadata.

Every build-and-publish writes one record per image and commit; nothing else removes them. Cleanup prunes, with
werf's rules (``pkg/cleaning/cleanup.go``: ``cleanupImageMetadata``, ``cleanupNonexistentImageMetadata``):

- **a kept image** (a content signature a keep policy keeps): the records of every commit except those through
  which a selected reference keeps it (``history.Verdict.keeping``: every reference and policy, not only the
  first); those records are the reason it is kept, and stay;
- **a kept image no keep policy keeps** (kept by a protection, a workload in Kubernetes, or with git-history-based
  cleanup off): the records of commits the repository no longer has, or that no reference reaches any more;
- **a signature no managed image carries** as a content-signature tag (its image was removed from the
  managed images, or its tags were removed outside cleanup): every record, since a record keeps nothing but a
  content-signature tag;
- **a removed image** (every content-signature tag of its signature planned for removal): its records, once
  the removals succeeded (a tag that could not be removed keeps its records).

The records pruned are those of the listing read before the managed images (``target.resolve_target``): a record
in it was written after its stage and tag were pushed and after its image was made managed (build-and-publish
writes in that order), so its tag is in the listings cleanup makes later; a record written during the run is
in none of them and is never pruned by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ci_env.cleanup.policies import DELETE, KIND_TAG, Decision, MetadataPlan
from ci_env.contract import STAGES_SIGNATURE

if TYPE_CHECKING:
    from ci_env.cleanup.history import Verdict
    from ci_env.gitinfo import GitRepository
    from ci_env.records import CommitMetadata

def content_signature(decision: Decision) -> str | None:
    """The signature a content-signature tag decision carries (its record's; else its tag, as build-and-publish
    tags it), None for any other decision."""
    if decision.kind == KIND_TAG and decision.strategy == STAGES_SIGNATURE:
        return decision.signature or decision.tag
    return None


def plan_metadata(
    recorded: Sequence[CommitMetadata], decisions: Sequence[Decision], verdict: Verdict | None,
    repo: GitRepository | None,
) -> MetadataPlan:
    """The records of ``recorded`` to prune, by the rules of the module docstring, for a plan of ``decisions``
    (``verdict``: the keep policies', None when git-history-based cleanup is off or for purge; ``repo``: the clone,
    asked which commits it still reaches, None for purge, which keeps nothing)."""
    from ci_env.records import metadata_key

    keeps: dict[str, bool] = {}  # signature -> some content-signature tag of it is kept
    for decision in decisions:
        signature = content_signature(decision)
        if signature is not None:
            keeps[signature] = keeps.get(signature, False) or decision.action != DELETE
    keeping: dict[str, set[str]] = {}
    if verdict is not None:
        for (_image, signature), commits in verdict.keeping.items():
            keeping.setdefault(signature, set()).update(commits)
    now: list[str] = []  # no managed image carries the signature; a kept image, by a commit that does not keep it
    after: dict[str, list[str]] = {}  # an image the plan removes
    protected: list[CommitMetadata] = []  # kept, but by no keep policy
    for record in recorded:
        key = metadata_key(record.commit, record.signature)
        kept = keeps.get(record.signature)
        if kept is None:
            now.append(key)
        elif not kept:
            after.setdefault(record.signature, []).append(key)
        elif record.signature in keeping:
            if record.commit not in keeping[record.signature]:
                now.append(key)
        else:
            protected.append(record)
    if protected and repo is not None:  # of those, the records of commits no reference reaches any more
        gone = unreachable(repo, [record.commit for record in protected])
        now += [metadata_key(r.commit, r.signature) for r in protected if r.commit in gone]
    return MetadataPlan(tuple(now), {s: tuple(k) for s, k in after.items()})


def unreachable(repo: GitRepository, commits: Iterable[str]) -> set[str]:
    """Those of ``commits`` the repository does not have as commits, or that no reference (branch, remote branch,
    tag, ``HEAD``) reaches: one ``git cat-file --batch-check``, then one ``git rev-list --stdin --not --all`` that
    walks only what the references do not reach (never the whole history, unless a commit is that old)."""
    wanted = sorted({commit.lower() for commit in commits})
    if not wanted:
        return set()
    out = repo._git("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin="\n".join(wanted) + "\n")
    present = [line.split()[0] for line in out.splitlines() if line.endswith(" commit")]
    gone = set(wanted) - set(present)
    if present:
        out = repo._git("rev-list", "--stdin", "--not", "--all", stdin="\n".join(present) + "\n")
        listed = set(out.split())
        gone.update(commit for commit in present if commit in listed)
    return gone
