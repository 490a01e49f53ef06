"""The cleanup plan: keep or delete for every tag found, with the reason (pure: no I/O, ``now`` given).

Inputs are the tags found in the images repo (:class:`FoundTag`, each with the strategy it was
published with, from its publication record or else its ``werf-tag-strategy`` label), the stage
images found in the stages storage (:class:`StageTag`), the git facts
(:class:`~ci_env.gitinfo.GitFacts`), the options (:class:`Policy`) and ``now``.

Order of decision for a tag, first match wins:

1. protections: in use in Kubernetes (``repo:tag``, ``repo@digest`` or the digest a pod runs),
   ``--keep-tag`` (regex, *full match* against the tag as published or as stored), the keep-list,
   a publication within ``--keep-published-within``;
2. the policy of its strategy (:data:`STRATEGY_POLICIES`, one table):

   - ``git-branch``: delete when the branch exists neither locally nor as ``origin/*``;
   - ``git-tag``: delete when the git tag is gone, else when older than the expiry or beyond the
     limit (the newest N per image are kept; dates: the git tag's date);
   - ``git-commit``: delete when the commit is no longer reachable, else expiry/limit by commit date;
   - ``stages-signature``: expiry/limit by publication date;
   - ``custom``, or no strategy known: keep.

Stages: a stage image (tag in the stages storage) is deleted when no kept tag uses it (neither its
signature nor its digest), unless a workload in Kubernetes uses it or it was created within
``--keep-published-within``.
Purge: everything managed is deleted, protections included, since purge is explicit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ci_env.cleanup.in_use import ImagesInUse, in_use_reason
from ci_env.cleanup.protections import KeepList
from ci_env.contract import CUSTOM, GIT_BRANCH, GIT_COMMIT, GIT_TAG, STAGES_SIGNATURE
from ci_env.gitinfo import GitFacts
from ci_env.patterns import Pattern
from ci_env.tagging import docker_tag

if TYPE_CHECKING:
    from ci_env.cleanup.history import Verdict
    from ci_env.registry.reference import RepoAddress


KEEP = "keep"
DELETE = "delete"
#: What a decision is about: a tag of a managed image, or a stage image in the stages storage.
KIND_TAG = "tag"
KIND_STAGE = "stage"


@dataclass(frozen=True, slots=True)
class FoundTag:
    """A tag found in an images repository, owned by a managed image.

    ``tag`` is the tag as published (``--tag-git-branch main`` -> ``main``); ``stored_tag`` as it is
    in the repository (monorepo: ``IMAGE-main``). ``source`` says where ``strategy`` came from:
    ``record``, ``label`` or ``none``. ``git_ref`` is the branch, git tag or commit it was published
    from when the record (or, for a commit, the image's revision label) says so. ``published`` is the
    publication time (UTC) when known.
    """

    image: str | None
    repository: RepoAddress
    tag: str
    stored_tag: str
    digest: str | None = None
    strategy: str | None = None
    source: str = "none"
    git_ref: str | None = None
    published: datetime | None = None
    signature: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(repository, stored tag) as the reports, the journal and the removals' outcomes write them."""
        return str(self.repository), self.stored_tag


@dataclass(frozen=True, slots=True)
class StageTag:
    """A stage image in the stages storage: its tag (the content signature), digest and creation time."""

    repository: RepoAddress  #: the stages storage (``LocalRepository`` for ``:local``)
    tag: str
    digest: str | None = None
    created: datetime | None = None

    @property
    def signature(self) -> str:
        return self.tag

    @property
    def key(self) -> tuple[str, str]:
        """(repository, tag) as the reports, the journal and the removals' outcomes write them."""
        return str(self.repository), self.tag


@dataclass(frozen=True)
class Limit:
    """How many of a strategy's tags to keep per image (newest first) and for how long; None: no bound."""

    count: int | None = None
    expiry: timedelta | None = None


@dataclass(frozen=True)
class GitHistory:
    """What git-history-based cleanup found (``ci_env.cleanup.history``): the keep policies' verdict per
    (image, signature), the commits of every signature that has a metadata record, and whether a
    content-signature tag without a record is removed (``strict``) or kept."""

    verdict: Verdict
    recorded: Mapping[str, tuple[str, ...]]  #: signature -> commits that published it
    strict: bool = False


@dataclass(frozen=True)
class Policy:
    """The options that decide the plan. With ``git_history`` (the default setup), content-signature tags
    are decided by the keep policies; without it, by ``stages_signature``'s limit and expiry."""

    git_tag: Limit = field(default_factory=Limit)
    git_commit: Limit = field(default_factory=Limit)
    stages_signature: Limit = field(default_factory=Limit)
    keep_tags: tuple[Pattern, ...] = ()  #: --keep-tag (ci_env.cleanup.protections.compile_keep_tags)
    keep_published_within: timedelta = timedelta(hours=2)
    keep_list: KeepList = field(default_factory=KeepList)
    git_history: GitHistory | None = None
    in_use: ImagesInUse | None = None  #: what runs in Kubernetes (``ci_env.cleanup.in_use.scan``)
    #: ``--removed-branch``: only that deleted branch's own images are removed (``ci_env.cleanup.removed_reference``)
    removed_branch: str | None = None


@dataclass(frozen=True, slots=True)
class Basis:
    """Why a decision was taken, for machines (the report's ``basis``): the ``rule`` and, where it applies,
    the keep ``policy`` number, the ``reference`` and ``commit`` that reached the tag, the ``workloads``."""

    rule: str
    policy: int | None = None
    reference: str | None = None
    commit: str | None = None
    workloads: tuple[str, ...] = ()
    #: a retention rule's number and the line of the rules file it starts on (cleanup by rules)
    number: int | None = None
    line: int | None = None

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"rule": self.rule}
        for name in ("policy", "reference", "commit", "number", "line"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.workloads:
            data["workloads"] = list(self.workloads)
        return data


#: Basis rules: what decided a tag.
RULE_PROTECTED = "protection"
RULE_IN_USE = "in-use"
RULE_KEEP_POLICY = "keep-policy"
RULE_NO_KEEP_POLICY = "no-keep-policy"
RULE_NO_METADATA = "no-metadata"
RULE_STRATEGY = "strategy"
RULE_UNKNOWN = "unknown-strategy"
RULE_STAGE_USED = "used-by-kept-tag"
RULE_STAGE_UNUSED = "unused-stage"
RULE_PURGE = "purge"


@dataclass(frozen=True, slots=True)
class Decision:
    """One line of the plan: keep or delete this tag (or stage) and why."""

    kind: str
    image: str | None
    repository: RepoAddress  #: written ``str(repository)`` in reports and journals
    tag: str
    stored_tag: str
    digest: str | None
    action: str
    reason: str
    strategy: str | None = None
    basis: Basis = field(default_factory=lambda: Basis(RULE_STRATEGY))
    #: a tag's content signature (its record's, else its label's; a stage's is its tag), None when unknown
    signature: str | None = None

    @property
    def reference(self) -> str:
        """``repository:stored_tag``."""
        return f"{self.repository}:{self.stored_tag}"

    @property
    def key(self) -> tuple[str, str]:
        """(repository, stored tag) as the reports, the journal and the removals' outcomes write them: the key of
        ``Result.outcomes`` (``ci_env.registry.untag.Outcome`` speaks ``str``; this is where the two meet)."""
        return str(self.repository), self.stored_tag


@dataclass(frozen=True)
class MetadataPlan:
    """Which metadata records a run prunes: ``now`` whatever the removals do, ``after[signature]`` once every
    content-signature tag of that signature the plan removes is gone."""

    now: tuple[str, ...] = ()
    after: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def keys(self, gone: Collection[str] | None = None) -> list[str]:
        """The keys to prune: ``now`` and those of the signatures in ``gone`` (None: of every signature, as a
        dry run that assumes its removals succeed counts them)."""
        later = [key for signature, keys in self.after.items() if gone is None or signature in gone for key in keys]
        return [*self.now, *later]


@dataclass(frozen=True)
class Plan:
    """Every decision, tags first (in the order found) then stages; ``git_history`` when the keep policies
    decided the content-signature tags."""

    decisions: tuple[Decision, ...]
    git_history: GitHistory | None = None
    #: what Kubernetes runs: the removal leaves these digests (and what they reach) in place, tagged or not
    in_use: ImagesInUse | None = None
    #: the metadata records the run prunes (:class:`MetadataPlan`, ``ci_env.cleanup.metadata``), None: none
    metadata: MetadataPlan | None = None
    #: lines the plan owes the user, told with it (e.g. what ``--removed-branch`` found)
    notes: tuple[str, ...] = ()

    @property
    def deletions(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action == DELETE)

    @property
    def kept(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action == KEEP)


# ---------------------------------------------------------------- tags


@dataclass(frozen=True)
class _Verdict:
    """A policy's answer for one tag before limits: ``gone`` (delete now) with reason, or a date to rank by."""

    delete_reason: str | None
    date: datetime | None
    keep_reason: str


def _names_index(names: Iterable[str]) -> dict[str, str]:
    """Map both each git name and its docker-tag form to the git name (branches like ``feature/x``)."""
    index: dict[str, str] = {}
    for name in names:
        index[name] = name
        index.setdefault(docker_tag(name), name)
    return index


class _Context:
    def __init__(self, git: GitFacts) -> None:
        self.git = git
        self.branches = _names_index(git.branches)
        self.git_tags = _names_index(git.tags)


def _branch(tag: FoundTag, ctx: _Context) -> _Verdict:
    name = tag.git_ref or tag.tag
    found = ctx.branches.get(name) if tag.git_ref is None else (name if ctx.git.branch_exists(name) else None)
    if found is None:
        return _Verdict(f"branch {name!r} no longer exists (locally or in origin)", None, "")
    return _Verdict(None, None, f"branch {found!r} exists")


def _git_tag(tag: FoundTag, ctx: _Context) -> _Verdict:
    name = tag.git_ref or tag.tag
    found = ctx.git_tags.get(name) if tag.git_ref is None else (name if name in ctx.git.tags else None)
    if found is None:
        return _Verdict(f"git tag {name!r} no longer exists", None, "")
    return _Verdict(None, ctx.git.tags[found].date, f"git tag {found!r} exists")


def _git_commit(tag: FoundTag, ctx: _Context) -> _Verdict:
    sha = tag.git_ref or tag.tag
    info = ctx.git.commit(sha)
    if info is None:
        return _Verdict(f"commit {sha[:12]} is not in the repository (no branch or tag reaches it)", None, "")
    return _Verdict(None, info.date, f"commit {sha[:12]} is in the repository")


def _signature(tag: FoundTag, ctx: _Context) -> _Verdict:
    return _Verdict(None, tag.published, "stages-signature tag")


def _custom(tag: FoundTag, ctx: _Context) -> _Verdict:
    return _Verdict(None, None, "custom tag: no policy removes custom tags")


#: strategy -> (how to judge one tag, which limit applies). The one table of policies.
STRATEGY_POLICIES: dict[str, tuple[Callable[[FoundTag, _Context], _Verdict], Callable[[Policy], Limit] | None]] = {
    GIT_BRANCH: (_branch, None),
    GIT_TAG: (_git_tag, lambda p: p.git_tag),
    GIT_COMMIT: (_git_commit, lambda p: p.git_commit),
    STAGES_SIGNATURE: (_signature, lambda p: p.stages_signature),
    CUSTOM: (_custom, None),
}


def _in_use(policy: Policy, repository: RepoAddress, tag: str, digest: str | None) -> tuple[str, Basis] | None:
    """``in use: <workload>[, +N more]`` when a workload in Kubernetes uses this tag or runs its digest."""
    if policy.in_use is None:
        return None
    users = policy.in_use.users(repository, tag, digest)
    if not users:
        return None
    return in_use_reason(users), Basis(RULE_IN_USE, workloads=tuple(str(user) for user in users))


def _protection(tag: FoundTag, policy: Policy, now: datetime) -> tuple[str, Basis] | None:
    """What protects ``tag`` whatever the policies say (a workload using it first), with the basis."""
    in_use = _in_use(policy, tag.repository, tag.stored_tag, tag.digest)
    if in_use is not None:
        return in_use
    protected = Basis(RULE_PROTECTED)
    for pattern in policy.keep_tags:
        if pattern.fullmatch(tag.tag) or pattern.fullmatch(tag.stored_tag):
            return f"protected: matches --keep-tag {pattern.pattern!r}", protected
    line = policy.keep_list.match(tag.image, str(tag.repository), tag.tag, tag.stored_tag)
    if line is not None:
        return f"protected: keep-list entry {line!r}", protected
    within = policy.keep_published_within
    if tag.published is not None and within and now - tag.published < within:
        return f"protected: published {_age(now - tag.published)} ago (--keep-published-within)", protected
    return None


def _age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    if seconds >= 86400:
        return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds // 60}m"


def _decision(tag: FoundTag, action: str, reason: str, basis: Basis | None = None) -> Decision:
    return Decision(
        KIND_TAG, tag.image, tag.repository, tag.tag, tag.stored_tag, tag.digest, action, reason, tag.strategy,
        basis or Basis(RULE_STRATEGY), tag.signature,
    )


def _stage_signature(tag: FoundTag) -> str | None:
    if tag.signature:
        return tag.signature
    return tag.tag if re.fullmatch(r"[0-9a-f]{64}", tag.tag) else None


def _by_history(tag: FoundTag, history: GitHistory) -> Decision:
    """Keep or delete a content-signature tag by the keep policies (see ``ci_env.cleanup.history``)."""
    signature = _stage_signature(tag)
    if signature is None or signature not in history.recorded:
        if history.strict:
            return _decision(tag, DELETE, "no metadata record of the commit that published it "
                             "(--git-history-based-cleanup-strict)", Basis(RULE_NO_METADATA))
        return _decision(tag, KEEP, "no metadata record of the commit that published it (published before "
                         "ci-env recorded commits, or by another tool): kept; --git-history-based-cleanup-strict "
                         "removes such tags", Basis(RULE_NO_METADATA))
    reach = history.verdict.kept.get((tag.image, signature))
    if reach is not None:
        return _decision(tag, KEEP, reach.describe(), Basis(
            RULE_KEEP_POLICY, reach.policy.number, str(reach.reference), reach.commit))
    misses = history.verdict.missed.get((tag.image, signature), [])
    if misses:
        more = f" (and likewise on {len(misses) - 1} more)" if len(misses) > 1 else ""
        first = misses[0]
        return _decision(tag, DELETE, f"no keep policy keeps it: {first.why}{more}", Basis(
            RULE_NO_KEEP_POLICY, first.policy.number, str(first.reference), first.commit))
    commits = history.recorded[signature]
    shown = ", ".join(c[:12] for c in commits[:3]) + (f" (+{len(commits) - 3} more)" if len(commits) > 3 else "")
    return _decision(tag, DELETE, "no keep policy keeps it: none of the references the keep policies select "
                     f"({history.verdict.references}) reaches commit {shown} that published it",
                     Basis(RULE_NO_KEEP_POLICY, commit=commits[0]))


def _apply_limits(
    found: Sequence[FoundTag], verdicts: Sequence[_Verdict | None], policy: Policy, now: datetime
) -> dict[int, str]:
    """Index -> reason for the tags that expiry or limit remove.

    Per (image, strategy), among the tags whose git object still exists: older than the expiry
    goes; of the rest, the newest ``count`` stay (date: git date, else publication; undated rank last).
    """
    groups: dict[tuple[str | None, str], list[tuple[int, datetime | None]]] = {}
    for index, (tag, verdict) in enumerate(zip(found, verdicts, strict=True)):
        if verdict is None or verdict.delete_reason is not None or tag.strategy is None:
            continue
        groups.setdefault((tag.image, tag.strategy), []).append((index, verdict.date or tag.published))
    limited: dict[int, str] = {}
    oldest = datetime.min.replace(tzinfo=now.tzinfo)
    for (_image, strategy), members in groups.items():
        limit_of = STRATEGY_POLICIES[strategy][1]
        if limit_of is None:
            continue
        limit = limit_of(policy)
        remaining = []
        for index, date in members:
            if limit.expiry is not None and date is not None and now - date > limit.expiry:
                limited[index] = f"older than --{strategy}-strategy-expiry-days ({_age(now - date)} old)"
            else:
                remaining.append((index, date))
        if limit.count is None:
            continue
        remaining.sort(key=lambda m: (m[1] or oldest, found[m[0]].tag), reverse=True)
        for rank, (index, _date) in enumerate(remaining[limit.count:], limit.count + 1):
            limited[index] = f"beyond --{strategy}-strategy-limit {limit.count} (newest first, this is number {rank})"
    return limited


def plan_tags(found: Sequence[FoundTag], git: GitFacts, policy: Policy, now: datetime) -> list[Decision]:
    """Keep or delete each of ``found`` (same order). See the module docstring for the rules."""
    ctx = _Context(git)
    history = policy.git_history
    verdicts: list[_Verdict | None] = []
    for tag in found:
        entry = STRATEGY_POLICIES.get(tag.strategy or "")
        if history is not None and tag.strategy == STAGES_SIGNATURE:
            entry = None  # decided by the keep policies below, never by the stages-signature limits
        verdicts.append(entry[0](tag, ctx) if entry else None)

    limited = _apply_limits(found, verdicts, policy, now)
    decisions: list[Decision] = []
    for index, (tag, verdict) in enumerate(zip(found, verdicts, strict=True)):
        protected = _protection(tag, policy, now)
        if protected is not None:
            decisions.append(_decision(tag, KEEP, *protected))
        elif history is not None and tag.strategy == STAGES_SIGNATURE:
            decisions.append(_by_history(tag, history))
        elif verdict is None:
            why = (
                f"unknown strategy {tag.strategy!r}"
                if tag.strategy
                else "no publication record or werf-tag-strategy label"
            )
            decisions.append(_decision(tag, KEEP, f"{why}: kept", Basis(RULE_UNKNOWN)))
        elif verdict.delete_reason is not None:
            decisions.append(_decision(tag, DELETE, verdict.delete_reason))
        elif index in limited:
            decisions.append(_decision(tag, DELETE, limited[index]))
        else:
            decisions.append(_decision(tag, KEEP, verdict.keep_reason))
    return decisions


# ---------------------------------------------------------------- stages


def plan_stages(
    stages: Sequence[StageTag],
    kept: Sequence[FoundTag],
    policy: Policy,
    now: datetime,
) -> list[Decision]:
    """Keep the stages a kept tag uses (by signature or by digest), or created recently; delete the others."""
    signatures = {t.signature for t in kept if t.signature}
    digests = {t.digest for t in kept if t.digest}
    decisions = []
    for stage in stages:
        rule = RULE_STAGE_USED
        in_use = _in_use(policy, stage.repository, stage.tag, stage.digest)
        workloads: tuple[str, ...] = ()
        if in_use is not None:
            action, reason, rule, workloads = KEEP, in_use[0], RULE_IN_USE, in_use[1].workloads
        elif stage.signature in signatures:
            action, reason = KEEP, "used by a kept tag (signature)"
        elif stage.digest is not None and stage.digest in digests:
            action, reason = KEEP, "used by a kept tag (digest)"
        elif (
            stage.created is not None
            and policy.keep_published_within
            and now - stage.created < policy.keep_published_within
        ):
            action, reason = KEEP, f"protected: created {_age(now - stage.created)} ago (--keep-published-within)"
            rule = RULE_PROTECTED
        else:
            action, reason, rule = DELETE, "no kept tag uses this stage", RULE_STAGE_UNUSED
        decisions.append(Decision(KIND_STAGE, None, stage.repository, stage.tag, stage.tag, stage.digest, action,
                                  reason, basis=Basis(rule, workloads=workloads)))
    return decisions


def plan_cleanup(
    found: Sequence[FoundTag], stages: Sequence[StageTag], git: GitFacts, policy: Policy, now: datetime
) -> Plan:
    """The whole cleanup plan: tags by policy, then the stages no kept tag uses."""
    tag_decisions = plan_tags(found, git, policy, now)
    kept = [t for t, d in zip(found, tag_decisions, strict=True) if d.action == KEEP]
    return Plan(tuple(tag_decisions) + tuple(plan_stages(stages, kept, policy, now)), policy.git_history,
                policy.in_use)


def plan_purge(found: Sequence[FoundTag], stages: Sequence[StageTag]) -> Plan:
    """Delete every managed tag and every stage."""
    decisions = [_decision(t, DELETE, "purge", Basis(RULE_PURGE)) for t in found]
    decisions += [
        Decision(KIND_STAGE, None, s.repository, s.tag, s.tag, s.digest, DELETE, "purge", basis=Basis(RULE_PURGE))
        for s in stages
    ]
    return Plan(tuple(decisions))
