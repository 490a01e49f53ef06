"""What a newcomer's first runs of cleanup by rules say when the selectors miss: a registry that does not list its
catalog to these credentials (the token server grants no ``registry:catalog:*``) stops a namespace selector with
exit 1 and one line saying to name the repositories exactly; a misspelt ``name:`` or ``namespace:`` is told,
not passed over in silence."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path

from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService

RULES = "version: 1\nrepositories:\n- namespace: team\n  rules:\n  - keep: {last: 1}\n"


def _docker_config(directory: Path, host: str, user: str, password: str) -> Path:
    directory.mkdir(mode=0o700)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return directory


def test_a_namespace_on_a_registry_without_catalog_says_to_name_the_repositories(
        fresh_registry: Callable[..., RegistryService], tmp_path: Path) -> None:
    registry = fresh_registry(auth="token", users={"alice": "alice-pw"}, denied_actions={"*"})
    config = _docker_config(tmp_path / "docker", registry.host, "alice", "alice-pw")
    client = RegistryClient(registry.host, docker_config=config)
    for tag in ("one", "two"):
        push_image(client, "team/app", [tag])
    rules = tmp_path / "retention.yaml"
    rules.write_text(RULES)
    env = {**environ_without(), "XDG_STATE_HOME": str(tmp_path / "state"), "KUBECONFIG": str(tmp_path / "none")}
    for docker_config, fix in ((config, "use credentials that have it"),
                               (tmp_path / "none", "no credentials for it were found in the Docker config")):
        done = run_ci_env("cleanup", "--rules", str(rules), "--registry", registry.host, "--docker-config",
                          str(docker_config), env=env, cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("ci-env: error: ")]
        assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "GET /v2/_catalog" in errors[0] and "insufficient_scope" in errors[0] and fix in errors[0]
        assert errors[0].endswith("a glob or namespace selector needs the registry's catalog: name the "
                                  "repositories exactly (name: team/app, or --repository team/app)"), errors[0]
        assert "may delete" not in errors[0]
    assert sorted(client.list_tags("team/app")) == ["one", "two"]


def test_a_misspelt_name_or_namespace_is_told(registry_open: RegistryService, tmp_path: Path) -> None:
    group = f"grp{uuid.uuid4().hex[:8]}"
    client = RegistryClient(registry_open.host, docker_config=tmp_path / "none")
    push_image(client, f"{group}/app", ["one"])
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "KUBECONFIG": str(tmp_path / "none")}
    done = run_ci_env("cleanup", "--registry", registry_open.host, "--repository", f"{group}/ap", "--repository",
                      f"{group}/app", "--rule", "keep-last=1", "--dry-run", "--without-kube", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (f"ci-env: note: {registry_open.host}/{group}/ap has no tag (nor has a repository that does not exist): "
            "check its name in the rules if you expected tags there") in done.stderr.splitlines()
    assert f"{group}/app has no tag" not in done.stderr
    rules = tmp_path / "retention.yaml"
    rules.write_text(RULES.replace("namespace: team", f"namespace: {group}x"))
    done = run_ci_env("cleanup", "--rules", str(rules), "--registry", registry_open.host, "--dry-run",
                      "--without-kube", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert ("nothing to do: the rules select no repository: check the name:, glob: and namespace: of the rules (or "
            "--repository) against the registry's repositories") in done.stderr.splitlines()
