"""Credentials come only from the job's Docker config and ci-env's options; proxies and CA bundles keep working.

requests, left to itself, reads ``~/.netrc``: its ``default`` entry would go to every host (redirect targets
included) and an entry for the registry's host would replace the Docker config's login. Here a ``~/.netrc``
holding both is never used, while ``HTTPS_PROXY``/``HTTP_PROXY`` (the test proxy resolving made-up names) and
``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (a self-signed registry) still are.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient
from ci_env.registry.probe import verify_login
from ci_env.registry.vendors.common import new_session
from tests.cli import environ_without, run_ci_env
from tests.conftest import USERS
from tests.registry_client.conftest import docker_config_for
from tests.registry_client.images import push_image
from tests.registry_client.nameproxy import NameProxy
from tests.services.registry import RegistryService
from tests.services.tls import Certificate, self_signed
from tests.vendors.fakeapi import Call, FakeApi, Reply

USER, PASSWORD = "alice", "s3cret-pass"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
NETRC_PASSWORD = "netrc-secret"


def netrc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str) -> Path:
    """A HOME whose ~/.netrc has an entry for ``host`` and a ``default`` entry (for every other host)."""
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine {host} login mallory password {NETRC_PASSWORD}\n"
                     f"default login anyone password {NETRC_PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NETRC", raising=False)
    return home


def never_netrc(calls: list[Call]) -> None:
    sent = [call.headers.get("Authorization", "") for call in calls]
    decoded = [base64.b64decode(value[6:]).decode() for value in sent if value.startswith("Basic ")]
    assert not [value for value in decoded if NETRC_PASSWORD in value], decoded


def test_netrc_is_never_used_for_the_registry_or_a_redirect_target(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, storage = fake_api(), fake_api()
    host = f"127.0.0.1:{registry.port}"
    netrc_home(tmp_path, monkeypatch, "127.0.0.1")
    blob = b'{"created": "2024-01-02T03:04:05Z"}'

    @registry.route("GET", r"/v2/app/(tags/list|blobs/.+)")
    def answer(call: Call, what: str) -> Reply:
        if call.headers.get("Authorization") != BASIC:
            return 401, {"WWW-Authenticate": 'Basic realm="test"'}, {"errors": [{"code": "UNAUTHORIZED"}]}
        if what == "tags/list":
            return 200, {}, {"tags": ["a"]}
        return 307, {"Location": "http://storage.test/bucket/blob?X-Amz-Signature=abc"}, None

    storage.route("GET", r"/bucket/blob")(lambda call: (200, {}, blob))
    proxy = name_proxy({"storage.test:80": storage.port})
    config = docker_config_for(tmp_path / "docker", host, USER, PASSWORD)
    client = RegistryClient(host, docker_config=config)
    assert client.list_tags("app") == ["a"]
    response = client.request("GET", f"/v2/app/blobs/{mf.sha256_digest(blob)}", scopes=["repository:app:pull"])
    assert response.status_code == 200 and response.content == blob
    assert [call.headers.get("Authorization") for call in registry.calls] == [None, BASIC, BASIC]
    assert len(storage.calls) == 1 and "Authorization" not in storage.calls[0].headers
    never_netrc(registry.calls + storage.calls)

    # the command a job runs: the Docker config's login, nothing from ~/.netrc
    env = {**environ_without(), **proxy.env(), "HOME": str(tmp_path / "home")}
    result = run_ci_env("registry", "tags", f"{host}/app", "--docker-config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "a"
    never_netrc(registry.calls)


def test_netrc_is_never_used_by_the_vendor_api_session(
    fake_api: Callable[[], FakeApi], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = fake_api()
    netrc_home(tmp_path, monkeypatch, "127.0.0.1")
    api.route("GET", r"/api/v4/projects")(lambda call: (200, {}, []))
    response = new_session().get(f"{api.url}/api/v4/projects")
    assert response.status_code == 200
    assert "Authorization" not in api.calls[0].headers


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path / "tls", ["registry.test"])


@pytest.mark.parametrize("proxy_variable", ["HTTPS_PROXY", "https_proxy"])
@pytest.mark.parametrize("bundle_variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_a_proxy_and_a_ca_bundle_from_the_environment_still_work(
    fresh_registry: Callable[..., RegistryService], certificate: Certificate,
    name_proxy: Callable[[dict[str, int]], NameProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    proxy_variable: str, bundle_variable: str,
) -> None:
    registry = fresh_registry(auth="htpasswd", users=USERS, tls=certificate)
    proxy = name_proxy({"registry.test:443": registry.port})
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(proxy_variable, proxy.url)
    monkeypatch.setenv(bundle_variable, str(certificate.cert))
    config = docker_config_for(tmp_path / "docker", "registry.test", "bob", USERS["bob"])
    client = RegistryClient("registry.test", docker_config=config)
    push_image(client, "team/app", ["v1"])
    assert client.list_tags("team/app") == ["v1"]
    assert ("CONNECT", "registry.test:443") in proxy.seen, "the registry was not reached through the proxy"
    # setup's login probe (standard library HTTP) goes the same way and trusts the same CA
    verify_login("registry.test", "bob", USERS["bob"])

    env = {**environ_without(), proxy_variable: proxy.url, "NO_PROXY": "127.0.0.1", bundle_variable:
           str(certificate.cert)}
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if name not in (proxy_variable, bundle_variable):
            env.pop(name, None)
    result = run_ci_env("registry", "tags", "registry.test/team/app", "--docker-config", str(config), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "v1"
