"""Git facts read from real repositories: branches, tags, reachable commits, shallow clones, synchronisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_env.errors import ConfigError
from ci_env.gitinfo import open_repository
from tests.cleanup.gitrepo import GitRepo


@pytest.fixture
def origin(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "origin")
    repo.commit("one", date="2024-01-01T00:00:00Z")
    repo.git("tag", "v1")
    repo.commit("two", date="2024-02-01T00:00:00Z")
    repo.git("tag", "-a", "v2", "-m", "release 2", date="2024-03-01T00:00:00Z")
    repo.git("branch", "feature/x")
    return repo


def test_branches_tags_and_commits(origin: GitRepo, tmp_path: Path) -> None:
    clone = GitRepo(tmp_path / "clone")
    clone.git("remote", "add", "origin", str(origin.path))
    clone.git("fetch", "-q", "origin")
    clone.git("branch", "local-only", "origin/main")
    head = origin.git("rev-parse", "main")
    facts = open_repository(clone.path).facts([head, head[:10], "f" * 40, "not-a-sha"])
    assert facts.branches == {"local-only", "main", "feature/x"}
    assert set(facts.tags) == {"v1", "v2"}
    assert facts.tags["v2"].commit == head
    assert facts.tags["v2"].date.isoformat().startswith("2024-03-01")
    assert facts.tags["v1"].date.isoformat().startswith("2024-01-01")
    assert facts.commit(head[:10]) is not None
    assert facts.commit(head).date.isoformat().startswith("2024-02-01")  # type: ignore[union-attr]
    assert facts.commit("f" * 40) is None
    assert facts.commit("not-a-sha") is None


def test_commit_of_deleted_branch_is_not_reachable(origin: GitRepo) -> None:
    origin.git("checkout", "-q", "-b", "tmp")
    lost = origin.commit("lost")
    origin.git("checkout", "-q", "main")
    origin.git("branch", "-D", "tmp")
    assert open_repository(origin.path).facts([lost]).commit(lost) is None


def test_shallow_clone_is_refused_unless_synchronised(origin: GitRepo, tmp_path: Path) -> None:
    clone = tmp_path / "shallow"
    origin.git("clone", "-q", "--depth", "1", "--single-branch", f"file://{origin.path}", str(clone))
    with pytest.raises(ConfigError, match=r"shallow clone.*--git-history-synchronization") as error:
        open_repository(clone)
    assert error.value.exit_code == 2
    origin.git("tag", "-d", "v1")
    repo = open_repository(clone, synchronize=True)
    assert not repo.is_shallow()
    facts = repo.facts()
    assert "feature/x" in facts.branches
    assert set(facts.tags) == {"v2"}


def test_synchronisation_prunes_deleted_branches_and_tags(origin: GitRepo, tmp_path: Path) -> None:
    clone = tmp_path / "full"
    origin.git("clone", "-q", f"file://{origin.path}", str(clone))
    origin.git("branch", "-D", "feature/x")
    origin.git("tag", "-d", "v2")
    facts = open_repository(clone, synchronize=True).facts()
    assert "feature/x" not in facts.branches
    assert set(facts.tags) == {"v1"}


def _gitlab_checkout(origin: GitRepo, path: Path) -> GitRepo:
    """What GitLab's runner does with GIT_DEPTH 0: init, add origin, fetch the pipeline's branch only, check out
    its commit (the remote's default refspec stays in the config)."""
    clone = GitRepo(path)
    clone.git("remote", "add", "origin", f"file://{origin.path}")
    clone.git("fetch", "-q", "origin", "+refs/heads/main:refs/remotes/origin/main", "+refs/tags/*:refs/tags/*")
    clone.git("checkout", "-q", "--detach", "origin/main")
    return clone


@pytest.mark.parametrize(("make", "why"), [
    (lambda origin, path: origin.git("clone", "-q", "--single-branch", f"file://{origin.path}", str(path)),
     r"remote\.origin\.fetch \+refs/heads/main:refs/remotes/origin/main\) does not cover refs/heads/\*"),
    (lambda origin, path: _gitlab_checkout(origin, path), r"only origin/main and no origin/HEAD"),
    (lambda origin, path: (origin.git("clone", "-q", f"file://{origin.path}", str(path)),
                           GitRepo(path).git("config", "--add", "remote.origin.fetch", "^refs/heads/feature/*")),
     r"excludes branches \(remote\.origin\.fetch \^refs/heads/feature/\*\)"),
], ids=["single-branch", "gitlab-checkout", "negative-refspec"])
def test_a_clone_that_hides_branches_is_refused_unless_synchronised(
    origin: GitRepo, tmp_path: Path, make: object, why: str,
) -> None:
    clone = tmp_path / "clone"
    make(origin, clone)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=r"is a clone that hides branches of origin \(.*" + why) as error:
        open_repository(clone)
    message = error.value.message
    assert error.value.exit_code == 2
    assert "--git-history-synchronization" in message and "WERF_GIT_HISTORY_SYNCHRONIZATION=true" in message
    assert "fetch-depth: 0" in message and "GIT_DEPTH: 0" in message
    facts = open_repository(clone, synchronize=True).facts()
    assert {"main", "feature/x"} <= facts.branches


def test_full_clones_are_accepted(origin: GitRepo, tmp_path: Path) -> None:
    full = tmp_path / "full"
    origin.git("clone", "-q", f"file://{origin.path}", str(full))
    assert open_repository(full).facts().branches == {"main", "feature/x"}
    # actions/checkout with fetch-depth 0: init, add origin, fetch every branch; no origin/HEAD
    checkout = GitRepo(tmp_path / "checkout")
    checkout.git("remote", "add", "origin", f"file://{origin.path}")
    checkout.git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
    assert open_repository(checkout.path).facts().branches == {"main", "feature/x"}
    # a plain clone of a repository with one branch (origin/HEAD says it is a whole clone)
    single = GitRepo(tmp_path / "single")
    single.commit("only")
    alone = tmp_path / "alone"
    single.git("clone", "-q", f"file://{single.path}", str(alone))
    assert open_repository(alone).facts().branches == {"main"}
    # a repository without origin shows its own branches
    assert open_repository(origin.path).facts().branches == {"main", "feature/x"}


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a git repository"):
        open_repository(tmp_path)


def test_a_clone_without_tags_or_without_origin_is_refused(origin: GitRepo, tmp_path: Path) -> None:
    no_tags = tmp_path / "no-tags"
    origin.git("clone", "-q", "--no-tags", f"file://{origin.path}", str(no_tags))
    with pytest.raises(ConfigError, match=r"hides the git tags of origin \(remote\.origin\.tagOpt --no-tags") as error:
        open_repository(no_tags)
    assert error.value.exit_code == 2 and "--git-history-synchronization" in error.value.message
    assert set(open_repository(no_tags, synchronize=True).facts().tags) == {"v1", "v2"}
    # --no-tags with a refspec that fetches the tags anyway shows them
    GitRepo(no_tags).git("config", "--add", "remote.origin.fetch", "+refs/tags/*:refs/tags/*")
    assert set(open_repository(no_tags).facts().tags) == {"v1", "v2"}

    upstream = tmp_path / "upstream"
    origin.git("clone", "-q", "--origin", "upstream", f"file://{origin.path}", str(upstream))
    with pytest.raises(ConfigError, match=r"names its remote upstream, not origin.*git remote rename upstream origin"):
        open_repository(upstream)
    GitRepo(upstream).git("remote", "rename", "upstream", "origin")
    assert open_repository(upstream).facts().branches == {"main", "feature/x"}
