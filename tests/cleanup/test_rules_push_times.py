"""`ci-env cleanup --rules` ages tags by the registry's push time on GitLab (tag details ``created_at``), Harbor
(each tag's ``push_time``), ACR (``lastUpdateTime``) and Docker Hub (``tag_last_pushed``), each played by a local
server following the vendor's documented API over the real registry's tags (the registry serves the manifests).

Every image's config says the opposite of when its tag was pushed, so the decisions show which age was used; the
vendor API's requests are asserted exactly."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import pytest

from ci_env.registry.client import RegistryClient
from tests.cleanup.test_cleanup_rules import SCHEMA, ago
from tests.cli import environ_without, run_ci_env
from tests.registry_client.images import push_image
from tests.services.registry import RegistryService
from tests.vendors.fakeapi import Call, FakeApi, Reply
from tests.vendors.images import tag_map

#: tag -> (days since its image config's created, days since the tag was pushed)
AGES = {"t-new": (300, 1), "t-mid": (200, 50), "t-old": (1, 100)}
#: keep-last=1;older-than=30d by push time: t-new stays (by the configs, t-old would, and t-new would go)
REMOVED = {"t-mid", "t-old"}
GITLAB_TOKEN = "glpat-PUSHTIMESECRET"
HARBOR_PASSWORD = "Harbor-SECRET-pw"
SP_SECRET = "sp-SECRET-value"


@dataclass
class Vendor:
    """One vendor's fake API, what the command needs to use it, and the requests it must see."""

    api: FakeApi
    args: list[str]
    env: dict[str, str]
    expected: Callable[[str], list[tuple[str, str]]]
    secret: str
    pushed: dict[str, str] = field(default_factory=dict)  # tag -> push time


def _gitlab(api: FakeApi, client: RegistryClient, path: str) -> Vendor:
    vendor = Vendor(api, ["--images-repo-implementation", "gitlab", "--repo-gitlab-token", GITLAB_TOKEN],
                    {"WERF_GITLAB_API_URL": api.url}, lambda p: [
                        ("GET", f"/projects/{p.replace('/', '%2F')}"),
                        ("GET", "/projects/7/registry/repositories?per_page=100&page=1"),
                        ("GET", "/projects/7/registry/repositories/3/tags?per_page=100&page=1"),
                        *[("GET", f"/projects/7/registry/repositories/3/tags/{tag}") for tag in sorted(AGES)]],
                    GITLAB_TOKEN)

    def authorized(call: Call) -> bool:
        return call.headers.get("PRIVATE-TOKEN") == GITLAB_TOKEN

    @api.route("GET", r"/projects/([^/]+)")
    def project(call: Call, name: str) -> Reply:
        if not authorized(call):
            return 401, {}, {"message": "401 Unauthorized"}
        return (200, {}, {"id": 7}) if unquote(name) == path else (404, {}, {"message": "404 Project Not Found"})

    @api.route("GET", r"/projects/7/registry/repositories")
    def repositories(call: Call) -> Reply:
        return 200, {}, [{"id": 3, "path": path, "location": f"{client.registry}/{path}"}]

    @api.route("GET", r"/projects/7/registry/repositories/3/tags")
    def tags(call: Call) -> Reply:
        return 200, {}, [{"name": t, "path": f"{path}:{t}"} for t in sorted(tag_map(client, path))]

    @api.route("GET", r"/projects/7/registry/repositories/3/tags/([^/]+)")
    def details(call: Call, tag: str) -> Reply:
        digest = tag_map(client, path).get(unquote(tag))
        if digest is None or not authorized(call):
            return 404, {}, {"message": "404 Tag Not Found"}
        return 200, {}, {"name": unquote(tag), "digest": digest, "created_at": vendor.pushed[unquote(tag)],
                         "revision": "c0ffee", "total_size": 1234}

    return vendor


def _harbor(api: FakeApi, client: RegistryClient, path: str) -> Vendor:
    project, _, name = path.partition("/")
    artifacts = f"/api/v2.0/projects/{project}/repositories/{name}/artifacts"
    vendor = Vendor(api, ["--images-repo-implementation", "harbor", "--repo-harbor-username", "admin",
                          "--repo-harbor-password", HARBOR_PASSWORD], {"WERF_HARBOR_API_URL": api.url},
                    lambda p: [("GET", f"{artifacts}?with_tag=true&page_size=100&page=1"),
                               ("GET", f"{artifacts}?with_tag=true&page_size=100&page=2")], HARBOR_PASSWORD)
    token = "Basic " + base64.b64encode(f"admin:{HARBOR_PASSWORD}".encode()).decode()

    @api.route("GET", r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)/artifacts")
    def listing(call: Call, _project: str, _name: str) -> Reply:
        if call.headers.get("Authorization") != token:
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        by_digest: dict[str, list[str]] = {}
        for tag, digest in tag_map(client, path).items():
            by_digest.setdefault(digest, []).append(tag)
        page = int(call.query["page"][0])
        items = [{"digest": digest, "manifest_media_type": "application/vnd.oci.image.manifest.v1+json",
                  "media_type": "application/vnd.oci.image.config.v1+json", "push_time": ago(500),
                  "tags": [{"name": t, "push_time": vendor.pushed[t]} for t in tags]}
                 for digest, tags in sorted(by_digest.items())]
        chunk = items[(page - 1) * 2: page * 2]  # two artifacts a page: the listing follows Link
        headers = {"X-Total-Count": str(len(items))}
        if page * 2 < len(items):
            headers["Link"] = f'<{artifacts}?with_tag=true&page_size=100&page={page + 1}>; rel="next"'
        return 200, headers, chunk

    @api.route("GET", r"/api/v2.0/projects/([^/]+)")
    def get_project(call: Call, _name: str) -> Reply:
        return 200, {}, {"project_id": 5, "name": project}

    @api.route("GET", r"/api/v2.0/users/current/permissions")
    def permissions(call: Call) -> Reply:
        return 200, {}, [{"resource": "tag", "action": "delete"}]

    return vendor


def _jwt(claims: dict[str, Any]) -> str:
    def enc(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'none'})}.{enc(claims)}.sig"


def _acr(api: FakeApi, client: RegistryClient, path: str) -> Vendor:
    vendor = Vendor(api, ["--images-repo-implementation", "acr"],
                    {"WERF_ACR_API_URL": api.url, "AZURE_AUTHORITY_HOST": api.url, "AZURE_CLIENT_ID": "app-1",
                     "AZURE_CLIENT_SECRET": SP_SECRET, "AZURE_TENANT_ID": "tenant-1"},
                    lambda p: [("GET", f"/acr/v1/{p}/_tags?n=100"), ("GET", f"/acr/v1/{p}/_tags?last=t-new&n=100")],
                    SP_SECRET)

    @api.route("POST", r"/tenant-1/oauth2/v2\.0/token")
    def aad(call: Call) -> Reply:
        assert call.form()["client_secret"] == SP_SECRET
        return 200, {}, {"access_token": "aad-token", "token_type": "Bearer"}

    @api.route("POST", r"/oauth2/exchange")
    def exchange(call: Call) -> Reply:
        return 200, {}, {"refresh_token": "acr-refresh"}

    @api.route("POST", r"/oauth2/token")
    def token(call: Call) -> Reply:
        _kind, name, actions = call.form()["scope"].split(":")
        access = _jwt({"access": [{"type": "repository", "name": name, "actions": actions.split(",")}]})
        return 200, {}, {"access_token": access}

    @api.route("GET", r"/acr/v1/(.+)/_tags")
    def tags(call: Call, name: str) -> Reply:
        bearer = call.headers.get("Authorization", "").removeprefix("Bearer ")
        granted = json.loads(base64.urlsafe_b64decode(bearer.split(".")[1] + "==")) if bearer.count(".") == 2 else {}
        if {"type": "repository", "name": name, "actions": ["metadata_read"]} not in granted.get("access", []):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        everything = sorted(tag_map(client, name).items())
        last = call.query.get("last", [""])[0]
        page = [(t, d) for t, d in everything if t > last][:2]  # two a page, as n=2 would: Link to the rest
        headers = {}
        if page and page[-1][0] != everything[-1][0]:
            headers["Link"] = f'</acr/v1/{name}/_tags?last={page[-1][0]}&n=100>; rel="next"'
        return 200, headers, {"registry": client.registry, "imageName": name, "tags": [
            {"name": t, "digest": d, "createdTime": ago(500), "lastUpdateTime": vendor.pushed[t], "signed": False}
            for t, d in page]}

    return vendor


VENDORS = {"gitlab": _gitlab, "harbor": _harbor, "acr": _acr}


@pytest.mark.parametrize("name", sorted(VENDORS))
def test_the_vendors_push_time_ages_the_tags(name: str, registry_open: RegistryService,
                                             fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"proj{uuid.uuid4().hex[:6]}/app"
    vendor = VENDORS[name](fake_api(), client, path)
    for tag, (built, pushed) in AGES.items():
        push_image(client, path, [tag], created=ago(built))
        vendor.pushed[tag] = ago(pushed)
    report = tmp_path / "report.json"
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "KUBECONFIG": str(tmp_path / "none"), **vendor.env}
    done = run_ci_env("cleanup", "--registry", registry_open.host, "--repository", path, "--rule",
                      "keep-last=1;older-than=30d", *vendor.args, "--dry-run", "--report", str(report), env=env,
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(report.read_text())
    jsonschema.validate(document, SCHEMA)
    decisions = {d["tag"]: d for d in document["decisions"]}
    assert {tag for tag, d in decisions.items() if d["outcome"] == "would-remove"} == REMOVED
    ages = {tag: (d["age_source"], d["published"][:10]) for tag, d in decisions.items()}
    assert ages == {tag: ("registry", ago(pushed)[:10]) for tag, (_built, pushed) in AGES.items()}
    assert "by the registry's push time" in decisions["t-old"]["reason"]
    preflight = re.compile(r"/api/v2\.0/(projects/[^/]+|users/current/permissions)")  # Harbor's, in a dry run
    listing = [(c.method, c.target) for c in vendor.api.calls if c.method == "GET" and not preflight.fullmatch(c.path)]
    assert sorted(listing) == sorted(vendor.expected(path))
    assert vendor.secret not in done.stderr + done.stdout + report.read_text()


#: tag -> (its image config's created, its push time as Harbor lists it): placeholders (Go's zero time, the Unix
#: epoch, the 1980 of reproducible builds) and a time far ahead are no ages; t-new is the newest real push
PLACEHOLDERS = {"t-zero": ("1980-01-01T00:00:01Z", "0001-01-01T00:00:00.000Z"),
                "t-epoch": ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
                "t-future": (ago(400), "2999-01-01T00:00:00.000+00:00"),
                "t-new": (ago(300), ago(1)), "t-old": (ago(300), ago(100))}


def test_a_placeholder_or_future_push_time_never_makes_a_tag_look_old_or_pushes_a_recent_one_out(
        registry_open: RegistryService, fake_api: Callable[[], FakeApi], clean_env: None, tmp_path: Path) -> None:
    """keep-last=1: the tag pushed last stays; one whose only times are placeholders has no age (kept, "push time
    unknown"), and one listed as pushed in 2999 is aged by its config instead. Before, the placeholders made
    t-zero and t-epoch look 2,000 and 56 years old, and t-future took the place of t-new, which was removed."""
    client = RegistryClient(registry_open.host, docker_config=Path("/nonexistent"))
    path = f"proj{uuid.uuid4().hex[:6]}/app"
    vendor = _harbor(fake_api(), client, path)
    for tag, (created, pushed) in PLACEHOLDERS.items():
        push_image(client, path, [tag], created=created)
        vendor.pushed[tag] = pushed
    report = tmp_path / "report.json"
    env = {**environ_without(), "DOCKER_CONFIG": str(tmp_path / "none"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "KUBECONFIG": str(tmp_path / "none"), **vendor.env}
    done = run_ci_env("cleanup", "--registry", registry_open.host, "--repository", path, "--rule", "keep-last=1",
                      *vendor.args, "--dry-run", "--report", str(report), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    decisions = {d["tag"]: d for d in json.loads(report.read_text())["decisions"]}
    assert {tag for tag, d in decisions.items() if d["outcome"] == "would-remove"} == {"t-future", "t-old"}
    for tag in ("t-zero", "t-epoch"):
        assert "push time unknown" in decisions[tag]["reason"], decisions[tag]
    assert "the most recent tag" in decisions["t-new"]["reason"]
    assert "by the image config" in decisions["t-future"]["reason"]
