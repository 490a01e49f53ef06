"""What a newcomer writes wrong in a rules file or a ``--rule``, from another tool's habits: each message names
the mistake as written and says what to write instead (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_env.errors import ConfigError, UsageError
from ci_env.retention.options import rules_from_options
from ci_env.retention.rules import load_rules
from ci_env.werf_config import load_project


def _file_error(tmp_path: Path, rule: str) -> str:
    path = tmp_path / "retention.yaml"
    path.write_text(f"version: 1\nrepositories:\n- namespace: team\n  rules:\n{rule}")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert caught.value.exit_code == 2
    return str(caught.value)


def _option_error(rule: str) -> str:
    with pytest.raises(UsageError) as caught:
        rules_from_options(["team/"], [rule])
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_a_lookahead_in_the_file_says_to_list_the_tags_in_exclude(tmp_path: Path) -> None:
    message = _file_error(tmp_path, "  - tags: {include: ['^(?!v).*']}\n    remove: {olderThan: 90d}\n")
    assert message.endswith("tags.include '^(?!v).*' is not a valid regular expression: a lookahead (?!...) is not "
                            "supported: patterns use RE2 syntax, as werf and GitLab's cleanup policies do; list the "
                            "tags to leave out in tags.exclude instead (include: ['.*'], exclude: [main])"), message


def test_a_lookahead_in_a_rule_option_says_to_use_exclude() -> None:
    message = _option_error("tags=^(?!v).*;keep-last=3")
    assert message.endswith("list the tags to leave out with exclude= instead (exclude=main;keep-last=10)"), message


@pytest.mark.parametrize("glob", ["*", "**", "?x"])
def test_a_glob_where_a_pattern_goes_says_to_write_dot_star(tmp_path: Path, glob: str) -> None:
    message = _file_error(tmp_path, f"  - tags: {{include: ['{glob}']}}\n    remove: all\n")
    assert f"tags.include '{glob}' is not a valid regular expression: " in message
    assert message.endswith("patterns are regular expressions, not globs: write .* where a glob has * and . where "
                            "it has ? (v.* for v*)"), message


def test_a_backreference_to_no_group_is_refused_as_a_backreference_shown_as_written(tmp_path: Path) -> None:
    message = _file_error(tmp_path, "  - tags: {include: ['dev-\\1']}\n    remove: all\n")
    assert message.endswith("tags.include 'dev-\\1' is not a valid regular expression: a backreference (\\1) is not "
                            "supported: patterns use RE2 syntax, as werf and GitLab's cleanup policies do"), message
    assert "\\\\" not in _option_error("tags=v\\.(?!1);keep=all")  # one backslash, as typed


def test_a_misspelt_key_is_named_with_the_key_meant(tmp_path: Path) -> None:
    path = tmp_path / "retention.yaml"
    path.write_text("version: 1\nrepositories:\n- namespce: team\n  rules:\n  - keep: all\n")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"{path}:3: unknown key 'namespce' in repositories entry #1: did you mean "
                                        "'namespace'? (valid keys here: name ")
    assert "did you mean 'keep-last'? (keys: tags, exclude, keep, keep-last," in _option_error("keep_last=3")
    assert "did you mean" not in _option_error("colour=blue")  # nothing close: no guess


def test_a_misspelt_werf_yaml_key_is_named_with_the_key_meant(tmp_path: Path) -> None:
    (tmp_path / "werf.yaml").write_text("project: hello\nconfigVersion: 1\n---\nimage: app\ndockerfil: Dockerfile\n")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)
    assert "unknown key 'dockerfil': did you mean 'dockerfile'? (valid keys here: " in str(caught.value)


@pytest.mark.parametrize("rule", ["keep-last=3,older-than=90d", "older-than=90d keep-last=3"])
def test_pairs_separated_by_a_comma_or_a_space_say_to_use_a_semicolon(rule: str) -> None:
    assert _option_error(rule).endswith("; separate the KEY=VALUE pairs with ';'")
