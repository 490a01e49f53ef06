"""The rules file: its shape read, and every mistake named by file and line with what to write."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ci_env.errors import ConfigError
from ci_env.retention.rules import UNIT_IMAGE, load_rules, parse_rules


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "retention.yaml"
    path.write_text(text)
    return load_rules(path)


def test_the_documented_example_is_read(tmp_path: Path) -> None:
    rules = load(tmp_path, """version: 1
repositories:
- glob: "team/*"
  unit: image
  untagged: {olderThan: 7d, exceptLast: 3}
  rules:
  - description: releases stay
    tags: {include: ['v[0-9]+(\\.[0-9]+)*']}
    keep: all
  - tags: {include: ['.*'], exclude: [main, latest]}
    keep: {last: 10, within: 30d}
    remove: {olderThan: 90d}
- namespace: other
  rules:
  - keep: {last: 5}
""")
    team = rules.for_repository("ghcr.io/team/app")
    assert team is not None and team.unit == UNIT_IMAGE
    assert team.untagged.older_than == timedelta(days=7) and team.untagged.except_last == 3
    first, second = team.rules
    assert first.keep.everything and first.tags.covers("v1.2") and not first.tags.covers("v1.2-rc")
    assert (second.keep.last, second.keep.within, second.line) == (10, timedelta(days=30), 10)
    assert second.remove is not None and second.remove.older_than == timedelta(days=90)
    assert not second.tags.covers("main") and second.tags.covers("feature-x")
    assert rules.for_repository("other/deep/app") is not None
    assert rules.for_repository("team/app/nested") is None  # * stays within a path segment
    assert rules.for_repository("unrelated") is None


@pytest.mark.parametrize(("text", "line", "words"), [
    ("repositories: []\n", 1, "no version: write version: 1"),
    ("version: 2\nrepositories: []\n", 1, "version must be 1"),
    ("version: 1\nrepositories:\n- glob: '*'\n  rules:\n  - keep: {last: 1}\n    kep: all\n", 6, "unknown key 'kep'"),
    ("version: 1\nrepositories:\n- glob: '*'\n  name: x\n  rules: [{keep: all}]\n", 3, "exactly one of name, glob"),
    ("version: 1\nrepositories:\n- glob: '*'\n  rules:\n  - tags: {include: ['(']}\n    keep: all\n", 5,
     "not a valid regular expression"),
    ("version: 1\nrepositories:\n- glob: '*'\n  rules:\n  - remove: {olderThan: soon}\n", 5, "is not a duration"),
    ("version: 1\nrepositories:\n- glob: '*'\n  rules:\n  - keep: {last: -1}\n", 5, "0 or more"),
    ("version: 1\nrepositories:\n- glob: '*'\n  rules:\n  - tags: {include: [x]}\n", 5, "neither keep nor remove"),
    ("version: 1\nrepositories:\n- glob: '*'\n  rules:\n  - keep: all\n    remove: all\n", 6, "drop one of them"),
    ("version: 1\nrepositories:\n- glob: '*'\n  untagged: sometimes\n  rules: [{keep: all}]\n", 4,
     "must be keep, remove"),
    ("version: 1\nrepositories:\n- glob: '*'\n  unit: layer\n  rules: [{keep: all}]\n", 4, "tag or image"),
    ("version: 1\nrepositories:\n- glob: '*'\n", 3, "has no rules"),
    ("version: 1\nrepositories:\n- glob: '*'\n  rules: [{keep: all}]\n  rules: [{keep: all}]\n", 5, "appears twice"),
    ("version: 1\nrepositories: [\n", 3, "not valid YAML"),
])
def test_mistakes_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'retention.yaml'}:{line}: "), message
    assert words in message
    assert caught.value.exit_code == 2


def test_an_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_rules(tmp_path / "missing.yaml")


def test_parse_is_pure(tmp_path: Path) -> None:
    assert parse_rules("version: 1\nrepositories:\n- name: a\n  rules: [{keep: all}]\n", Path("x")).source == "x"
