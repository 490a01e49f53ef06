"""Which implementation `registry untag` uses: options beat variables, and a variable set for the images repo
applies only to addresses on the images repo's registry (as `ci-env setup` exports it)."""

from __future__ import annotations

import json
import subprocess

from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService

#: What `ci-env setup` exports in a GitLab job whose images repo is on gitlab.example.com.
GITLAB_JOB = {
    "WERF_IMAGES_REPO": "registry.gitlab.example.com/group/project",
    "WERF_IMAGES_REPO_IMPLEMENTATION": "gitlab",
    "WERF_STAGES_STORAGE": "registry.gitlab.example.com/group/project/stages",
    "WERF_STAGES_STORAGE_REPO_IMPLEMENTATION": "gitlab",
}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_ci_env(*args, env={**environ_without(("WERF_", "DOCKER_CONFIG", "CI_", "GITLAB_")), **env})


def _gitlab_route_used(registry: RegistryService, since: int) -> bool:
    """The GitLab route removes a tag with the Registry tag-delete endpoint ``/v2/NAME/tags/reference/TAG``."""
    return any("/tags/reference/" in path for _m, path, _s in registry.requests()[since:])


def test_images_repo_implementation_does_not_follow_another_registry(
    registry_open: RegistryService, open_client: RegistryClient, repo: str
) -> None:
    push_image(open_client, repo, ["keep", "old"])
    before = len(registry_open.requests())
    result = run("registry", "untag", f"{registry_open.host}/{repo}:old", "--json", env=GITLAB_JOB)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["removed"] == 1
    assert open_client.list_tags(repo) == ["keep"]
    assert not _gitlab_route_used(registry_open, before)


def test_option_beats_the_variable_on_the_images_repo_registry(
    registry_open: RegistryService, open_client: RegistryClient, repo: str
) -> None:
    push_image(open_client, repo, ["keep", "old"])
    same_registry = {**GITLAB_JOB, "WERF_IMAGES_REPO": f"{registry_open.host}/group/project"}
    before = len(registry_open.requests())
    result = run("registry", "untag", "--repo-implementation", "default", f"{registry_open.host}/{repo}:old",
                 "--json", env=same_registry)
    assert result.returncode == 0, result.stderr
    assert open_client.list_tags(repo) == ["keep"]
    assert not _gitlab_route_used(registry_open, before)


def test_variable_still_applies_on_the_images_repo_registry(
    registry_open: RegistryService, open_client: RegistryClient, repo: str
) -> None:
    push_image(open_client, repo, ["keep", "old"])
    same_registry = {**GITLAB_JOB, "WERF_IMAGES_REPO": f"{registry_open.host}/group/project",
                     "WERF_STAGES_STORAGE": ":local"}
    before = len(registry_open.requests())
    result = run("registry", "untag", f"{registry_open.host}/{repo}:old", "--json", env=same_registry)
    assert _gitlab_route_used(registry_open, before), result.stderr
