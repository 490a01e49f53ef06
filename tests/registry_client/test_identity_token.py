"""Credentials saved as an ``identitytoken`` (OAuth2 refresh token) against the real registry with token auth.

The test token server answers only GETs with Basic auth; here its handler is extended (in this module) with
the OAuth2 form POST of the Docker token spec: ``grant_type=refresh_token``, ``refresh_token``,
``client_id``, ``service``, ``scope`` (space separated) -> 200 ``{"access_token", "expires_in"}``, or 400
``{"error": "invalid_grant"}`` for an unknown refresh token.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from ci_env.errors import AuthError
from ci_env.registry.client import RegistryClient
from tests.conftest import USERS
from tests.registry_client.images import pulls, push_image
from tests.services.registry import RegistryService

REFRESH_TOKENS = {"refresh-SECRET-alice": "alice"}


def _accept_refresh_tokens(service: RegistryService) -> list[dict[str, str]]:
    """Teach the registry's token server the refresh_token grant; returns the list its POSTs are recorded in."""
    server = service.token_server
    assert server is not None
    issuer = server  # the narrowed type, for the handler class below
    posts: list[dict[str, str]] = []
    base = server._server.RequestHandlerClass

    class WithRefreshGrant(base):  # type: ignore[valid-type,misc]
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            posts.append(form)
            user = REFRESH_TOKENS.get(form.get("refresh_token", ""))
            if form.get("grant_type") != "refresh_token" or user is None or self.path != "/token":
                self._send(400, {"error": "invalid_grant"})
                return
            token = issuer.issue(user, form.get("scope", "").split())
            self._send(200, {"access_token": token, "expires_in": issuer.expires_in, "scope": form.get("scope", "")})

    server._server.RequestHandlerClass = WithRefreshGrant
    return posts


def _config_with_identity_token(directory: Path, registry: str, token: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(b"<token>:").decode()  # as docker login writes it for an identity token
    (directory / "config.json").write_text(json.dumps({"auths": {registry: {"auth": auth, "identitytoken": token}}}))
    return directory


def test_identity_token_is_exchanged_by_the_refresh_token_grant(
    fresh_registry: Callable[..., RegistryService], tmp_path: Path, repo: str
) -> None:
    service = fresh_registry(auth="token", users=USERS)
    posts = _accept_refresh_tokens(service)
    config = _config_with_identity_token(tmp_path / "docker", service.host, "refresh-SECRET-alice")
    client = RegistryClient(service.host, docker_config=config)
    image = push_image(client, repo, ["keep", "stale"])
    assert client.untag(repo, "stale") == "removed"
    assert client.list_tags(repo) == ["keep"]
    assert pulls(client, repo, "keep") and client.resolve(repo, "keep").digest == image.digest  # type: ignore[union-attr]
    assert posts, "no refresh_token POST reached the token server"
    assert {p["grant_type"] for p in posts} == {"refresh_token"}
    assert {p["service"] for p in posts} == {"test-registry"}
    assert all(p.get("client_id") for p in posts)
    assert f"repository:{repo}:pull,push,delete" in {s for p in posts for s in p["scope"].split()}
    assert service.token_server is not None
    assert not [r for r in service.token_server.requests if r.user]  # no Basic-auth GET was needed


def test_refused_identity_token_is_an_auth_error_without_the_secret(
    fresh_registry: Callable[..., RegistryService], tmp_path: Path, repo: str
) -> None:
    service = fresh_registry(auth="token", users=USERS)
    _accept_refresh_tokens(service)
    config = _config_with_identity_token(tmp_path / "docker", service.host, "refresh-SECRET-revoked")
    client = RegistryClient(service.host, docker_config=config)
    with pytest.raises(AuthError) as caught:
        client.list_tags(repo)
    assert "refresh-SECRET-revoked" not in str(caught.value)
    assert "refused the credentials" in str(caught.value)
