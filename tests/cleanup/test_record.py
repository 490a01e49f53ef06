"""`ci-env record` end to end: images another builder pushed (a multi-arch index, as `docker buildx build --push`
leaves it) are recorded in the real registry, and cleanup then keeps or removes them by its policies over real git
history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_env import records
from ci_env.errors import RegistryError
from ci_env.registry.naming import image_repository
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.test_cleanup_e2e import run_cli
from tests.cleanup.world import World
from tests.registry_client.images import PushedImage, pulls, push_index


class Foreign:
    """A project whose images a foreign builder pushes (multirepo ``IMAGES/app``), and a git clone."""

    def __init__(self, world: World, directory: Path) -> None:
        self.world = world
        self.git = GitRepo(directory)
        self.repo = image_repository(world.images_repo, "multirepo", "app")

    def push(self, *tags: str) -> PushedImage:
        return push_index(self.world.client, self.repo.path, list(tags))

    def ref(self, tag: str) -> str:
        return f"{self.repo}:{tag}"

    def where(self) -> list[str]:
        return ["-i", str(self.world.images_repo), "-s", str(self.world.stages), "--dir", str(self.git.path)]

    def record(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        result = run_cli("record", *self.where(), *args, cwd=self.git.path.parent, env=env)
        return result.returncode, result.stdout, result.stderr

    def cleanup(self, *args: str) -> tuple[int, str]:
        result = run_cli("cleanup", *self.where(), "--keep-published-within", "0", *args, cwd=self.git.path.parent)
        return result.returncode, result.stdout + result.stderr

    def record_tags(self) -> set[str]:
        try:
            tags = self.world.client.list_tags(self.world.stages.path)
        except RegistryError as exc:  # nothing written there yet
            assert "NAME_UNKNOWN" in str(exc)
            return set()
        return {t for t in tags if records.is_record_tag(t)}


@pytest.fixture
def foreign(world: World, tmp_path: Path) -> Foreign:
    return Foreign(world, tmp_path / "project")


def gitlab(sha: str, branch: str) -> dict[str, str]:
    return {"GITLAB_CI": "true", "CI_COMMIT_SHA": sha, "CI_COMMIT_REF_NAME": branch, "CI_JOB_ID": "7"}


def test_record_writes_what_build_and_publish_writes_and_a_second_run_writes_nothing(foreign: Foreign) -> None:
    sha = foreign.git.commit("one")
    pushed = foreign.push("main", sha[:8], "build-1")
    code, out, err = foreign.record(foreign.ref("main"), foreign.ref(sha[:8]), foreign.ref("build-1"),
                                    env=gitlab(sha, "main"))
    assert code == 0, err
    assert "record: 3 recorded, 0 unchanged, 1 metadata record written" in out
    by_tag = {p.tag: p for p in records.read_publications(foreign.world.store)}
    assert {t: p.strategy for t, p in by_tag.items()} == {
        "main": "git-branch", sha[:8]: "git-commit", "build-1": "stages-signature"}
    assert {p.digest for p in by_tag.values()} == {pushed.digest}  # the index, as the registry holds it
    assert {(p.image, p.repository, p.git_branch, p.git_commit) for p in by_tag.values()} == {
        ("app", str(foreign.repo), "main", sha)}
    assert records.list_managed_images(foreign.world.store) == ["app"]
    assert {(m.commit, m.signature) for m in records.read_metadata(foreign.world.store)} == {
        (sha, by_tag["build-1"].signature)}

    before = foreign.record_tags()
    code, out, err = foreign.record(foreign.ref("main"), foreign.ref(sha[:8]), foreign.ref("build-1"),
                                    env=gitlab(sha, "main"))
    assert code == 0, err
    assert "record: 0 recorded, 3 unchanged, 0 metadata records written" in out
    assert foreign.record_tags() == before  # nothing written


def test_recorded_images_take_part_in_cleanup_by_their_policies(foreign: Foreign) -> None:
    main = foreign.git.commit("main")
    kept = foreign.push("main", main[:8], "build-1")
    assert foreign.record(foreign.ref("main"), foreign.ref(main[:8]), foreign.ref("build-1"),
                          env=gitlab(main, "main"))[0] == 0
    foreign.git.git("checkout", "-q", "-b", "feature-x")
    feature = foreign.git.commit("feature")
    foreign.push("feature-x", "build-2")
    code, _out, err = foreign.record(foreign.ref("feature-x"), foreign.ref("build-2"), env=gitlab(feature, "feature-x"))
    assert code == 0, err
    foreign.git.git("checkout", "-q", "main")
    foreign.git.git("branch", "-D", "feature-x")  # the branch is gone, and with it the only reference to its commit
    foreign.push("unrecorded")  # a tag nobody recorded: kept, as every tag without a record or label

    code, text = foreign.cleanup()
    assert code == 0, text
    assert foreign.world.tags("app") == {"main", main[:8], "build-1", "unrecorded"}
    assert pulls(foreign.world.client, foreign.repo.path, "main")  # the index and its platforms are whole
    assert all(foreign.world.client.resolve(foreign.repo.path, c) is not None for c in kept.children)
    # the metadata record that keeps build-1 stays; the removed image's is pruned
    signatures = {p.tag: p.signature for p in records.read_publications(foreign.world.store)}
    assert {(m.commit, m.signature) for m in records.read_metadata(foreign.world.store)} == {
        (main, signatures["build-1"])}

    again, text = foreign.cleanup()
    assert again == 0, text
    assert foreign.world.tags("app") == {"main", main[:8], "build-1", "unrecorded"}


def test_custom_strategy_keeps_and_explicit_options_win(foreign: Foreign) -> None:
    sha = foreign.git.commit("one")
    foreign.push("latest")
    code, out, err = foreign.record(foreign.ref("latest"), "--strategy", "custom", "--tag-git-branch", "main")
    assert code == 0, err
    (publication,) = records.read_publications(foreign.world.store)
    assert (publication.strategy, publication.git_branch, publication.git_commit) == ("custom", "main", sha)
    assert "custom (kept)" in out


def test_nameless_and_monorepo_images(foreign: Foreign) -> None:
    foreign.git.commit("one")
    client, images = foreign.world.client, foreign.world.images_repo
    push_index(client, images.path, ["v1", "api-v1"])
    code, _out, err = foreign.record(f"{images}:v1", "--images-repo-mode", "monorepo")
    assert code == 0, err
    code, _out, err = foreign.record(f"{images}:api-v1", "--images-repo-mode", "monorepo", "--image", "api")
    assert code == 0, err
    found = {(p.image, p.tag, p.stored_tag) for p in records.read_publications(foreign.world.store)}
    assert found == {(None, "v1", "v1"), ("api", "v1", "api-v1")}
    assert records.list_managed_images(foreign.world.store) == [None, "api"]


@pytest.mark.parametrize(("args", "message"), [
    (["{repo}:missing"], "no such tag in the registry"),
    (["{images}-other/app:main"], "not in the images repo"),
    (["{images}/a/b:main"], "not in the images repo"),
    (["{repo}:main", "--image", "web"], "not where the tags of image web go"),
    (["{repo}@sha256:" + "a" * 64], "give a tag"),
    ([], "nothing to record"),
    (["{repo}:main", "--tag-git-commit", "zzz"], "neither a full commit id"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(foreign: Foreign, args: list[str], message: str) -> None:
    foreign.git.commit("one")
    foreign.push("main")
    before = foreign.record_tags()
    values = {"repo": str(foreign.repo), "images": str(foreign.world.images_repo)}
    code, out, err = foreign.record(*[a.format(**values) for a in args])
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err
    assert foreign.record_tags() == before


def test_report_names_the_strategy_of_recorded_tags(foreign: Foreign, tmp_path: Path) -> None:
    sha = foreign.git.commit("one")
    foreign.push("main", "build-1")
    assert foreign.record(foreign.ref("main"), foreign.ref("build-1"), env=gitlab(sha, "main"))[0] == 0
    report = tmp_path / "plan.json"
    code, text = foreign.cleanup("--dry-run", "--report", str(report))
    assert code == 0, text
    decisions = {d["tag"]: d for d in json.loads(report.read_text())["decisions"] if d["kind"] == "tag"}
    assert decisions["main"]["action"] == "keep" and "branch 'main' exists" in decisions["main"]["reason"]
    assert decisions["build-1"]["basis"]["rule"] == "keep-policy"


# ------------------------------------------------------------------------------------------ --removed-branch


def test_removed_branch_removes_its_own_images_at_once_and_nothing_else(foreign: Foreign, tmp_path: Path) -> None:
    main = foreign.git.commit("main")
    foreign.push("main", "build-m")
    assert foreign.record(foreign.ref("main"), foreign.ref("build-m"), env=gitlab(main, "main"))[0] == 0
    foreign.git.git("branch", "other-gone")
    foreign.push("other-gone")
    assert foreign.record(foreign.ref("other-gone"), env=gitlab(main, "other-gone"))[0] == 0
    foreign.git.git("checkout", "-q", "-b", "feature-x")
    foreign.push("build-shared")  # the branch's first pipeline, on main's commit: main reaches it
    assert foreign.record(foreign.ref("build-shared"), env=gitlab(main, "feature-x"))[0] == 0
    own = foreign.git.commit("feature")
    foreign.push("feature-x", "build-f1")
    assert foreign.record(foreign.ref("feature-x"), foreign.ref("build-f1"), env=gitlab(own, "feature-x"))[0] == 0
    foreign.git.git("checkout", "-q", "main")
    foreign.git.git("branch", "-D", "feature-x", "other-gone")
    everything = {"main", "build-m", "other-gone", "build-shared", "feature-x", "build-f1"}

    report = tmp_path / "plan.json"
    result = run_cli("cleanup", *foreign.where(), "--removed-branch", "refs/heads/feature-x", "--dry-run",
                     "--keep-tag", "build-f1", "--report", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    decisions = {d["tag"]: d for d in json.loads(report.read_text())["decisions"] if d["kind"] == "tag"}
    assert {t for t, d in decisions.items() if d["action"] == "delete"} == {"feature-x"}
    assert decisions["build-f1"]["basis"]["rule"] == "protection"  # --keep-tag still wins
    assert decisions["other-gone"]["basis"]["rule"] == "other-reference"
    assert foreign.world.tags("app") == everything

    # published minutes ago, under the default --keep-published-within: the branch is gone, so they go now
    result = run_cli("cleanup", *foreign.where(), "--removed-branch", "feature-x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "removed branch 'feature-x': 2 tags of its own to remove; every other tag is kept" in result.stderr
    assert foreign.world.tags("app") == everything - {"feature-x", "build-f1"}
    assert {p.tag for p in records.read_publications(foreign.world.store)} == everything - {"feature-x", "build-f1"}

    again = run_cli("cleanup", *foreign.where(), "--removed-branch", "feature-x", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 tags of its own to remove" in again.stderr and "cleanup: 0 removed" in again.stderr
    assert foreign.world.tags("app") == everything - {"feature-x", "build-f1"}


def test_removed_branch_that_exists_again_removes_nothing(foreign: Foreign, tmp_path: Path) -> None:
    foreign.git.commit("main")
    foreign.git.git("checkout", "-q", "-b", "feature-y")
    sha = foreign.git.commit("feature")
    foreign.push("feature-y", "build-y")
    assert foreign.record(foreign.ref("feature-y"), foreign.ref("build-y"), env=gitlab(sha, "feature-y"))[0] == 0
    foreign.git.git("checkout", "-q", "main")
    foreign.git.git("branch", "-D", "feature-y")
    foreign.git.git("branch", "feature-y", sha)  # deleted, then pushed again before the cleanup job ran
    result = run_cli("cleanup", *foreign.where(), "--removed-branch", "feature-y", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "branch 'feature-y' exists" in result.stderr and "removes nothing" in result.stderr
    assert foreign.world.tags("app") == {"feature-y", "build-y"}


@pytest.mark.parametrize("value", ["bad..name", "", "-x"])
def test_removed_branch_bad_value_exits_2(foreign: Foreign, tmp_path: Path, value: str) -> None:
    foreign.git.commit("main")
    result = run_cli("cleanup", *foreign.where(), "--removed-branch", value, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--removed-branch" in lines[0] and "Traceback" not in result.stderr


def test_a_branch_tag_in_gitlab_slug_form_is_the_branch_tag(foreign: Foreign, tmp_path: Path) -> None:
    sha = foreign.git.commit("one")
    foreign.git.git("branch", "feature/Login")
    foreign.push("feature-login")  # $CI_COMMIT_REF_SLUG of feature/Login
    code, _out, err = foreign.record(foreign.ref("feature-login"), env=gitlab(sha, "feature/Login"))
    assert code == 0, err
    (publication,) = records.read_publications(foreign.world.store)
    assert (publication.strategy, publication.git_branch) == ("git-branch", "feature/Login")
    foreign.git.git("branch", "-D", "feature/Login")
    result = run_cli("cleanup", *foreign.where(), "--removed-branch", "feature/Login", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert foreign.world.tags("app") == set()
