"""Azure CR remover: the Azure CLI route through a recording ``az`` on PATH, and the data plane
against a local server following ACR's documented token exchange and tag API.

The fake ``az`` keeps the registry's tags in a JSON state file and records every argv; it answers
``az account show`` (exit 1 with "Please run 'az login'" when logged out) and
``az acr repository untag -n NAME --image REPO:TAG`` (exit 0, or exit 1 with a TAG_UNKNOWN error).
The data-plane server follows: Entra ID ``POST /TENANT/oauth2/v2.0/token`` (client credentials) ->
``access_token``; ACR ``POST /oauth2/exchange`` (grant_type=access_token) -> ``refresh_token``;
``POST /oauth2/token`` (grant_type=refresh_token, scope) -> ``access_token`` (a JWT whose ``access``
claim lists the granted actions); ``DELETE /acr/v1/REPO/_tags/TAG`` -> 202, 404 when unknown.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ci_env.errors import PreflightError, RegistryError
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.acr import AcrRemover
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import Call, FakeApi, Reply

REPO = RepoAddress("myreg.azurecr.io", "team/app")
SECRET = "sp-SECRET-value"

FAKE_AZ = r'''#!PYTHON
import json, os, sys
state_path = os.environ["FAKE_AZ_STATE"]
state = json.load(open(state_path))
state["calls"].append(sys.argv[1:])
def save():
    json.dump(state, open(state_path, "w"))
args = sys.argv[1:]
if args[:2] == ["account", "show"]:
    save()
    if not state["logged_in"]:
        print("ERROR: Please run 'az login' to setup account.", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
if args[:3] == ["acr", "repository", "untag"]:
    name = args[args.index("-n") + 1]
    repo, _, tag = args[args.index("--image") + 1].rpartition(":")
    tags = state["registries"].get(name, {}).get(repo, {})
    if tag not in tags:
        save()
        print(f"ERROR: Error: (TAG_UNKNOWN) The specified tag {tag} does not exist.", file=sys.stderr)
        sys.exit(1)
    del tags[tag]
    save()
    sys.exit(0)
save()
print("ERROR: unexpected arguments", file=sys.stderr)
sys.exit(2)
'''


@pytest.fixture
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Callable[[], dict[str, Any]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "az"
    program.write_text(FAKE_AZ.replace("PYTHON", sys.executable))
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    state_path = tmp_path / "az-state.json"
    state_path.write_text(json.dumps({
        "logged_in": True, "calls": [],
        "registries": {"myreg": {"team/app": {"v1": "sha256:aaa", "v2": "sha256:aaa", "v3": "sha256:bbb"}}},
    }))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_AZ_STATE", str(state_path))
    return lambda: json.loads(state_path.read_text())


def set_logged_in(value: bool) -> None:
    path = Path(os.environ["FAKE_AZ_STATE"])
    state = json.loads(path.read_text())
    state["logged_in"] = value
    path.write_text(json.dumps(state))


def test_az_untag_keeps_other_tags_on_same_digest(fake_az: Callable[[], dict[str, Any]]) -> None:
    r = AcrRemover(Ctx())
    r.preflight(REPO)
    assert r.untag(REPO, "v1") == "removed"
    assert r.untag(REPO, "v1") == "absent"
    state = fake_az()
    assert state["registries"]["myreg"]["team/app"] == {"v2": "sha256:aaa", "v3": "sha256:bbb"}
    assert state["calls"] == [
        ["account", "show", "--output", "none"],
        ["acr", "repository", "untag", "-n", "myreg", "--image", "team/app:v1"],
        ["acr", "repository", "untag", "-n", "myreg", "--image", "team/app:v1"],
    ]


def test_az_not_logged_in_fails_preflight(fake_az: Callable[[], dict[str, Any]]) -> None:
    set_logged_in(False)
    with pytest.raises(PreflightError) as error:
        AcrRemover(Ctx()).preflight(REPO)
    assert "az login" in str(error.value) and "AZURE_CLIENT_ID" in str(error.value)
    assert fake_az()["calls"] == [["account", "show", "--output", "none"]]


def test_az_missing_fails_preflight(clean_env: None, tmp_path: Path) -> None:
    with pytest.raises(PreflightError) as error:
        AcrRemover(Ctx(env={"PATH": str(tmp_path)})).preflight(REPO)
    assert "Azure CLI (az) is not installed" in str(error.value)


def _jwt(claims: dict[str, Any]) -> str:
    def enc(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{enc({'alg': 'RS256'})}.{enc(claims)}.c2ln"


class AcrDataPlane:
    """Entra ID and the ACR data plane on one server; ``delete_allowed`` models the AcrDelete role."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.delete_allowed = True
        self.tags = {"team/app": {"v1": "sha256:aaa", "v2": "sha256:aaa", "v3": "sha256:bbb"}}
        api.route("POST", r"/tenant-1/oauth2/v2\.0/token")(self.aad)
        api.route("POST", r"/oauth2/exchange")(self.exchange)
        api.route("POST", r"/oauth2/token")(self.token)
        api.route("DELETE", r"/acr/v1/(.+)/_tags/([^/]+)")(self.delete)

    def aad(self, call: Call) -> Reply:
        form = call.form()
        if form.get("client_id") != "app-1" or form.get("client_secret") != SECRET:
            return 401, {}, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret."}
        assert form["grant_type"] == "client_credentials"
        return 200, {}, {"access_token": "aad-token", "token_type": "Bearer", "expires_in": 3599}

    def exchange(self, call: Call) -> Reply:
        form = call.form()
        if form.get("access_token") != "aad-token" or form.get("grant_type") != "access_token":
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        assert form["service"] == "myreg.azurecr.io" and form["tenant"] == "tenant-1"
        return 200, {}, {"refresh_token": "acr-refresh"}

    def token(self, call: Call) -> Reply:
        form = call.form()
        if form.get("refresh_token") != "acr-refresh":
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        _, name, actions = form["scope"].split(":")
        granted = [a for a in actions.split(",") if a != "delete" or self.delete_allowed]
        return 200, {}, {"access_token": _jwt({"access": [{"type": "repository", "name": name, "actions": granted}]})}

    def delete(self, call: Call, repo: str, tag: str) -> Reply:
        token = call.headers.get("Authorization", "").removeprefix("Bearer ")
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        if "delete" not in claims["access"][0]["actions"]:
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        if repo not in self.tags:
            return 404, {}, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}
        if tag not in self.tags[repo]:
            return 404, {}, {"errors": [{"code": "TAG_UNKNOWN"}]}
        del self.tags[repo][tag]
        return 202, {}, None


def sp_context(plane: AcrDataPlane, secret: str = SECRET) -> Ctx:
    return Ctx(env={"AZURE_CLIENT_ID": "app-1", "AZURE_CLIENT_SECRET": secret, "AZURE_TENANT_ID": "tenant-1",
                    "AZURE_AUTHORITY_HOST": plane.api.url, "WERF_ACR_API_URL": plane.api.url, "PATH": "/nonexistent"})


@pytest.fixture
def plane(fake_api: Callable[[], FakeApi], clean_env: None) -> AcrDataPlane:
    return AcrDataPlane(fake_api())


def test_data_plane_untag_keeps_other_tags_on_same_digest(plane: AcrDataPlane) -> None:
    r = AcrRemover(sp_context(plane))
    r.preflight(REPO)
    assert r.untag(REPO, "v2") == "removed"
    assert r.untag(REPO, "v9") == "absent"
    assert plane.tags["team/app"] == {"v1": "sha256:aaa", "v3": "sha256:bbb"}
    assert plane.api.requests() == [
        ("POST", "/tenant-1/oauth2/v2.0/token"),
        ("POST", "/oauth2/exchange"),
        ("POST", "/oauth2/token"),
        ("DELETE", "/acr/v1/team/app/_tags/v2"),
        ("DELETE", "/acr/v1/team/app/_tags/v9"),
    ]
    assert plane.api.calls[2].form()["scope"] == "repository:team/app:delete"


def test_data_plane_preflight_refused_or_without_delete(plane: AcrDataPlane) -> None:
    with pytest.raises(PreflightError) as refused:
        AcrRemover(sp_context(plane, secret="wrong-SECRET")).preflight(REPO)
    assert "refused" in str(refused.value) and "wrong-SECRET" not in str(refused.value)
    plane.delete_allowed = False
    with pytest.raises(PreflightError) as weak:
        AcrRemover(sp_context(plane)).preflight(REPO)
    assert "may not delete" in str(weak.value) and "AcrDelete" in str(weak.value)
    assert not any(m == "DELETE" for m, _ in plane.api.requests())


def test_data_plane_404_for_a_missing_repository_is_an_error(plane: AcrDataPlane) -> None:
    with pytest.raises(RegistryError, match="NAME_UNKNOWN"):
        AcrRemover(sp_context(plane)).untag(RepoAddress("myreg.azurecr.io", "team/missing"), "v1")
