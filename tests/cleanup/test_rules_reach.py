"""Adversarial checks of how far ``cleanup --rules`` reaches, on the real registry: a selector or a tag pattern
that would take more than it says removes nothing it does not name."""

from __future__ import annotations

import uuid
from pathlib import Path

from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import ago, run_cli
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
