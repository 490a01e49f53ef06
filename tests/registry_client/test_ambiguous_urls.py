"""A URL a server hands back whose host parsers read differently is refused: the credentials stay with the registry.

``http://elsewhere.test\\@127.0.0.1:PORT/...`` is the registry (127.0.0.1) for the standard library's parser but
``elsewhere.test`` for urllib3's, which opens the connection. The registry here is a local server that hands
such URLs back on purpose (``Link``, a redirect's ``Location``, an upload ``Location``, a token realm); the other
host is a made-up name only the test proxy resolves (``nameproxy``), so nothing leaves the machine and the test
sees every request that would have gone there. Tabs, newlines and ``%5C`` in the authority are refused the same
way (parsers drop, keep or decode them differently). A header cannot carry a bare newline: a server sends it
folded (CRLF and a space), as here; URLs from JSON bodies and the parsing function itself get the bare one.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.errors import CiEnvError, RegistryError
from ci_env.registry import manifests as mf
from ci_env.registry.client import RegistryClient
from ci_env.registry.origins import RegistryOrigins, UnsafeUrl, endpoint_of
from ci_env.registry.probe import verify_login
from ci_env.registry.vendors.common import new_session
from tests.cli import environ_without, run_ci_env
from tests.registry_client.conftest import docker_config_for
from tests.registry_client.nameproxy import NameProxy
from tests.vendors.fakeapi import Call, FakeApi, Reply

USER, PASSWORD = "alice", "s3cret-pass"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

#: what comes between the other host's name and the ``@`` before the registry's address.
TRICKS = {"backslash": "\\", "encoded-backslash": "%5C", "tab": "\t", "newline": "\r\n "}


def tricky(registry_port: int, trick: str, path: str) -> str:
    """A URL on the registry (127.0.0.1:``registry_port``) for one parser, on elsewhere.test for another."""
    return f"http://elsewhere.test{TRICKS[trick]}@127.0.0.1:{registry_port}{path}"


class Setup:
    """A Basic-auth registry on loopback, the other host behind the name proxy, a client with the login."""

    def __init__(self, fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy],
                 tmp_path: Path) -> None:
        self.registry, self.elsewhere = fake_api(), fake_api()
        self.proxy = name_proxy({"elsewhere.test:80": self.elsewhere.port})
        self.host = f"127.0.0.1:{self.registry.port}"
        self.config = docker_config_for(tmp_path / "docker", self.host, USER, PASSWORD)
        self.client = RegistryClient(self.host, docker_config=self.config)
        for method in ("GET", "PUT", "POST", "HEAD"):
            self.elsewhere.route(method, r"/.*")(lambda call: (200, {}, {"tags": ["planted"]}))

    def route(self, method: str, pattern: str, reply: Callable[..., Reply]) -> None:
        def guarded(call: Call, *groups: str) -> Reply:
            if call.headers.get("Authorization") != BASIC:
                return 401, {"WWW-Authenticate": 'Basic realm="test"'}, {"errors": [{"code": "UNAUTHORIZED"}]}
            return reply(call, *groups)

        self.registry.route(method, pattern)(guarded)

    def assert_nothing_went_elsewhere(self) -> None:
        assert not self.elsewhere.calls, [(c.method, c.headers.get("Authorization")) for c in self.elsewhere.calls]
        assert not [target for _, target in self.proxy.seen if "elsewhere.test" in target], self.proxy.seen


@pytest.fixture
def setup(fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy],
          tmp_path: Path) -> Setup:
    return Setup(fake_api, name_proxy, tmp_path)


@pytest.mark.parametrize("trick", list(TRICKS))
def test_a_link_next_page_with_an_ambiguous_host_is_refused(setup: Setup, trick: str) -> None:
    link = f'<{tricky(setup.registry.port, trick, "/v2/app/tags/list?last=a")}>; rel="next"'
    setup.route("GET", r"/v2/app/tags/list", lambda call: (200, {"Link": link}, {"tags": ["a"]}))
    with pytest.raises(RegistryError, match="ambiguous") as raised:
        setup.client.list_tags("app")
    assert "\n" not in raised.value.message and PASSWORD not in raised.value.message
    assert [call.method for call in setup.registry.calls] == ["GET", "GET"]  # the challenge, then page one
    setup.assert_nothing_went_elsewhere()

    env = {**environ_without(), **setup.proxy.env()}
    result = run_ci_env("registry", "tags", f"{setup.host}/app", "--docker-config", str(setup.config), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(f"ci-env: error: {setup.host} sent ") and result.stderr.count("\n") == 1, \
        result.stderr
    assert "host is ambiguous (http://" in result.stderr and PASSWORD not in result.stderr
    setup.assert_nothing_went_elsewhere()


@pytest.mark.parametrize("trick", list(TRICKS))
def test_a_redirect_to_an_ambiguous_host_is_refused(setup: Setup, trick: str) -> None:
    digest = mf.sha256_digest(b"{}")
    target = tricky(setup.registry.port, trick, "/bucket/blob?X-Amz-Signature=abc")
    setup.route("GET", r"/v2/app/blobs/(.+)", lambda call, d: (307, {"Location": target}, None))
    with pytest.raises(RegistryError, match="ambiguous") as raised:
        setup.client.request("GET", f"/v2/app/blobs/{digest}", scopes=["repository:app:pull"])
    assert "\n" not in raised.value.message and "X-Amz-Signature" not in raised.value.message
    setup.assert_nothing_went_elsewhere()


@pytest.mark.parametrize("trick", list(TRICKS))
def test_an_upload_location_with_an_ambiguous_host_is_refused(setup: Setup, trick: str) -> None:
    location = tricky(setup.registry.port, trick, "/v2/app/blobs/uploads/1?state=x")
    setup.route("HEAD", r"/v2/app/blobs/(.+)", lambda call, digest: (404, {}, None))
    setup.route("POST", r"/v2/app/blobs/uploads/", lambda call: (202, {"Location": location}, None))
    setup.route("PUT", r"/v2/app/blobs/uploads/1", lambda call: (201, {}, None))
    with pytest.raises(RegistryError, match="ambiguous"):
        setup.client.ensure_blob("app", mf.sha256_digest(b"layer"), b"layer")
    assert "PUT" not in [call.method for call in setup.registry.calls]
    setup.assert_nothing_went_elsewhere()


@pytest.mark.parametrize("trick", list(TRICKS))
def test_a_token_realm_with_an_ambiguous_host_gets_no_credentials(
    setup: Setup, fake_api: Callable[[], FakeApi], trick: str
) -> None:
    tokens = fake_api()
    tokens.route("GET", r"/token")(lambda call: (200, {}, {"token": "t0ken"}))
    realm = tricky(tokens.port, trick, "/token")
    quoted = realm.replace("\\", "\\\\")  # a quoted-string escapes its backslashes
    challenge = f'Bearer realm="{quoted}",service="test"'

    def v2(call: Call, *_: str) -> Reply:
        if call.headers.get("Authorization") == "Bearer t0ken":
            return 200, {}, {"tags": ["a"]}
        return 401, {"WWW-Authenticate": challenge}, {"errors": [{"code": "UNAUTHORIZED"}]}

    setup.registry.route("GET", r"/v2/(app/tags/list)?")(v2)
    with pytest.raises(CiEnvError, match="ambiguous") as raised:
        setup.client.list_tags("app")
    assert "\n" not in raised.value.message and PASSWORD not in raised.value.message
    assert not tokens.calls
    setup.assert_nothing_went_elsewhere()

    # setup's login probe (standard library HTTP) refuses the same realm
    with pytest.raises(CiEnvError, match="ambiguous"):
        verify_login(setup.host, USER, PASSWORD)
    assert not tokens.calls
    setup.assert_nothing_went_elsewhere()


@pytest.mark.parametrize("trick", ["backslash", "tab"])
def test_a_vendor_api_redirect_to_an_ambiguous_host_is_refused(
    fake_api: Callable[[], FakeApi], name_proxy: Callable[[dict[str, int]], NameProxy], trick: str
) -> None:
    api, elsewhere = fake_api(), fake_api()
    proxy = name_proxy({"elsewhere.test:80": elsewhere.port})
    target = tricky(api.port, trick, "/api/v4/other")
    api.route("GET", r"/api/v4/projects")(lambda call: (302, {"Location": target}, None))
    api.route("GET", r"/api/v4/other")(lambda call: (200, {}, []))
    elsewhere.route("GET", r"/.*")(lambda call: (200, {}, []))
    session = new_session()
    with pytest.raises(RegistryError, match="ambiguous"):
        session.get(f"{api.url}/api/v4/projects", headers={"PRIVATE-TOKEN": "glpat-secret"})
    assert api.requests() == [("GET", "/api/v4/projects")]
    assert not elsewhere.calls and not proxy.seen


@pytest.mark.parametrize("url", [
    "http://elsewhere.test\\@127.0.0.1:5000/v2/", "http://elsewhere.test%5C@127.0.0.1:5000/v2/",
    "http://elsewhere.test%5c@127.0.0.1:5000/v2/", "http://elsewhere.test\t@127.0.0.1:5000/v2/",
    "http://elsewhere.test\n@127.0.0.1:5000/v2/", "http://elsewhere.test\r@127.0.0.1:5000/v2/",
    "http://elsewhere.test @127.0.0.1:5000/v2/", "http://elsewhere.test%0A@127.0.0.1:5000/v2/",
    "http://127.0.0.1:5000\\@elsewhere.test/v2/", "//elsewhere.test\\@127.0.0.1:5000/v2/",
])
def test_an_ambiguous_url_has_no_endpoint_and_carries_no_credentials(url: str) -> None:
    origins = RegistryOrigins("127.0.0.1:5000")
    with pytest.raises(UnsafeUrl):
        endpoint_of(url if "://" in url else "http:" + url)
    assert not origins.carries_credentials(url)
    with pytest.raises(RegistryError, match="ambiguous") as raised:
        origins.resolve("http://127.0.0.1:5000/v2/", url, "a redirect")
    assert "\n" not in raised.value.message and "\t" not in raised.value.message


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:5000/v2/app/tags/list?last=a%5Cb", "https://user:p%40ss@registry.test/v2/",
    "http://[::1]:5000/v2/", "HTTPS://Registry.Test:443/v2/",
])
def test_an_ordinary_url_keeps_its_endpoint(url: str) -> None:
    assert endpoint_of(url).port in (443, 5000)
