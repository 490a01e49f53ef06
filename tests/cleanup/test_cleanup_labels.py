"""Tags without a publication record: the strategy comes from the image's labels (``werf-tag-strategy`` for the
tag named by ``werf-image-tag``, the commit from ``org.opencontainers.image.revision``), the owner from
``werf-image-name``. End to end against the real registry and a real git repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_env import records
from ci_env.cleanup.collect import strategy_from_labels
from tests.cleanup.gitrepo import GitRepo
from tests.cleanup.test_cleanup_e2e import run_cli
from tests.cleanup.world import MISSING_COMMIT, World, push_labelled, recent


def labels(image: str, strategy: str, tag: str, revision: str = "", **extra: str) -> dict[str, str]:
    result = {"werf-image": "true", "werf-image-name": image, "werf-tag-strategy": strategy, "werf-image-tag": tag,
              **extra}
    if revision:
        result["org.opencontainers.image.revision"] = revision
    return result


def test_tags_without_records_follow_their_labels(world: World, tmp_path: Path) -> None:
    git = GitRepo(tmp_path / "project")
    first = git.commit("one", date="2024-01-01T00:00:00Z")
    git.git("tag", "v1")
    git.git("tag", "v2")
    git.git("branch", "feature-a")
    git.git("branch", "-D", "feature-a")
    git.git("tag", "-d", "v1")
    records.add_managed_image(world.store, "api")
    path = world.images_repo.child("api").path
    push = push_labelled
    push(world.client, path, ["main"], labels("api", "git-branch", "main", first))
    # published for feature-a, then also tagged "latest" and with its commit: one image, one set of labels
    push(world.client, path, ["feature-a", "latest", first[:12]], labels("api", "git-branch", "feature-a", first))
    push(world.client, path, ["v1"], labels("api", "git-tag", "v1"))
    push(world.client, path, ["v2"], labels("api", "git-tag", "v2"))
    push(world.client, path, [first], labels("api", "git-commit", first, first))
    push(world.client, path, [MISSING_COMMIT], labels("api", "git-commit", MISSING_COMMIT, MISSING_COMMIT))
    push(world.client, path, ["fresh-gone-branch"], labels("api", "git-branch", "fresh-gone-branch"),
         created=recent())
    push(world.client, path, ["no-labels"], {})
    push(world.client, path, ["other-project"], labels("other", "git-branch", "other-project"))

    report = tmp_path / "report.json"
    result = run_cli("cleanup", "-i", str(world.images_repo), "-s", str(world.stages), "--dir", str(git.path),
                     "--report", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert world.tags("api") == {"main", "latest", first[:12], "v2", first, "fresh-gone-branch", "no-labels",
                                 "other-project"}
    document = json.loads(report.read_text())
    decisions = {d["tag"]: d for d in document["decisions"] if d["kind"] == "tag"}
    assert decisions["feature-a"]["strategy"] == "git-branch" and decisions["feature-a"]["outcome"] == "removed"
    assert decisions[first[:12]]["strategy"] == "git-commit"  # its revision label names the commit
    assert decisions["latest"]["action"] == "keep" and decisions["latest"]["strategy"] is None
    assert "werf-image-name" in {s["reference"].rsplit(":", 1)[1]: s["reason"]
                                 for s in document["skipped"]}["other-project"]


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(("image_labels", "tag", "expected"), [
    ({"werf-tag-strategy": "git-branch", "werf-image-tag": "main"}, "main", ("git-branch", None)),
    ({"werf-tag-strategy": "git-branch", "werf-image-tag": "main"}, "latest", (None, None)),
    ({"werf-tag-strategy": "git-branch", "werf-image-tag": "main",
      "org.opencontainers.image.revision": SHA}, SHA[:8], ("git-commit", SHA)),
    ({"werf-tag-strategy": "git-branch", "werf-image-tag": "main",
      "org.opencontainers.image.revision": SHA}, SHA[:6], (None, None)),
    ({"werf-tag-strategy": "git-commit", "werf-image-tag": SHA,
      "org.opencontainers.image.revision": SHA}, SHA, ("git-commit", SHA)),
    ({"werf-tag-strategy": "git-tag"}, "v1", ("git-tag", None)),  # the original tool: no werf-image-tag
    ({}, "v1", (None, None)),
])
def test_strategy_from_labels(image_labels: dict[str, str], tag: str, expected: tuple[str | None, str | None]) -> None:
    assert strategy_from_labels(image_labels, tag) == expected
