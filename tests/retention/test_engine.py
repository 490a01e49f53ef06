"""The retention engine's own rules: priority, count and age, unknown push times, ties, protections, the graph."""

from __future__ import annotations

from ci_env.retention.engine import (
    ACTION_DELETE,
    ACTION_KEEP,
    AGE_CONFIG,
    AGE_REGISTRY,
    BASIS_GRAPH,
    BASIS_NO_RULE,
    BASIS_PROTECTION,
    EDGE_PLATFORM,
    EDGE_SIGNATURE,
    Artifact,
    Edge,
    Inventory,
    Protections,
)
from tests.retention.fixture import REPOSITORY, TAG_AGES, ago, removed_manifests, removed_tags, run

KEEP_LAST_1 = """version: 1
repositories:
- glob: '**'
  rules:
  - keep: {last: 1}
"""


def by_tag(decisions: tuple) -> dict:  # type: ignore[type-arg]
    return {d.tag: d for d in decisions if d.tag is not None}


def test_a_tag_no_rule_covers_is_kept_with_that_reason() -> None:
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - tags: {include: ['dev-.*']}
    remove: all
""")
    main = by_tag(decisions)["main"]
    assert (main.action, main.reason, main.basis.rule) == (ACTION_KEEP, "matched no rule: kept", BASIS_NO_RULE)
    assert removed_tags(decisions) == {"dev-1", "dev-2", "dev-3", "dev-4"}


def test_keep_last_reason_names_the_rule_and_its_line_and_the_age_source() -> None:
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - tags: {include: ['dev-.*']}
    keep: {last: 2}
""")
    tags = by_tag(decisions)
    assert tags["dev-4"].action == ACTION_KEEP
    assert "among the 2 most recent tags of rule #1 (line 5)" in tags["dev-4"].reason
    assert tags["dev-1"].action == ACTION_DELETE
    assert tags["dev-1"].reason.startswith("beyond the 2 most recent tags of rule #1 (line 5)")
    assert "pushed 2025-11-21 12:00 UTC by the registry's push time" in tags["dev-1"].reason
    assert tags["dev-1"].basis.as_json() == {"rule": "retention-rule", "number": 1, "line": 5}


def test_a_count_of_one_is_said_in_the_singular() -> None:
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - tags: {include: ['dev-.*']}
    keep: {last: 1}
    remove: {exceptLast: 1}
""")
    tags = by_tag(decisions)
    assert tags["dev-4"].reason.startswith("the most recent tag of rule #1 (line 5) (")
    assert tags["dev-3"].reason.startswith("the most recent tag rule #1 (line 5) would remove, spared (")
    assert tags["dev-1"].reason.startswith("beyond the most recent tag of rule #1 (line 5), not the most recent of "
                                           "those (")


def test_keep_within_and_remove_older_than_leave_the_middle_alone() -> None:
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - tags: {include: ['dev-.*']}
    keep: {within: 7d}
    remove: {olderThan: 90d}
""")
    tags = by_tag(decisions)
    assert removed_tags(decisions) == {"dev-1"}
    assert "within 7d" in tags["dev-4"].reason
    assert tags["dev-2"].reason.startswith("not older than 90d: rule #1")


def test_a_tag_whose_push_time_is_unknown_is_kept_and_takes_no_place_in_the_count() -> None:
    inv = Inventory(REPOSITORY, (
        Artifact("sha256:a", "a", None, None), Artifact("sha256:b", "b", ago(5), AGE_CONFIG),
        Artifact("sha256:c", "c", ago(9), AGE_REGISTRY),
    ))
    decisions = run(KEEP_LAST_1, inv)
    assert removed_tags(decisions) == {"c"}
    assert "push time unknown" in by_tag(decisions)["a"].reason
    assert "created" in by_tag(decisions)["b"].reason and "by the image config" in by_tag(decisions)["b"].reason


def test_ties_in_push_time_are_broken_by_name_whatever_the_listing_order() -> None:
    same = ago(3)
    forward = Inventory(REPOSITORY, tuple(Artifact(f"sha256:{t}", t, same, AGE_REGISTRY) for t in "cab"))
    backward = Inventory(REPOSITORY, tuple(reversed(forward.artifacts)))
    assert removed_tags(run(KEEP_LAST_1, forward)) == removed_tags(run(KEEP_LAST_1, backward)) == {"b", "c"}


def test_a_later_rule_counts_what_an_earlier_rule_covers_as_ecr_does() -> None:
    # rule 2 ranks every tag it covers, latest (rule 1's, and the newest) included; latest fills its one place,
    # so rule 2 removes every other tag, main (the next newest) too
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - tags: {include: [latest]}
    keep: all
  - keep: {last: 1}
""")
    assert removed_tags(decisions) == set(TAG_AGES) - {"latest"}


def test_protections_veto_a_removal_with_their_own_reason() -> None:
    protections = Protections(tags={"dev-1": "keep-list line dev-1"}, tag_patterns=(("pr-.*", "--keep-tag 'pr-.*'"),),
                              digests={"sha256:dev-2": "in use in Kubernetes (deployment/web)"})
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - remove: all
""", protections=protections)
    tags = by_tag(decisions)
    for tag, reason in (("dev-1", "keep-list"), ("pr-7", "--keep-tag"), ("dev-2", "Kubernetes")):
        assert tags[tag].action == ACTION_KEEP and reason in tags[tag].reason
        assert tags[tag].basis.rule == BASIS_PROTECTION


def test_a_protected_index_keeps_its_platform_manifests() -> None:
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - remove: all
""", protections=Protections(digests={"sha256:index-multi": "in use in Kubernetes (deployment/web)"}))
    assert "multi" not in removed_tags(decisions)
    assert not removed_manifests(decisions) & {"sha256:multi-amd64", "sha256:multi-arm64"}


def test_a_signature_tag_of_a_kept_image_is_kept_and_one_of_a_removed_image_is_not() -> None:
    inv = Inventory(REPOSITORY, (
        Artifact("sha256:app1", "v1", ago(100), AGE_REGISTRY), Artifact("sha256:app2", "v2", ago(1), AGE_REGISTRY),
        Artifact("sha256:sig1", "sha256-app1.sig", ago(100), AGE_REGISTRY),
        Artifact("sha256:sig2", "sha256-app2.sig", ago(1), AGE_REGISTRY),
    ), {"sha256:app1": (Edge("sha256:sig1", EDGE_SIGNATURE),), "sha256:app2": (Edge("sha256:sig2", EDGE_SIGNATURE),)})
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - tags: {include: ['v.*']}
    keep: {last: 1}
  - tags: {include: ['sha256-.*']}
    remove: all
""", inv)
    tags = by_tag(decisions)
    assert removed_tags(decisions) == {"v1", "sha256-app1.sig"}
    assert tags["sha256-app2.sig"].basis.rule == BASIS_GRAPH
    assert tags["sha256-app2.sig"].reason.startswith("the signature of kept tag v2")


def test_a_tag_on_a_platform_manifest_of_a_kept_index_is_kept() -> None:
    inv = Inventory(REPOSITORY, (
        Artifact("sha256:idx", "release", ago(1), AGE_REGISTRY),
        Artifact("sha256:amd", "release-amd64", ago(100), AGE_REGISTRY),
    ), {"sha256:idx": (Edge("sha256:amd", EDGE_PLATFORM),)})
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - remove: {olderThan: 30d}
""", inv)
    assert removed_tags(decisions) == set()
    assert "platform manifest of kept tag release" in by_tag(decisions)["release-amd64"].reason


def test_removing_one_of_two_tags_of_a_digest_says_only_the_tag_goes() -> None:
    inv = Inventory(REPOSITORY, (
        Artifact("sha256:x", "old-name", ago(100), AGE_REGISTRY), Artifact("sha256:x", "stable", ago(1), AGE_REGISTRY),
    ))
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - tags: {include: ['old-.*']}
    remove: all
""", inv)
    assert removed_tags(decisions) == {"old-name"}
    assert "only the tag goes: tag stable keeps the image" in by_tag(decisions)["old-name"].reason


def test_image_unit_keeps_an_image_when_any_of_its_tags_is_excluded() -> None:
    inv = Inventory(REPOSITORY, (
        Artifact("sha256:x", "build-1", ago(100), AGE_REGISTRY), Artifact("sha256:x", "prod", ago(100), AGE_REGISTRY),
        Artifact("sha256:y", "build-2", ago(100), AGE_REGISTRY),
    ))
    decisions = run("""version: 1
repositories:
- glob: '**'
  unit: image
  rules:
  - tags: {exclude: [prod]}
    remove: all
""", inv)
    assert removed_tags(decisions) == {"build-2"}


def test_an_untagged_index_kept_by_the_untagged_policy_keeps_its_platform_manifests() -> None:
    inv = Inventory(REPOSITORY, (
        Artifact("sha256:idx", None, ago(1), AGE_REGISTRY), Artifact("sha256:amd", None, ago(100), AGE_REGISTRY),
        Artifact("sha256:lonely", None, ago(100), AGE_REGISTRY),
    ), {"sha256:idx": (Edge("sha256:amd", EDGE_PLATFORM),)})
    decisions = run("""version: 1
repositories:
- glob: '**'
  untagged: {olderThan: 30d}
  rules:
  - keep: all
""", inv)
    assert removed_manifests(decisions) == {"sha256:lonely"}


def test_the_decisions_name_the_repository_for_tags_and_untagged_manifests() -> None:
    decisions = run(KEEP_LAST_1)
    assert {d.repository for d in decisions} == {REPOSITORY}
    untagged = next(d for d in decisions if d.tag is None)
    assert untagged.reference == f"{REPOSITORY}@{untagged.digest}"


def test_a_platform_manifest_shared_by_a_removed_and_a_kept_untagged_index_stays_with_the_kept_one() -> None:
    shared, own = "sha256:shared", "sha256:own"
    inv = Inventory(REPOSITORY, (
        Artifact("sha256:old-idx", None, ago(100), AGE_REGISTRY),
        Artifact("sha256:new-idx", None, ago(1), AGE_REGISTRY),
        Artifact(shared, None, ago(100), AGE_REGISTRY), Artifact(own, None, ago(100), AGE_REGISTRY),
    ), {"sha256:old-idx": (Edge(shared, EDGE_PLATFORM), Edge(own, EDGE_PLATFORM)),
        "sha256:new-idx": (Edge(shared, EDGE_PLATFORM),)})
    decisions = run("""version: 1
repositories:
- glob: '**'
  untagged: {olderThan: 30d}
  rules:
  - keep: all
""", inv)
    assert removed_manifests(decisions) == {"sha256:old-idx", own}
    kept = next(d for d in decisions if d.digest == shared)
    assert kept.action == ACTION_KEEP and kept.reason == "the platform manifest of kept sha256:new-idx"
