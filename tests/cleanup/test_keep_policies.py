"""werf.yaml's cleanup.keepPolicies: werf's syntax parsed, defaults, and every mistake named by file and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ci_env.errors import ConfigError
from ci_env.werf_config import load_project
from ci_env.werf_config.cleanup import AND, BRANCH, OR, TAG, default_policies

HEAD = "project: demo\nconfigVersion: 1\n"
IMAGE = "---\nimage: app\n"


def write_project(tmp_path: Path, cleanup: str) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "werf.yaml").write_text(HEAD + cleanup + IMAGE)
    return tmp_path


def test_no_cleanup_section_means_werfs_defaults(tmp_path: Path) -> None:
    config = load_project(write_project(tmp_path, "")).cleanup
    assert config is not None and config.defaults
    tags, branches, main = config.keep_policies
    assert (tags.kind, tags.references_limit and tags.references_limit.last) == (TAG, 10)
    assert branches.kind == BRANCH and branches.references_limit is not None
    assert (branches.references_limit.last, branches.references_limit.within) == (10, timedelta(days=7))
    assert (branches.images_per_reference.last, branches.images_per_reference.within) == (2, timedelta(days=7))
    assert main.selects("main") and main.selects("production") and not main.selects("mainline")
    assert main.images_last == 10
    assert default_policies() == config.keep_policies


def test_werf_syntax_is_read(tmp_path: Path) -> None:
    cleanup = """cleanup:
  keepPolicies:
  - references:
      tag: /^v[0-9]+$/
      limit:
        last: 5
        in: 1d12h
        operator: Or
  - references:
      branch: release
    imagesPerReference:
      last: -1
      in: 30m
  keepImagesBuiltWithinLastNHours: 6
  disableKubernetesBasedPolicy: true
"""
    config = load_project(write_project(tmp_path, cleanup)).cleanup
    assert config is not None and not config.defaults
    first, second = config.keep_policies
    assert first.kind == TAG and first.selects("v12") and not first.selects("v1.2")
    assert first.references_limit is not None
    assert (first.references_limit.last, first.references_limit.within, first.references_limit.operator) == (
        5, timedelta(days=1, hours=12), OR)
    assert second.selects("release") and not second.selects("release-1")
    assert (second.images_last, second.images_per_reference.within, second.images_per_reference.operator) == (
        -1, timedelta(minutes=30), AND)
    assert config.keep_images_built_within_last_n_hours == 6 and config.disable_kubernetes_based_policy
    assert "policy #1 (tag /^v[0-9]+$/: last 5 or in 1d12h" in first.describe()


@pytest.mark.parametrize(("cleanup", "line", "words"), [
    ("cleanup:\n  keepPolicies:\n  - references: {branch: main, tag: v1}\n", 5, "exactly one of branch or tag"),
    ("cleanup:\n  keepPolicies:\n  - imagesPerReference: {last: 1}\n", 5, "has no 'references'"),
    ("cleanup:\n  keepPolicies:\n  - references: {branch: main}\n    imagesPerReference: {last: two}\n", 6,
     "must be a whole number"),
    ("cleanup:\n  keepPolicies:\n  - references: {branch: main}\n    imagesPerReference: {last: 1.5}\n", 6,
     "must be a whole number"),
    ("cleanup:\n  keepImagesBuiltWithinLastNHours: -1\n", 4, "must be a whole number (0 or more)"),
    ("cleanup:\n  keepPolicies:\n  - references:\n      branch: main\n      limit: {in: 3600}\n", 7,
     "is not a duration"),
    ("cleanup:\n  keepPolicies:\n  - references:\n      branch: main\n      limit: {in: 1h 30m}\n", 7,
     "is not a duration"),
    ("cleanup:\n  disableKubernetesBasedPolicy: 'yes'\n", 4, "quoted, it is a string"),
    ("cleanup:\n  keepPolicies:\n  - references:\n      branch: main\n      limit: {in: 7 days}\n", 7,
     "is not a duration"),
    ("cleanup:\n  keepPolicies:\n  - references:\n      branch: main\n      limit: {operator: and}\n", 7,
     "must be And or Or"),
    ("cleanup:\n  keepPolicies:\n  - references: {branch: '/(unclosed/'}\n", 5, "not a valid regular expression"),
    ("cleanup:\n  keepPolicy: []\n", 4, "unknown key 'keepPolicy'"),
    ("cleanup:\n  keepPolicies:\n  - references: {branch: main, last: 3}\n", 5, "unknown key 'last'"),
    ("cleanup:\n  keepPolicies: {branch: main}\n", 4, "must be a list"),
    ("cleanup:\n  disableGitHistoryBasedPolicy: maybe\n", 4, "true or false"),
])
def test_malformed_policy_names_file_and_line(tmp_path: Path, cleanup: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_project(write_project(tmp_path, cleanup))
    message = caught.value.message
    assert f"werf.yaml:{line}:" in message and words in message


# ---------------------------------------------------------------- what werf accepts, ci-env accepts alike


def _images_limit(tmp_path: Path, limit: str) -> tuple[int, timedelta | None, str]:
    cleanup = f"cleanup:\n  keepPolicies:\n  - references: {{branch: main}}\n    imagesPerReference: {limit}\n"
    config = load_project(write_project(tmp_path, cleanup)).cleanup
    assert config is not None
    policy = config.keep_policies[0]
    return policy.images_last, policy.images_per_reference.within, policy.describe()


@pytest.mark.parametrize("last", ["-1", "-2", "-100", "-0x10"])
def test_keep_policy_negative_last_is_unlimited__werf_git_history_based_cleanup_scanner_go(
    tmp_path: Path, last: str
) -> None:
    """werf's scanner.go handles ``last`` only when it is above 0 ("We should not handle result if the Last is
    unlimited (<0)"): every negative number means no limit, not only -1."""
    images_last, _within, described = _images_limit(tmp_path, f"{{last: {last}}}")
    assert images_last == -1 and "images per reference: no limit" in described


@pytest.mark.parametrize(("text", "expected"), [
    ("21.5h", timedelta(hours=21, minutes=30)),
    ("90m30s", timedelta(minutes=90, seconds=30)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("500ms", timedelta(milliseconds=500)),
    ("1.5s", timedelta(seconds=1.5)),
    (".5h", timedelta(minutes=30)),
    ("2h45m0.5s", timedelta(hours=2, minutes=45, seconds=0.5)),
    ("1000us", timedelta(milliseconds=1)),
    ("1000\u00b5s", timedelta(milliseconds=1)),
    ("'168h'", timedelta(hours=168)),
    ("+3h", timedelta(hours=3)),
    ("0", timedelta(0)),
    ("7d", timedelta(days=7)),  # ci-env's own unit, besides Go's
    ("1d12h", timedelta(days=1, hours=12)),
])
def test_keep_policy_in_reads_gos_time_parse_duration__werf_raw_meta_cleanup_go(
    tmp_path: Path, text: str, expected: timedelta
) -> None:
    """raw_meta_cleanup.go declares ``in`` a Go ``*time.Duration``, which werf's YAML reader (go-yaml v2) fills
    with ``time.ParseDuration``: fractions, sequences and units from ns to h are werf.yaml that werf accepts."""
    _last, within, _described = _images_limit(tmp_path, f"{{in: {text}}}")
    assert within == expected


def test_a_negative_in_keeps_nothing_by_date_as_in_werf__werf_raw_meta_cleanup_go(tmp_path: Path) -> None:
    """Go's durations may be negative; werf compares commit dates with now minus it, so nothing is within."""
    _last, within, described = _images_limit(tmp_path, "{in: -1h}")
    assert within == timedelta(hours=-1) and "in -1h" in described


@pytest.mark.parametrize(("text", "expected"), [
    ("yes", True), ("Yes", True), ("YES", True), ("on", True), ("On", True), ("ON", True), ("y", True),
    ("Y", True), ("true", True), ("True", True), ("TRUE", True),
    ("no", False), ("No", False), ("NO", False), ("off", False), ("Off", False), ("OFF", False), ("n", False),
    ("N", False), ("false", False), ("False", False), ("FALSE", False),
])
def test_yaml_1_1_booleans_as_werfs_yaml_reader__go_yaml_v2_resolve_go(
    tmp_path: Path, text: str, expected: bool
) -> None:
    """werf reads werf.yaml with go-yaml v2 (YAML 1.1): its resolve.go table makes each of these unquoted words a
    boolean, so ``disableKubernetesBasedPolicy: yes`` is werf.yaml that werf accepts."""
    flags = ("disableKubernetesBasedPolicy", "disableGitHistoryBasedPolicy", "disableBuiltWithinLastNHoursPolicy",
             "disable")
    cleanup = "cleanup:\n" + "".join(f"  {flag}: {text}\n" for flag in flags)
    config = load_project(write_project(tmp_path, cleanup)).cleanup
    assert config is not None
    assert (config.disable_kubernetes_based_policy, config.disable_git_history_based_policy,
            config.disable_built_within_last_n_hours_policy, config.disable) == (expected,) * 4


@pytest.mark.parametrize(("text", "expected"), [
    ("1_000", 1000), ("0x10", 16), ("0o17", 15), ("017", 15), ("0b101", 5), ("+3", 3),
])
def test_whole_numbers_as_werfs_yaml_reader__go_yaml_v2_resolve_go(tmp_path: Path, text: str, expected: int) -> None:
    """go-yaml v2 resolves integers with Go's strconv.ParseInt(base 0), underscores dropped."""
    cleanup = (f"cleanup:\n  keepImagesBuiltWithinLastNHours: {text}\n  keepPolicies:\n"
               f"  - references: {{branch: main, limit: {{last: {text}}}}}\n")
    config = load_project(write_project(tmp_path, cleanup)).cleanup
    assert config is not None and config.keep_images_built_within_last_n_hours == expected
    limit = config.keep_policies[0].references_limit
    assert limit is not None and limit.last == expected
