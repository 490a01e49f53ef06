"""Retag with blob mounts, credentials from the Docker config and helpers, token refresh, pagination."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ci_env.errors import RegistryError
from ci_env.registry.auth import credentials_for
from ci_env.registry.client import RegistryClient
from tests.conftest import USERS
from tests.registry_client.conftest import docker_config_for
from tests.registry_client.images import pulls, push_image, push_index
from tests.services.registry import RegistryService


def test_retag_across_repositories_mounts_blobs_and_uploads_nothing(
    registry_token: RegistryService, token_client: RegistryClient, repo: str
) -> None:
    index = push_index(token_client, repo, ["v1"])
    before = len(registry_token.requests())
    info = token_client.retag(repo, "v1", f"{repo}-target", ["v1", "stable"])
    log = registry_token.requests()[before:]
    assert info.digest == index.digest
    assert not [r for r in log if r[0] in ("PUT", "PATCH") and "/blobs/uploads/" in r[1]]
    mounts = [r for r in log if r[0] == "POST" and "mount=" in r[1]]
    assert len(mounts) == len(index.blobs) and all(status == 201 for _, _, status in mounts)
    assert sorted(token_client.list_tags(f"{repo}-target")) == ["stable", "v1"]
    assert pulls(token_client, f"{repo}-target", "stable")
    assert token_client.list_tags(repo) == ["v1"]


def test_retag_in_same_repository_only_puts_the_manifest(registry_open: RegistryService,
                                                         open_client: RegistryClient, repo: str) -> None:
    image = push_image(open_client, repo, ["v1"])
    before = len(registry_open.requests())
    open_client.retag(repo, image.digest, repo, ["latest"])
    assert [m for m, _, _ in registry_open.requests()[before:]] == ["GET", "PUT"]
    assert open_client.resolve(repo, "latest").digest == image.digest  # type: ignore[union-attr]


def test_credential_helper_supplies_the_password(registry_htpasswd: RegistryService, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, repo: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "asked"
    helper = bin_dir / "docker-credential-test"
    helper.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 1\nread server\necho "$server" >> {asked}\n'
        f"printf '%s' '{json.dumps({'ServerURL': 'x', 'Username': 'alice', 'Secret': USERS['alice']})}'\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {registry_htpasswd.host: "test"}}))
    client = RegistryClient(registry_htpasswd.host, docker_config=config)
    push_image(client, repo, ["t"])
    assert client.list_tags(repo) == ["t"]
    assert asked.read_text().split() == [registry_htpasswd.host]


def test_creds_store_and_docker_hub_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-store"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$server" = "https://index.docker.io/v1/" ]; then '
        "printf '%s' '{\"Username\":\"<token>\",\"Secret\":\"refresh-me\"}'; "
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "store"}))
    hub = credentials_for("registry-1.docker.io", tmp_path)
    assert hub is not None and hub.identity_token == "refresh-me" and "refresh-me" not in repr(hub)
    assert credentials_for("other.example.com", tmp_path) is None


def test_token_is_fetched_again_after_it_expires(fresh_registry, tmp_path: Path, repo: str) -> None:  # type: ignore[no-untyped-def]
    service = fresh_registry(auth="token", users=USERS)
    service.token_server.expires_in = 2
    config = docker_config_for(tmp_path / "d", service.host, "alice", USERS["alice"])
    client = RegistryClient(service.host, docker_config=config)
    push_image(client, repo, ["t"])
    first = len(service.token_server.requests)
    time.sleep(2.2)
    assert client.list_tags(repo) == ["t"]
    assert len(service.token_server.requests) > first
    assert all(status != 401 for _, path, status in service.requests()[-3:] if "tags/list" in path)


def test_token_scope_asks_for_delete(registry_token: RegistryService, token_client: RegistryClient, repo: str) -> None:
    push_image(token_client, repo, ["t"])
    scopes = [s for r in registry_token.token_server.requests for s in r.scopes]  # type: ignore[union-attr]
    assert f"repository:{repo}:pull,push,delete" in scopes


# ---------------------------------------------------------------- pagination


class _PagedTags(BaseHTTPRequestHandler):
    pages = {
        "/v2/paged/tags/list": (["a", "b"], '</v2/paged/tags/list?n=2&last=b>; rel="next"'),
        "/v2/paged/tags/list?n=2&last=b": (["c", "d"], '<http://{host}/v2/paged/tags/list?n=2&last=d>; rel="next"'),
        "/v2/paged/tags/list?n=2&last=d": (["e"], None),
        "/v2/empty/tags/list": (None, None),
    }
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path not in self.pages:
            body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}'
            self.send_response(404)
        else:
            tags, link = self.pages[self.path]
            body = json.dumps({"name": "paged", "tags": tags}).encode()
            self.send_response(200)
            if link:
                self.send_header("Link", link.format(host=self.headers["Host"]))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def paged_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PagedTags)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_list_tags_follows_link_pages(paged_server: str) -> None:
    _PagedTags.seen = []
    client = RegistryClient(paged_server)
    assert client.list_tags("paged") == ["a", "b", "c", "d", "e"]
    assert _PagedTags.seen == [
        "/v2/paged/tags/list", "/v2/paged/tags/list?n=2&last=b", "/v2/paged/tags/list?n=2&last=d"
    ]
    assert client.list_tags("empty") == []
    with pytest.raises(RegistryError, match="NAME_UNKNOWN"):
        client.list_tags("unknown")


def test_list_tags_on_the_real_registry_returns_every_tag(open_client: RegistryClient, repo: str) -> None:
    image = push_image(open_client, repo)
    body, info = open_client.get_manifest(repo, image.digest)
    for number in range(150):
        open_client.put_manifest(repo, f"t{number:03d}", body, info.media_type)
    assert sorted(open_client.list_tags(repo)) == [f"t{n:03d}" for n in range(150)]
    open_client.untag(repo, "t000")
    for number in range(1, 150):
        open_client.untag(repo, f"t{number:03d}")
    assert open_client.list_tags(repo) == []
