"""The registry's credentials go only to the registry: never to another host, never over a downgrade to HTTP.

The registry here is a local server that misbehaves on purpose (it hands back URLs on other hosts); the other
hosts are made-up names that only a test proxy resolves (``nameproxy``), so nothing leaves the machine.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.errors import RegistryError
from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient
from tests.registry_client.conftest import docker_config_for
from tests.registry_client.nameproxy import NameProxy
from tests.services.tls import Certificate, self_signed
from tests.vendors.fakeapi import Call, FakeApi, Reply

USER, PASSWORD = "alice", "s3cret-pass"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class BasicRegistry:
    """A Registry API that wants Basic credentials and answers as each test sets it up."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    def guarded(self, reply: Callable[..., Reply]) -> Callable[..., Reply]:
        def handler(call: Call, *groups: str) -> Reply:
            if call.headers.get("Authorization") != BASIC:
                return 401, {"WWW-Authenticate": 'Basic realm="test"'}, {"errors": [{"code": "UNAUTHORIZED"}]}
            return reply(call, *groups)

        return handler

    def route(self, method: str, pattern: str, reply: Callable[..., Reply]) -> None:
        self.api.route(method, pattern)(self.guarded(reply))


def with_credentials(calls: list[Call]) -> list[Call]:
    return [call for call in calls if "Authorization" in call.headers]


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path / "tls", ["registry.test", "elsewhere.test"])


def client_for(registry: str, tmp_path: Path, **kwargs: object) -> RegistryClient:
    config = docker_config_for(tmp_path / "docker", registry, USER, PASSWORD)
    return RegistryClient(registry, docker_config=config, **kwargs)  # type: ignore[arg-type]


def test_a_next_page_on_another_host_gets_no_credentials_and_is_never_merged(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], tmp_path: Path
) -> None:
    registry, elsewhere = BasicRegistry(fake_api()), fake_api()
    link = '<http://elsewhere.test/v2/app/tags/list?last=a>; rel="next"'
    registry.route("GET", r"/v2/app/tags/list", lambda call: (200, {"Link": link}, {"tags": ["a"]}))
    elsewhere.route("GET", r"/v2/app/tags/list")(lambda call: (200, {}, {"tags": ["planted"]}))
    name_proxy({"elsewhere.test:80": elsewhere.port})
    client = client_for(registry.api.url.removeprefix("http://"), tmp_path)
    with pytest.raises(RegistryError, match="another host"):
        client.list_tags("app")
    assert with_credentials(registry.api.calls), "the registry itself did get the credentials"
    assert not with_credentials(elsewhere.calls)
    assert not elsewhere.calls, "a page on another host was fetched"


def test_a_next_page_on_the_registry_is_followed_with_credentials(
    fake_api: Callable[[], FakeApi], tmp_path: Path
) -> None:
    registry = BasicRegistry(fake_api())

    def page(call: Call) -> Reply:
        if call.query.get("last") == ["a"]:
            return 200, {}, {"tags": ["b"]}
        return 200, {"Link": '</v2/app/tags/list?last=a&n=1>; rel="next"'}, {"tags": ["a"]}

    registry.route("GET", r"/v2/app/tags/list", page)
    client = client_for(registry.api.url.removeprefix("http://"), tmp_path)
    assert client.list_tags("app") == ["a", "b"]


def test_an_upload_location_on_another_host_gets_no_credentials(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], tmp_path: Path
) -> None:
    registry, elsewhere = BasicRegistry(fake_api()), fake_api()
    registry.route("HEAD", r"/v2/app/blobs/(.+)", lambda call, digest: (404, {}, None))
    registry.route("POST", r"/v2/app/blobs/uploads/",
                   lambda call: (202, {"Location": "http://elsewhere.test/uploads/1?state=x"}, None))
    elsewhere.route("PUT", r"/uploads/1")(lambda call: (201, {}, None))
    name_proxy({"elsewhere.test:80": elsewhere.port})
    client = client_for(registry.api.url.removeprefix("http://"), tmp_path)
    client.ensure_blob("app", mf.sha256_digest(b"layer"), b"layer")
    assert [call.method for call in elsewhere.calls] == ["PUT"]
    assert not with_credentials(elsewhere.calls)
    assert elsewhere.calls[0].body == b"layer"


def test_a_redirect_to_object_storage_is_followed_without_credentials(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], tmp_path: Path
) -> None:
    registry, storage = BasicRegistry(fake_api()), fake_api()
    digest = mf.sha256_digest(b'{"created": "2024-01-02T03:04:05Z"}')
    registry.route("GET", r"/v2/app/blobs/(.+)",
                   lambda call, d: (307, {"Location": "http://elsewhere.test/bucket/blob?X-Amz-Signature=abc"}, None))
    storage.route("GET", r"/bucket/blob")(lambda call: (200, {}, b'{"created": "2024-01-02T03:04:05Z"}'))
    name_proxy({"elsewhere.test:80": storage.port})
    client = client_for(registry.api.url.removeprefix("http://"), tmp_path)
    response = client.request("GET", f"/v2/app/blobs/{digest}", scopes=["repository:app:pull"])
    assert response.status_code == 200 and response.json() == {"created": "2024-01-02T03:04:05Z"}
    assert len(storage.calls) == 1 and not with_credentials(storage.calls)


def _https_registry(
    fake_api: Callable[[], FakeApi], certificate: Certificate, location: str
) -> tuple[BasicRegistry, FakeApi]:
    """An HTTPS registry (registry.test) whose upload Location is ``location``, and a plain listener for it."""
    api = FakeApi().start(tls=certificate)
    registry = BasicRegistry(api)
    registry.route("HEAD", r"/v2/app/blobs/(.+)", lambda call, digest: (404, {}, None))
    registry.route("POST", r"/v2/app/blobs/uploads/", lambda call: (202, {"Location": location}, None))
    registry.route("PUT", r"/v2/app/blobs/uploads/1", lambda call: (201, {}, None))
    plain = fake_api()
    plain.route("PUT", r"/v2/app/blobs/uploads/1")(lambda call: (201, {}, None))
    return registry, plain


def test_an_upload_location_downgrading_to_plain_http_on_the_same_host_is_refused(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], certificate: Certificate,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, plain = _https_registry(fake_api, certificate, "http://registry.test/v2/app/blobs/uploads/1")
    try:
        name_proxy({"registry.test:443": registry.api.port, "registry.test:80": plain.port})
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate.cert))
        client = client_for("registry.test", tmp_path)
        with pytest.raises(RegistryError, match="downgrade"):
            client.ensure_blob("app", mf.sha256_digest(b"layer"), b"layer")
        assert with_credentials(registry.api.calls), "the HTTPS registry itself did get the credentials"
        assert not plain.calls
    finally:
        registry.api.stop()


def test_a_downgrade_is_followed_when_the_registry_may_use_plain_http(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], certificate: Certificate,
    tmp_path: Path,
) -> None:
    registry, plain = _https_registry(fake_api, certificate, "http://registry.test/v2/app/blobs/uploads/1")
    try:
        name_proxy({"registry.test:443": registry.api.port, "registry.test:80": plain.port})
        client = client_for("registry.test", tmp_path, insecure_registries=["registry.test"])
        client.ensure_blob("app", mf.sha256_digest(b"layer"), b"layer")
        assert [call.method for call in plain.calls] == ["PUT"]
        assert plain.calls[0].headers.get("Authorization") == BASIC  # the same registry, allowed plain HTTP
    finally:
        registry.api.stop()
