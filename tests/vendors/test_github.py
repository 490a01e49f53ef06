"""GitHub Packages remover: ghcr.io packages REST API and the legacy GraphQL route.

ghcr.io is modelled by TWO parts: the real CNCF registry (``registry_open``) plays ghcr.io's Registry
API, and a local server plays GitHub's REST API with package versions DERIVED from that registry
(one version per digest, ``metadata.container.tags`` = the tags on it; ``DELETE .../versions/ID``
deletes the digest on the registry, as ghcr.io does). Documented behaviour followed: ``GET /user`` with
``X-OAuth-Scopes`` for classic tokens; ``GET /orgs/ORG/packages/container/PKG`` (PKG's ``/`` as ``%2F``),
404 for an unknown package; ``GET .../versions?per_page=N`` with ``Link: <...>; rel="next"``;
``DELETE .../versions/ID`` -> 204.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ci_env.errors import PreflightError, RegistryError
from ci_env.registry.client import RegistryClient
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.github import GitHubRemover
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import Call, FakeApi, Reply
from tests.vendors.images import tag_map
from tests.vendors.servers import TOKEN, GitHubPackages

_names = itertools.count()


@pytest.fixture
def ghcr(fake_api: Callable[[], FakeApi], registry_open: RegistryService, clean_env: None) -> Any:
    def make(scopes: str | None = "read:packages, delete:packages, repo") -> GitHubPackages:
        return GitHubPackages(fake_api(), registry_open, scopes)

    return make


def remover(gh: GitHubPackages, registry: RegistryService, tmp_path: Path, token: str | None = TOKEN) -> GitHubRemover:
    context = Ctx(env={"WERF_GITHUB_API_URL": gh.api.url}, credentials={"github-token": token}, docker_config=tmp_path)
    return GitHubRemover(context, client_factory=lambda host: RegistryClient(registry.host))


def test_untag_keeps_other_tags_on_same_digest(ghcr: Any, registry_open: RegistryService, tmp_path: Path) -> None:
    gh = ghcr()
    path = f"acme/tools/app{next(_names)}"
    shared = push_image(gh.client, path, ["v1", "v2"], seed=f"shared-{path}").digest
    alone = push_image(gh.client, path, ["v3"], seed=f"alone-{path}").digest
    repo = RepoAddress("ghcr.io", path)
    r = remover(gh, registry_open, tmp_path)
    r.preflight(repo)
    assert r.untag(repo, "v1") == "removed"
    assert tag_map(gh.client, path) == {"v2": shared, "v3": alone}
    # the other tag still pulls
    assert gh.client.get_manifest(path, "v2")[1].digest == shared
    encoded = path.split("/", 1)[1].replace("/", "%2F")
    paths = [p for _, p in gh.api.requests()]
    assert f"/orgs/acme/packages/container/{encoded}" in paths
    deletes = [p for m, p in gh.api.requests() if m == "DELETE"]
    assert len(deletes) == 1 and deletes[0].startswith(f"/orgs/acme/packages/container/{encoded}/versions/")
    assert all(c.headers["Authorization"] == f"Bearer {TOKEN}" for c in gh.api.calls)


def test_untag_only_tag_deletes_the_version(ghcr: Any, registry_open: RegistryService, tmp_path: Path) -> None:
    gh = ghcr()
    path = f"acme/app{next(_names)}"
    keep = push_image(gh.client, path, ["keep"], seed=f"keep-{path}").digest
    push_image(gh.client, path, ["old"], seed=f"old-{path}")
    r = remover(gh, registry_open, tmp_path)
    assert r.untag(RepoAddress("ghcr.io", path), "old") == "removed"
    assert tag_map(gh.client, path) == {"keep": keep}
    ident = gh.ids[next(d for d in gh.ids if d != keep)]
    assert ("DELETE", f"/orgs/acme/packages/container/{path.split('/')[1]}/versions/{ident}") in gh.api.requests()


def test_concurrent_untag_of_all_tags_of_a_version_deletes_it(
    ghcr: Any, registry_open: RegistryService, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    gh = ghcr()
    path = f"acme/both{next(_names)}"
    shared = push_image(gh.client, path, ["v1", "v2"], seed=f"both-{path}").digest
    keep = push_image(gh.client, path, ["v3"], seed=f"keep-{path}").digest
    r = remover(gh, registry_open, tmp_path)
    repo = RepoAddress("ghcr.io", path)
    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(lambda t: r.untag(repo, t), ["v1", "v2"])) == ["removed", "removed"]
    assert tag_map(gh.client, path) == {"v3": keep}
    assert gh.client.resolve(path, shared) is None  # the version went with its last tag, not left untagged


def test_deletes_keep_githubs_pace_one_at_a_time_a_second_apart(
    ghcr: Any, registry_open: RegistryService, tmp_path: Path
) -> None:
    """GitHub's guidance against secondary rate limits: serial requests, a second between mutating ones, even
    when cleanup's workers remove tags in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    gh = ghcr()
    path = f"acme/paced{next(_names)}"
    for n in range(3):
        push_image(gh.client, path, [f"old{n}"], seed=f"paced-{n}-{path}")
    keep = push_image(gh.client, path, ["keep"], seed=f"keep-{path}").digest
    r = remover(gh, registry_open, tmp_path)
    repo = RepoAddress("ghcr.io", path)
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(lambda t: r.untag(repo, t), ["old0", "old1", "old2"])) == ["removed"] * 3
    assert tag_map(gh.client, path) == {"keep": keep}
    deletes = sorted(c.at for c in gh.api.calls if c.method == "DELETE")
    assert len(deletes) == 3
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(deletes))


def test_versions_are_followed_through_link_pages(ghcr: Any, registry_open: RegistryService, tmp_path: Path) -> None:
    gh = ghcr()
    gh.page_size = 1
    path = f"acme/paged{next(_names)}"
    for i in range(3):
        push_image(gh.client, path, [f"t{i}"], seed=f"paged-{path}-{i}")
    r = remover(gh, registry_open, tmp_path)
    assert r.untag(RepoAddress("ghcr.io", path), "t0") == "removed"
    assert set(tag_map(gh.client, path)) == {"t1", "t2"}
    assert any("page=2" in p for _, p in gh.api.requests())


def test_missing_tag_is_absent_but_a_missing_package_is_an_error(
    ghcr: Any, registry_open: RegistryService, tmp_path: Path
) -> None:
    gh = ghcr()
    path = f"acme/app{next(_names)}"
    push_image(gh.client, path, ["a"], seed=f"a-{path}")
    r = remover(gh, registry_open, tmp_path)
    assert r.untag(RepoAddress("ghcr.io", path), "nope") == "absent"
    with pytest.raises(RegistryError, match="no package acme/never-pushed"):
        r.untag(RepoAddress("ghcr.io", "acme/never-pushed"), "a")
    assert not any(m == "DELETE" for m, _ in gh.api.requests())


def test_404_from_a_wrong_api_is_an_error(
    ghcr: Any, fake_api: Callable[[], FakeApi], registry_open: RegistryService, tmp_path: Path
) -> None:
    gh = ghcr()
    path = f"acme/app{next(_names)}"
    push_image(gh.client, path, ["a"], seed=f"a-{path}")
    nowhere = fake_api()  # answers 404 to everything: a wrong WERF_GITHUB_API_URL
    context = Ctx(env={"WERF_GITHUB_API_URL": nowhere.url}, credentials={"github-token": TOKEN}, docker_config=tmp_path)
    with pytest.raises(RegistryError, match="WERF_GITHUB_API_URL"):
        GitHubRemover(context, client_factory=lambda host: RegistryClient(registry_open.host)).untag(
            RepoAddress("ghcr.io", path), "a")
    assert tag_map(gh.client, path).keys() == {"a"}


def test_token_without_delete_scope_fails_preflight(ghcr: Any, registry_open: RegistryService, tmp_path: Path) -> None:
    gh = ghcr(scopes="read:packages, write:packages")
    with pytest.raises(PreflightError) as error:
        remover(gh, registry_open, tmp_path).preflight(RepoAddress("ghcr.io", "acme/app"))
    message = str(error.value)
    assert "delete:packages" in message and "--repo-github-token" in message and "WERF_REPO_GITHUB_TOKEN" in message
    assert TOKEN not in message
    assert not any(m == "DELETE" for m, _ in gh.api.requests())


@pytest.mark.parametrize(("scopes", "lacks"), [
    ("read:packages, write:packages",
     "the token lacks the delete:packages scope (it has: read:packages, write:packages)"),
    ("delete:packages, repo", "the token lacks the read:packages scope (it has: delete:packages, repo)"),
    ("repo", "the token lacks the delete:packages and read:packages scopes (it has: repo)"),
])
def test_a_token_short_of_scopes_is_told_the_ones_it_lacks_only(ghcr: Any, registry_open: RegistryService,
                                                                 tmp_path: Path, scopes: str, lacks: str) -> None:
    gh = ghcr(scopes=scopes)
    with pytest.raises(PreflightError) as error:
        remover(gh, registry_open, tmp_path).preflight(RepoAddress("ghcr.io", "acme/app"))
    assert lacks in str(error.value)


def test_github_token_stays_with_its_own_github(ghcr: Any, registry_open: RegistryService, tmp_path: Path) -> None:
    """$GITHUB_TOKEN of a github.com job is not sent to another GitHub's API (here: GHES on WERF_GITHUB_API_URL)."""
    gh = ghcr()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": TOKEN, "GITHUB_API_URL": "https://api.github.com",
           "WERF_GITHUB_API_URL": gh.api.url}
    context = Ctx(env=env, credentials={"github-token": TOKEN}, docker_config=tmp_path)
    r = GitHubRemover(context, client_factory=lambda host: RegistryClient(registry_open.host))
    with pytest.raises(PreflightError) as error:
        r.preflight(RepoAddress("ghcr.io", "acme/app"))
    message = str(error.value)
    assert "$GITHUB_TOKEN is sent only to the GitHub of $GITHUB_API_URL" in message
    assert "--repo-github-token" in message and TOKEN not in message
    assert gh.api.calls == []
    # the same token is used when that GitHub is the job's own
    own = Ctx(env={**env, "GITHUB_API_URL": gh.api.url}, credentials={"github-token": TOKEN}, docker_config=tmp_path)
    GitHubRemover(own, client_factory=lambda host: RegistryClient(registry_open.host)).preflight(
        RepoAddress("ghcr.io", "acme/app"))
    assert gh.api.calls and all(c.headers["Authorization"] == f"Bearer {TOKEN}" for c in gh.api.calls)


def test_missing_or_refused_token_fails_preflight(ghcr: Any, registry_open: RegistryService, tmp_path: Path) -> None:
    gh = ghcr()
    with pytest.raises(PreflightError) as missing:
        remover(gh, registry_open, tmp_path, token=None).preflight(RepoAddress("ghcr.io", "acme/app"))
    assert "--repo-github-token" in str(missing.value)
    assert gh.api.calls == []
    with pytest.raises(PreflightError) as refused:
        remover(gh, registry_open, tmp_path, token="ghp_WRONG").preflight(RepoAddress("ghcr.io", "acme/app"))
    assert "refused" in str(refused.value) and "ghp_WRONG" not in str(refused.value)


# --- legacy docker.pkg.github.com: GraphQL ---------------------------------------------


class GraphQL:
    """GitHub GraphQL: ``repository.packages.nodes.version(version:)`` and ``deletePackageVersion``."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api
        # (owner, repo, package) -> {version name: id}; legacy versions are named by tag
        self.packages = {("acme", "project", "app"): {"v1": "PV_1", "v2": "PV_2"}}
        api.route("POST", r"/graphql")(self.graphql)

    def graphql(self, call: Call) -> Reply:
        if call.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {}, {"message": "Bad credentials"}
        body = call.json()
        variables = body["variables"]
        if body["query"].startswith("mutation"):
            if "package-deletes-preview" not in call.headers.get("Accept", ""):
                return 200, {}, {"errors": [{"message": "preview header required"}]}
            for versions in self.packages.values():
                for name, ident in list(versions.items()):
                    if ident == variables["id"]:
                        del versions[name]
                        return 200, {}, {"data": {"deletePackageVersion": {"success": True}}}
            return 200, {}, {"errors": [{"message": "Could not resolve to a node"}]}
        versions = self.packages.get((variables["owner"], variables["name"], variables["package"]), {})
        node = {"version": {"id": versions[variables["version"]]} if variables["version"] in versions else None}
        return 200, {}, {"data": {"repository": {"packages": {"nodes": [node]}}}}


def test_legacy_registry_untag_through_graphql(fake_api: Callable[[], FakeApi], clean_env: None) -> None:
    gql = GraphQL(fake_api())
    context = Ctx(env={"WERF_GITHUB_API_URL": gql.api.url}, credentials={"github-token": TOKEN})
    r = GitHubRemover(context)
    repo = RepoAddress("docker.pkg.github.com", "acme/project/app")
    assert r.untag(repo, "v1") == "removed"
    assert r.untag(repo, "v9") == "absent"
    assert gql.packages[("acme", "project", "app")] == {"v2": "PV_2"}
    queries = [c.json()["query"].split("(")[0] for c in gql.api.calls]
    assert queries == ["query", "mutation", "query"]
    expected = {"owner": "acme", "name": "project", "package": "app", "version": "v1"}
    assert gql.api.calls[0].json()["variables"] == expected


def test_a_tag_pushed_onto_the_version_after_it_was_listed_keeps_it(
    ghcr: Any, registry_open: RegistryService, tmp_path: Path,
) -> None:
    gh = ghcr()
    path = f"acme/app{next(_names)}"
    old = push_image(gh.client, path, ["old"], seed=f"old-{path}").digest
    r = remover(gh, registry_open, tmp_path)
    listed = r._find_version

    def promote_after_listing(base: str, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        version = listed(base, wanted)  # GitHub says: "old" is the version's only tag ...
        body, info = gh.client.get_manifest(path, old)
        gh.client.put_manifest(path, "latest", body, info.media_type)  # ... and then latest is promoted onto it
        return version

    r._find_version = promote_after_listing  # type: ignore[method-assign]
    assert r.untag(RepoAddress("ghcr.io", path), "old") == "removed"
    assert tag_map(gh.client, path) == {"latest": old}  # the version was re-read before its DELETE: only old went


@pytest.mark.parametrize(("metadata", "field", "shape"), [
    ("container", "metadata", "an object"), ({"container": ["v1"]}, "metadata.container", "an object"),
    ({"container": {"tags": "v1"}}, "metadata.container.tags", "a list of tags"),
    ({"container": {"tags": [1]}}, "metadata.container.tags", "a list of tags")])
def test_a_version_whose_metadata_has_another_shape_makes_the_listing_malformed(
        ghcr: Any, registry_open: RegistryService, tmp_path: Path, metadata: Any, field: str, shape: str) -> None:
    gh = ghcr()
    path = f"acme/odd{next(_names)}"
    digest = push_image(gh.client, path, ["v1"], seed=f"odd-{path}").digest
    gh.metadata[digest] = metadata
    with pytest.raises(RegistryError) as raised:
        remover(gh, registry_open, tmp_path).list_manifests(RepoAddress("ghcr.io", path))
    message = raised.value.message
    assert message == (f"GitHub Packages: the package versions listing is malformed: version {gh.ids[digest]} has a "
                       f"{field} that is not {shape}")
