"""A vendor API's credentials never follow a redirect to another host, and an API that cannot be reached is one
error line.

The vendor APIs (GitLab's projects API, Docker Hub's, Quay's, Harbor's, GitHub's, ACR's) are local servers
following the vendor's API that misbehave on purpose: they redirect to a made-up host that only a test proxy
resolves (``nameproxy``), so nothing leaves the machine. requests on its own drops only ``Authorization`` when a
redirect changes host, and re-sends a 307/308's body (a login's password) to wherever it points.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from ci_env.errors import CiEnvError, PreflightError, RegistryError
from ci_env.registry.http import ApiSession, make_session
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.dockerhub import DockerHubRemover
from ci_env.registry.vendors.gitlab import GitLabRemover
from ci_env.registry.vendors.quay import QuayRemover
from tests.registry_client.nameproxy import NameProxy
from tests.services import free_port
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import Call, FakeApi, Reply

SECRETS = ("glpat-SECRET", "job-SECRET", "hub-pass-SECRET", "quay-SECRET")


def leaked(calls: list[Call]) -> list[str]:
    """Every secret of ``SECRETS`` found in the headers or body of ``calls``."""
    found = []
    for call in calls:
        text = json.dumps(call.headers) + call.body.decode("latin-1")
        found += [secret for secret in SECRETS if secret in text]
    return found


def anything(call: Call, *groups: str) -> Reply:
    return 401, {}, {"message": "401 Unauthorized"}


def elsewhere_server(fake_api: Callable[[], FakeApi]) -> FakeApi:
    """The other host: it records everything and refuses everything."""
    other = fake_api()
    for method in ("GET", "POST", "PUT", "DELETE", "HEAD"):
        other.route(method, r"/.*")(anything)
    return other


def test_a_gitlab_api_redirect_to_another_host_carries_no_token(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], clean_env: None,
    tmp_path: Path,
) -> None:
    gitlab, other = fake_api(), elsewhere_server(fake_api)
    gitlab.route("GET", r"/api/v4/projects/(.+)")(
        lambda call, ident: (302, {"Location": f"http://elsewhere.test/api/v4/projects/{ident}"}, None)
    )
    name_proxy({"elsewhere.test:80": other.port})
    (tmp_path / "config.json").write_text("{}")
    context = Ctx(env={"WERF_GITLAB_API_URL": f"{gitlab.url}/api/v4", "CI_JOB_TOKEN": "job-SECRET",
                       "CI_SERVER_URL": gitlab.url, "CI_API_V4_URL": f"{gitlab.url}/api/v4"},
                  credentials={"gitlab-token": "glpat-SECRET"}, docker_config=tmp_path)
    remover = GitLabRemover(context)
    with pytest.raises(CiEnvError):
        remover._project_id(RepoAddress("registry.example.test", "group/project/app"))
    assert other.calls, "the redirect was followed (without the token)"
    assert leaked(other.calls) == []
    assert gitlab.calls[0].headers.get("PRIVATE-TOKEN") == "glpat-SECRET"


def test_a_docker_hub_login_redirected_with_307_does_not_resend_the_password(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], clean_env: None,
    tmp_path: Path,
) -> None:
    hub, other = fake_api(), elsewhere_server(fake_api)
    hub.route("POST", r"/v2/auth/token")(lambda call: (307, {"Location": "http://elsewhere.test/v2/auth/token"}, None))
    name_proxy({"elsewhere.test:80": other.port})
    context = Ctx(env={"WERF_DOCKER_HUB_API_URL": hub.url},
                  credentials={"docker-hub-username": "alice", "docker-hub-password": "hub-pass-SECRET"})
    with pytest.raises(CiEnvError) as error:
        DockerHubRemover(context).preflight(RepoAddress("index.docker.io", "alice/app"))
    assert leaked(other.calls) == [] and not other.calls
    assert "another host" in str(error.value) and "hub-pass-SECRET" not in str(error.value)


def test_a_quay_api_redirect_from_https_to_another_host_drops_the_token(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], clean_env: None,
) -> None:
    quay, other = fake_api(), elsewhere_server(fake_api)
    quay.route("GET", r"/api/v1/repository/(.+)")(
        lambda call, path: (301, {"Location": f"http://elsewhere.test/api/v1/repository/{path}"}, None)
    )
    name_proxy({"elsewhere.test:80": other.port})
    context = Ctx(env={"WERF_QUAY_API_URL": quay.url}, credentials={"quay-token": "quay-SECRET"})
    with pytest.raises(PreflightError):
        QuayRemover(context).preflight(RepoAddress("quay.io", "acme/app"))
    assert other.calls and leaked(other.calls) == []


def no_retries() -> requests.Session:
    """The vendors' session without its retries (they would only make the test wait)."""
    return make_session(retries=0, session_class=ApiSession)


@pytest.mark.parametrize("implementation", ["quay", "gitlab", "dockerhub"])
def test_an_unreachable_vendor_api_is_a_registry_error_naming_the_host(
    implementation: str, clean_env: None, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there
    (tmp_path / "config.json").write_text("{}")
    api = f"http://127.0.0.1:{port}"
    remover: Any
    if implementation == "quay":
        remover = QuayRemover(Ctx(env={"WERF_QUAY_API_URL": api}, credentials={"quay-token": "quay-SECRET"}),
                              session=no_retries())
        repo = RepoAddress("quay.example.test", "acme/app")
    elif implementation == "gitlab":
        remover = GitLabRemover(Ctx(env={"WERF_GITLAB_API_URL": f"{api}/api/v4"},
                                    credentials={"gitlab-token": "glpat-SECRET"}, docker_config=tmp_path),
                                session=no_retries())
        repo = RepoAddress("registry.example.test", "acme/app")
        remover = _ProjectLookup(remover, repo)
    else:
        hub_login = {"docker-hub-username": "a", "docker-hub-password": "hub-pass-SECRET"}
        remover = DockerHubRemover(Ctx(env={"WERF_DOCKER_HUB_API_URL": api}, credentials=hub_login),
                                   session=no_retries())
        repo = RepoAddress("index.docker.io", "acme/app")
    with pytest.raises(RegistryError) as error:
        remover.preflight(repo)
    message = str(error.value)
    assert message.startswith(f"cannot reach {api} (") and "\n" not in message
    assert not any(secret in message for secret in SECRETS)


class _ProjectLookup:
    """GitLab's API route alone (its registry route would need a registry): the project look-up of preflight."""

    def __init__(self, remover: GitLabRemover, repo: RepoAddress) -> None:
        self.remover, self.repo = remover, repo

    def preflight(self, repo: RepoAddress) -> None:
        self.remover._project_id(repo)


def test_the_cli_reports_a_vendor_api_failure_on_one_line(
    fake_api: Callable[[], FakeApi], tmp_path: Path
) -> None:
    """Through the CLI: Quay's API answers its first call with a redirect loop (not retried, unlike a refused
    connection): one ``ci-env: error:`` line, exit 1, no traceback."""
    quay = fake_api()
    quay.route("GET", r"/api/v1/repository/(.+)")(
        lambda call, path: (302, {"Location": f"{quay.url}/api/v1/repository/{path}?again"}, None)
    )
    (tmp_path / "config.json").write_text("{}")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WERF_", "CI_", "GITLAB_", "GITHUB_"))}
    env = {**base, "DOCKER_CONFIG": str(tmp_path), "WERF_QUAY_API_URL": quay.url, "WERF_REPO_QUAY_TOKEN": "quay-SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "ci_env", "registry", "untag", "--repo-implementation", "quay",
         f"{quay.url.removeprefix('http://')}/acme/app:t1"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ci-env: error: "), result.stderr
    assert "redirected GET /api/v1/repository/acme/app too many times" in lines[0]
    assert "quay-SECRET" not in result.stderr
