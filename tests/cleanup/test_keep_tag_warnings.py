"""`--keep-tag` matches whole tags; cleanup warns about a pattern that protects nothing and says what to write."""

from __future__ import annotations

from pathlib import Path

from ci_env.cleanup.protections import keep_tag_warnings
from tests.cleanup.test_cleanup_e2e import _args, project, run_cli  # noqa: F401  (project is a fixture)
from tests.cleanup.world import World


def test_cleanup_warns_about_keep_tag_patterns_that_protect_nothing(
    world: World, project: dict[str, str], tmp_path: Path  # noqa: F811
) -> None:
    result = run_cli("cleanup", *_args(world, project), "--dry-run", "--keep-tag", "^feature-",
                     "--keep-tag", "hotfix-.*", "--keep-tag", "main", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("ci-env: warning: --keep-tag")]
    assert len(warnings) == 2
    assert warnings[0].startswith("ci-env: warning: --keep-tag '^feature-' matches no tag in full, only the start of ")
    assert warnings[0].endswith("and --keep-tag matches whole tags, so it protects nothing: write '^feature-.*' to "
                                "keep them")
    assert warnings[1].startswith("ci-env: warning: --keep-tag 'hotfix-.*' matches none of the ")
    assert "'main'" not in result.stderr  # it matches the main tag in full
    # the prefix pattern really protects nothing: feature-a is still planned for removal
    assert any("feature-a" in line and "delete" in line for line in result.stdout.splitlines())


def test_no_warning_for_whole_tag_patterns_or_without_tags() -> None:
    assert keep_tag_warnings(["rel-.*", "v[0-9]+"], ["rel-1", "v2"]) == []
    assert keep_tag_warnings(["^rel-"], []) == []


def test_prefix_inside_and_no_match_each_say_what_to_do() -> None:
    tags = ["rel-1.0", "rel-2.0", "build-rc-7"]
    assert keep_tag_warnings(["^rel-", "rc", "nightly"], tags) == [
        "--keep-tag '^rel-' matches no tag in full, only the start of 2 tags (e.g. 'rel-1.0'), and --keep-tag "
        "matches whole tags, so it protects nothing: write '^rel-.*' to keep them",
        "--keep-tag 'rc' matches no tag in full, only a part of 1 tag (e.g. 'build-rc-7'), and --keep-tag "
        "matches whole tags, so it protects nothing: write '.*rc.*' to keep them",
        "--keep-tag 'nightly' matches none of the 3 tags found: it protects nothing; check the pattern "
        "(it must match whole tags)",
    ]
