"""werf.yaml's cleanup.keepPolicies: werf's syntax parsed, defaults, and every mistake named by file and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ci_env.cleanup.keep_policies import AND, BRANCH, OR, TAG, default_policies
from ci_env.errors import ConfigError
from ci_env.project import load_project

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
    ("cleanup:\n  keepPolicies:\n  - references: {branch: main}\n    imagesPerReference: {last: -2}\n", 6,
     "must be a whole number"),
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
