"""The pure planning logic, with a fixed ``now``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ci_env.cleanup.policies import (
    DELETE,
    KEEP,
    Decision,
    FoundTag,
    Limit,
    Policy,
    StageTag,
    plan_cleanup,
    plan_purge,
    plan_tags,
)
from ci_env.cleanup.protections import KeepList, compile_keep_tags, read_keep_list
from ci_env.durations import parse_duration
from ci_env.errors import UsageError
from ci_env.gitinfo import CommitInfo, GitFacts, GitTag
from ci_env.registry.reference import RepoAddress

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=30)
REPO = RepoAddress("registry.example", "app")
STAGES = RepoAddress("reg.example", "stages")


def tag(name: str, strategy: str | None, *, ref: str | None = None, published: datetime | None = OLD,
        image: str | None = "api", digest: str | None = None, signature: str | None = None) -> FoundTag:
    return FoundTag(image, REPO, name, f"{image}-{name}" if image else name, digest or f"sha256:{name}",
                    strategy, "record" if strategy else "none", ref, published, signature)


def git(branches: Iterable[str] = (), tags: dict[str, int] | None = None,
        commits: dict[str, int] | None = None) -> GitFacts:
    return GitFacts(
        branches=frozenset(branches),
        tags={n: GitTag(n, "c" * 40, NOW - timedelta(days=d)) for n, d in (tags or {}).items()},
        commits={s: CommitInfo(s, NOW - timedelta(days=d)) for s, d in (commits or {}).items()},
    )


def actions(decisions: Sequence[Decision]) -> dict[str, str]:
    return {d.tag: d.action for d in decisions}


def test_branch_tags_go_when_branch_is_gone() -> None:
    found = [tag("main", "git-branch"), tag("feature-x", "git-branch"), tag("fix", "git-branch", ref="fix/y")]
    result = plan_tags(found, git({"main"}), Policy(), NOW)
    assert actions(result) == {"main": KEEP, "feature-x": DELETE, "fix": DELETE}
    assert "feature-x" in result[1].reason


def test_branch_with_slash_matches_its_docker_tag_form_when_no_record_names_it() -> None:
    from ci_env.tagging import docker_tag

    stored = docker_tag("feature/login")
    found = [tag(stored, "git-branch")]
    assert actions(plan_tags(found, git({"feature/login"}), Policy(), NOW)) == {stored: KEEP}
    assert actions(plan_tags(found, git({"feature/other"}), Policy(), NOW)) == {stored: DELETE}


def test_git_tag_tags_go_when_tag_gone_or_beyond_limit_and_expiry() -> None:
    found = [tag("v1", "git-tag"), tag("v2", "git-tag"), tag("v3", "git-tag"), tag("v0", "git-tag")]
    facts = git(tags={"v1": 20, "v2": 10, "v3": 1})
    assert actions(plan_tags(found, facts, Policy(), NOW)) == {"v1": KEEP, "v2": KEEP, "v3": KEEP, "v0": DELETE}
    limited = plan_tags(found, facts, Policy(git_tag=Limit(count=2)), NOW)
    assert actions(limited) == {"v1": DELETE, "v2": KEEP, "v3": KEEP, "v0": DELETE}
    assert "--git-tag-strategy-limit 2" in limited[0].reason
    expired = plan_tags(found, facts, Policy(git_tag=Limit(expiry=timedelta(days=15))), NOW)
    assert actions(expired) == {"v1": DELETE, "v2": KEEP, "v3": KEEP, "v0": DELETE}
    assert "expiry" in expired[0].reason


def test_limits_count_per_image() -> None:
    found = [tag("v1", "git-tag", image="api"), tag("v1", "git-tag", image="web"), tag("v2", "git-tag", image="web")]
    facts = git(tags={"v1": 20, "v2": 10})
    decisions = plan_tags(found, facts, Policy(git_tag=Limit(count=1)), NOW)
    assert [(d.image, d.tag, d.action) for d in decisions] == [
        ("api", "v1", KEEP), ("web", "v1", DELETE), ("web", "v2", KEEP)]


def test_commit_tags_go_when_commit_unreachable_or_beyond_limit() -> None:
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    found = [tag(a, "git-commit"), tag(b, "git-commit"), tag(c, "git-commit")]
    facts = git(commits={a: 5, b: 1})
    assert actions(plan_tags(found, facts, Policy(), NOW)) == {a: KEEP, b: KEEP, c: DELETE}
    assert actions(plan_tags(found, facts, Policy(git_commit=Limit(count=1)), NOW)) == {a: DELETE, b: KEEP, c: DELETE}
    assert actions(plan_tags(found, facts, Policy(git_commit=Limit(expiry=timedelta(days=3))), NOW)) == {
        a: DELETE, b: KEEP, c: DELETE}


def test_stages_signature_limits_use_publication_time() -> None:
    found = [tag("s1", "stages-signature", published=NOW - timedelta(days=9)),
             tag("s2", "stages-signature", published=NOW - timedelta(days=3))]
    assert actions(plan_tags(found, git(), Policy(), NOW)) == {"s1": KEEP, "s2": KEEP}
    policy = Policy(stages_signature=Limit(expiry=timedelta(days=7)))
    assert actions(plan_tags(found, git(), policy, NOW)) == {"s1": DELETE, "s2": KEEP}
    assert actions(plan_tags(found, git(), Policy(stages_signature=Limit(count=1)), NOW)) == {"s1": DELETE, "s2": KEEP}


def test_custom_and_unknown_strategies_are_kept() -> None:
    found = [tag("latest", "custom"), tag("mystery", None), tag("odd", "something-else")]
    decisions = plan_tags(found, git(), Policy(), NOW)
    assert actions(decisions) == {"latest": KEEP, "mystery": KEEP, "odd": KEEP}
    assert "no publication record" in decisions[1].reason


def test_protections_win_over_every_policy() -> None:
    found = [tag("release-1", "git-branch"), tag("gone", "git-branch", published=NOW - timedelta(minutes=30)),
             tag("pinned", "git-branch"), tag("other", "git-branch")]
    policy = Policy(keep_tags=compile_keep_tags(["release-.*"]), keep_list=KeepList(frozenset({"pinned"})))
    decisions = plan_tags(found, git(), policy, NOW)
    assert actions(decisions) == {"release-1": KEEP, "gone": KEEP, "pinned": KEEP, "other": DELETE}
    assert "--keep-tag" in decisions[0].reason
    assert "--keep-published-within" in decisions[1].reason
    assert "keep-list" in decisions[2].reason


def test_keep_tag_is_a_full_match_against_tags_not_digests() -> None:
    found = [tag("v10", "git-branch"), tag("v1", "git-branch", digest="sha256:v1abc")]
    policy = Policy(keep_tags=compile_keep_tags(["v1", "sha256:.*"]))
    assert actions(plan_tags(found, git(), policy, NOW)) == {"v10": DELETE, "v1": KEEP}


def test_keep_list_by_image(tmp_path: Path) -> None:
    path = tmp_path / "keep"
    path.write_text("# pinned\napi:feature-x  # the demo\n\nweb:other\n~:nameless-tag\n")
    keep = read_keep_list(path)
    found = [tag("feature-x", "git-branch"), tag("other", "git-branch"), tag("nameless-tag", "git-branch", image=None)]
    assert actions(plan_tags(found, git(), Policy(keep_list=keep), NOW)) == {
        "feature-x": KEEP, "other": DELETE, "nameless-tag": KEEP}


def test_stages_no_kept_tag_uses_are_deleted() -> None:
    found = [tag("main", "git-branch", signature="sig-main", digest="sha256:d1"),
             tag("gone", "git-branch", signature="sig-gone", digest="sha256:d2")]
    stages = [StageTag(STAGES, "sig-main", "sha256:d1", OLD),
              StageTag(STAGES, "sig-gone", "sha256:d2", OLD),
              StageTag(STAGES, "sig-shared", "sha256:d1", OLD),
              StageTag(STAGES, "sig-fresh", "sha256:d9", NOW - timedelta(minutes=5))]
    plan = plan_cleanup(found, stages, git({"main"}), Policy(), NOW)
    assert [(d.kind, d.tag, d.action) for d in plan.decisions] == [
        ("tag", "main", KEEP), ("tag", "gone", DELETE), ("stage", "sig-main", KEEP),
        ("stage", "sig-gone", DELETE), ("stage", "sig-shared", KEEP), ("stage", "sig-fresh", KEEP)]


def test_purge_deletes_everything() -> None:
    plan = plan_purge([tag("main", "git-branch"), tag("latest", "custom")], [StageTag(STAGES, "sig")])
    assert {d.action for d in plan.decisions} == {DELETE}
    assert len(plan.deletions) == 3


@pytest.mark.parametrize(("text", "expected"), [
    ("90m", timedelta(minutes=90)), ("2h", timedelta(hours=2)), ("3d", timedelta(days=3)),
    ("1d12h", timedelta(days=1, hours=12)), ("0", timedelta(0)), ("45s", timedelta(seconds=45))])
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "-1h", "2w", "1.5h"])
def test_bad_durations_say_what_to_write(text: str) -> None:
    with pytest.raises(UsageError, match="90m, 2h, 3d"):
        parse_duration(text)


def test_bad_keep_tag_regex_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"--keep-tag '\(' is not a valid regular expression"):
        compile_keep_tags(["("])


def test_bad_keep_list_lines_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "keep"
    path.write_text("ok\napi:\n")
    with pytest.raises(UsageError, match=r"keep:2: 'api:' has an empty image or tag"):
        read_keep_list(path)
    with pytest.raises(UsageError, match="cannot be read"):
        read_keep_list(tmp_path / "missing")


def test_tags_and_stages_in_use_in_kubernetes_are_kept_with_the_workload_named() -> None:
    from ci_env.cleanup.in_use import ImagesInUse, Workload
    from ci_env.cleanup.kube_objects import ImageUse

    deploy = Workload("prod", "apps", "Deployment", "api")
    pods = [Workload("prod", "apps", "Pod", f"api-{n}") for n in range(2)]
    runner = Workload("staging", "jobs", "Pod", "old")
    cron = Workload("staging", "jobs", "CronJob", "nightly")
    in_use = ImagesInUse.index([
        (deploy, ImageUse(str(REPO), "api-feature-x")), *((p, ImageUse(str(REPO), "api-feature-x")) for p in pods),
        (runner, ImageUse(str(REPO), None, "sha256:gone-commit")),
        (cron, ImageUse("registry.example/stages", "s" * 64)),
    ], ["prod", "staging"], 5)
    found = [tag("feature-x", "git-branch"), tag("gone-commit", "git-commit", ref="d" * 40),
             tag("feature-y", "git-branch")]
    where = RepoAddress("registry.example", "stages")
    stages = [StageTag(where, "s" * 64), StageTag(where, "t" * 64)]
    plan = plan_cleanup(found, stages, git({"main"}), Policy(in_use=in_use, keep_tags=compile_keep_tags([".*"])),
                        NOW)
    reasons = {d.tag: (d.action, d.reason) for d in plan.decisions}
    assert reasons["feature-x"] == (KEEP, "in use: prod/apps/Deployment/api, +2 more")  # before --keep-tag
    assert reasons["gone-commit"] == (KEEP, "in use: staging/jobs/Pod/old")  # the digest it runs
    assert reasons["feature-y"][1].startswith("protected: matches --keep-tag")
    assert reasons["s" * 64] == (KEEP, "in use: staging/jobs/CronJob/nightly")
    assert reasons["t" * 64][0] == DELETE
    assert plan_purge(found, stages).kept == ()  # purge is explicit: nothing in use survives it
