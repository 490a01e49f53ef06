"""`ci-env registry tags|retag|untag` as a user runs them, against the real registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.conftest import USERS
from tests.registry_client.conftest import docker_config_for
from tests.registry_client.images import pulls, push_image, push_index
from tests.services.registry import RegistryService


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_ci_env(*args, env={**environ_without(("WERF_", "DOCKER_CONFIG")), **(env or {})})


def test_tags_json_lists_digest_type_and_created(registry_open: RegistryService, open_client: RegistryClient,
                                                  repo: str) -> None:
    image = push_image(open_client, repo, ["b", "a"])
    index = push_index(open_client, repo, ["multi"])
    result = run("registry", "tags", f"{registry_open.host}/{repo}", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [t["tag"] for t in listed] == ["a", "b", "multi"]
    assert listed[0] == {"tag": "a", "digest": image.digest, "media_type": image.media_type,
                         "created": "2024-01-02T03:04:05Z"}
    assert listed[2]["digest"] == index.digest
    assert listed[2]["media_type"] == "application/vnd.oci.image.index.v1+json"


def test_tags_of_unknown_repository_is_one_clear_error(registry_open: RegistryService) -> None:
    result = run("registry", "tags", f"{registry_open.host}/no/such/repo")
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_untag_cli_removes_only_named_tags_and_summarises(registry_htpasswd: RegistryService, tmp_path: Path,
                                                          repo: str) -> None:
    config = docker_config_for(tmp_path / "docker", registry_htpasswd.host, "alice", USERS["alice"])
    client = RegistryClient(registry_htpasswd.host, docker_config=config)
    image = push_image(client, repo, ["release", "stale-1"])
    push_image(client, repo, ["stale-2"])
    host = registry_htpasswd.host
    result = run("registry", "untag", f"{host}/{repo}:stale-1", f"{host}/{repo}:stale-2", f"{host}/{repo}:gone",
                 "--json", env={"WERF_DOCKER_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["removed"], summary["absent"], summary["failed"]) == (2, 1, 0)
    assert client.list_tags(repo) == ["release"]
    assert client.resolve(repo, "release").digest == image.digest  # type: ignore[union-attr]
    assert pulls(client, repo, "release")


def test_untag_dry_run_changes_nothing(registry_open: RegistryService, open_client: RegistryClient, repo: str) -> None:
    push_image(open_client, repo, ["a"])
    result = run("registry", "untag", f"{registry_open.host}/{repo}:a", "--dry-run")
    assert result.returncode == 0
    assert "would remove" in result.stdout
    assert open_client.list_tags(repo) == ["a"]


def test_untag_on_delete_disabled_registry_fails_preflight_and_deletes_nothing(
    registry_nodelete: RegistryService, repo: str
) -> None:
    client = RegistryClient(registry_nodelete.host)
    push_image(client, repo, ["a", "b"])
    result = run("registry", "untag", f"{registry_nodelete.host}/{repo}:a", f"{registry_nodelete.host}/{repo}:b")
    assert result.returncode == 1
    assert "REGISTRY_STORAGE_DELETE_ENABLED" in result.stderr and "nothing was deleted" in result.stderr
    assert sorted(client.list_tags(repo)) == ["a", "b"]


def test_untag_with_wrong_password_names_the_problem_without_the_secret(
    registry_htpasswd: RegistryService, tmp_path: Path, repo: str
) -> None:
    config = docker_config_for(tmp_path / "docker", registry_htpasswd.host, "alice", "wrong-secret-123")
    result = run("registry", "untag", f"{registry_htpasswd.host}/{repo}:a", env={"DOCKER_CONFIG": str(config)})
    assert result.returncode == 1
    assert "401" in result.stderr and "alice" in result.stderr
    assert "wrong-secret-123" not in result.stderr + result.stdout


def test_untag_rejects_a_digest_with_usage_error() -> None:
    result = run("registry", "untag", "127.0.0.1:5000/a/b@sha256:" + "a" * 64)
    assert result.returncode == 2
    assert "a tag, not a digest" in result.stderr


def test_retag_cli_adds_tags_across_repositories(registry_open: RegistryService, open_client: RegistryClient,
                                                 repo: str) -> None:
    image = push_image(open_client, repo, ["v1"])
    host = registry_open.host
    result = run("registry", "retag", f"{host}/{repo}:v1", f"{host}/{repo}:latest", f"{host}/{repo}-copy:v1")
    assert result.returncode == 0, result.stderr
    assert sorted(open_client.list_tags(repo)) == ["latest", "v1"]
    assert open_client.resolve(f"{repo}-copy", "v1").digest == image.digest  # type: ignore[union-attr]
    assert pulls(open_client, f"{repo}-copy", "v1")


def test_untag_of_many_tags_costs_at_most_two_and_a_half_requests_per_tag(
    registry_open: RegistryService, open_client: RegistryClient, repo: str,
) -> None:
    images = [push_image(open_client, repo, [f"keep-{n}"]) for n in range(20)]
    doomed = []
    for n in range(100):  # half alone on their image, half beside a kept tag
        image = push_image(open_client, repo) if n % 2 else images[n % 20]
        body, info = open_client.get_manifest(repo, image.digest)
        open_client.put_manifest(repo, f"stale-{n}", body, info.media_type)
        doomed.append(f"stale-{n}")
    before = len(registry_open.requests())
    result = run("registry", "untag", *(f"{registry_open.host}/{repo}:{tag}" for tag in doomed), "--json")
    made = registry_open.requests()[before:]
    assert result.returncode == 0, result.stderr
    assert len(made) <= 2.5 * len(doomed), sorted({m for m, _p, _s in made})
    assert sorted(open_client.list_tags(repo)) == sorted(f"keep-{n}" for n in range(20))
    assert all(pulls(open_client, repo, f"keep-{n}") for n in range(20))
    entries = json.loads(result.stdout)["tags"]
    assert {e["status"] for e in entries} == {"removed"} and all(e["digest"].startswith("sha256:") for e in entries)
