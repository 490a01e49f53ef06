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


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a git repository"):
        open_repository(tmp_path)
