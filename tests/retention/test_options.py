"""The command-line form: the same model as the file, and usage errors (exit 2) naming the option."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ci_env.errors import UsageError
from ci_env.retention.options import rules_from_options
from ci_env.retention.rules import SELECT_GLOB, SELECT_NAME, SELECT_NAMESPACE, UNIT_IMAGE, parse_rules


def test_options_give_the_same_model_as_the_file() -> None:
    from pathlib import Path

    options = rules_from_options(["group/app"], ["tags=v.*;keep=all", "exclude=main;exclude=latest;keep-last=10;"
                                 "keep-within=30d;older-than=90d;except-last=2"], "older-than=7d", "image")
    file = parse_rules("""version: 1
repositories:
- name: group/app
  unit: image
  untagged: {olderThan: 7d}
  rules:
  - tags: {include: ['v.*']}
    keep: all
  - tags: {exclude: [main, latest]}
    keep: {last: 10, within: 30d}
    remove: {olderThan: 90d, exceptLast: 2}
""", Path("r.yaml"))
    strip = [(r.number, r.tags, r.keep, r.remove) for r in options.repositories[0].rules]
    assert strip == [(r.number, r.tags, r.keep, r.remove) for r in file.repositories[0].rules]
    assert options.repositories[0].untagged == file.repositories[0].untagged
    assert options.repositories[0].unit == UNIT_IMAGE
    assert options.repositories[0].rules[1].remove is not None
    assert options.repositories[0].rules[1].remove.older_than == timedelta(days=90)


def test_repository_selectors() -> None:
    rules = rules_from_options(["team/app", "team/*", "group/"], ["keep-last=1"])
    assert [e.selector.kind for e in rules.repositories] == [SELECT_NAME, SELECT_GLOB, SELECT_NAMESPACE]
    assert rules.for_repository("group/sub/app") is rules.repositories[2]


@pytest.mark.parametrize(("repositories", "rules", "untagged", "unit", "words"), [
    ([], ["keep-last=1"], None, None, "--rule needs --repository"),
    (["a"], [], None, None, "at least one --rule"),
    (["a"], ["keep-last=ten"], None, None, "--rule 'keep-last=ten': keep-last='ten' must be a whole number"),
    (["a"], ["older-than=later"], None, None, "is not a duration"),
    (["a"], ["tags=("], None, None, "not a valid regular expression"),
    (["a"], ["colour=blue"], None, None, "not KEY=VALUE with a known key"),
    (["a"], ["tags=x"], None, None, "neither what to keep nor what to remove"),
    (["a"], ["keep=all;keep-last=3"], None, None, "drop the other limits"),
    (["a"], ["keep-last=1;keep-last=2"], None, None, "more than once"),
    (["a"], ["keep-last=1"], "sometimes", None, "--untagged 'sometimes'"),
    (["a"], ["keep-last=1"], None, "layer", "--unit 'layer'"),
    (["/"], ["keep-last=1"], None, None, "--repository '/' names no repository"),
])
def test_usage_errors_name_the_option(repositories: list[str], rules: list[str], untagged: str | None,
                                      unit: str | None, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        rules_from_options(repositories, rules, untagged, unit)
    assert words in str(caught.value)
    assert caught.value.exit_code == 2
