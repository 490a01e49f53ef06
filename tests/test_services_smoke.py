"""The test services themselves behave as the real registry protocol says."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from tests.services.registry import RegistryService


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_htpasswd_registry_challenges_and_accepts_its_users(registry_htpasswd: RegistryService) -> None:
    status, headers, _ = _get(f"{registry_htpasswd.url}/v2/")
    assert status == 401
    assert headers["www-authenticate"].startswith("Basic ")
    basic = base64.b64encode(b"alice:alice-pass-1").decode()
    assert _get(f"{registry_htpasswd.url}/v2/", {"Authorization": f"Basic {basic}"})[0] == 200
    wrong = base64.b64encode(b"alice:nope").decode()
    assert _get(f"{registry_htpasswd.url}/v2/", {"Authorization": f"Basic {wrong}"})[0] == 401


def test_token_registry_accepts_issued_tokens(registry_token: RegistryService) -> None:
    status, headers, _ = _get(f"{registry_token.url}/v2/")
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer ")
    basic = base64.b64encode(b"alice:alice-pass-1").decode()
    assert registry_token.token_server is not None
    status, _, body = _get(
        f"{registry_token.token_server.realm}?service=test-registry&scope=registry:catalog:*",
        {"Authorization": f"Basic {basic}"},
    )
    assert status == 200
    token = json.loads(body)["token"]
    assert _get(f"{registry_token.url}/v2/", {"Authorization": f"Bearer {token}"})[0] == 200


def test_access_log_counts_requests(registry_open: RegistryService) -> None:
    before = len(registry_open.requests())
    _get(f"{registry_open.url}/v2/")
    _get(f"{registry_open.url}/v2/_catalog")
    import time

    time.sleep(0.2)
    assert len(registry_open.requests()) >= before + 2


def test_docker_daemon_builds_and_pushes_to_the_registry(dockerd, registry_open, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.txt").write_text("hello\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY a.txt /a.txt\n")
    ref = f"{registry_open.host}/smoke/image:one"
    dockerd.docker("build", "-q", "-t", ref, str(tmp_path))
    dockerd.docker("push", ref)
    status, _, body = _get(f"{registry_open.url}/v2/smoke/image/tags/list")
    assert status == 200
    assert json.loads(body)["tags"] == ["one"]
