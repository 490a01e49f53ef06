"""A registry that is not there is one line naming the host and the cause, within seconds.

A refused connection, an unknown host and a TLS certificate that cannot be verified are not retried (retrying
changes nothing but the wait); 5xx answers still are. The elapsed-time bounds are behaviour checks (the old
answer was 31 silent seconds of retries), not performance targets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.registry.client import RegistryClient
from ci_env.registry.http import make_session
from tests.cli import environ_without, run_ci_env
from tests.conftest import USERS
from tests.registry_client.conftest import docker_config_for
from tests.registry_client.nameproxy import NameProxy
from tests.services import free_port
from tests.services.registry import RegistryService
from tests.services.tls import Certificate, self_signed
from tests.vendors.fakeapi import Call, FakeApi, Reply

#: a bound far above what an immediate failure takes, far below the old retries (31 s).
FAST = 5.0
REFUSED = "connection refused"


def timed(*args: str, env: dict[str, str], cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    result = run_ci_env(*args, env=env, cwd=cwd, timeout=120)
    return result, time.monotonic() - start


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("ci-env: error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_registry_tags_on_a_refused_port_fails_at_once_naming_the_cause(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    result, elapsed = timed("registry", "tags", f"{host}/app", env={**environ_without(), "HOME": str(tmp_path)})
    line = one_line_error(result)
    assert line.startswith(f"ci-env: error: cannot reach the registry {host} (GET /v2/app/tags/list): {REFUSED}")
    assert result.stderr == line + "\n"
    assert elapsed < FAST, f"took {elapsed:.1f}s"


def test_cleanup_on_a_refused_port_fails_at_once_naming_the_cause(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WERF_IMAGES_REPO": f"{host}/proj",
           "WERF_STAGES_STORAGE": f"{host}/proj/stages", "KUBECONFIG": str(tmp_path / "none")}
    result, elapsed = timed("cleanup", "--dir", str(tmp_path), env=env)
    line = one_line_error(result)
    assert f"cannot reach the registry {host} (GET /v2/proj/" in line and REFUSED in line, line
    assert elapsed < FAST, f"took {elapsed:.1f}s"


def test_setup_login_probe_on_a_refused_port_fails_at_once_naming_the_cause(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "WERF_TMP_DIR": str(tmp_path / "jobs"),
           "GITLAB_CI": "true", "CI_JOB_ID": "1", "CI_PIPELINE_ID": "1", "CI_COMMIT_SHA": "abc123",
           "CI_COMMIT_REF_NAME": "main", "CI_REGISTRY": host, "CI_REGISTRY_IMAGE": f"{host}/group/project",
           "CI_REGISTRY_USER": "bob", "CI_REGISTRY_PASSWORD": "never-shown"}
    result, elapsed = timed("setup", env=env)
    line = one_line_error(result)
    assert f"cannot reach registry {host}: {REFUSED}" in line and "never-shown" not in result.stderr, line
    assert elapsed < FAST, f"took {elapsed:.1f}s"


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (a network namespace without DNS)")
def test_an_unknown_host_fails_at_once_naming_the_cause(tmp_path: Path) -> None:
    # in a network namespace of its own, no name resolves and nothing leaves the machine
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {probe.stderr.decode().strip()}")
    env = {**environ_without(), "HOME": str(tmp_path)}
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    start = time.monotonic()
    result = subprocess.run(
        ["unshare", "-rn", sys.executable, "-m", "ci_env", "registry", "tags", "registry.invalid/app"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    elapsed = time.monotonic() - start
    line = one_line_error(result)
    assert line.startswith("ci-env: error: cannot reach the registry registry.invalid (GET /v2/app/tags/list): "
                           "unknown host"), line
    assert elapsed < FAST, f"took {elapsed:.1f}s"


def test_a_certificate_that_cannot_be_verified_fails_at_once_with_what_to_do(
    fresh_registry: Callable[..., RegistryService], name_proxy: Callable[[dict[str, int]], NameProxy],
    tmp_path: Path,
) -> None:
    certificate: Certificate = self_signed(tmp_path / "tls", ["registry.test"])
    registry = fresh_registry(auth="htpasswd", users=USERS, tls=certificate)
    proxy = name_proxy({"registry.test:443": registry.port})
    config = docker_config_for(tmp_path / "docker", "registry.test", "bob", USERS["bob"])
    env = {**environ_without(), **proxy.env(), "HOME": str(tmp_path)}
    env.pop("REQUESTS_CA_BUNDLE", None)
    env.pop("CURL_CA_BUNDLE", None)
    result, elapsed = timed("registry", "tags", "registry.test/app", "--docker-config", str(config), env=env)
    line = one_line_error(result)
    assert "cannot reach the registry registry.test (GET /v2/app/tags/list): TLS certificate verify failed" in line
    assert "--insecure-registry" in line and "REQUESTS_CA_BUNDLE" in line, line
    assert elapsed < FAST, f"took {elapsed:.1f}s"


def test_server_errors_are_still_retried(fake_api: Callable[[], FakeApi], tmp_path: Path) -> None:
    api = fake_api()
    answers = [503, 502, 200]

    @api.route("GET", r"/v2/app/tags/list")
    def tags(call: Call) -> Reply:
        status = answers.pop(0)
        return status, {}, {"tags": ["a"]} if status == 200 else {"errors": [{"code": "UNAVAILABLE"}]}

    slept: list[float] = []
    client = RegistryClient(f"127.0.0.1:{api.port}", docker_config=tmp_path / "none",
                            session=make_session(sleep=slept.append))
    assert client.list_tags("app") == ["a"]
    assert [call.method for call in api.calls] == ["GET", "GET", "GET"] and slept, slept
