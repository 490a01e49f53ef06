"""GitLab remover against a local server following GitLab's documented registry and API behaviour.

One server plays a GitLab instance: its registry (``GET /v2/`` -> 401 Bearer challenge with realm
``/jwt/auth`` and service ``container_registry``; the token server grants only the actions the user
may do; ``DELETE /v2/NAME/manifests/DIGEST`` and GitLab's ``DELETE /v2/NAME/tags/reference/TAG`` -> 202,
404 when unknown, 401 ``insufficient_scope`` without delete) and its API v4
(``PRIVATE-TOKEN``/``JOB-TOKEN``; ``GET /projects/URL-ENCODED-PATH``; ``GET
/projects/ID/registry/repositories`` paged with ``X-Next-Page``; ``DELETE
/projects/ID/registry/repositories/RID/tags/TAG`` -> 200). Tags are the server's state.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ci_env.errors import PreflightError, RegistryError
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.gitlab import GitLabRemover
from tests.registry_client.images import pulls, push_image
from tests.services.registry import RegistryService
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import Call, FakeApi, Reply

USERS = {"maintainer": "maint-pass", "developer": "dev-pass"}
CAN_DELETE = {"maintainer"}
API_TOKENS = {("PRIVATE-TOKEN", "glpat-SECRET"), ("JOB-TOKEN", "job-SECRET")}
PATH = "group/project/app"


class GitLab:
    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.tags: dict[str, dict[str, str]] = {
            PATH: {"v1": "sha256:aaa", "v2": "sha256:aaa", "v3": "sha256:bbb"},
            "group/project/other": {"v1": "sha256:ccc"},
        }
        self.repositories: list[dict[str, Any]] = [{"id": 1, "path": "group/project/other"}, {"id": 2, "path": PATH}]
        r = api.route
        r("GET", r"/v2/")(self.ping)
        r("GET", r"/jwt/auth")(self.token)
        r("DELETE", r"/v2/(.+)/manifests/([^/]+)")(self.delete_manifest)
        r("DELETE", r"/v2/(.+)/tags/reference/([^/]+)")(self.delete_reference)
        r("GET", r"/api/v4/projects/([^/]+)")(self.project)
        r("GET", r"/api/v4/projects/(\d+)/registry/repositories")(self.list_repositories)
        r("DELETE", r"/api/v4/projects/(\d+)/registry/repositories/(\d+)/tags/([^/]+)")(self.api_delete)
        r("GET", r"/api/v4/registry/repositories/(\d+)")(self.repository)

    @property
    def host(self) -> str:
        return self.api.url.removeprefix("http://")

    # registry and token server
    def _challenge(self, error: str = "") -> dict[str, str]:
        extra = f',error="{error}"' if error else ""
        return {"WWW-Authenticate": f'Bearer realm="{self.api.url}/jwt/auth",service="container_registry"{extra}'}

    def _actions(self, call: Call) -> set[str]:
        header = call.headers.get("Authorization", "")
        if not header.startswith("Bearer tok:"):
            return set()
        return set(header.split(":")[-1].split(","))

    def ping(self, call: Call) -> Reply:
        if not call.headers.get("Authorization", "").startswith("Bearer tok:"):
            return 401, self._challenge(), {"errors": [{"code": "UNAUTHORIZED"}]}
        return 200, {}, {}

    def token(self, call: Call) -> Reply:
        header = call.headers.get("Authorization", "")
        user = None
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            user = name if USERS.get(name) == password else None
        if header and user is None:
            return 401, {}, {"message": "HTTP Basic: Access denied"}
        scope = call.query.get("scope", [""])[0]
        wanted = set(scope.split(":")[-1].split(",")) if scope else set()
        allowed = {"pull", "push", "delete"} if user in CAN_DELETE else ({"pull", "push"} if user else set())
        granted = ",".join(sorted(wanted & allowed)) or "none"
        return 200, {}, {"token": f"tok:{user}:{granted}", "expires_in": 300}

    def delete_manifest(self, call: Call, name: str, digest: str) -> Reply:
        if "delete" not in self._actions(call):
            return 401, self._challenge("insufficient_scope"), {"errors": [{"code": "UNAUTHORIZED"}]}
        return 404, {}, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}

    def delete_reference(self, call: Call, name: str, tag: str) -> Reply:
        if "delete" not in self._actions(call):
            return 401, self._challenge("insufficient_scope"), {"errors": [{"code": "UNAUTHORIZED"}]}
        if name not in self.tags:
            return 404, {}, {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}
        if tag not in self.tags[name]:
            return 404, {}, {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
        del self.tags[name][tag]
        return 202, {}, None

    # API v4
    def _api_ok(self, call: Call) -> bool:
        return any(call.headers.get(k) == v for k, v in API_TOKENS)

    def project(self, call: Call, ident: str) -> Reply:
        if not self._api_ok(call):
            return 401, {}, {"message": "401 Unauthorized"}
        if ident == "group%2Fproject":
            return 200, {}, {"id": 42, "path_with_namespace": "group/project"}
        return 404, {}, {"message": "404 Project Not Found"}

    def list_repositories(self, call: Call, project: str) -> Reply:
        if not self._api_ok(call):
            return 401, {}, {"message": "401 Unauthorized"}
        page = int(call.query.get("page", ["1"])[0])
        items = self.repositories[page - 1: page]  # one per page, so X-Next-Page is exercised
        headers = {"X-Page": str(page), "X-Next-Page": str(page + 1) if page < len(self.repositories) else ""}
        return 200, headers, items

    def repository(self, call: Call, repository: str) -> Reply:
        if not self._api_ok(call):
            return 401, {}, {"message": "401 Unauthorized"}
        found = [r for r in self.repositories if r["id"] == int(repository)]
        return (200, {}, found[0]) if found else (404, {}, {"message": "404 Repository Not Found"})

    def api_delete(self, call: Call, project: str, repository: str, tag: str) -> Reply:
        if not self._api_ok(call):
            return 401, {}, {"message": "401 Unauthorized"}
        path = next(r["path"] for r in self.repositories if r["id"] == int(repository))
        if project != "42" or tag not in self.tags[path]:
            return 404, {}, {"message": "404 Tag Not Found"}
        del self.tags[path][tag]
        return 200, {}, None


@pytest.fixture
def gitlab(fake_api: Callable[[], FakeApi], clean_env: None) -> GitLab:
    return GitLab(fake_api())


def ctx(gitlab: GitLab, tmp_path: Path, user: str | None, env: dict[str, str] | None = None, **creds: Any) -> Ctx:
    auths = {}
    if user:
        auths[gitlab.host] = {"auth": base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()}
    (tmp_path / "config.json").write_text(json.dumps({"auths": auths}))
    return Ctx(env={"WERF_GITLAB_API_URL": f"{gitlab.api.url}/api/v4", **(env or {})}, credentials=creds,
               docker_config=tmp_path)


def test_registry_route_keeps_other_tags_on_same_digest(gitlab: GitLab, tmp_path: Path) -> None:
    repo = RepoAddress(gitlab.host, PATH)
    r = GitLabRemover(ctx(gitlab, tmp_path, "maintainer"))
    r.preflight(repo)
    assert r.untag(repo, "v1") == "removed"
    assert r.untag(repo, "v9") == "absent"
    assert gitlab.tags[PATH] == {"v2": "sha256:aaa", "v3": "sha256:bbb"}
    deletes = [p for m, p in gitlab.api.requests() if m == "DELETE"]
    assert deletes[-2:] == [f"/v2/{PATH}/tags/reference/v1", f"/v2/{PATH}/tags/reference/v9"]
    assert not any(p.startswith("/api/v4") for _, p in gitlab.api.requests())
    scopes = [c.query["scope"][0] for c in gitlab.api.calls if c.raw_path == "/jwt/auth"]
    assert f"repository:{PATH}:pull,push,delete" in scopes


def test_api_route_when_registry_token_cannot_delete(gitlab: GitLab, tmp_path: Path) -> None:
    repo = RepoAddress(gitlab.host, PATH)
    r = GitLabRemover(ctx(gitlab, tmp_path, "developer", gitlab_token="glpat-SECRET"))
    r.preflight(repo)
    assert r.untag(repo, "v2") == "removed"
    assert r.untag(repo, "v2") == "absent"
    assert gitlab.tags[PATH] == {"v1": "sha256:aaa", "v3": "sha256:bbb"}
    assert gitlab.tags["group/project/other"] == {"v1": "sha256:ccc"}
    api_calls = [(m, p) for m, p in gitlab.api.requests() if p.startswith("/api/v4")]
    assert ("GET", "/api/v4/projects/group%2Fproject%2Fapp") in api_calls  # longest prefix first
    assert ("GET", "/api/v4/projects/group%2Fproject") in api_calls
    assert ("GET", "/api/v4/projects/42/registry/repositories?per_page=100&page=2") in api_calls
    assert api_calls[-2:] == [("DELETE", "/api/v4/projects/42/registry/repositories/2/tags/v2"),
                              ("GET", "/api/v4/registry/repositories/2")]  # the 404 is "gone": the repository is there
    assert all(c.headers.get("PRIVATE-TOKEN") == "glpat-SECRET" for c in gitlab.api.calls
               if c.raw_path.startswith("/api/v4"))


def test_api_route_with_job_token_and_ci_project(gitlab: GitLab, tmp_path: Path) -> None:
    env = {"CI_JOB_TOKEN": "job-SECRET", "CI_PROJECT_PATH": "group/project", "CI_PROJECT_ID": "42",
           "CI_SERVER_URL": gitlab.api.url, "CI_API_V4_URL": f"{gitlab.api.url}/api/v4"}
    repo = RepoAddress(gitlab.host, PATH)
    r = GitLabRemover(ctx(gitlab, tmp_path, None, env=env))
    r.preflight(repo)
    assert r.untag(repo, "v3") == "removed"
    assert not any(p.startswith("/api/v4/projects/group") for _, p in gitlab.api.requests())
    assert gitlab.api.calls[-1].headers.get("JOB-TOKEN") == "job-SECRET"


def test_preflight_without_delete_rights_or_token_names_the_option(gitlab: GitLab, tmp_path: Path) -> None:
    repo = RepoAddress(gitlab.host, PATH)
    with pytest.raises(PreflightError) as error:
        GitLabRemover(ctx(gitlab, tmp_path, "developer")).preflight(repo)
    message = str(error.value)
    assert "--repo-gitlab-token" in message and "WERF_REPO_GITLAB_TOKEN" in message
    assert "dev-pass" not in message
    assert not any(m == "DELETE" and "reference" in p for m, p in gitlab.api.requests())
    assert len(gitlab.tags[PATH]) == 3


def test_preflight_with_refused_api_token(gitlab: GitLab, tmp_path: Path) -> None:
    repo = RepoAddress(gitlab.host, PATH)
    with pytest.raises(PreflightError) as error:
        GitLabRemover(ctx(gitlab, tmp_path, "developer", gitlab_token="glpat-WRONG")).preflight(repo)
    assert "refused" in str(error.value) and "glpat-WRONG" not in str(error.value)


def test_registry_without_reference_route_falls_back_to_placeholder_route(
    registry_open: RegistryService, tmp_path: Path, clean_env: None
) -> None:
    """The plain CNCF registry as a "GitLab" registry: its 404 on tags/reference is no proof the tag is gone."""
    client = RegistryClient(registry_open.host)
    repo_path = f"group/project/{uuid.uuid4().hex[:10]}"
    shared = push_image(client, repo_path, ["keep", "stale"])
    push_image(client, repo_path, ["lone"])
    (tmp_path / "config.json").write_text(json.dumps({"auths": {}}))
    remover = GitLabRemover(Ctx(env={}, docker_config=tmp_path))
    repo = RepoAddress(registry_open.host, repo_path)
    remover.preflight(repo)
    before = len(registry_open.requests())
    assert remover.untag(repo, "stale") == "removed"
    assert remover.untag(repo, "lone") == "removed"
    assert remover.untag(repo, "never-was") == "absent"
    assert client.list_tags(repo_path) == ["keep"]
    assert client.resolve(repo_path, "keep").digest == shared.digest  # type: ignore[union-attr]
    assert pulls(client, repo_path, "keep")
    reference_tries = [p for m, p, _ in registry_open.requests()[before:] if "/tags/reference/" in p]
    assert reference_tries == [f"/v2/{repo_path}/tags/reference/stale"]  # remembered as missing after one try


def test_registry_without_reference_route_falls_back_to_the_api_with_a_token(gitlab: GitLab, tmp_path: Path) -> None:
    def no_reference_route(call: Call, name: str, tag: str) -> Reply:
        return 404, {"Content-Type": "text/plain"}, None

    def head_manifest(call: Call, name: str, ref: str) -> Reply:
        digest = gitlab.tags.get(name, {}).get(ref)
        if digest is None:
            return 404, {}, {"errors": [{"code": "MANIFEST_UNKNOWN"}]}
        return 200, {"Docker-Content-Digest": digest, "Content-Type": "application/vnd.oci.image.manifest.v1+json"}, {}

    gitlab.api.route("DELETE", r"/v2/(.+)/tags/reference/([^/]+)")(no_reference_route)
    gitlab.api.route("HEAD", r"/v2/(.+)/manifests/([^/]+)")(head_manifest)
    gitlab.api.routes[:] = gitlab.api.routes[-2:] + gitlab.api.routes[:-2]  # these two answer first
    repo = RepoAddress(gitlab.host, PATH)
    r = GitLabRemover(ctx(gitlab, tmp_path, "maintainer", gitlab_token="glpat-SECRET"))
    r.preflight(repo)
    assert r.untag(repo, "v1") == "removed"
    assert r.untag(repo, "v3") == "removed"
    assert r.untag(repo, "v9") == "absent"
    assert gitlab.tags[PATH] == {"v2": "sha256:aaa"}
    deletes = [p for m, p in gitlab.api.requests() if m == "DELETE" and "/manifests/" not in p]
    assert deletes == [f"/v2/{PATH}/tags/reference/v1", "/api/v4/projects/42/registry/repositories/2/tags/v1",
                       "/api/v4/projects/42/registry/repositories/2/tags/v3",
                       "/api/v4/projects/42/registry/repositories/2/tags/v9"]


# --- the job token stays with the job's own GitLab -------------------------------------------------------

#: a job running on another GitLab instance (never contacted)
OTHER_INSTANCE_JOB = {
    "GITLAB_CI": "true", "CI_JOB_TOKEN": "job-SECRET", "CI_SERVER_URL": "https://gitlab.example.com",
    "CI_API_V4_URL": "https://gitlab.example.com/api/v4", "CI_REGISTRY": "registry.example.com",
}


def _saw_secret(gitlab: GitLab, secret: str) -> bool:
    return any(secret in value for call in gitlab.api.calls for value in call.headers.values())


def test_job_token_is_never_sent_to_another_gitlab(gitlab: GitLab, tmp_path: Path) -> None:
    repo = RepoAddress(gitlab.host, PATH)
    with pytest.raises(PreflightError) as error:
        GitLabRemover(ctx(gitlab, tmp_path, "developer", env=OTHER_INSTANCE_JOB)).preflight(repo)
    message = str(error.value)
    assert "$CI_JOB_TOKEN is sent only to this job's GitLab" in message and "gitlab.example.com" in message
    assert "--repo-gitlab-token" in message and "job-SECRET" not in message
    assert not _saw_secret(gitlab, "job-SECRET")
    assert len(gitlab.tags[PATH]) == 3


def test_job_token_passed_as_the_gitlab_token_is_bound_too(gitlab: GitLab, tmp_path: Path) -> None:
    repo = RepoAddress(gitlab.host, PATH)
    context = ctx(gitlab, tmp_path, None, env=OTHER_INSTANCE_JOB, gitlab_token="job-SECRET")
    with pytest.raises(PreflightError, match=r"\$CI_JOB_TOKEN is sent only"):
        GitLabRemover(context).preflight(repo)
    assert not _saw_secret(gitlab, "job-SECRET")


def test_other_gitlab_works_with_its_own_token_from_a_job(gitlab: GitLab, tmp_path: Path) -> None:
    repo = RepoAddress(gitlab.host, PATH)
    r = GitLabRemover(ctx(gitlab, tmp_path, "developer", env=OTHER_INSTANCE_JOB, gitlab_token="glpat-SECRET"))
    r.preflight(repo)
    assert r.untag(repo, "v3") == "removed"
    assert "v3" not in gitlab.tags[PATH]
    assert not _saw_secret(gitlab, "job-SECRET")
    assert gitlab.api.calls[-1].headers.get("PRIVATE-TOKEN") == "glpat-SECRET"


def test_api_404_from_a_wrong_api_or_for_a_missing_repository_is_an_error(
    gitlab: GitLab, tmp_path: Path, fake_api: Callable[[], FakeApi]
) -> None:
    nowhere = fake_api()  # answers 404 to everything: a wrong WERF_GITLAB_API_URL
    context = ctx(gitlab, tmp_path, "developer", gitlab_token="glpat-SECRET")
    wrong = GitLabRemover(Ctx(env={"WERF_GITLAB_API_URL": f"{nowhere.url}/api/v4"}, credentials=context.credentials,
                              docker_config=tmp_path))
    with pytest.raises(RegistryError, match="no project found"):
        wrong.untag(RepoAddress(gitlab.host, PATH), "v1")
    with pytest.raises(RegistryError, match="has no registry repository group/project/missing"):
        GitLabRemover(context).untag(RepoAddress(gitlab.host, "group/project/missing"), "v1")
    assert len(gitlab.tags[PATH]) == 3


def test_registry_route_404_for_a_missing_repository_is_an_error(gitlab: GitLab, tmp_path: Path) -> None:
    r = GitLabRemover(ctx(gitlab, tmp_path, "maintainer"))
    with pytest.raises(RegistryError, match="no repository group/project/missing"):
        r.untag(RepoAddress(gitlab.host, "group/project/missing"), "v1")


def test_cli_untag_from_a_job_of_another_gitlab_never_sends_the_job_token(gitlab: GitLab, tmp_path: Path) -> None:
    """The issue's case as a user meets it: ``ci-env registry untag`` of another GitLab's image from a job."""
    from tests.cli import environ_without, run_ci_env

    (tmp_path / "config.json").write_text(json.dumps({"auths": {}}))
    env = {**environ_without(), "HOME": str(tmp_path), **OTHER_INSTANCE_JOB,
           "WERF_GITLAB_API_URL": f"{gitlab.api.url}/api/v4"}
    result = run_ci_env("registry", "untag", f"{gitlab.host}/{PATH}:v1", "--repo-implementation", "gitlab",
                        "--docker-config", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "$CI_JOB_TOKEN is sent only to this job's GitLab" in result.stderr
    assert "--repo-gitlab-token" in result.stderr and "job-SECRET" not in result.stdout + result.stderr
    assert not _saw_secret(gitlab, "job-SECRET")
    assert gitlab.tags[PATH]["v1"] == "sha256:aaa"
