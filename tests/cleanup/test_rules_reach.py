"""Adversarial checks of how far ``cleanup --rules`` reaches, on the real registry: a selector or a tag pattern
that would take more than it says removes nothing it does not name."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import ago, run_cli
from tests.cli import environ_without, run_ci_env
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService

REMOVE_ALL = """\
version: 1
repositories:
- glob: '{glob}'
  rules:
  - remove: all
"""


def test_a_negated_glob_set_does_not_cross_a_path_segment(registry_open: RegistryService, tmp_path: Path) -> None:
    """``team[!-]*`` names top-level repositories (team2, teamx: not team-old); as a path glob, its set matches no
    ``/``, so ``team/app`` stays."""
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    team = f"t{uuid.uuid4().hex[:8]}"
    for name in (f"{team}/app", f"{team}2", f"{team}-old"):
        push_image(client, name, ["dev"], created=ago(10))
    rules = tmp_path / "rules.yaml"
    rules.write_text(REMOVE_ALL.format(glob=f"{team}[!-]*"))
    code, _out, err = run_cli("cleanup", "--rules", str(rules), "--registry", registry_open.host, cwd=tmp_path)
    assert code == 0, err
    assert client.list_tags(f"{team}2") == []
    assert client.list_tags(f"{team}/app") == ["dev"]
    assert client.list_tags(f"{team}-old") == ["dev"]


def test_a_backtracking_tag_pattern_does_not_hang_the_cleanup(registry_open: RegistryService,
                                                                tmp_path: Path) -> None:
    """Whoever can push a tag must not be able to stall every cleanup: ``(a+)+z`` against ``aaa...a-x`` takes
    exponential time with a backtracking matcher (hours at 40 characters); ci-env matches in linear time, as
    werf's and GitLab's RE2 do, and gets the answer right: the tag the pattern matches is kept, the other one
    falls to the next rule."""
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    name = f"t{uuid.uuid4().hex[:8]}/app"
    push_image(client, name, ["a" * 40 + "-x", "a" * 40 + "z"], created=ago(10))
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"version: 1\nrepositories:\n- name: {name}\n  rules:\n"
                     "  - tags: {include: ['(a+)+z']}\n    keep: all\n  - remove: all\n")
    try:
        done = run_ci_env("cleanup", "--rules", str(rules), "--registry", registry_open.host,
                          env={**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"),
                               "XDG_STATE_HOME": str(tmp_path / "state"), "KUBECONFIG": str(tmp_path / "none")},
                          cwd=tmp_path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("cleanup --rules ran for more than 60 s on two tags and one pattern")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert client.list_tags(name) == ["a" * 40 + "z"]
