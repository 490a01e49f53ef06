"""Token realms: a plain-HTTP realm on a public host is refused; an insecure registry's self-signed TLS works.

Real distribution registries serve HTTPS under made-up names that only a test proxy resolves (``nameproxy``),
with the token server of ``tests.services.token_server``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.errors import RegistryError
from ci_env.registry.client import RegistryClient
from tests.cli import environ_without, run_ci_env
from tests.conftest import USERS
from tests.registry_client.conftest import docker_config_for
from tests.registry_client.images import push_image
from tests.registry_client.nameproxy import NameProxy
from tests.services.registry import RegistryService
from tests.services.tls import Certificate, self_signed


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path / "tls", ["registry.test", "auth.test"])


def test_a_plain_http_realm_on_a_public_host_is_refused_before_any_credential_goes(
    fresh_registry: Callable[..., RegistryService], certificate: Certificate,
    name_proxy: Callable[[dict[str, int]], NameProxy], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = fresh_registry(auth="token", users=USERS, tls=certificate, realm="http://auth.test/token")
    assert registry.token_server is not None
    proxy = name_proxy({"registry.test:443": registry.port, "auth.test:80": registry.token_server.port})
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate.cert))
    config = docker_config_for(tmp_path / "docker", "registry.test", "bob", USERS["bob"])
    client = RegistryClient("registry.test", docker_config=config)
    with pytest.raises(RegistryError, match="plain-HTTP token realm"):
        client.list_tags("app")
    assert registry.token_server.requests == []
    assert not [target for _, target in proxy.seen if "auth.test" in target]

    env = {**environ_without(), **proxy.env(), "REQUESTS_CA_BUNDLE": str(certificate.cert)}
    result = run_ci_env("registry", "tags", "registry.test/app", "--docker-config", str(config), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("ci-env: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "plain-HTTP token realm (auth.test)" in result.stderr and USERS["bob"] not in result.stderr
    assert registry.token_server.requests == []


def test_an_insecure_registry_with_a_self_signed_certificate_works_for_every_command(
    fresh_registry: Callable[..., RegistryService], certificate: Certificate,
    name_proxy: Callable[[dict[str, int]], NameProxy], tmp_path: Path,
) -> None:
    registry = fresh_registry(auth="token", users=USERS, tls=certificate, realm="https://auth.test/token",
                              token_tls=certificate)
    assert registry.token_server is not None
    proxy = name_proxy({"registry.test:443": registry.port, "auth.test:443": registry.token_server.port})
    config = docker_config_for(tmp_path / "docker", "registry.test", "bob", USERS["bob"])
    pusher = RegistryClient("registry.test", docker_config=config, insecure_registries=["registry.test"])
    image = push_image(pusher, "team/app", ["v1"])
    assert registry.token_server.requests, "the token server was never asked"

    env = {**environ_without(), **proxy.env()}
    common = ["--docker-config", str(config), "--insecure-registry", "registry.test"]
    listed = run_ci_env("registry", "tags", "registry.test/team/app", "--json", *common, env=env)
    assert listed.returncode == 0, listed.stderr
    assert image.digest in listed.stdout and listed.stderr == ""
    retagged = run_ci_env("registry", "retag", "registry.test/team/app:v1", "registry.test/team/app:v2",
                          "registry.test/team/other:v1", *common, env=env)
    assert retagged.returncode == 0, retagged.stderr
    untagged = run_ci_env("registry", "untag", "registry.test/team/app:v1", *common, env=env)
    assert untagged.returncode == 0, untagged.stderr
    assert pusher.list_tags("team/app") == ["v2"] and pusher.list_tags("team/other") == ["v1"]

    by_variable = run_ci_env("registry", "tags", "registry.test/team/app", "--docker-config", str(config),
                             env={**env, "WERF_INSECURE_REGISTRY": "registry.test"})
    assert by_variable.returncode == 0, by_variable.stderr

    unlisted = run_ci_env("registry", "tags", "registry.test/team/app", "--docker-config", str(config), env=env)
    assert unlisted.returncode == 1
    assert unlisted.stderr.startswith("ci-env: error: ") and unlisted.stderr.count("\n") == 1, unlisted.stderr
    assert "--insecure-registry" in unlisted.stderr
