"""What users run today, translated to a rules file and given the same repository: ci-env removes what each
tool's documentation says it removes, and never a platform manifest or attestation of a kept index.

Each expected set below is worked out by hand from the tool's documented algorithm (quoted in each test), not
from the engine; the configurations are the ones docs/migrating.md shows side by side.
"""

from __future__ import annotations

from datetime import timedelta

from ci_env.retention.engine import ACTION_KEEP, AGE_REGISTRY, Artifact, Inventory, decide
from ci_env.retention.rules import parse_rules
from tests.retention.fixture import (
    CHILDREN,
    NOW,
    TAG_AGES,
    ago,
    inventory,
    removed_manifests,
    removed_tags,
    run,
)


def assert_children_kept(decisions: tuple) -> None:  # type: ignore[type-arg]
    kept = {d.digest for d in decisions if d.tag is None and d.action == ACTION_KEEP}
    assert set(CHILDREN) <= kept, "a platform manifest or attestation of the kept index was removed"


def test_gitlab_cleanup_policy_keep_n_older_than_name_regex_name_regex_keep() -> None:
    # GitLab: keep_n: 3, older_than: 90d, name_regex: '.*', name_regex_keep: 'v.+'.
    # Documented algorithm: collect all tags; exclude `latest`; keep only tags matching name_regex; exclude those
    # matching name_regex_keep; order by created date; exclude the keep_n most recent; exclude tags more recent
    # than older_than; delete the rest. Untagged manifests are left to garbage collection.
    # By hand: after latest and v.+ go: main 2, dev-4 3, dev-3 10, pr-7 45, multi 50, dev-2 60, pr-8 95,
    # dev-1 100; keep_n takes main, dev-4, dev-3; older_than spares pr-7, multi, dev-2 -> pr-8 and dev-1 go.
    decisions = run("""version: 1
repositories:
- namespace: group
  rules:
  - tags: {include: ['.*'], exclude: [latest, 'v.+']}
    keep: {last: 3}
    remove: {olderThan: 90d}
""")
    assert removed_tags(decisions) == {"pr-8", "dev-1"}
    assert removed_manifests(decisions) == set()  # GitLab's policy never touches untagged manifests
    assert_children_kept(decisions)


def test_gitlab_cleanup_policy_never_deletes_latest_even_when_name_regex_matches_it() -> None:
    # "Excludes the tag named latest from the list": with keep_n 1 and older_than 0-ish everything else old goes,
    # but latest (here made the oldest tag) stays.
    inv = inventory()
    aged = tuple(Artifact(a.digest, a.tag, ago(999), AGE_REGISTRY) if a.tag == "latest" else a
                 for a in inv.artifacts)
    decisions = run("""version: 1
repositories:
- glob: '**'
  rules:
  - tags: {exclude: [latest]}
    keep: {last: 1}
""", Inventory(inv.repository, aged, inv.edges))
    assert "latest" not in removed_tags(decisions)
    assert removed_tags(decisions) == set(TAG_AGES) - {"latest", "main"}  # main is the most recent of the rest


def test_ecr_lifecycle_policy_rule_priority_image_count_since_image_pushed_untagged() -> None:
    # ECR lifecycle policy:
    #   rulePriority 1: tagStatus tagged, tagPatternList ["v*"], countType imageCountMoreThan, countNumber 2
    #   rulePriority 2: tagStatus tagged, tagPatternList ["dev-*"], countType sinceImagePushed, countNumber 30 days
    #   rulePriority 3: tagStatus untagged, countType imageCountMoreThan, countNumber 1
    # By hand: rule 1 keeps v2.0.0 and v1.1.0, expires v1.0.0; rule 2 expires dev-1 (100d) and dev-2 (60d);
    # rule 3 keeps the newest untagged image and expires the two others. No rule selects latest, main, pr-*
    # or multi: kept. The index's platform manifests are never counted as untagged images.
    decisions = run("""version: 1
repositories:
- name: group/app
  unit: image
  untagged: {exceptLast: 1}
  rules:
  - tags: {include: ['v.*']}
    keep: {last: 2}
  - tags: {include: ['dev-.*']}
    remove: {olderThan: 30d}
""")
    assert removed_tags(decisions) == {"v1.0.0", "dev-1", "dev-2"}
    assert removed_manifests(decisions) == {"sha256:untagged-31", "sha256:untagged-90"}
    assert_children_kept(decisions)


def test_ecr_lifecycle_policy_documented_example_a_a_higher_priority_match_is_never_expired_by_a_lower_rule() -> None:
    # ECR's "Filtering on multiple rules", Example A: Image A [beta-1, prod-1] 10 days, Image B [beta-2, prod-2]
    # 9 days, Image C [beta-3] 8 days; rule 1 prod* imageCountMoreThan 1, rule 2 beta* imageCountMoreThan 1.
    # Documented result: "Image A is expired" (rule 2 would mark B, but B matches rule 1, so it is skipped).
    inv = Inventory("registry.example/app", (
        Artifact("sha256:a", "beta-1", ago(10), AGE_REGISTRY), Artifact("sha256:a", "prod-1", ago(10), AGE_REGISTRY),
        Artifact("sha256:b", "beta-2", ago(9), AGE_REGISTRY), Artifact("sha256:b", "prod-2", ago(9), AGE_REGISTRY),
        Artifact("sha256:c", "beta-3", ago(8), AGE_REGISTRY),
    ))
    entry = parse_rules("""version: 1
repositories:
- glob: '*'
  unit: image
  rules:
  - tags: {include: ['prod.*']}
    keep: {last: 1}
  - tags: {include: ['beta.*']}
    keep: {last: 1}
""", __import__("pathlib").Path("ecr.yaml")).for_repository("app")
    assert entry is not None
    decisions = decide(inv, entry, NOW)
    assert removed_tags(decisions) == {"beta-1", "prod-1"}


def test_snok_container_retention_policy_v3_cut_off_keep_n_most_recent_image_tags_tag_selection_both() -> None:
    # snok/container-retention-policy v3: image-names: app, image-tags: !latest !main, tag-selection: both,
    # cut-off: 4w, keep-n-most-recent: 2.
    # Documented: package versions are selected by name, tags and cut-off; of the tagged versions selected, the
    # keep-n-most-recent most recent are retained and the rest deleted; keep-n-most-recent "will not prevent
    # deletion of untagged images".
    # By hand: tagged and older than 28 days, neither latest nor main: v1.0.0 400, v1.1.0 200, dev-1 100,
    # pr-8 95, dev-2 60, multi 50, pr-7 45 -> pr-7 and multi retained, five deleted; untagged older than 28
    # days: untagged-31 and untagged-90 deleted. snok's own documentation warns that it would also delete the
    # index's untagged platform manifests (50 days old) and break the image: ci-env keeps them.
    decisions = run("""version: 1
repositories:
- name: group/app
  unit: image
  untagged: {olderThan: 28d}
  rules:
  - tags: {exclude: [latest, main]}
    remove: {olderThan: 28d, exceptLast: 2}
""")
    assert removed_tags(decisions) == {"v1.0.0", "v1.1.0", "dev-1", "pr-8", "dev-2"}
    assert removed_manifests(decisions) == {"sha256:untagged-31", "sha256:untagged-90"}
    assert_children_kept(decisions)


def test_snok_container_retention_policy_v3_tag_selection_untagged() -> None:
    # tag-selection: untagged, cut-off: 1h (the README's personal-account example): every untagged version older
    # than an hour goes, no tagged one; platform manifests of a kept index are not "untagged images" to ci-env.
    decisions = run("""version: 1
repositories:
- glob: '**'
  untagged: {olderThan: 1h}
  rules:
  - keep: all
""")
    assert removed_tags(decisions) == set()
    assert removed_manifests(decisions) == {"sha256:untagged-2", "sha256:untagged-31", "sha256:untagged-90"}
    assert_children_kept(decisions)


def test_dataaxiom_ghcr_cleanup_action_keep_n_tagged_exclude_tags_older_than_delete_untagged() -> None:
    # dataaxiom/ghcr-cleanup-action: keep-n-tagged: 3, exclude-tags: v*, older-than: 30 days,
    # delete-untagged: true.
    # Documented: older-than "narrows the scope" of every option to images older than it ("keep all tagged
    # images younger than 1 year and 10 tagged images that are older than 1 year"); exclude-tags "takes
    # priority over all other options"; keep-n-tagged keeps the most recent tagged images; untagged images
    # referenced by a multi-architecture image are skipped.
    # By hand: tagged, older than 30 days, not v*: dev-1 100, pr-8 95, dev-2 60, multi 50, pr-7 45 -> pr-7,
    # multi, dev-2 kept, pr-8 and dev-1 deleted; untagged older than 30 days: untagged-31, untagged-90.
    decisions = run("""version: 1
repositories:
- name: group/app
  unit: image
  untagged: {olderThan: 30d}
  rules:
  - tags: {exclude: ['v.*']}
    remove: {olderThan: 30d, exceptLast: 3}
""")
    assert removed_tags(decisions) == {"pr-8", "dev-1"}
    assert removed_manifests(decisions) == {"sha256:untagged-31", "sha256:untagged-90"}
    assert_children_kept(decisions)


def test_dataaxiom_ghcr_cleanup_action_keep_n_untagged_and_multi_arch_children_go_with_their_index() -> None:
    # keep-n-untagged: 1 with keep-n-tagged: 0 on tags dev-* (delete-tags: dev-*): the newest untagged image is
    # kept; "Deleting a multi-architecture image will also delete the underlying child images": here multi is
    # removed by delete-tags: multi, so its platform manifests and attestation go with it.
    decisions = run("""version: 1
repositories:
- name: group/app
  unit: image
  untagged: {exceptLast: 1}
  rules:
  - tags: {include: ['dev-.*', multi]}
    remove: all
""")
    assert removed_tags(decisions) == {"dev-1", "dev-2", "dev-3", "dev-4", "multi"}
    assert removed_manifests(decisions) == {"sha256:untagged-31", "sha256:untagged-90", *CHILDREN}


def test_every_tool_uses_the_registry_push_time_and_the_report_says_so() -> None:
    decisions = run("""version: 1
repositories:
- name: group/app
  rules:
  - remove: {olderThan: 90d}
""")
    gone = {d.tag: d.reason for d in decisions if d.tag in {"dev-1", "pr-8"}}
    assert all("by the registry's push time" in reason for reason in gone.values())
    assert "older than 90d" in gone["dev-1"]
    assert timedelta(days=TAG_AGES["dev-1"]) > timedelta(days=90)
