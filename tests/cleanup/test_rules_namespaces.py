"""`ci-env cleanup --rules` with a namespace selector, on each vendor whose API lists a namespace: the namespace's
repositories are listed through that API (never the Registry API's catalog), cleaned by the rule, and nothing
outside the namespace is touched; an empty namespace is nothing to do, one that does not exist an error.

The real registry plays each vendor's Registry API (ECR: moto behind ``tests.cleanup.vendors.EcrRegistryApi``);
the vendor's API is a recording fake of its documented behaviour (``tests.vendors.namespace_servers``) over the
same repositories, and the removal goes through the vendor's remover as in any cleanup.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import ago, run_cli
from tests.cleanup.vendors import HUB_JWT, HUB_PAT, HUB_USER, DockerHubOverRegistry, EcrRegistryApi, ecr_manifest
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService
from tests.vendors import namespace_servers as fakes
from tests.vendors.fakeapi import Call, FakeApi
from tests.vendors.images import tag_map
from tests.vendors.servers import TOKEN as GITHUB_TOKEN
from tests.vendors.servers import GitHubPackages

RULES = """\
version: 1
repositories:
- namespace: {namespace}
  rules:
  - tags: {{include: ['old-.*']}}
    remove: all
"""
HARBOR = ("robot$cleaner", "HarborCLEANUPSECRET")
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret", "AWS_REGION": "eu-west-1"}


@dataclass
class Setup:
    """A vendor ready for the run: where its repositories live (``host``), what the run needs (``args``, ``env``),
    the namespace to clean (``namespace``, holding ``inside``), one repository outside it (``outside``), an empty
    namespace and a missing one, the API's recorded calls and what a listing request of the namespace looks like."""

    host: str
    args: list[str]
    env: dict[str, str]
    namespace: str
    inside: list[str]
    outside: str
    empty: str
    missing: str
    missing_error: str
    api: FakeApi
    listing: Callable[[Call], bool]
    push: Callable[[str, str], None]
    tags: Callable[[str], set[str]]
    secret: str | None = None
    #: how the credentials show in the API's requests (header, value); None: the listing is anonymous
    credential: tuple[str, str] | None = None
    registry: RegistryService | None = None


def _on_registry(registry: RegistryService) -> tuple[Callable[[str, str], None], Callable[[str], set[str]]]:
    client = RegistryClient(registry.host, docker_config=Path("/nonexistent"))

    def push(path: str, tag: str) -> None:
        push_image(client, path, [tag], created=ago(10))

    return push, lambda path: set(client.list_tags(path))


def _github(registry: RegistryService, fake_api: Callable[[], FakeApi], _moto: str) -> Setup:
    api = fake_api()
    GitHubPackages(api, registry, "read:packages, delete:packages")
    fakes.GitHubOwners(api, fakes.stored_repositories(registry), GITHUB_TOKEN, orgs=("acme", "emptyorg"))
    base = f"ghns{uuid.uuid4().hex[:8]}"
    push, tags = _on_registry(registry)
    # the fake's organization is acme: the namespace acme/BASE lists owner acme and keeps what is under acme/BASE
    return Setup(registry.host, ["--images-repo-implementation", "github", "--repo-github-token", GITHUB_TOKEN],
                 {"WERF_GITHUB_API_URL": api.url}, f"acme/{base}", [f"acme/{base}/app", f"acme/{base}/team/api"],
                 f"acme/{base}x/app", "emptyorg", f"nobody{base}", "knows no organization or user nobody", api,
                 lambda call: call.raw_path == "/orgs/acme/packages", push, tags, GITHUB_TOKEN,
                 ("Authorization", f"Bearer {GITHUB_TOKEN}"), registry)


def _gitlab(registry: RegistryService, fake_api: Callable[[], FakeApi], _moto: str) -> Setup:
    api = fake_api()
    group = f"glns{uuid.uuid4().hex[:8]}"
    push, tags = _on_registry(registry)
    client = RegistryClient(registry.host, docker_config=Path("/nonexistent"))
    fakes.GitLabGroups(api, fakes.stored_repositories(registry), groups=(group, f"{group}-empty"),
                       tags_of=lambda path: tag_map(client, path))
    return Setup(registry.host, ["--images-repo-implementation", "gitlab"],
                 {"WERF_GITLAB_API_URL": f"{api.url}/api/v4"}, group, [f"{group}/app", f"{group}/sub/api"],
                 f"{group}x/app", f"{group}-empty", f"{group}-nope", f"no group or project {group}-nope", api,
                 lambda call: call.raw_path == f"/api/v4/groups/{group}/registry/repositories", push, tags,
                 registry=registry)


def _harbor(registry: RegistryService, fake_api: Callable[[], FakeApi], _moto: str) -> Setup:
    api = fake_api()
    project = f"hbns{uuid.uuid4().hex[:8]}"
    fakes.HarborProjects(api, fakes.stored_repositories(registry), (project, f"{project}-empty"), HARBOR,
                         storage=fakes.storage_of(registry))
    push, tags = _on_registry(registry)
    basic = base64.b64encode(":".join(HARBOR).encode()).decode()
    return Setup(registry.host, ["--images-repo-implementation", "harbor", "--repo-harbor-username", HARBOR[0],
                                 "--repo-harbor-password", HARBOR[1]],
                 {"WERF_HARBOR_API_URL": api.url}, project, [f"{project}/app", f"{project}/team/api"],
                 f"{project}x/app", f"{project}-empty", f"{project}-nope", f"has no project {project}-nope", api,
                 lambda call: call.raw_path == f"/api/v2.0/projects/{project}/repositories", push, tags, HARBOR[1],
                 ("Authorization", f"Basic {basic}"), registry)


def _dockerhub(registry: RegistryService, fake_api: Callable[[], FakeApi], _moto: str) -> Setup:
    api = fake_api()
    DockerHubOverRegistry(api, registry)
    namespace = f"hubns{uuid.uuid4().hex[:8]}"
    fakes.DockerHubNamespaces(api, fakes.stored_repositories(registry), (namespace, f"{namespace}-empty"),
                              jwt=HUB_JWT)
    push, tags = _on_registry(registry)
    return Setup(registry.host, ["--images-repo-implementation", "dockerhub", "--repo-docker-hub-username",
                                 HUB_USER, "--repo-docker-hub-token", HUB_PAT],
                 {"WERF_DOCKER_HUB_API_URL": api.url}, namespace, [f"{namespace}/app", f"{namespace}/api"],
                 f"{namespace}x/app", f"{namespace}-empty", f"{namespace}-nope", f"knows no namespace {namespace}-nope",
                 api, lambda call: call.raw_path == f"/v2/namespaces/{namespace}/repositories", push, tags, HUB_PAT,
                 ("Authorization", f"Bearer {HUB_JWT}"), registry)


def _ecr(registry: RegistryService, fake_api: Callable[[], FakeApi], moto_url: str) -> Setup:
    client = boto3.client("ecr", region_name="eu-west-1", endpoint_url=moto_url,
                          aws_access_key_id="testing", aws_secret_access_key="testing-secret")
    base = f"ecrns{uuid.uuid4().hex[:8]}"
    inside, outside = [f"{base}/app", f"{base}/team/api"], f"{base}x/app"
    for name in (*inside, outside):
        client.create_repository(repositoryName=name)
    shim = EcrRegistryApi(fake_api(), client)

    def push(path: str, tag: str) -> None:
        shim.put(path, tag, ecr_manifest(uuid.uuid4().hex))

    return Setup(shim.host, ["--images-repo-implementation", "ecr"], {"AWS_ENDPOINT_URL_ECR": moto_url, **AWS},
                 base, inside, outside, f"{base}-empty", "", "", shim.api,
                 lambda call: False, push, shim.tags)


VENDORS = {"github": _github, "gitlab": _gitlab, "harbor": _harbor, "dockerhub": _dockerhub, "ecr": _ecr}


@pytest.fixture(params=sorted(VENDORS))
def setup(request: pytest.FixtureRequest, registry_open: RegistryService, fake_api: Callable[[], FakeApi],
          clean_env: None) -> Iterator[Setup]:
    moto = request.getfixturevalue("moto_url") if request.param == "ecr" else ""
    yield VENDORS[request.param](registry_open, fake_api, moto)


def _catalogs(setup: Setup) -> int:
    """The catalog requests the registry has answered so far."""
    if setup.registry is None:
        return 0
    return sum(1 for _m, path, _s in setup.registry.requests() if path.startswith("/v2/_catalog"))


def _run(setup: Setup, tmp_path: Path, namespace: str, *extra: str) -> tuple[int, str, str]:
    rules = tmp_path / f"rules-{uuid.uuid4().hex[:6]}.yaml"
    rules.write_text(RULES.format(namespace=namespace))
    return run_cli("cleanup", "--rules", str(rules), "--registry", setup.host, *setup.args, *extra, cwd=tmp_path,
                   **setup.env)


def test_a_namespace_is_listed_through_the_vendor_api_and_cleaned_by_the_rule(setup: Setup, tmp_path: Path) -> None:
    for path in (*setup.inside, setup.outside):
        setup.push(path, "old-1")
        setup.push(path, "keep-1")
    catalogs = _catalogs(setup)
    code, _out, err = _run(setup, tmp_path, setup.namespace)
    assert code == 0, err
    assert f"{len(setup.inside)} repositories" in err and "listed through the registry's API" in err
    for path in setup.inside:
        assert setup.tags(path) == {"keep-1"}, (path, err)
    assert setup.tags(setup.outside) == {"old-1", "keep-1"}
    assert _catalogs(setup) == catalogs  # the catalog is never asked for
    listings = [call for call in setup.api.calls if setup.listing(call)]
    if setup.registry is not None:
        assert listings, "the vendor's API listed nothing"
    for call in listings:
        if setup.credential is None:
            assert "Authorization" not in call.headers and "PRIVATE-TOKEN" not in call.headers
        else:
            assert call.headers.get(setup.credential[0]) == setup.credential[1]
    if setup.secret:
        assert setup.secret not in err + _out


def test_an_empty_namespace_is_nothing_to_do_and_a_missing_one_an_error(setup: Setup, tmp_path: Path) -> None:
    code, _out, err = _run(setup, tmp_path, setup.empty)
    assert code == 0, err
    assert "0 repositories" in err and "nothing" in (err + _out).lower()
    if not setup.missing:  # ECR: a prefix, nothing to know as missing
        return
    setup.push(setup.outside, "old-1")
    code, _out, err = _run(setup, tmp_path, setup.missing)
    assert code == 1, err
    assert setup.missing_error in err and "Traceback" not in err
    assert setup.tags(setup.outside) == {"old-1"}
    if setup.secret:
        assert setup.secret not in err


def test_a_glob_without_a_namespace_is_refused_where_the_api_lists_by_namespace(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    setup = _github(registry_open, fake_api, "")
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrepositories:\n- glob: '*/app'\n  rules:\n  - remove: all\n")
    code, _out, err = run_cli("cleanup", "--rules", str(rules), "--registry", setup.host, *setup.args, cwd=tmp_path,
                              **setup.env)
    assert code == 2, err
    assert "glob */app" in err and "names no namespace" in err and "namespace: team" in err
    assert setup.api.calls == []


def test_shards_take_their_share_of_a_listed_namespace(registry_open: RegistryService,
                                                       fake_api: Callable[[], FakeApi], clean_env: None,
                                                       tmp_path: Path) -> None:
    from ci_env.cleanup.shards import shard_of

    setup = _gitlab(registry_open, fake_api, "")
    names = [f"{setup.namespace}/svc-{n}" for n in range(6)]
    for name in names:
        setup.push(name, "old-1")
    handled: list[set[str]] = []
    for index in (1, 2):
        report = tmp_path / f"r{index}.json"
        code, _out, err = _run(setup, tmp_path, setup.namespace, "--shard", f"{index}/2", "--dry-run",
                               "--report", str(report))
        assert code == 0, err
        handled.append({d["repository"] for d in json.loads(report.read_text())["decisions"]})
    everything = {f"{setup.host}/{name}" for name in names}
    assert handled == [{r for r in everything if shard_of(r, 2) == i} for i in (1, 2)]
    assert handled[0] | handled[1] == everything and not handled[0] & handled[1]
    assert sum(1 for call in setup.api.calls if setup.listing(call)) == 2  # each shard's job lists once



def test_a_repository_that_cannot_be_listed_fails_the_run_once_the_others_are_cleaned(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    api = fake_api()
    project = f"hbbr{uuid.uuid4().hex[:8]}"
    harbor = fakes.HarborProjects(api, fakes.stored_repositories(registry_open), (project,), HARBOR,
                                  storage=fakes.storage_of(registry_open))
    harbor.broken.add(f"{project}/broken")
    push, tags = _on_registry(registry_open)
    for name in ("fine", "broken"):
        push(f"{project}/{name}", "old-1")
        push(f"{project}/{name}", "keep-1")
    report = tmp_path / "report.json"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.format(namespace=project))
    code, _out, err = run_cli("cleanup", "--rules", str(rules), "--registry", registry_open.host,
                              "--images-repo-implementation", "harbor", "--repo-harbor-username", HARBOR[0],
                              "--repo-harbor-password", HARBOR[1], "--report", str(report), cwd=tmp_path,
                              WERF_HARBOR_API_URL=api.url)
    assert code == 1, err
    broken = f"{registry_open.host}/{project}/broken"
    assert f"ci-env: warning: {broken}: not listed, nothing removed" in err  # told before the removals
    assert "1 repository could not be listed, nothing was removed there (the others were cleaned)" in err
    assert "Traceback" not in err and HARBOR[1] not in err
    assert tags(f"{project}/fine") == {"keep-1"}
    assert tags(f"{project}/broken") == {"old-1", "keep-1"}
    skipped = json.loads(report.read_text())["skipped"]
    assert [entry["reference"] for entry in skipped] == [broken]


def test_a_listed_name_outside_the_namespace_or_not_a_repository_path_is_never_cleaned(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    """The GitLab API answers the group's listing with names that are no repository under the group (``..`` that a
    URL would resolve to another repository, an encoded slash, a backslash, a digest): none of them is
    touched, the ones the rules would select are told and fail the run (exit 1) once the group is cleaned; before,
    one such name stopped the whole run with a configuration error blaming the address (exit 2)."""
    api = fake_api()
    group = f"glhs{uuid.uuid4().hex[:8]}"
    victim = f"victim{uuid.uuid4().hex[:8]}/app"
    stored = fakes.stored_repositories(registry_open)
    hostile = [f"{group}/../{victim}", f"{group}/x/../../{victim}", f"{group}/..%2f{victim}", f"{group}/a\\b",
               f"{group}/a@sha256:{'0' * 64}"]
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    fakes.GitLabGroups(api, lambda: [*stored(), *hostile], groups=(group,), tags_of=lambda path: tag_map(client, path))
    push, tags = _on_registry(registry_open)
    for path in (f"{group}/app", victim):
        push(path, "old-1")
        push(path, "keep-1")
    report = tmp_path / "report.json"
    code, _out, err = _run(Setup(registry_open.host, ["--images-repo-implementation", "gitlab", "--report",
                                                      str(report)],
                                 {"WERF_GITLAB_API_URL": f"{api.url}/api/v4"}, group, [], "", "", "", "", api,
                                 lambda _call: False, push, tags), tmp_path, group)
    assert code == 1, err
    assert tags(f"{group}/app") == {"keep-1"}, err  # the group is cleaned
    assert tags(victim) == {"old-1", "keep-1"}  # what a name resolved to elsewhere is never touched
    assert "Traceback" not in err and "is invalid: use lower-case" not in err
    skipped = json.loads(report.read_text())["skipped"]
    assert sorted(entry["reference"] for entry in skipped) == sorted(f"{registry_open.host}/{name!r}"
                                                                     for name in hostile)
    for entry in skipped:
        assert entry["reason"].startswith(f"the listing of a GitLab group or project {group} gave this name, which is "
                                          "not a valid repository path: not cleaned"), entry
    deletes = [call for call in api.calls if call.method == "DELETE"]
    assert all(victim not in call.raw_path for call in deletes)
