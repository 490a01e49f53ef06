"""Git-history-based keep policies, case by case, on real git repositories with controlled commit dates.

Each test builds a repository (branches, merges, tags at chosen ages), states which commit published which
signature (the metadata records), and checks which signatures werf's semantics keep."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ci_env.cleanup.history import SLOP, Published, Verdict, list_references, read_history
from ci_env.gitinfo import GitRepository
from ci_env.werf_config.cleanup import default_policies, parse_cleanup
from tests.cleanup.gitrepo import GIT_ENV, GitRepo

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def ago(days: float = 0, hours: float = 0) -> str:
    """A git date ``days``/``hours`` before NOW."""
    return f"@{int((NOW - timedelta(days=days, hours=hours)).timestamp())} +0000"


class History:
    """A repository plus the metadata records of what its commits published (image ``app``)."""

    def __init__(self, path: Path) -> None:
        self.repo = GitRepo(path)
        self.records: list[Published] = []

    def commit(self, message: str, age_days: float, *, publishes: str | None = None, image: str | None = "app") -> str:
        sha = self.repo.commit(message, ago(age_days))
        if publishes is not None:
            self.records.append(Published(image, sha, publishes))
        return sha

    def branch(self, name: str, at: str | None = None) -> None:
        self.repo.git("branch", "-f", name, *([at] if at else []))

    def checkout(self, name: str) -> None:
        self.repo.git("checkout", "-q", name)

    def delete_branch(self, name: str) -> None:
        """Delete a branch (detaching HEAD first, so the checked-out one can go too)."""
        self.repo.git("checkout", "-q", "--detach")
        self.repo.git("branch", "-D", name)

    def tag(self, name: str, at: str, age_days: float | None = None) -> None:
        if age_days is None:
            self.repo.git("tag", name, at)
        else:
            self.repo.git("tag", "-a", "-m", name, name, at, date=ago(age_days))

    def keep(self, policies_yaml: str | None = None) -> set[str]:
        """The signatures the policies (werf.yaml text of cleanup:, or werf's defaults) keep."""
        return {signature for (_image, signature) in self.verdict(policies_yaml).kept}

    def verdict(self, policies_yaml: str | None = None) -> Verdict:
        if policies_yaml is None:
            policies = default_policies()
        else:
            import yaml

            node = yaml.compose(policies_yaml)
            policies = parse_cleanup(node, Path("werf.yaml")).keep_policies
        git = GitRepository(self.repo.path)
        refs = list_references(git)
        return read_history(policies, refs, git, self.records, NOW)


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path / "repo")


def test_main_keeps_its_ten_newest_images_even_when_old(history: History) -> None:
    for n in range(12):
        history.commit(f"c{n}", 400 - n, publishes=f"s{n}")
    assert history.keep() == {f"s{n}" for n in range(2, 12)}


def test_feature_branch_keeps_two_images_within_a_week(history: History) -> None:
    history.commit("base", 30, publishes="base")
    history.branch("feature")
    history.checkout("feature")
    history.commit("f1", 10, publishes="f1")  # older than a week
    history.commit("f2", 3, publishes="f2")
    history.commit("f3", 2, publishes="f3")
    history.commit("f4", 1, publishes="f4")
    history.checkout("main")
    kept = history.keep()
    assert {"f3", "f4"} <= kept and not {"f1", "f2"} & kept
    assert "base" in kept  # main (policy 3) keeps it


def test_branch_whose_head_is_older_than_a_week_keeps_nothing_of_its_own(history: History) -> None:
    history.commit("base", 30, publishes="base")
    history.branch("stale")
    history.checkout("stale")
    history.commit("old work", 9, publishes="old")
    history.checkout("main")
    assert history.keep() == {"base"}


def test_only_the_ten_newest_branches_are_selected(history: History) -> None:
    history.commit("base", 30)
    for n in range(12):
        history.checkout("main")
        history.branch(f"b{n}")
        history.checkout(f"b{n}")
        history.commit(f"b{n}", 3 - n * 0.1, publishes=f"s{n}")
    history.checkout("main")
    kept = history.keep()
    assert kept == {f"s{n}" for n in range(2, 12)}  # b0 and b1 are the two oldest heads


def test_git_tags_keep_the_ten_newest_by_tag_date_and_only_the_tagged_commit(history: History) -> None:
    for n in range(12):
        sha = history.commit(f"r{n}", 500 - n, publishes=f"r{n}")
        history.tag(f"v{n}", sha, age_days=500 - n)
    history.commit("after", 1)  # main moves on: no published image on main within reach
    policies = "keepPolicies:\n- references: {tag: /.*/, limit: {last: 10}}\n"
    assert history.keep(policies) == {f"r{n}" for n in range(2, 12)}


def test_tag_reaches_only_its_own_commit(history: History) -> None:
    history.commit("one", 5, publishes="parent")
    sha = history.commit("two", 4)
    history.tag("v1", sha)
    policies = "keepPolicies:\n- references: {tag: v1}\n  imagesPerReference: {last: -1}\n"
    assert history.keep(policies) == set()  # the image of the parent commit is not the tag's


def test_a_tag_of_an_annotated_tag_reaches_the_commit_beneath_both(history: History) -> None:
    """``git tag -a outer inner`` makes a tag object pointing at a tag object: werf peels it to the commit."""
    released = history.commit("release", 30, publishes="release")
    history.tag("inner", released, age_days=30)
    history.repo.git("tag", "-a", "-m", "outer", "outer", "inner", date=ago(29))
    history.repo.git("tag", "-d", "inner")
    history.commit("later", 1)
    policies = "keepPolicies:\n- references: {tag: outer}\n"
    assert history.keep(policies) == {"release"}


def test_tags_of_trees_and_blobs_are_no_reference_and_break_nothing(history: History) -> None:
    sha = history.commit("one", 2, publishes="one")
    history.repo.git("tag", "tree", "HEAD^{tree}")
    blob = history.repo.git("hash-object", "-w", "--stdin")
    history.repo.git("tag", "blob", blob)
    history.repo.git("tag", "-a", "-m", "annotated tree", "annotated-tree", "HEAD^{tree}")
    history.tag("v1", sha)
    names = {ref.name for ref in list_references(GitRepository(history.repo.path))}
    assert names == {"main", "v1"}
    assert history.keep("keepPolicies:\n- references: {tag: /.*/}\n") == {"one"}


def test_literal_names_are_matched_whole_and_regexes_in_full(history: History) -> None:
    history.commit("base", 3, publishes="base")
    for name, sig in (("release", "rel"), ("release-2", "rel2"), ("prerelease", "pre")):
        history.branch(name)
        history.checkout(name)
        history.commit(name, 1, publishes=sig)
        history.checkout("main")
    history.delete_branch("main")  # only the three branches remain
    literal = "keepPolicies:\n- references: {branch: release}\n"
    assert history.keep(literal) == {"rel"}
    regex = "keepPolicies:\n- references: {branch: /release-.*/}\n"
    assert history.keep(regex) == {"rel2"}  # in full: prerelease does not match, release has no dash


def test_posix_classes_of_werfs_regex_syntax_select_what_werf_selects(history: History) -> None:
    """werf compiles the patterns with Go's RE2, which knows ``[[:digit:]]``; Python's re reads it as another set
    (with a FutureWarning) and would silently select nothing."""
    history.commit("base", 3)
    for name, sig in (("release-12", "r12"), ("release-x", "rx"), ("hotfix_1", "h1")):
        history.branch(name)
        history.checkout(name)
        history.commit(name, 1, publishes=sig)
        history.checkout("main")
    digits = "keepPolicies:\n- references: {branch: '/release-[[:digit:]]+/'}\n"
    assert history.keep(digits) == {"r12"}
    word = "keepPolicies:\n- references: {branch: '/[[:alpha:]]+[_-][[:alnum:]]+/'}\n"
    assert history.keep(word) == {"r12", "rx", "h1"}


def test_a_top_level_alternation_is_anchored_as_werf_anchors_it(history: History) -> None:
    """werf wraps the pattern as ``^PATTERN$``: ``/main|stable/`` is ``^main`` or ``stable$``, so it selects
    ``mainline`` too (write ``/(main|stable)/`` for the two names alone)."""
    history.commit("base", 3)
    for name, sig in (("mainline", "ml"), ("old-stable", "os"), ("other", "ot")):
        history.branch(name)
        history.checkout(name)
        history.commit(name, 1, publishes=sig)
        history.checkout("main")
    assert history.keep("keepPolicies:\n- references: {branch: /mainline-x|stable/}\n") == {"os"}
    assert history.keep("keepPolicies:\n- references: {branch: /main|stable/}\n") == {"ml", "os"}
    assert history.keep("keepPolicies:\n- references: {branch: '/(main|stable)/'}\n") == set()


def test_images_per_reference_last_counts_distinct_signatures_newest_first(history: History) -> None:
    history.commit("a", 10, publishes="A")
    history.commit("b", 9, publishes="B")
    history.commit("c", 8, publishes="A")  # A published again: found through this later commit
    history.commit("d", 7, publishes="C")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 2}\n"
    assert history.keep(policies) == {"A", "C"}
    reach = next(r for (_i, s), r in history.verdict(policies).kept.items() if s == "A")
    assert reach.commit == history.repo.git("rev-parse", "HEAD~1")


def test_images_per_reference_in_alone_keeps_one(history: History) -> None:
    history.commit("a", 3, publishes="A")
    history.commit("b", 2, publishes="B")
    history.commit("c", 1, publishes="C")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {in: 168h}\n"
    assert history.keep(policies) == {"C"}  # last defaults to 1


@pytest.mark.parametrize(("operator", "expected"), [("And", {"D"}), ("Or", {"B", "C", "D"})])
def test_images_per_reference_last_and_in_with_operators(history: History, operator: str, expected: set[str]) -> None:
    history.commit("a", 30, publishes="A")
    history.commit("b", 3, publishes="B")
    history.commit("c", 2, publishes="C")
    history.commit("d", 10 / 24, publishes="D")
    policies = (f"keepPolicies:\n- references: {{branch: main}}\n"
                f"  imagesPerReference: {{last: 1, in: 7d, operator: {operator}}}\n")
    assert history.keep(policies) == expected


def test_images_per_reference_minus_one_keeps_all_within(history: History) -> None:
    history.commit("a", 30, publishes="A")
    history.commit("b", 3, publishes="B")
    history.commit("c", 2, publishes="C")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: -1, in: 1d12h}\n"
    assert history.keep(policies) == set()
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: -1, in: 4d}\n"
    assert history.keep(policies) == {"B", "C"}


@pytest.mark.parametrize(("operator", "expected"), [("And", {"new"}), ("Or", {"new", "old1", "old2"})])
def test_references_limit_last_and_in_with_operators(history: History, operator: str, expected: set[str]) -> None:
    history.commit("base", 60)
    for name, age in (("old1", 40), ("old2", 30), ("new", 1)):
        history.checkout("main")
        history.branch(name)
        history.checkout(name)
        history.commit(name, age, publishes=name)
    history.checkout("main")
    policies = (f"keepPolicies:\n- references: {{branch: /.*/, limit: {{last: 3, in: 168h, operator: {operator}}}}}\n"
                "  imagesPerReference: {last: 1}\n")
    kept = history.keep(policies)
    assert kept == expected


def test_references_limit_last_alone(history: History) -> None:
    history.commit("base", 60)
    for name, age in (("x", 5), ("y", 4), ("z", 3)):
        history.checkout("main")
        history.branch(name)
        history.checkout(name)
        history.commit(name, age, publishes=name)
    history.checkout("main")
    history.delete_branch("main")
    assert history.keep("keepPolicies:\n- references: {branch: /.*/, limit: {last: 2}}\n") == {"y", "z"}


def test_signature_reached_from_two_branches_stays_while_either_keeps_it(history: History) -> None:
    history.commit("base", 20)
    shared = history.commit("shared", 5, publishes="S")
    history.branch("one")
    history.branch("two")
    history.checkout("one")
    history.commit("o1", 4, publishes="O1")
    history.commit("o2", 3, publishes="O2")
    policies = "keepPolicies:\n- references: {branch: /one|two/}\n  imagesPerReference: {last: 1}\n"
    # "one" keeps only O2; "two" (head at the shared commit) keeps S
    assert history.keep(policies) == {"O2", "S"}
    history.checkout("two")
    history.commit("t1", 2, publishes="T1")  # now "two" keeps T1 only: S is kept by nobody
    assert history.keep(policies) == {"O2", "T1"}
    assert shared


def test_merge_brings_the_side_branch_images_into_main_history(history: History) -> None:
    history.commit("base", 10, publishes="base")
    history.branch("side")
    history.checkout("side")
    history.commit("side work", 8, publishes="side")
    history.checkout("main")
    history.commit("main work", 9, publishes="mainwork")
    history.repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side", date=ago(7))
    history.delete_branch("side")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 2}\n"
    assert history.keep(policies) == {"side", "mainwork"}  # newest two by commit date through the merge


def test_origin_branches_win_over_local_ones(history: History, tmp_path: Path) -> None:
    history.commit("base", 5, publishes="base")
    history.branch("local-only")
    history.checkout("local-only")
    history.commit("local", 1, publishes="local")
    history.checkout("main")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--branch", "main", str(history.repo.path), str(clone)], check=True,
                   env={**os.environ, **GIT_ENV})
    refs = list_references(GitRepository(clone))
    assert {r.name for r in refs if r.kind == "branch"} == {"main", "local-only"}  # origin/*, not the local main
    assert all(r.kind == "tag" or r.head for r in refs)


def test_a_commit_no_reference_reaches_keeps_nothing(history: History) -> None:
    history.commit("base", 5, publishes="base")
    history.branch("gone")
    history.checkout("gone")
    history.commit("lost", 1, publishes="lost")
    history.checkout("main")
    history.delete_branch("gone")
    assert history.keep() == {"base"}


def test_last_zero_keeps_nothing_for_that_reference(history: History) -> None:
    history.commit("a", 1, publishes="A")
    assert history.keep("keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 0}\n") == set()


def test_a_later_policy_sets_the_images_per_reference_of_a_shared_reference(history: History) -> None:
    for n in range(5):
        history.commit(f"c{n}", 20 - n, publishes=f"s{n}")
    policies = ("keepPolicies:\n"
                "- references: {branch: /.*/}\n  imagesPerReference: {last: 1}\n"
                "- references: {branch: main}\n  imagesPerReference: {last: 3}\n")
    assert history.keep(policies) == {"s2", "s3", "s4"}
    reasons = history.verdict(policies).kept
    assert {r.policy.number for r in reasons.values()} == {2}


def test_images_are_counted_per_image(history: History) -> None:
    history.commit("a", 3, publishes="api1", image="api")
    history.commit("b", 2, publishes="web1", image="web")
    history.commit("c", 1, publishes="api2", image="api")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 1}\n"
    assert history.keep(policies) == {"api2", "web1"}


def test_a_commit_whose_clock_was_behind_hides_no_image_beneath_it(history: History) -> None:
    """A commit dated a month back (a wrong clock, a rebase keeping dates) between two fresh ones: the walk of a
    branch with ``in`` still reaches the fresh commit beneath it, as werf does (it filters commits by date,
    wherever they are in history)."""
    history.commit("base", 30, publishes="base")
    history.branch("feature")
    history.checkout("feature")
    history.commit("f0", 0.2, publishes="f0")
    history.commit("skewed", 30, publishes="skewed")
    history.commit("f2", 0.1, publishes="f2")
    history.checkout("main")
    assert history.keep() == {"base", "f0", "f2"}  # feature: the two newest within a week; main: base


def test_images_per_reference_last_ranks_by_committer_date_even_against_the_graph(history: History) -> None:
    """werf keeps the ``last`` newest by committer date among every commit of the history that published an
    image: a root commit dated after its descendants (a clock ahead) outranks them, and the walk must not stop
    before reaching it."""
    history.commit("root", 1, publishes="root")
    history.commit("middle", 10, publishes="middle")
    history.commit("head", 5, publishes="head")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 2}\n"
    assert history.keep(policies) == {"root", "head"}


def test_a_signature_counts_at_its_newest_commit_by_date(history: History) -> None:
    """A signature published by two commits counts at the one with the newest committer date, even when the
    other comes first in the history (werf's latest commit of a stage)."""
    history.commit("first", 2, publishes="same")  # newest date, deepest
    history.commit("other", 20, publishes="other")
    history.commit("again", 10, publishes="same")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 1}\n"
    verdict = history.verdict(policies)
    assert {signature for _image, signature in verdict.kept} == {"same"}
    reach = verdict.kept[("app", "same")]
    assert reach.commit == history.repo.git("rev-parse", "HEAD~2")


def test_commits_with_one_date_rank_newest_first_along_the_history(history: History) -> None:
    """Twelve commits in the same second (a scripted rebase): main's ten are the ten nearest its head."""
    for n in range(12):
        history.commit(f"c{n}", 3, publishes=f"s{n}")
    assert history.keep() == {f"s{n}" for n in range(2, 12)}


# ---------------------------------------------------------------- long histories: read only as deep as can matter


def test_a_branch_walk_stops_once_every_record_it_could_keep_is_reached__werf_scanner_go(history: History) -> None:
    """werf's scanner.go stops a reference's scan "due to all expected tags reached"; here, too, the walk of main
    (2 images) stops at the records it keeps and never reads the 5,000 commits beneath, although an old record
    lies down there (older than main's second image, so it cannot be kept)."""
    old = history.repo.long_history(5000, int((NOW - timedelta(days=30)).timestamp()))
    history.records.append(Published("app", old[-10], "ancient"))
    for n in range(4):
        history.commit(f"c{n}", 3 - n, publishes=f"s{n}")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 2}\n"
    verdict = history.verdict(policies)
    assert {signature for _image, signature in verdict.kept} == {"s2", "s3"}
    assert verdict.commits < 20  # the record commits' dates, and main's walk down to s2


def test_unlimited_images_stop_below_the_oldest_record__werf_scanner_go(history: History) -> None:
    """``last: -1`` keeps every image of the history, yet nothing is left to find below the oldest record commit:
    the walk stops there (after SLOP commits, for clocks that were wrong) instead of reading 5,000 more."""
    history.repo.long_history(5000, int((NOW - timedelta(days=30)).timestamp()))
    for n in range(3):
        history.commit(f"c{n}", 3 - n, publishes=f"s{n}")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: -1}\n"
    verdict = history.verdict(policies)
    assert {signature for _image, signature in verdict.kept} == {"s0", "s1", "s2"}
    assert verdict.commits < SLOP + 20


def test_records_of_other_branches_do_not_make_a_walk_read_everything__git_rev_list_since(
    history: History,
) -> None:
    """A fresh record of another branch (not in main's history) could be kept by main if main reached it; the
    dates say it cannot be: once SLOP commits in a row are older than it (git's --since stops likewise), main's
    walk ends instead of reading the whole history to be sure."""
    history.repo.long_history(5000, int((NOW - timedelta(days=30)).timestamp()))
    history.commit("main0", 2, publishes="main0")
    history.branch("feature")
    history.checkout("feature")
    history.commit("f0", 0.5, publishes="f0")
    history.checkout("main")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 5}\n"
    verdict = history.verdict(policies)
    assert {signature for _image, signature in verdict.kept} == {"main0"}
    assert verdict.commits < SLOP + 20


def test_a_record_beneath_a_run_of_commits_with_clocks_behind_is_still_found(history: History) -> None:
    """main keeps 2 images, and the second lies beneath SLOP - 1 commits dated a year back (a rebase that kept old
    dates): the walk does not stop at the first of them, since a run of commits older than a record that could be
    kept ends the walk only after SLOP of them (the limit of what the dates can say, as in git's --since)."""
    history.commit("base", 30)
    history.commit("deep", 1, publishes="deep")
    history.repo.long_history(SLOP - 1, int((NOW - timedelta(days=365)).timestamp()))
    history.commit("head", 0.5, publishes="head")
    policies = "keepPolicies:\n- references: {branch: main}\n  imagesPerReference: {last: 2}\n"
    assert history.keep(policies) == {"head", "deep"}
