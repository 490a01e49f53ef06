"""Every paginated listing ends: a repeated cursor, a page from another host or more than the bounded number of
pages is an error, never a loop and never a partial or planted listing. Malformed pages are errors, not readings.

Each server below answers in the vendor's documented shape (see the vendor's own test module) but misbehaves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ci_env.errors import RegistryError
from ci_env.registry import paging
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.dockerhub import DockerHubRemover
from ci_env.registry.vendors.gitlab import GitLabRemover
from ci_env.registry.vendors.quay import QuayRemover
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import Call, FakeApi, Reply

if TYPE_CHECKING:
    from ci_env.registry.client import RegistryClient

#: how many pages the endless servers give before stopping (so the code before the fix ends, with a wrong result)
SERVER_PAGES = 40


@pytest.fixture
def few_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(paging, "MAX_PAGES", 5)
    return 5


def quay_tags(*names: str) -> list[dict[str, object]]:
    return [{"name": n, "manifest_digest": "sha256:" + "a" * 64, "start_ts": 1700000000} for n in names]


def test_quay_saying_has_additional_with_the_same_page_again_is_an_error(
    fake_api: Callable[[], FakeApi], clean_env: None
) -> None:
    api = fake_api()
    calls: list[int] = []

    def page(call: Call, ns: str, name: str) -> Reply:
        calls.append(1)
        return 200, {}, {"tags": quay_tags("v1", "v2"), "page": 1, "has_additional": len(calls) < SERVER_PAGES}

    api.route("GET", r"/api/v1/repository/([^/]+)/([^/]+)/tag/")(page)
    with pytest.raises(RegistryError, match="repeats tags"):
        QuayRemover(Ctx(env={"WERF_QUAY_API_URL": api.url})).list_tags(RepoAddress("quay.io", "acme/app"))
    assert len(calls) == 2


def test_quay_pages_that_never_end_stop_at_the_bound(
    fake_api: Callable[[], FakeApi], clean_env: None, few_pages: int
) -> None:
    api = fake_api()

    def page(call: Call, ns: str, name: str) -> Reply:
        number = int(call.query["page"][0])
        return 200, {}, {"tags": quay_tags(f"t{number}"), "page": number, "has_additional": number < SERVER_PAGES}

    api.route("GET", r"/api/v1/repository/([^/]+)/([^/]+)/tag/")(page)
    with pytest.raises(RegistryError, match=f"after {few_pages} pages"):
        QuayRemover(Ctx(env={"WERF_QUAY_API_URL": api.url})).list_tags(RepoAddress("quay.io", "acme/app"))
    assert len(api.calls) == few_pages


@pytest.mark.parametrize("tags", ["v1", [["nested"]], {"name": "v1"}])
def test_a_quay_page_whose_tags_are_not_a_list_of_objects_is_an_error(
    fake_api: Callable[[], FakeApi], clean_env: None, tags: object
) -> None:
    api = fake_api()
    api.route("GET", r"/api/v1/repository/([^/]+)/([^/]+)/tag/")(
        lambda call, ns, name: (200, {}, {"tags": tags, "has_additional": False}))
    with pytest.raises(RegistryError, match="not a list of objects"):
        QuayRemover(Ctx(env={"WERF_QUAY_API_URL": api.url})).list_tags(RepoAddress("quay.io", "acme/app"))


def hub_page(names: list[str], next_url: str | None) -> dict[str, object]:
    return {"count": 99, "next": next_url, "results": [
        {"name": n, "digest": "sha256:" + "b" * 64, "media_type": "application/vnd.oci.image.index.v1+json",
         "last_updated": "2024-01-01T00:00:00Z"} for n in names]}


def test_docker_hub_sending_the_same_next_page_again_is_an_error(
    fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path
) -> None:
    api = fake_api()

    def page(call: Call, ns: str, name: str) -> Reply:
        number = int(call.query.get("page", ["1"])[0])
        return 200, {}, hub_page([f"t{number}"], f"{api.url}/v2/repositories/{ns}/{name}/tags?page=2")

    api.route("GET", r"/v2/repositories/([^/]+)/([^/]+)/tags/?")(page)
    lister = DockerHubRemover(Ctx(env={"WERF_DOCKER_HUB_API_URL": api.url}, docker_config=tmp_path))
    with pytest.raises(RegistryError, match="cursor it already sent"):
        lister.list_tags(RepoAddress("docker.io", "foo/app"))
    assert len(api.calls) == 2


def test_docker_hub_next_page_on_another_host_is_never_fetched_nor_merged(
    fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path
) -> None:
    api, other = fake_api(), fake_api()
    other.route("GET", r"/.*")(lambda call: (200, {}, hub_page(["planted"], None)))
    api.route("GET", r"/v2/repositories/([^/]+)/([^/]+)/tags/?")(
        lambda call, ns, name: (200, {}, hub_page(["v1"], f"{other.url}/v2/repositories/foo/app/tags?page=2")))
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmb28ifQ.c2lnbmF0dXJl"
    lister = DockerHubRemover(Ctx(env={"WERF_DOCKER_HUB_API_URL": api.url}, docker_config=tmp_path,
                                  credentials={"docker-hub-token": jwt}))
    with pytest.raises(RegistryError, match="another host"):
        lister.list_tags(RepoAddress("docker.io", "foo/app"))
    assert api.calls[0].headers.get("Authorization") == f"Bearer {jwt}"
    assert other.calls == []


def test_docker_hub_pages_that_never_end_stop_at_the_bound(
    fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path, few_pages: int
) -> None:
    api = fake_api()

    def page(call: Call, ns: str, name: str) -> Reply:
        number = int(call.query.get("page", ["1"])[0])
        more = f"{api.url}/v2/repositories/{ns}/{name}/tags?page={number + 1}" if number < SERVER_PAGES else None
        return 200, {}, hub_page([f"t{number}"], more)

    api.route("GET", r"/v2/repositories/([^/]+)/([^/]+)/tags/?")(page)
    lister = DockerHubRemover(Ctx(env={"WERF_DOCKER_HUB_API_URL": api.url}, docker_config=tmp_path))
    with pytest.raises(RegistryError, match=f"after {few_pages} pages"):
        lister.list_tags(RepoAddress("docker.io", "foo/app"))
    assert len(api.calls) == few_pages


def test_a_docker_hub_page_that_is_a_list_or_html_is_an_error(
    fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path
) -> None:
    for answer, message in (([{"name": "v1"}], "not an object"), (b"<html>maintenance</html>", "not JSON")):
        api = fake_api()
        headers = {"Content-Type": "text/html"} if isinstance(answer, bytes) else {}
        api.route("GET", r"/v2/repositories/([^/]+)/([^/]+)/tags/?")(
            lambda call, ns, name, a=answer, h=headers: (200, h, a))
        lister = DockerHubRemover(Ctx(env={"WERF_DOCKER_HUB_API_URL": api.url}, docker_config=tmp_path))
        with pytest.raises(RegistryError, match=message):
            lister.list_tags(RepoAddress("docker.io", "foo/app"))


def test_gitlab_repeating_x_next_page_is_an_error(fake_api: Callable[[], FakeApi], clean_env: None,
                                                   tmp_path: Path) -> None:
    """The projects API route looks the registry repository up page by page (``X-Next-Page``)."""
    api = fake_api()
    listed: list[str] = []

    def repositories(call: Call, project: str) -> Reply:
        listed.append(call.query["page"][0])
        again = "2" if len(listed) < SERVER_PAGES else ""
        return 200, {"X-Next-Page": again}, [{"id": len(listed), "path": "group/project/other"}]

    api.route("GET", r"/api/v4/projects/(\d+)/registry/repositories")(repositories)
    (tmp_path / "config.json").write_text(json.dumps({"auths": {}}))
    context = Ctx(env={"WERF_GITLAB_API_URL": f"{api.url}/api/v4", "CI_PROJECT_ID": "42",
                       "CI_PROJECT_PATH": "group/project"}, credentials={"gitlab-token": "glpat-SECRET"},
                  docker_config=tmp_path)
    remover = GitLabRemover(context, client_factory=_refusing_registry(api))
    with pytest.raises(RegistryError, match="cursor it already sent"):
        remover.untag(RepoAddress(api.url.removeprefix("http://"), "group/project/app"), "v1")
    assert listed == ["1", "2"]


def _refusing_registry(api: FakeApi) -> Callable[[str], RegistryClient]:
    """A GitLab registry whose token may not delete, so the remover takes the projects API route."""
    from ci_env.registry.client import RegistryClient

    api.route("DELETE", r"/v2/(.+)/manifests/([^/]+)")(
        lambda call, name, ref: (403, {}, {"errors": [{"code": "DENIED", "message": "no delete"}]}))

    def make(host: str) -> RegistryClient:
        return RegistryClient(host, docker_config=Path("/nonexistent-docker-config"))

    return make


def test_a_docker_hub_login_answered_with_a_list_is_an_error(
    fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path
) -> None:
    api = fake_api()
    api.route("POST", r"/v2/auth/token")(lambda call: (200, {}, ["access_token", "x"]))
    remover = DockerHubRemover(Ctx(env={"WERF_DOCKER_HUB_API_URL": api.url}, docker_config=tmp_path,
                                   credentials={"docker-hub-username": "foo", "docker-hub-token": "dckr_pat_X"}))
    with pytest.raises(RegistryError, match="login: the answer is JSON but not an object"):
        remover.preflight(RepoAddress("docker.io", "foo/app"))
