"""Harbor remover against a local server following Harbor's documented v2.0 API.

Documented behaviour followed: Basic auth; ``GET /api/v2.0/projects/P`` -> ``{"project_id"}``;
``GET /api/v2.0/users/current/permissions?scope=/project/ID&relative=true`` -> ``[{"resource","action"}]``;
``DELETE /api/v2.0/projects/P/repositories/R/artifacts/REF/tags/TAG`` -> 200, 404 when absent; a nested
repository ``R`` arrives double-encoded (``a%252Fb``). The server keeps artifacts (digest -> tags), so the
shared-digest scenario is checked on its state.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from ci_env.errors import AuthError, PreflightError, RegistryError
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.harbor import HarborRemover
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import Call, FakeApi, Reply

USERS = {"admin": "Harbor12345", "viewer": "view-only-pw"}
REPO = RepoAddress("harbor.example.com", "proj/team/app")


class Harbor:
    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.artifacts: dict[str, dict[str, list[str]]] = {
            "team/app": {"sha256:aaa": ["v1", "v2"], "sha256:bbb": ["v3"]},
        }
        api.route("GET", r"/api/v2.0/projects/([^/]+)")(self.project)
        api.route("GET", r"/api/v2.0/users/current/permissions")(self.permissions)
        api.route("GET", r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)")(self.repository)
        api.route("DELETE", r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)/artifacts/([^/]+)/tags/([^/]+)")(
            self.delete_tag
        )

    def user(self, call: Call) -> str | None:
        header = call.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user if USERS.get(user) == password else None

    def project(self, call: Call, name: str) -> Reply:
        if self.user(call) is None:
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}
        if name != "proj":
            return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": "project not found"}]}
        return 200, {}, {"project_id": 7, "name": "proj"}

    def repository(self, call: Call, project: str, repository: str) -> Reply:
        if self.user(call) is None:
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}
        name = unquote(unquote(repository))
        if project != "proj" or name not in self.artifacts:
            return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": f"repository {project}/{name} not found"}]}
        return 200, {}, {"name": f"{project}/{name}", "artifact_count": len(self.artifacts[name])}

    def permissions(self, call: Call) -> Reply:
        user = self.user(call)
        if user is None:
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        assert call.query == {"scope": ["/project/7"], "relative": ["true"]}
        actions = [{"resource": "tag", "action": "list"}]
        if user == "admin":
            actions.append({"resource": "tag", "action": "delete"})
        return 200, {}, actions

    def delete_tag(self, call: Call, project: str, repository: str, reference: str, tag: str) -> Reply:
        if self.user(call) != "admin":
            return 403, {}, {"errors": [{"code": "FORBIDDEN", "message": "forbidden"}]}
        name = unquote(unquote(repository))
        for tags in self.artifacts.get(name, {}).values():
            if unquote(reference) in tags and unquote(tag) in tags:
                tags.remove(unquote(tag))
                return 200, {}, None
        return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": "tag not found"}]}


@pytest.fixture
def harbor(fake_api: Callable[[], FakeApi], clean_env: None) -> Harbor:
    return Harbor(fake_api())


def ctx(harbor: Harbor, tmp_path: Path, **creds: Any) -> Ctx:
    return Ctx(env={"WERF_HARBOR_API_URL": harbor.api.url}, credentials=creds, docker_config=tmp_path)


def test_untag_keeps_other_tags_on_same_digest(harbor: Harbor, tmp_path: Path) -> None:
    r = HarborRemover(ctx(harbor, tmp_path, harbor_username="admin", harbor_password="Harbor12345"))
    r.preflight(REPO)
    assert r.untag(REPO, "v1") == "removed"
    assert harbor.artifacts["team/app"] == {"sha256:aaa": ["v2"], "sha256:bbb": ["v3"]}
    expected = "/api/v2.0/projects/proj/repositories/team%252Fapp/artifacts/v1/tags/v1"
    assert harbor.api.requests()[-1] == ("DELETE", expected)


def test_missing_tag_is_absent(harbor: Harbor, tmp_path: Path) -> None:
    r = HarborRemover(ctx(harbor, tmp_path, harbor_username="admin", harbor_password="Harbor12345"))
    assert r.untag(REPO, "gone") == "absent"


def test_credentials_from_docker_login(harbor: Harbor, tmp_path: Path) -> None:
    auth = base64.b64encode(b"admin:Harbor12345").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"harbor.example.com": {"auth": auth}}}))
    assert HarborRemover(ctx(harbor, tmp_path)).untag(REPO, "v3") == "removed"


def test_preflight_without_credentials_names_the_options(harbor: Harbor, tmp_path: Path) -> None:
    with pytest.raises(PreflightError) as error:
        HarborRemover(ctx(harbor, tmp_path)).preflight(REPO)
    assert "--repo-harbor-username" in str(error.value) and "WERF_REPO_HARBOR_PASSWORD" in str(error.value)
    assert harbor.api.calls == []


def test_preflight_refused_and_without_delete_permission(harbor: Harbor, tmp_path: Path) -> None:
    with pytest.raises(PreflightError) as refused:
        HarborRemover(ctx(harbor, tmp_path, harbor_username="admin", harbor_password="nope-secret")).preflight(REPO)
    assert "refused" in str(refused.value) and "nope-secret" not in str(refused.value)
    with pytest.raises(PreflightError) as weak:
        HarborRemover(ctx(harbor, tmp_path, harbor_username="viewer", harbor_password="view-only-pw")).preflight(REPO)
    assert "may not delete tags in project proj" in str(weak.value)
    assert not any(m == "DELETE" for m, _ in harbor.api.requests())


def test_refused_delete_is_an_auth_error(harbor: Harbor, tmp_path: Path) -> None:
    r = HarborRemover(ctx(harbor, tmp_path, harbor_username="viewer", harbor_password="view-only-pw"))
    with pytest.raises(AuthError):
        r.untag(REPO, "v1")
    assert harbor.artifacts["team/app"]["sha256:aaa"] == ["v1", "v2"]


def test_404_from_a_wrong_api_or_for_a_missing_repository_is_an_error(
    harbor: Harbor, tmp_path: Path, fake_api: Callable[[], FakeApi]
) -> None:
    creds = {"harbor_username": "admin", "harbor_password": "Harbor12345"}
    nowhere = fake_api()  # answers 404 to everything: a wrong WERF_HARBOR_API_URL
    wrong = HarborRemover(Ctx(env={"WERF_HARBOR_API_URL": nowhere.url}, credentials=creds, docker_config=tmp_path))
    with pytest.raises(RegistryError, match="WERF_HARBOR_API_URL"):
        wrong.untag(REPO, "v1")
    with pytest.raises(RegistryError, match="proj/team/missing exists"):
        missing = RepoAddress("harbor.example.com", "proj/team/missing")
        HarborRemover(ctx(harbor, tmp_path, **creds)).untag(missing, "v1")
    assert harbor.artifacts["team/app"]["sha256:aaa"] == ["v1", "v2"]


@pytest.mark.parametrize("tags", ["v1", [{"push_time": "2026-01-01T00:00:00.000Z"}], ["v1"]])
def test_an_artifact_whose_tags_cannot_be_read_is_never_taken_for_an_untagged_one(
    harbor: Harbor, tmp_path: Path, tags: object
) -> None:
    """Harbor's listing gives an artifact's tags as a list of objects with a name: any other shape is an error, as
    reading it as "no tag" would let the untagged removal delete a tagged image (with its tags)."""
    listing = f"/api/v2.0/projects/proj/repositories/{'team%252Fapp'}/artifacts"

    @harbor.api.route("GET", listing)
    def artifacts(call: Call) -> Reply:
        return 200, {}, [{"digest": "sha256:aaa", "push_time": "2026-01-01T00:00:00.000Z", "tags": tags},
                         {"digest": "sha256:bbb", "push_time": "2026-01-01T00:00:00.000Z", "tags": None}]

    remover = HarborRemover(ctx(harbor, tmp_path, harbor_username="admin", harbor_password="Harbor12345"))
    with pytest.raises(RegistryError, match="listing the artifacts of proj/team/app: Harbor answered an artifact"):
        remover.list_manifests(REPO)
