"""Every place a user's pattern meets a name someone else pushes matches in linear time and refuses what RE2
refuses: ``--keep-tag`` (and its warnings), werf.yaml's ``references.branch``/``tag: /REGEX/``, and the rules'
``include``/``exclude`` (file and ``--rule``) and the engine's protections. The adversarial inputs take hours or
more with a backtracking matcher (``(a+)+z`` against 120 ``a`` then ``-x``: 2^120 ways to fail); the answers
are checked, so a matcher that gives up would fail too."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_env.cleanup.policies import DELETE, KEEP, Policy, plan_tags
from ci_env.cleanup.protections import compile_keep_tags, keep_tag_warnings
from ci_env.errors import ConfigError, UsageError
from ci_env.retention.engine import Protections
from ci_env.retention.options import rules_from_options
from ci_env.retention.rules import parse_rules
from ci_env.werf_config import load_project
from tests.cleanup.test_history import History, history  # noqa: F401  (history is a fixture)
from tests.cleanup.test_keep_policies import write_project
from tests.cleanup.test_policies import NOW, actions, git, tag
from tests.cli import environ_without, run_ci_env

EVIL = "(a+)+z"
FAILS = "a" * 120 + "-x"  # what makes a backtracking matcher try every way to split the a's
MATCHES = "a" * 120 + "z"


def test_keep_tag_protects_what_matches_and_nothing_else_at_once() -> None:
    found = [tag(FAILS, "git-branch"), tag(MATCHES, "git-branch")]
    decisions = plan_tags(found, git(), Policy(keep_tags=compile_keep_tags([EVIL])), NOW)
    assert actions(decisions) == {FAILS: DELETE, MATCHES: KEEP}
    assert f"--keep-tag {EVIL!r}" in decisions[1].reason


def test_keep_tag_warnings_search_inside_tags_at_once() -> None:
    """The warnings try the pattern as a prefix and anywhere inside every tag found."""
    warnings = keep_tag_warnings([EVIL, "a+-"], [FAILS])
    assert warnings[0].startswith(f"--keep-tag {EVIL!r} matches none of the 1 tag found")
    assert warnings[1].startswith("--keep-tag 'a+-' matches no tag in full, only the start of 1 tag")


def test_keep_tag_refuses_what_re2_refuses() -> None:
    with pytest.raises(UsageError) as caught:
        compile_keep_tags(["v(?!1)"])
    assert caught.value.message == ("--keep-tag 'v(?!1)' is not a valid regular expression: a lookahead (?!...) "
                                    "is not supported: patterns use RE2 syntax, as werf and GitLab's cleanup "
                                    "policies do")
    assert caught.value.exit_code == 2


def test_werf_branch_policy_selects_by_the_pattern_at_once(history: History) -> None:  # noqa: F811
    history.commit("base", 3)
    for name, signature in ((FAILS, "fails"), (MATCHES, "matches")):
        history.branch(name)
        history.checkout(name)
        history.commit(name, 1, publishes=signature)
        history.checkout("main")
    assert history.keep(f"keepPolicies:\n- references: {{branch: '/{EVIL}/'}}\n") == {"matches"}
    assert history.keep(f"keepPolicies:\n- references: {{tag: '/{EVIL}/'}}\n") == set()


def test_werf_policy_flags_come_first_as_go_reads_them(tmp_path: Path) -> None:
    """werf compiles ``^(?i)MAIN$``, which Go reads and Python's parser would refuse (flags not first)."""
    cleanup = "cleanup:\n  keepPolicies:\n  - references: {branch: '/(?i)MAIN|stable/'}\n"
    config = load_project(write_project(tmp_path, cleanup)).cleanup
    assert config is not None
    policy = config.keep_policies[0]
    assert policy.selects("main") and policy.selects("Main-x") and policy.selects("old-STABLE")
    assert not policy.selects("domain")


def test_werf_policy_refuses_what_re2_refuses_with_file_and_line(tmp_path: Path) -> None:
    cleanup = "cleanup:\n  keepPolicies:\n  - references: {branch: '/(?!main).*/'}\n"
    with pytest.raises(ConfigError) as caught:
        load_project(write_project(tmp_path, cleanup))
    assert caught.value.message == (
        f"{tmp_path / 'werf.yaml'}:5: keep policy #1 references.branch '/(?!main).*/' is not a valid regular "
        "expression: a lookahead (?!...) is not supported: patterns use RE2 syntax, as werf and GitLab's cleanup "
        "policies do")


RULES = """version: 1
repositories:
- glob: '**'
  rules:
  - tags: {include: ['(a+)+z', '(b+)+z'], exclude: ['(b|bb)+z']}
    keep: all
"""


def test_rules_include_and_exclude_answer_at_once() -> None:
    rule = parse_rules(RULES, Path("rules.yaml")).repositories[0].rules[0]
    assert rule.tags.covers(MATCHES) and not rule.tags.covers(FAILS)
    assert rule.tags.includes("b" * 120 + "z") and rule.tags.excludes("b" * 120 + "z")
    assert not rule.tags.excludes("b" * 120 + "-x")


def test_rule_options_answer_at_once_and_refuse_what_re2_refuses() -> None:
    rules = rules_from_options(["team/app"], [f"tags={EVIL};exclude=(a|aa)+-x;keep=all"])
    selection = rules.repositories[0].rules[0].tags
    assert selection.covers(MATCHES) and not selection.covers(FAILS) and selection.excludes(FAILS)
    with pytest.raises(UsageError, match=r"a backreference \(\\1\) is not supported: patterns use RE2 syntax"):
        rules_from_options(["team/app"], [r"tags=(a)\1;keep=all"])


def test_engine_protections_by_keep_tag_answer_at_once() -> None:
    protections = Protections(tag_patterns=((EVIL, f"--keep-tag {EVIL}"),))
    assert protections.reason(FAILS, "sha256:one") is None
    assert protections.reason(MATCHES, "sha256:two") == f"--keep-tag {EVIL}"


@pytest.mark.parametrize(("pattern", "construct"), [
    ("(?<!x)v.*", "a lookbehind (?<!...)"),
    (r"(v)\\1", "a backreference (\\1)"),
    ("v{1001}", "the repetition count 1001 is over 1000"),
])
def test_cleanup_rules_file_refuses_what_re2_refuses_exit_2_with_file_and_line(tmp_path: Path, pattern: str,
                                                                            construct: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"version: 1\nrepositories:\n- glob: '*'\n  rules:\n  - tags: {{include: [\"{pattern}\"]}}\n"
                     "    keep: all\n")
    done = run_ci_env("cleanup", "--rules", str(rules), "--registry", "127.0.0.1:9", "--dry-run",
                      env={**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"),
                           "XDG_STATE_HOME": str(tmp_path / "state"), "KUBECONFIG": str(tmp_path / "none")},
                      cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    error = done.stderr.strip()
    assert error.startswith(f"ci-env: error: {rules}:5: repositories entry #1 rule #1 tags.include "), error
    assert construct in error and "patterns use RE2 syntax, as werf and GitLab's cleanup policies do" in error
    assert "Traceback" not in done.stderr and done.stdout == ""
