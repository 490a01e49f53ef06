"""verify_login against the real CNCF registry with htpasswd (Basic) and token (Bearer) auth."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ci_env.errors import AuthError, ConfigError, RegistryError
from ci_env.registry.insecure import from_env as insecure_registries_from_env
from ci_env.registry.insecure import is_loopback
from ci_env.registry.probe import registry_host, verify_login
from tests.conftest import USERS
from tests.services import free_port
from tests.services.registry import RegistryService


def _new_requests(service: RegistryService, before: int) -> list[tuple[str, str, int]]:
    time.sleep(0.2)  # the access log is written asynchronously
    return service.requests()[before:]


def test_basic_registry_accepts_good_password_in_two_requests(registry_htpasswd: RegistryService) -> None:
    before = len(registry_htpasswd.requests())
    verify_login(registry_htpasswd.host, "bob", USERS["bob"])
    assert _new_requests(registry_htpasswd, before) == [("GET", "/v2/", 401), ("GET", "/v2/", 200)]


@pytest.mark.parametrize("user,password", [("alice", "wrong-password-123"), ("mallory", "mallory-secret-9")])
def test_basic_registry_refuses_bad_credentials(registry_htpasswd: RegistryService, user: str, password: str) -> None:
    with pytest.raises(AuthError) as caught:
        verify_login(registry_htpasswd.host, user, password, credentials_hint="CI_REGISTRY_USER/CI_REGISTRY_PASSWORD")
    message = caught.value.message
    assert registry_htpasswd.host in message
    assert "HTTP 401" in message
    assert "CI_REGISTRY_USER/CI_REGISTRY_PASSWORD" in message
    assert password not in message


def test_token_registry_accepts_good_password(registry_token: RegistryService) -> None:
    assert registry_token.token_server is not None
    lines: list[str] = []
    verify_login(registry_token.host, "bob", USERS["bob"], log=lines.append)
    assert registry_token.token_server.requests[-1].user == "bob"
    assert registry_token.token_server.requests[-1].service == registry_token.token_server.service
    assert all(USERS["bob"] not in line for line in lines)
    assert any("token" in line for line in lines)


def test_token_registry_refuses_wrong_password(registry_token: RegistryService) -> None:
    with pytest.raises(AuthError) as caught:
        verify_login(registry_token.host, "alice", "not-alices-pass-77")
    assert registry_token.host in caught.value.message
    assert "HTTP 401" in caught.value.message
    assert "not-alices-pass-77" not in caught.value.message


def test_token_registry_refuses_user_without_access(registry_token: RegistryService) -> None:
    with pytest.raises(AuthError, match="HTTP 401") as caught:
        verify_login(registry_token.host, "outsider", "outsider-pass-42")
    assert "outsider-pass-42" not in caught.value.message


def test_user_added_later_is_accepted(fresh_registry: Callable[..., RegistryService]) -> None:
    registry = fresh_registry(auth="htpasswd", users={"carol": "carol-1"})
    with pytest.raises(AuthError):
        verify_login(registry.host, "dave", "dave-2")
    registry.add_user("dave", "dave-2")
    verify_login(registry.host, "dave", "dave-2")


def test_open_registry_has_nothing_to_verify(registry_open: RegistryService) -> None:
    verify_login(registry_open.host, "anyone", "anything")


def test_unreachable_registry_is_a_registry_error_naming_it() -> None:
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(RegistryError) as caught:
        verify_login(address, "alice", "secret-pass-5", timeout=5)
    assert address in caught.value.message
    assert "secret-pass-5" not in caught.value.message


def test_addresses_and_insecure_list() -> None:
    assert registry_host("https://Docker.io/") == "registry-1.docker.io"
    assert registry_host("ghcr.io/owner/repo") == "ghcr.io"
    assert is_loopback("127.3.4.5:5000") and is_loopback("localhost") and is_loopback("[::1]:5000")
    assert not is_loopback("registry.example.com:5000")
    assert insecure_registries_from_env({"WERF_INSECURE_REGISTRY": "true"}) == ("*",)
    assert insecure_registries_from_env({"WERF_INSECURE_REGISTRY": "a:5000, b"}) == ("a:5000", "b")
    assert insecure_registries_from_env({"WERF_INSECURE_REGISTRY": "false"}) == ()


def test_credentials_are_never_sent_to_a_plain_http_remote_token_realm() -> None:
    """A registry whose challenge points at http://<remote host>: refused before any request goes there."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="http://token.example.invalid/token",service="s"')
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(RegistryError, match="plain-HTTP token realm") as caught:
            verify_login(f"127.0.0.1:{server.server_address[1]}", "alice", "never-sent-pw")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None]
    assert "never-sent-pw" not in caught.value.message


@pytest.mark.parametrize("address", ["registry example.com", "registry.example.com:abc", "[::1"])
def test_malformed_address_is_a_config_error_not_a_traceback(address: str) -> None:
    with pytest.raises(ConfigError, match="is not a usable registry address") as caught:
        verify_login(address, "alice", "never-shown-pass-5", timeout=2)
    assert "never-shown-pass-5" not in caught.value.message
