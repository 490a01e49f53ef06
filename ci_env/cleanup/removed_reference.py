"""``cleanup --removed-branch BRANCH``: the plan narrowed to the images whose only reason to exist was a branch that
was deleted (or whose merge request was merged), removed at once, right after the deletion.

The plan is made as any cleanup plan is (every protection applies but the age of a publication, since the branch
is checked gone), then :func:`narrow` keeps every decision but the removals of the branch's own images:

- its **git-branch** tags (the record's branch, else the tag, names it), removed since the branch is gone;
- its **content-signature** tags (the publication record says the branch published them) that no keep policy
  keeps and whose every recorded commit no branch or tag reaches any more (the branch's own commits: a commit
  merged into another branch is reached, and its image stays for that branch's policies to decide);
- its **git-commit** tags (published from the branch) whose commit no branch or tag reaches any more;
- the stages only those removed tags used.

A branch that exists (locally or in ``origin``: re-pushed, or not deleted yet) removes nothing. A second run finds
nothing of the branch left: nothing to remove.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from ci_env.cleanup.policies import (
    DELETE,
    KEEP,
    KIND_STAGE,
    KIND_TAG,
    Basis,
    Decision,
    FoundTag,
    Plan,
)
from ci_env.contract import GIT_BRANCH, GIT_COMMIT, STAGES_SIGNATURE
from ci_env.gitinfo import GitFacts
from ci_env.records import CommitMetadata, Publication
from ci_env.tagging import docker_tag

#: the basis rule of what a narrowed plan keeps because it is not the removed branch's
RULE_OTHER_REFERENCE = "other-reference"
_HEADS = "refs/heads/"


def branch_name(text: str) -> str:
    """The branch a ``--removed-branch`` value names (``refs/heads/NAME`` or ``NAME``)."""
    return text[len(_HEADS):] if text.startswith(_HEADS) else text


def published_from(tags: Sequence[FoundTag], publications: Sequence[Publication], branch: str) -> list[FoundTag]:
    """The content-signature and git-commit tags whose publication record says ``branch`` published them."""
    by_name = {(p.repository, p.stored_tag): p for p in publications}
    result = []
    for tag in tags:
        record = by_name.get(tag.key)
        if record is not None and record.git_branch == branch and tag.strategy in (STAGES_SIGNATURE, GIT_COMMIT):
            result.append(tag)
    return result


def commits_to_check(candidates: Sequence[FoundTag], metadata: Sequence[CommitMetadata]) -> list[str]:
    """The commits whose reachability decides ``candidates``: the recorded commits of their signatures, and the
    commits of the git-commit ones."""
    signatures = {t.signature for t in candidates if t.strategy == STAGES_SIGNATURE and t.signature}
    commits = [m.commit for m in metadata if m.signature in signatures]
    commits += [t.git_ref or t.tag for t in candidates if t.strategy == GIT_COMMIT]
    return commits


def _names_branch(tag: FoundTag, branch: str) -> bool:
    if tag.strategy != GIT_BRANCH:
        return False
    return tag.git_ref == branch if tag.git_ref is not None else tag.tag in (branch, docker_tag(branch))


def _doomed(tag: FoundTag, branch: str, own: Collection[tuple[str, str]], git: GitFacts,
            recorded: Mapping[str, Sequence[str]]) -> str | None:
    """Why ``tag`` (which the plan removes) goes with the branch, or None when it is not the branch's alone."""
    if _names_branch(tag, branch):
        return f"branch {branch!r} was removed"
    if tag.key not in own:
        return None
    if tag.strategy == GIT_COMMIT:
        return None if git.commit(tag.git_ref or tag.tag) else f"published from removed branch {branch!r}"
    commits = recorded.get(tag.signature or "", ())
    if commits and not any(git.commit(c) for c in commits):
        return f"published from removed branch {branch!r}, whose commits no other reference reaches"
    return None


def narrow(plan: Plan, tags: Sequence[FoundTag], branch: str, git: GitFacts, own: Sequence[FoundTag],
           metadata: Sequence[CommitMetadata]) -> Plan:
    """``plan`` (made without the age protection, of ``tags`` in order) with only the removed branch's removals
    left (see the module docstring); everything when the branch exists, kept."""
    exists = git.branch_exists(branch)
    keys = {t.key for t in own}
    recorded: dict[str, list[str]] = {}
    for record in metadata:
        recorded.setdefault(record.signature, []).append(record.commit)
    other = Basis(RULE_OTHER_REFERENCE, reference=f"branch {branch}")
    decisions: list[Decision] = []
    doomed: list[FoundTag] = []
    tag_decisions = [d for d in plan.decisions if d.kind == KIND_TAG]
    for tag, decision in zip(tags, tag_decisions, strict=True):
        why = None if exists or decision.action != DELETE else _doomed(tag, branch, keys, git, recorded)
        if why is not None:
            doomed.append(tag)
            decisions.append(replace(decision, reason=f"{why}: {decision.reason}"))
        elif decision.action == DELETE:
            reason = (f"branch {branch!r} exists (re-pushed, or not deleted yet): --removed-branch removes nothing"
                      if exists else f"not an image of removed branch {branch!r} alone (--removed-branch)")
            decisions.append(replace(decision, action=KEEP, reason=reason, basis=other))
        else:
            decisions.append(decision)
    signatures = {t.signature for t in doomed if t.signature} | {t.tag for t in doomed}
    digests = {t.digest for t in doomed if t.digest}
    kept_signatures = {d.signature or d.tag for d in decisions if d.action == KEEP}
    kept_digests = {d.digest for d in decisions if d.action == KEEP and d.digest}
    for decision in plan.decisions:
        if decision.kind != KIND_STAGE:
            continue
        ours = decision.tag in signatures or decision.digest in digests
        if decision.action == DELETE and not (ours and decision.tag not in kept_signatures
                                              and decision.digest not in kept_digests):
            decision = replace(decision, action=KEEP, basis=other,
                               reason=f"not a stage of removed branch {branch!r} alone (--removed-branch)")
        decisions.append(decision)
    return replace(plan, decisions=tuple(decisions), notes=(*plan.notes, summary(len(doomed), branch, exists)))


def summary(removing: int, branch: str, exists: bool) -> str:
    """The line a narrowed plan owes the user."""
    if exists:
        return (f"cleanup: branch {branch!r} exists (locally or in origin: re-pushed, or not deleted yet), so "
                "--removed-branch removes nothing of it")
    from ci_env.output import plural

    return (f"cleanup: removed branch {branch!r}: {plural(removing, 'tag')} of its own to remove; "
            "every other tag is kept")
