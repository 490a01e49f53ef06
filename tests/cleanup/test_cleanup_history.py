"""`ci-env cleanup` on the default setup (content-signature tags): werf's default keep policies over real git
history and metadata records in the real registry; the plan and report say why for every tag."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from ci_env import records
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.test_cleanup_e2e import SCHEMA, run_cli
from tests.cleanup.world import World, signature_of

NOW = datetime.now(timezone.utc)


def ago(days: float) -> str:
    return f"@{int((NOW - timedelta(days=days)).timestamp())} +0000"


class DefaultSetup:
    """A project published the way the default setup does: one content-signature tag per commit (image app),
    its publication record and its metadata record, and a stage per signature."""

    def __init__(self, world: World, directory: Path) -> None:
        self.world = world
        self.git = GitRepo(directory)
        self.signatures: dict[str, str] = {}  # name -> signature

    def commit(self, name: str, age_days: float, *, metadata: bool = True,
               published_at: str = "2024-01-01T00:00:00Z") -> str:
        sha = self.git.commit(name, ago(age_days))
        self.publish(name, sha if metadata else None, published_at)
        return sha

    def publish(self, name: str, commit: str | None, published_at: str = "2024-01-01T00:00:00Z") -> None:
        signature = signature_of(name)
        self.signatures[name] = signature
        pushed = self.world.publish("app", signature, "stages-signature", signature=signature,
                                    published_at=published_at)
        self.world.stage(signature, like=pushed)
        if commit is not None:
            records.write_metadata(self.world.store, records.CommitMetadata("app", commit, signature))

    def remaining(self) -> set[str]:
        tags = self.world.tags("app")
        return {name for name, sig in self.signatures.items() if sig in tags}

    def args(self) -> list[str]:
        return ["-i", str(self.world.images_repo), "-s", str(self.world.stages), "--dir", str(self.git.path)]


@pytest.fixture
def setup(world: World, tmp_path: Path) -> DefaultSetup:
    return DefaultSetup(world, tmp_path / "project")


def test_nightly_cleanup_of_the_default_setup_removes_what_werfs_default_policies_remove(
    setup: DefaultSetup, tmp_path: Path
) -> None:
    for n in range(12):  # main: twelve images over a year; the ten newest stay
        setup.commit(f"main{n}", 365 - n * 10)
    tagged = setup.git.git("rev-parse", "HEAD~11")  # main0, beyond main's ten: a git tag keeps it
    setup.git.git("tag", "v1.0", tagged)
    setup.git.git("branch", "feature", "HEAD")
    setup.git.git("branch", "stale", "HEAD~5")
    setup.git.git("checkout", "-q", "feature")
    for n in range(3):  # a fresh feature branch: its two newest stay
        setup.commit(f"feature{n}", 3 - n)
    setup.git.git("checkout", "-q", "stale")
    setup.commit("stale0", 40)  # a branch untouched for 40 days: nothing of its own stays
    setup.git.git("checkout", "-q", "main")
    before_stages = setup.world.stage_tags()

    report = tmp_path / "plan.json"
    dry = run_cli("cleanup", *setup.args(), "--dry-run", "--report", str(report), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "keep policies: werf's default keep policies (3 policies)" in dry.stderr
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    by_tag = {d["tag"]: d for d in document["decisions"] if d["kind"] == "tag"}
    main11 = by_tag[setup.signatures["main11"]]
    assert main11["action"] == "keep" and main11["basis"]["rule"] == "keep-policy"
    assert main11["basis"]["policy"] == 3 and main11["basis"]["reference"] == "branch main"
    assert main11["basis"]["commit"] == setup.git.git("rev-parse", "main")
    assert by_tag[setup.signatures["main0"]]["basis"] == {
        "rule": "keep-policy", "policy": 1, "reference": "tag v1.0", "commit": tagged}
    feature0 = by_tag[setup.signatures["feature0"]]
    assert feature0["action"] == "delete" and feature0["basis"]["rule"] == "no-keep-policy"
    assert "branch feature" in feature0["reason"] and "beyond" in feature0["reason"]
    stale = by_tag[setup.signatures["stale0"]]
    assert stale["action"] == "delete" and "none of the" in stale["reason"]
    assert setup.world.stage_tags() == before_stages  # a dry run removes nothing

    summary = tmp_path / "summary.md"
    result = run_cli("cleanup", *setup.args(), cwd=tmp_path, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 0, result.stderr
    text = summary.read_text()
    assert "kept, and why" in text and "kept by keep policy #3" in text and "branch main reaches it" in text
    assert "no keep policy keeps it" in text
    expected = {f"main{n}" for n in (0, *range(2, 12))} | {"feature1", "feature2"}
    assert setup.remaining() == expected
    # the stages of removed images went with them
    assert setup.world.stage_tags() == {setup.signatures[name] for name in expected}


def test_tags_without_metadata_are_kept_with_one_warning_and_strict_removes_them(
    setup: DefaultSetup, tmp_path: Path
) -> None:
    setup.commit("recorded", 1)
    setup.commit("legacy1", 2, metadata=False)
    setup.commit("legacy2", 3, metadata=False)
    result = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert setup.remaining() == {"recorded", "legacy1", "legacy2"}
    warnings = [line for line in result.stderr.splitlines() if "no metadata record" in line]
    assert len(warnings) == 1 and "2 content-signature tags have" in warnings[0]
    assert "--git-history-based-cleanup-strict" in warnings[0]

    strict = run_cli("cleanup", *setup.args(), "--git-history-based-cleanup-strict", cwd=tmp_path)
    assert strict.returncode == 0, strict.stderr
    assert setup.remaining() == {"recorded"}


def test_history_based_false_falls_back_to_the_stages_signature_limit(setup: DefaultSetup, tmp_path: Path) -> None:
    for n in range(3):
        setup.commit(f"c{n}", 30 - n)
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    (setup.git.path / "werf.yaml").write_text(  # a policy that selects no branch: it keeps none of the three
        "project: demo\nconfigVersion: 1\ncleanup:\n  keepPolicies:\n  - references: {branch: release}\n"
        "---\nimage: app\n")
    off = run_cli("cleanup", *setup.args(), cwd=tmp_path,
                  env={"WERF_GIT_HISTORY_BASED_CLEANUP": "false", "WERF_STAGES_SIGNATURE_STRATEGY_LIMIT": "2"})
    assert off.returncode == 0, off.stderr
    assert len(setup.remaining()) == 2
    on = run_cli("cleanup", *setup.args(), "--stages-signature-strategy-limit", "5", cwd=tmp_path)
    assert on.returncode == 0, on.stderr
    assert setup.remaining() == set()
    assert "--stages-signature-strategy-limit is ignored" in on.stderr


def test_werf_yaml_keep_policies_are_used_and_a_malformed_one_removes_nothing(
    setup: DefaultSetup, tmp_path: Path
) -> None:
    for n in range(4):
        setup.commit(f"c{n}", 10 - n)
    werf_yaml = setup.git.path / "werf.yaml"
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    body = "project: demo\nconfigVersion: 1\ncleanup:\n  keepPolicies:\n  - references: {branch: main}\n"
    werf_yaml.write_text(body + "    imagesPerReference: {last: 3, operator: Maybe}\n---\nimage: app\n")
    bad = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert bad.returncode == 2
    assert f"{werf_yaml}:6:" in bad.stderr and "must be And or Or" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert setup.remaining() == {"c0", "c1", "c2", "c3"}

    werf_yaml.write_text(body + "    imagesPerReference: {last: 3}\n---\nimage: app\n")
    good = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "werf.yaml's keep policies (1 policy)" in good.stderr
    assert setup.remaining() == {"c1", "c2", "c3"}


def test_parallel_publishes_lose_no_metadata_record(world: World) -> None:
    from ci_env.registry.client import RegistryClient

    commits = [f"{n:040x}" for n in range(24)]

    def pipeline(index: int) -> None:  # each pipeline with its own client, as separate jobs have
        client = RegistryClient(world.client.registry, docker_config=Path("/nonexistent"))
        store = records.open_store(world.stages, "", client=client)
        for commit in commits[index::4]:
            records.write_metadata(store, records.CommitMetadata("app", commit, signature_of(commit)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(pipeline, range(4)))  # a pipeline whose write fails fails the test
    fresh = records.open_store(world.stages, "", client=world.client)
    found = {(m.commit, m.signature) for m in records.read_metadata(fresh)}
    assert found == {(c, signature_of(c)) for c in commits}


def test_parallel_local_writers_lose_no_metadata_record(tmp_path: Path) -> None:
    commits = [f"{n:040x}" for n in range(40)]
    store = records.LocalStore(tmp_path / "state")

    def writer(index: int) -> None:
        for commit in commits[index::4]:
            records.write_metadata(store, records.CommitMetadata("app", commit, signature_of(commit)))
            records.write_metadata(store, records.CommitMetadata("app", commits[0], signature_of(commits[0])))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(writer, range(4)))
    assert {m.commit for m in records.read_metadata(store)} == set(commits)
    assert not list((tmp_path / "state" / "metadata").glob(".*"))  # no temporary file left behind


def test_werf_yaml_can_disable_cleanup_and_set_the_recent_protection(setup: DefaultSetup, tmp_path: Path) -> None:
    setup.commit("old", 30)
    setup.commit("new", 1)
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    werf_yaml = setup.git.path / "werf.yaml"
    werf_yaml.write_text("project: demo\nconfigVersion: 1\ncleanup:\n  disable: true\n---\nimage: app\n")
    off = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert off.returncode == 0 and "disabled in werf.yaml" in off.stderr
    assert setup.remaining() == {"old", "new"}
    # keepImagesBuiltWithinLastNHours stands in for --keep-published-within when that is not given
    werf_yaml.write_text("project: demo\nconfigVersion: 1\ncleanup:\n  keepImagesBuiltWithinLastNHours: 100000\n"
                         "  keepPolicies:\n  - references: {branch: main}\n---\nimage: app\n")
    kept = run_cli("cleanup", *setup.args(), "--dry-run", cwd=tmp_path)
    assert kept.returncode == 0 and "0 to remove" in kept.stderr, kept.stderr
    given = run_cli("cleanup", *setup.args(), "--keep-published-within", "0", cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    assert setup.remaining() == {"new"}


@pytest.mark.parametrize("section", [
    "cleanup:\n",
    "cleanup:\n  keepPolicies: []\n",
    "cleanup:\n  keepPolicies:\n",
    "cleanup:\n  keepPolicies: []\n  keepImagesBuiltWithinLastNHours: 0\n",
], ids=["cleanup-null", "keepPolicies-empty", "keepPolicies-null", "keepPolicies-empty-with-other-keys"])
def test_an_empty_cleanup_section_or_keep_policies_list_means_werfs_defaults(
    setup: DefaultSetup, tmp_path: Path, section: str
) -> None:
    """werf applies its default keep policies when keepPolicies is empty or null, and reads a null cleanup:
    as no section: nothing werf keeps is removed, and nothing is refused."""
    setup.commit("main0", 30)
    setup.commit("main1", 20)
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    (setup.git.path / "werf.yaml").write_text(f"project: demo\nconfigVersion: 1\n{section}---\nimage: app\n")
    result = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "keep policies: werf's default keep policies (3 policies)" in result.stderr
    assert setup.remaining() == {"main0", "main1"}  # main keeps its ten newest


def test_a_commit_dated_in_the_past_hides_no_fresh_image_beneath_it(setup: DefaultSetup, tmp_path: Path) -> None:
    """A feature branch with one commit whose clock was a month behind: the fresh image beneath it is one of
    the branch's two newest within a week (werf keeps it), so cleanup keeps it too."""
    setup.commit("main0", 1)
    setup.git.git("checkout", "-q", "-b", "feature")
    setup.commit("fresh", 0.2)
    setup.commit("skewed", 30)
    setup.commit("head", 0.1)
    setup.git.git("checkout", "-q", "main")
    result = run_cli("cleanup", *setup.args(), "--keep-published-within", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert setup.remaining() == {"main0", "fresh", "head"}


@pytest.mark.parametrize(("cleanup", "args"), [
    ("", ("--keep-published-within", "99999999999999d")),
    ("", ("--keep-published-within", "999999d")),
    ("", ("--git-history-based-cleanup=false", "--stages-signature-strategy-expiry-days", "99999999999")),
    ("cleanup:\n  keepImagesBuiltWithinLastNHours: 9999999999999999\n", ()),
    ("cleanup:\n  keepPolicies:\n  - references: {branch: main, limit: {in: 99999999999d}}\n"
     "    imagesPerReference: {in: 999999d, last: -1}\n", ("--keep-published-within", "0")),
], ids=["keep-published-within-overflow", "keep-published-within-before-year-1", "expiry-days",
        "keepImagesBuiltWithinLastNHours", "keep-policy-in"])
def test_durations_longer_than_a_century_mean_forever_not_a_traceback(
    setup: DefaultSetup, tmp_path: Path, cleanup: str, args: tuple[str, ...]
) -> None:
    setup.commit("old", 300)
    setup.commit("new", 1)
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    (setup.git.path / "werf.yaml").write_text(f"project: demo\nconfigVersion: 1\n{cleanup}---\nimage: app\n")
    result = run_cli("cleanup", *setup.args(), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert setup.remaining() == {"old", "new"}


def test_removed_images_take_their_metadata_records_with_them(setup: DefaultSetup, tmp_path: Path) -> None:
    setup.commit("base", 30)
    setup.git.git("branch", "gone")
    setup.git.git("checkout", "-q", "gone")
    setup.commit("lost", 20)
    setup.git.git("checkout", "-q", "main")
    setup.git.git("branch", "-D", "gone")
    setup.commit("kept", 10)
    before = {(m.commit, m.signature) for m in records.read_metadata(setup.world.store)}
    assert len(before) == 3
    result = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert setup.remaining() == {"base", "kept"}
    fresh = records.open_store(setup.world.stages, "", client=setup.world.client)
    after = {m.signature for m in records.read_metadata(fresh)}
    assert after == {setup.signatures["base"], setup.signatures["kept"]}  # the listing shrinks with what goes


def test_a_clone_without_branches_is_refused_before_anything_is_removed(setup: DefaultSetup, tmp_path: Path) -> None:
    setup.commit("one", 3)
    setup.git.git("checkout", "-q", "--detach")
    setup.git.git("branch", "-D", "main")
    result = run_cli("cleanup", *setup.args(), cwd=tmp_path)
    assert result.returncode == 2
    assert "has no branches" in result.stderr and "--git-history-synchronization" in result.stderr
    assert len(result.stderr.strip().splitlines()[-1:]) == 1 and "Traceback" not in result.stderr
    assert setup.remaining() == {"one"}


def _just_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("given", [("--keep-published-within", "48h"), ("env", "48h")], ids=["option", "variable"])
def test_disable_built_within_last_n_hours_policy_wins_over_keep_published_within__werf_pkg_cleaning_cleanup_go(
    setup: DefaultSetup, tmp_path: Path, given: tuple[str, str]
) -> None:
    """werf's cleanup.go protects recent images only ``if !(DisableBuiltWithinLastNHoursPolicy || hours == 0)``,
    whatever --keep-stages-built-within-last-n-hours says: with the policy disabled in werf.yaml, a tag published
    a minute ago that no keep policy keeps is removed, also when --keep-published-within (or its variable) is
    set, and the user is told the option is ignored."""
    setup.commit("old", 30, published_at=_just_now())
    setup.commit("new", 1, published_at=_just_now())
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    (setup.git.path / "werf.yaml").write_text(
        "project: demo\nconfigVersion: 1\ncleanup:\n  disableBuiltWithinLastNHoursPolicy: true\n"
        "  keepPolicies:\n  - references: {branch: main}\n---\nimage: app\n")
    option, value = given
    args, env = ((option, value), {}) if option != "env" else ((), {"WERF_KEEP_PUBLISHED_WITHIN": value})
    result = run_cli("cleanup", *setup.args(), *args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert setup.remaining() == {"new"}
    assert "--keep-published-within (WERF_KEEP_PUBLISHED_WITHIN) is ignored" in result.stderr
    assert "disableBuiltWithinLastNHoursPolicy" in result.stderr


def test_without_the_disable_flag_keep_published_within_still_protects_recent_tags(
    setup: DefaultSetup, tmp_path: Path
) -> None:
    """The counterpart: the same project without disableBuiltWithinLastNHoursPolicy keeps the recent tag."""
    setup.commit("old", 30, published_at=_just_now())
    setup.commit("new", 1, published_at=_just_now())
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    (setup.git.path / "werf.yaml").write_text(
        "project: demo\nconfigVersion: 1\ncleanup:\n  keepPolicies:\n  - references: {branch: main}\n"
        "---\nimage: app\n")
    result = run_cli("cleanup", *setup.args(), "--keep-published-within", "48h", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert setup.remaining() == {"old", "new"} and "is ignored" not in result.stderr


def test_werf_yaml_werf_accepts_is_cleaned_with_werfs_meaning__werf_raw_meta_cleanup_go(
    setup: DefaultSetup, tmp_path: Path
) -> None:
    """A werf.yaml written for werf (YAML 1.1 booleans, a negative ``last``, Go durations) exits 0 and keeps what
    werf keeps: every branch (no limit), every image of each published within 21.5 hours (no limit, And);
    Kubernetes is not read (``disableKubernetesBasedPolicy: yes``: else the missing --kube-config is an error)."""
    setup.commit("month", 30)
    setup.commit("day", 0.5)  # 12 h ago: within 21.5h
    setup.commit("yesterday", 1.5)  # 36 h ago: outside 21.5h
    (setup.git.path / "Dockerfile").write_text("FROM scratch\n")
    (setup.git.path / "werf.yaml").write_text(
        "project: demo\nconfigVersion: 1\ncleanup:\n  disableKubernetesBasedPolicy: yes\n"
        "  disableBuiltWithinLastNHoursPolicy: on\n  keepPolicies:\n  - references:\n      branch: /.*/\n"
        "      limit: {last: -5, in: 90m30s, operator: Or}\n"
        "    imagesPerReference: {last: -3, in: 21.5h, operator: And}\n---\nimage: app\n")
    result = run_cli("cleanup", *setup.args(), "--kube-config", str(tmp_path / "no-such-kubeconfig"),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert setup.remaining() == {"day"}


def test_cleanup_of_a_long_history_reads_only_as_deep_as_the_policies_can_keep__werf_scanner_go(
    setup: DefaultSetup, tmp_path: Path
) -> None:
    """Ten years of history (20,000 commits) under two fresh images: main's walk stops at what it keeps, as
    werf's scanner stops once every expected image is reached, and cleanup says how many commits it read."""
    import re

    setup.git.long_history(20_000, int((NOW - timedelta(days=60)).timestamp()), step=15_000)
    setup.commit("one", 2)
    setup.commit("two", 1)
    result = run_cli("cleanup", *setup.args(), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    read = re.search(r"([0-9,]+) commits? read", result.stderr)
    assert read is not None, result.stderr
    assert int(read.group(1).replace(",", "")) < 100
    assert "0 to remove" in result.stderr
