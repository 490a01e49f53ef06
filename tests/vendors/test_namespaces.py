"""The namespace listers (``ci_env.registry.namespaces``) against recording fakes of each vendor's documented API,
and ECR on moto's server: the exact requests (path, query, every page), the credentials sent only to the API,
an empty namespace ([]), a namespace that does not exist (an error naming it), a next page elsewhere refused."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from ci_env.errors import AuthError, CiEnvError, RegistryError
from ci_env.registry.implementations import IMPLEMENTATIONS
from ci_env.registry.namespaces import NAMESPACE_LISTERS, glob_namespace, namespace_lister_for
from ci_env.registry.vendors.dockerhub import DockerHubNamespaces
from ci_env.registry.vendors.ecr import EcrNamespaces
from ci_env.registry.vendors.github import GitHubNamespaces
from ci_env.registry.vendors.gitlab import GitLabNamespaces
from ci_env.registry.vendors.harbor import HarborNamespaces
from ci_env.registry.vendors.quay import QuayNamespaces
from tests.vendors import namespace_servers as fakes
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import FakeApi

TOKEN = "ghp_NAMESPACESECRET01"
GITLAB_TOKEN = "glpat-NAMESPACESECRET"
HARBOR = ("robot$lister", "HarborSECRET9")
QUAY_TOKEN = "quayNAMESPACESECRET"
PATHS = ["acme/app", "acme/team/api", "acme/team/web", "other/app", "acme-x/app"]


def static(paths: list[str]) -> fakes.Paths:
    return lambda: list(paths)


def nothing_reached(api: FakeApi) -> None:
    assert api.calls == [], "a request went to the other host"


@pytest.mark.parametrize(("glob", "namespace"), [
    ("team/*", "team"), ("team/app-?/x", "team"), ("team/sub/**", "team/sub"), ("*/app", ""), ("team**", ""),
    ("team/[ab]pp", "team"), ("a/b/c", "a/b"),
])
def test_a_glob_lists_its_fixed_leading_segments(glob: str, namespace: str) -> None:
    assert glob_namespace(glob) == namespace


def test_the_table_names_a_lister_for_each_vendor_with_an_api_and_the_catalog_elsewhere() -> None:
    routes = {impl.name: impl.delete_route for impl in IMPLEMENTATIONS.values()}
    with_api = {name for name, route in routes.items() if route in NAMESPACE_LISTERS}
    assert with_api == {"gitlab", "github", "harbor", "ecr", "dockerhub", "quay"}
    for impl in IMPLEMENTATIONS.values():
        built = namespace_lister_for(impl, Ctx())  # type: ignore[arg-type]
        assert (built is None) == (impl.delete_route not in NAMESPACE_LISTERS)


# --- GitHub ---------------------------------------------------------------------------------------------------
def test_github_lists_an_orgs_container_packages_page_by_page(fake_api: Callable[[], FakeApi],
                                                              clean_env: None) -> None:
    api = fake_api()
    fake = fakes.GitHubOwners(api, static(PATHS), TOKEN)
    lister = GitHubNamespaces(Ctx(env={"WERF_GITHUB_API_URL": api.url}, credentials={"github-token": TOKEN}))
    fake.page_size = 2
    assert lister.list_namespace("ghcr.io", "acme") == ["acme/app", "acme/team/api", "acme/team/web"]
    targets = [c.target for c in api.calls if c.raw_path.endswith("/packages")]
    assert targets == ["/orgs/acme/packages?package_type=container&per_page=100",
                       "/orgs/acme/packages?package_type=container&per_page=2&page=2"]
    assert all(c.headers.get("Authorization") == f"Bearer {TOKEN}" for c in api.calls)


def test_github_falls_back_to_the_user_and_knows_an_unknown_owner_and_an_empty_one(
        fake_api: Callable[[], FakeApi], clean_env: None) -> None:
    api = fake_api()
    fakes.GitHubOwners(api, static(["someone/tool", "empty-org-none/x"]), TOKEN, orgs=("empty",),
                       users=("someone",))
    lister = GitHubNamespaces(Ctx(env={"WERF_GITHUB_API_URL": api.url}, credentials={"github-token": TOKEN}))
    assert lister.list_namespace("ghcr.io", "someone") == ["someone/tool"]
    assert [c.raw_path for c in api.calls if c.raw_path.endswith("/packages")] == [
        "/orgs/someone/packages", "/users/someone/packages"]
    assert lister.list_namespace("ghcr.io", "empty") == []
    with pytest.raises(RegistryError, match="knows no organization or user nobody") as raised:
        lister.list_namespace("ghcr.io", "nobody")
    assert TOKEN not in str(raised.value)


def test_github_without_a_token_says_what_to_set(fake_api: Callable[[], FakeApi], clean_env: None) -> None:
    api = fake_api()
    fakes.GitHubOwners(api, static(PATHS), TOKEN)
    lister = GitHubNamespaces(Ctx(env={"WERF_GITHUB_API_URL": api.url}))
    with pytest.raises(AuthError, match="read:packages") as raised:
        lister.list_namespace("ghcr.io", "acme")
    assert "--repo-github-token" in str(raised.value)
    assert api.calls == []


def test_github_refuses_a_next_page_on_another_host(fake_api: Callable[[], FakeApi], clean_env: None) -> None:
    api, elsewhere = fake_api(), fake_api()
    fake = fakes.GitHubOwners(api, static([f"acme/app{n}" for n in range(150)]), TOKEN)
    fake.next_host = elsewhere.url
    lister = GitHubNamespaces(Ctx(env={"WERF_GITHUB_API_URL": api.url}, credentials={"github-token": TOKEN}))
    with pytest.raises(RegistryError, match="another host") as raised:
        lister.list_namespace("ghcr.io", "acme")
    assert TOKEN not in str(raised.value)
    nothing_reached(elsewhere)


# --- GitLab ---------------------------------------------------------------------------------------------------
def test_gitlab_lists_a_groups_repositories_with_subgroups_following_x_next_page(
        fake_api: Callable[[], FakeApi], clean_env: None) -> None:
    api = fake_api()
    paths = [f"grp/sub/p{n}" for n in range(101)] + ["grp/app", "grp-other/app"]
    fakes.GitLabGroups(api, static(paths), groups=("grp", "grp/sub"), token=GITLAB_TOKEN)
    lister = GitLabNamespaces(Ctx(env={"WERF_GITLAB_API_URL": f"{api.url}/api/v4"},
                                  credentials={"gitlab-token": GITLAB_TOKEN}))
    listed = lister.list_namespace("registry.example", "grp/sub")
    assert listed == [f"grp/sub/p{n}" for n in range(101)]
    assert [c.target for c in api.calls] == [
        "/api/v4/groups/grp%2Fsub/registry/repositories?per_page=100&page=1",
        "/api/v4/groups/grp%2Fsub/registry/repositories?per_page=100&page=2"]
    assert all(c.headers.get("PRIVATE-TOKEN") == GITLAB_TOKEN for c in api.calls)


def test_gitlab_lists_a_project_when_no_group_has_the_path_and_says_when_neither_exists(
        fake_api: Callable[[], FakeApi], clean_env: None) -> None:
    api = fake_api()
    fakes.GitLabGroups(api, static(["grp/proj", "grp/proj/cache", "grp/empty-none"]), groups=("grp", "grp/empty"),
                       projects=("grp/proj",))
    lister = GitLabNamespaces(Ctx(env={"WERF_GITLAB_API_URL": f"{api.url}/api/v4"}))
    assert lister.list_namespace("registry.example", "grp/proj") == ["grp/proj", "grp/proj/cache"]
    assert [c.raw_path for c in api.calls] == ["/api/v4/groups/grp%2Fproj/registry/repositories",
                                               "/api/v4/projects/grp%2Fproj/registry/repositories"]
    assert all("PRIVATE-TOKEN" not in c.headers and "JOB-TOKEN" not in c.headers for c in api.calls)
    assert lister.list_namespace("registry.example", "grp/empty") == []
    with pytest.raises(RegistryError, match="no group or project grp/nope at"):
        lister.list_namespace("registry.example", "grp/nope")


# --- Harbor ---------------------------------------------------------------------------------------------------
def test_harbor_lists_a_project_following_link_with_basic_auth(fake_api: Callable[[], FakeApi], clean_env: None,
                                                               tmp_path: Path) -> None:
    api = fake_api()
    paths = [f"proj/r{n:03}" for n in range(120)] + ["proj/team/app", "projx/app"]
    fakes.HarborProjects(api, static(paths), ("proj", "empty"), HARBOR)
    lister = HarborNamespaces(Ctx(env={"WERF_HARBOR_API_URL": api.url}, docker_config=tmp_path,
                                  credentials={"harbor-username": HARBOR[0], "harbor-password": HARBOR[1]}))
    assert lister.list_namespace("harbor.example", "proj") == sorted(p for p in paths if p.startswith("proj/"))
    assert [c.target for c in api.calls] == ["/api/v2.0/projects/proj/repositories?page=1&page_size=100",
                                             "/api/v2.0/projects/proj/repositories?page=2&page_size=100"]
    assert all(c.headers.get("X-Is-Resource-Name") == "true" for c in api.calls)
    assert lister.list_namespace("harbor.example", "empty") == []
    with pytest.raises(RegistryError, match="has no project nope"):
        lister.list_namespace("harbor.example", "nope")


def test_harbor_refuses_a_next_page_on_another_host(fake_api: Callable[[], FakeApi], clean_env: None,
                                                    tmp_path: Path) -> None:
    api, elsewhere = fake_api(), fake_api()
    fake = fakes.HarborProjects(api, static([f"proj/r{n}" for n in range(120)]), ("proj",), HARBOR)
    fake.next_host = elsewhere.url
    lister = HarborNamespaces(Ctx(env={"WERF_HARBOR_API_URL": api.url}, docker_config=tmp_path,
                                  credentials={"harbor-username": HARBOR[0], "harbor-password": HARBOR[1]}))
    with pytest.raises(RegistryError, match="another host") as raised:
        lister.list_namespace("harbor.example", "proj")
    assert HARBOR[1] not in str(raised.value)
    nothing_reached(elsewhere)


# --- Docker Hub -----------------------------------------------------------------------------------------------
def test_dockerhub_lists_a_namespace_anonymously_following_next(fake_api: Callable[[], FakeApi], clean_env: None,
                                                                tmp_path: Path) -> None:
    api = fake_api()
    paths = [f"acme/r{n:03}" for n in range(130)] + ["other/app"]
    fakes.DockerHubNamespaces(api, static(paths), ("acme", "empty"))
    lister = DockerHubNamespaces(Ctx(env={"WERF_DOCKER_HUB_API_URL": api.url}, docker_config=tmp_path))
    assert lister.list_namespace("docker.io", "acme") == [p for p in paths if p.startswith("acme/")]
    assert [c.target for c in api.calls] == ["/v2/namespaces/acme/repositories?page_size=100",
                                             "/v2/namespaces/acme/repositories?page=2&page_size=100"]
    assert all("Authorization" not in c.headers for c in api.calls)
    assert lister.list_namespace("docker.io", "empty") == []
    with pytest.raises(RegistryError, match="knows no namespace nope"):
        lister.list_namespace("docker.io", "nope")


def test_dockerhub_refuses_a_next_page_on_another_host(fake_api: Callable[[], FakeApi], clean_env: None,
                                                       tmp_path: Path) -> None:
    api, elsewhere = fake_api(), fake_api()
    fake = fakes.DockerHubNamespaces(api, static([f"acme/r{n}" for n in range(130)]), ("acme",))
    fake.next_host = elsewhere.url
    lister = DockerHubNamespaces(Ctx(env={"WERF_DOCKER_HUB_API_URL": api.url}, docker_config=tmp_path))
    with pytest.raises(RegistryError, match="another host"):
        lister.list_namespace("docker.io", "acme")
    nothing_reached(elsewhere)


# --- Quay -----------------------------------------------------------------------------------------------------
def test_quay_lists_a_namespace_following_next_page_tokens(fake_api: Callable[[], FakeApi], clean_env: None) -> None:
    api = fake_api()
    fakes.QuayNamespaces(api, static(["acme/a", "acme/b", "acme/c", "other/a"]), ("acme", "empty"),
                         token=QUAY_TOKEN)
    lister = QuayNamespaces(Ctx(env={"WERF_QUAY_API_URL": api.url}, credentials={"quay-token": QUAY_TOKEN}))
    assert lister.list_namespace("quay.io", "acme") == ["acme/a", "acme/b", "acme/c"]
    assert [c.target for c in api.calls] == ["/api/v1/repository?namespace=acme",
                                             "/api/v1/repository?namespace=acme&next_page=tok2"]
    assert all(c.headers.get("Authorization") == f"Bearer {QUAY_TOKEN}" for c in api.calls)
    assert lister.list_namespace("quay.io", "empty") == []
    with pytest.raises(RegistryError, match="knows no organization or user nope"):
        lister.list_namespace("quay.io", "nope")


# --- ECR ------------------------------------------------------------------------------------------------------
def test_ecr_lists_repositories_by_prefix(moto_url: str, clean_env: None) -> None:
    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    for name in ("team/app", "team/sub/api", "teamx/app", "other/app"):
        client.create_repository(repositoryName=name)
    env = {"AWS_ENDPOINT_URL_ECR": moto_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "x"}
    lister = EcrNamespaces(Ctx(env=env))
    host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert lister.list_namespace(host, "team") == ["team/app", "team/sub/api"]
    assert lister.list_namespace(host, "team/sub") == ["team/sub/api"]
    assert lister.list_namespace(host, "nothing") == []
    assert lister.list_namespace(host, "") == ["other/app", "team/app", "team/sub/api", "teamx/app"]


def test_ecr_without_credentials_says_what_to_give(tmp_path: Path, clean_env: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(tmp_path))
    lister = EcrNamespaces(Ctx(env=env))
    with pytest.raises(CiEnvError, match="ecr:DescribeRepositories"):
        lister.list_namespace("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "team")


def test_ecr_without_the_aws_sdk_says_what_to_install(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    monkeypatch.setitem(__import__("sys").modules, "boto3", None)
    lister = EcrNamespaces(Ctx(env={"AWS_REGION": "eu-west-1"}))
    with pytest.raises(RegistryError, match=r"needs the AWS SDK \(boto3 is missing\): install the aws extra"):
        lister.list_namespace("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "team")
