"""Docker Hub remover against a local server following Docker Hub's documented API.

Documented behaviour followed: ``POST /v2/auth/token`` ``{"identifier","secret"}`` -> ``{"access_token"}``
(401 on bad credentials); legacy ``POST /v2/users/login/`` -> ``{"token"}``;
``GET /v2/repositories/NS/REPO/``; ``DELETE /v2/repositories/NS/REPO/tags/TAG/`` -> 204, 404 when the tag
does not exist; 429 with ``Retry-After`` when rate limited. Tags live in the server's state, so the
shared-digest scenario is checked on what the server still lists. Listing:
``GET /v2/repositories/NS/REPO/tags?page_size=N&page=P`` (``page_size`` at most 100) ->
``{"count", "next", "previous", "results": [{"name", "digest", "media_type", "last_updated", ...}]}``, ``next``
the absolute URL of the following page or null; public repositories answer without a token, private ones 404.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ci_env.errors import AuthError, PreflightError, RegistryError
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.dockerhub import DockerHubRemover
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import Call, FakeApi, Reply

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmb28ifQ.c2lnbmF0dXJl"
PAT = "dckr_pat_SECRETVALUE123"
REPO = RepoAddress("docker.io", "foo/app")


class DockerHub:
    """State: repositories -> {tag: digest}; accounts -> secret; a queue of 429s to answer first."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.accounts = {"foo": PAT}
        self.repos: dict[str, dict[str, str]] = {
            "foo/app": {"v1": "sha256:aaa", "v2": "sha256:aaa", "v3": "sha256:bbb"}
        }
        self.rate_limited = 0
        self.private: set[str] = set()
        self.updated: dict[tuple[str, str], str] = {}  # (repository, tag) -> last_updated
        self.pushed: dict[tuple[str, str], str] = {}  # (repository, tag) -> tag_last_pushed (absent unless set)
        api.route("POST", r"/v2/auth/token")(self.auth_token)
        api.route("GET", r"/v2/repositories/([^/]+)/([^/]+)/tags/?")(self.list_tags)
        api.route("GET", r"/v2/repositories/([^/]+)/([^/]+)/")(self.get_repo)
        api.route("DELETE", r"/v2/repositories/([^/]+)/([^/]+)/tags/([^/]+)/")(self.delete_tag)

    def auth_token(self, call: Call) -> Reply:
        body = call.json()
        if self.accounts.get(body.get("identifier")) != body.get("secret"):
            return 401, {}, {"detail": "Incorrect authentication credentials"}
        return 200, {}, {"access_token": JWT}

    def _authorized(self, call: Call) -> bool:
        return call.headers.get("Authorization") == f"Bearer {JWT}"

    def get_repo(self, call: Call, ns: str, name: str) -> Reply:
        if not self._authorized(call):
            return 401, {}, {"detail": "authentication required"}
        if f"{ns}/{name}" not in self.repos:
            return 404, {}, {"message": "object not found"}
        return 200, {}, {"namespace": ns, "name": name, "permissions": {"read": True, "write": True, "admin": True}}

    def list_tags(self, call: Call, ns: str, name: str) -> Reply:
        repo = f"{ns}/{name}"
        if repo not in self.repos or (repo in self.private and not self._authorized(call)):
            return 404, {}, {"message": "object not found", "errinfo": {}}
        size = min(int(call.query.get("page_size", ["10"])[0]), 100)
        page = int(call.query.get("page", ["1"])[0])
        tags = sorted(self.repos[repo].items(), key=lambda item: self.updated.get((repo, item[0]), ""), reverse=True)
        chunk = tags[(page - 1) * size: page * size]
        more = page * size < len(tags)
        base = f"{self.api.url}/v2/repositories/{ns}/{name}/tags"
        return 200, {}, {
            "count": len(tags),
            "next": f"{base}?page={page + 1}&page_size={size}" if more else None,
            "previous": f"{base}?page={page - 1}&page_size={size}" if page > 1 else None,
            "results": [
                {"name": tag, "digest": digest, "media_type": "application/vnd.oci.image.index.v1+json",
                 "content_type": "image", "last_updated": self.updated.get((repo, tag), "2024-01-01T00:00:00.000000Z"),
                 "tag_status": "active", "full_size": 1234,
                 **({"tag_last_pushed": self.pushed[(repo, tag)]} if (repo, tag) in self.pushed else {})}
                for tag, digest in chunk
            ],
        }

    def delete_tag(self, call: Call, ns: str, name: str, tag: str) -> Reply:
        if self.rate_limited:
            self.rate_limited -= 1
            return 429, {"Retry-After": "1"}, {"detail": "too many requests"}
        if not self._authorized(call):
            return 401, {}, {"detail": "authentication required"}
        tags = self.repos.get(f"{ns}/{name}", {})
        if tag not in tags:
            return 404, {}, {"message": "tag not found"}
        del tags[tag]
        return 204, {}, None


@pytest.fixture
def hub(fake_api: Callable[[], FakeApi], clean_env: None) -> DockerHub:
    return DockerHub(fake_api())


def ctx(hub: DockerHub, tmp_path: Path, **creds: Any) -> Ctx:
    return Ctx(env={"WERF_DOCKER_HUB_API_URL": hub.api.url}, credentials=creds, docker_config=tmp_path)


def test_untag_keeps_other_tags_on_same_digest(hub: DockerHub, tmp_path: Path) -> None:
    remover = DockerHubRemover(ctx(hub, tmp_path, docker_hub_username="foo", docker_hub_token=PAT))
    remover.preflight(REPO)
    assert remover.untag(REPO, "v1") == "removed"
    assert hub.repos["foo/app"] == {"v2": "sha256:aaa", "v3": "sha256:bbb"}
    assert hub.api.requests() == [
        ("POST", "/v2/auth/token"),
        ("GET", "/v2/repositories/foo/app/"),
        ("DELETE", "/v2/repositories/foo/app/tags/v1/"),
    ]
    assert hub.api.calls[0].json() == {"identifier": "foo", "secret": PAT}
    assert hub.api.calls[2].headers["Authorization"] == f"Bearer {JWT}"


def test_untag_of_missing_tag_is_absent(hub: DockerHub, tmp_path: Path) -> None:
    remover = DockerHubRemover(ctx(hub, tmp_path, docker_hub_token=JWT))
    assert remover.untag(REPO, "nope") == "absent"
    # a JWT is used as is; the 404 counts as gone because the repository answers
    assert hub.api.requests() == [
        ("DELETE", "/v2/repositories/foo/app/tags/nope/"), ("GET", "/v2/repositories/foo/app/"),
    ]


def test_rate_limit_is_retried_after_retry_after(hub: DockerHub, tmp_path: Path) -> None:
    hub.rate_limited = 2
    remover = DockerHubRemover(ctx(hub, tmp_path, docker_hub_token=JWT))
    assert remover.untag(REPO, "v3") == "removed"
    assert [c.method for c in hub.api.calls] == ["DELETE", "DELETE", "DELETE"]
    assert "v3" not in hub.repos["foo/app"]


def test_preflight_without_credentials_names_the_options(hub: DockerHub, tmp_path: Path) -> None:
    remover = DockerHubRemover(ctx(hub, tmp_path))
    with pytest.raises(PreflightError) as error:
        remover.preflight(REPO)
    assert "--repo-docker-hub-token" in str(error.value)
    assert "WERF_REPO_DOCKER_HUB_TOKEN" in str(error.value)
    assert hub.api.calls == []


def test_preflight_with_refused_credentials_deletes_nothing_and_hides_secret(hub: DockerHub, tmp_path: Path) -> None:
    remover = DockerHubRemover(ctx(hub, tmp_path, docker_hub_username="foo", docker_hub_password="wrong-secret-1"))
    with pytest.raises(PreflightError) as error:
        remover.preflight(REPO)
    assert "refused" in str(error.value) and "--repo-docker-hub-username" in str(error.value)
    assert "wrong-secret-1" not in str(error.value)
    assert [c.method for c in hub.api.calls] == ["POST"]
    assert hub.repos["foo/app"] == {"v1": "sha256:aaa", "v2": "sha256:aaa", "v3": "sha256:bbb"}


def test_token_without_username_is_a_preflight_error(hub: DockerHub, tmp_path: Path) -> None:
    remover = DockerHubRemover(ctx(hub, tmp_path, docker_hub_token=PAT))
    with pytest.raises(PreflightError) as error:
        remover.preflight(REPO)
    assert "--repo-docker-hub-username" in str(error.value) and PAT not in str(error.value)


def test_credentials_from_docker_login_are_used(hub: DockerHub, tmp_path: Path) -> None:
    auth = base64.b64encode(f"foo:{PAT}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": auth}}}))
    remover = DockerHubRemover(ctx(hub, tmp_path))
    assert remover.untag(REPO, "v2") == "removed"
    assert hub.api.calls[0].json() == {"identifier": "foo", "secret": PAT}


def test_variables_are_honoured_when_no_options_given(hub: DockerHub, tmp_path: Path) -> None:
    context = Ctx(
        env={"WERF_DOCKER_HUB_API_URL": hub.api.url, "WERF_REPO_DOCKER_HUB_USERNAME": "foo",
             "WERF_REPO_DOCKER_HUB_TOKEN": PAT},
        docker_config=tmp_path,
    )
    assert DockerHubRemover(context).untag(REPO, "v1") == "removed"


def test_refused_delete_is_an_auth_error(hub: DockerHub, tmp_path: Path) -> None:
    remover = DockerHubRemover(ctx(hub, tmp_path, docker_hub_token=JWT.replace("c2ln", "YmFk")))
    with pytest.raises(AuthError) as error:
        remover.untag(REPO, "v1")
    assert "foo/app:v1" in str(error.value)
    assert "v1" in hub.repos["foo/app"]


def test_404_from_a_wrong_api_or_for_a_missing_repository_is_an_error(
    hub: DockerHub, tmp_path: Path, fake_api: Callable[[], FakeApi]
) -> None:
    nowhere = fake_api()  # answers 404 to everything: a wrong WERF_DOCKER_HUB_API_URL
    context = Ctx(env={"WERF_DOCKER_HUB_API_URL": nowhere.url}, credentials={"docker_hub_token": JWT},
                  docker_config=tmp_path)
    with pytest.raises(RegistryError, match="WERF_DOCKER_HUB_API_URL"):
        DockerHubRemover(context).untag(REPO, "v1")
    with pytest.raises(RegistryError, match="foo/missing exists"):
        DockerHubRemover(ctx(hub, tmp_path, docker_hub_token=JWT)).untag(RepoAddress("docker.io", "foo/missing"), "v1")
    assert hub.repos["foo/app"]["v1"] == "sha256:aaa"
