"""Quay remover against a local server following Quay's documented API.

Documented behaviour followed: ``Authorization: Bearer`` OAuth token; ``GET /api/v1/repository/NS/REPO``
-> ``{"can_write", "can_admin", ...}``; ``DELETE /api/v1/repository/NS/REPO/tag/TAG`` -> 204, 404 when the
tag does not exist; 401/403 for a bad or weak token. Tags are the server's state. Listing:
``GET /api/v1/repository/NS/REPO/tag/?onlyActiveTags=true&limit=N&page=P`` (``limit`` at most 100) ->
``{"tags": [{"name", "manifest_digest", "start_ts", "last_modified", "is_manifest_list", ...}], "page",
"has_additional"}``; public repositories answer anonymously, private ones 404 without a token with read access.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ci_env.errors import PreflightError, RegistryError
from ci_env.registry.reference import RepoAddress
from ci_env.registry.vendors.quay import QuayRemover
from tests.vendors.conftest import Ctx
from tests.vendors.fakeapi import Call, FakeApi, Reply

TOKENS = {"WRITE-TOKEN-SECRET": True, "READ-TOKEN-SECRET": False}
REPO = RepoAddress("quay.io", "acme/app")


class Quay:
    def __init__(self, api: FakeApi) -> None:
        self.api = api
        self.tags = {"acme/app": {"v1": "sha256:aaa", "v2": "sha256:aaa", "v3": "sha256:bbb"}}
        self.public: set[str] = set()
        self.pushed: dict[tuple[str, str], float] = {}  # (repository, tag) -> start_ts
        api.route("GET", r"/api/v1/repository/([^/]+)/([^/]+)")(self.repository)
        api.route("GET", r"/api/v1/repository/([^/]+)/([^/]+)/tag/")(self.list_tags)
        api.route("DELETE", r"/api/v1/repository/([^/]+)/([^/]+)/tag/([^/]+)")(self.delete_tag)

    def token(self, call: Call) -> str | None:
        value = call.headers.get("Authorization", "").removeprefix("Bearer ")
        return value if value in TOKENS else None

    def repository(self, call: Call, ns: str, name: str) -> Reply:
        token = self.token(call)
        if token is None:
            return 401, {}, {"error_message": "Invalid token", "status": 401}
        if f"{ns}/{name}" not in self.tags:
            return 404, {}, {"error_message": "Not Found", "status": 404}
        return 200, {}, {"namespace": ns, "name": name, "can_write": TOKENS[token], "can_admin": False}

    def list_tags(self, call: Call, ns: str, name: str) -> Reply:
        repo = f"{ns}/{name}"
        if repo not in self.tags or (repo not in self.public and self.token(call) is None):
            return 404, {}, {"error_message": "Not Found", "status": 404}
        limit = min(int(call.query.get("limit", ["50"])[0]), 100)
        page = int(call.query.get("page", ["1"])[0])
        tags = sorted(self.tags[repo].items(), key=lambda item: -self.pushed.get((repo, item[0]), 0))
        chunk = tags[(page - 1) * limit: page * limit]
        return 200, {}, {
            "tags": [
                {"name": tag, "manifest_digest": digest, "reversion": False, "is_manifest_list": False,
                 "start_ts": self.pushed.get((repo, tag), 1700000000), "size": 1234,
                 "last_modified": "Tue, 14 Nov 2023 22:13:20 -0000"}
                for tag, digest in chunk
            ],
            "page": page,
            "has_additional": page * limit < len(tags),
        }

    def delete_tag(self, call: Call, ns: str, name: str, tag: str) -> Reply:
        token = self.token(call)
        if token is None or not TOKENS[token]:
            return 403, {}, {"error_message": "Unauthorized", "status": 403}
        tags = self.tags.get(f"{ns}/{name}", {})
        if tag not in tags:
            return 404, {}, {"error_message": "Not Found", "status": 404}
        del tags[tag]
        return 204, {}, None


@pytest.fixture
def quay(fake_api: Callable[[], FakeApi], clean_env: None) -> Quay:
    return Quay(fake_api())


def ctx(quay: Quay, **creds: Any) -> Ctx:
    return Ctx(env={"WERF_QUAY_API_URL": quay.api.url}, credentials=creds)


def test_untag_keeps_other_tags_on_same_digest(quay: Quay) -> None:
    r = QuayRemover(ctx(quay, quay_token="WRITE-TOKEN-SECRET"))
    r.preflight(REPO)
    assert r.untag(REPO, "v1") == "removed"
    assert r.untag(REPO, "v1") == "absent"
    assert quay.tags["acme/app"] == {"v2": "sha256:aaa", "v3": "sha256:bbb"}
    assert quay.api.requests() == [
        ("GET", "/api/v1/repository/acme/app"),
        ("DELETE", "/api/v1/repository/acme/app/tag/v1"),
        ("DELETE", "/api/v1/repository/acme/app/tag/v1"),
        ("GET", "/api/v1/repository/acme/app"),  # the 404 counts as gone: Quay knows the repository, not the tag
    ]
    assert quay.api.calls[1].headers["Authorization"] == "Bearer WRITE-TOKEN-SECRET"


def test_preflight_without_token_names_the_option(quay: Quay) -> None:
    with pytest.raises(PreflightError) as error:
        QuayRemover(ctx(quay)).preflight(REPO)
    assert "--repo-quay-token" in str(error.value) and "WERF_REPO_QUAY_TOKEN" in str(error.value)
    assert quay.api.calls == []


def test_preflight_with_bad_or_read_only_token(quay: Quay) -> None:
    with pytest.raises(PreflightError) as bad:
        QuayRemover(ctx(quay, quay_token="WRONG-SECRET")).preflight(REPO)
    assert "refused" in str(bad.value) and "WRONG-SECRET" not in str(bad.value)
    with pytest.raises(PreflightError) as weak:
        QuayRemover(ctx(quay, quay_token="READ-TOKEN-SECRET")).preflight(REPO)
    assert "may not write" in str(weak.value)
    assert quay.tags["acme/app"].keys() == {"v1", "v2", "v3"}


def test_404_from_a_wrong_api_or_for_a_missing_repository_is_an_error(
    quay: Quay, fake_api: Callable[[], FakeApi]
) -> None:
    """Only a 404 for a tag of a repository Quay knows is "already gone"."""
    nowhere = fake_api()  # answers 404 to everything: a wrong WERF_QUAY_API_URL
    wrong = QuayRemover(Ctx(env={"WERF_QUAY_API_URL": nowhere.url}, credentials={"quay_token": "WRITE-TOKEN-SECRET"}))
    with pytest.raises(RegistryError, match="WERF_QUAY_API_URL"):
        wrong.untag(REPO, "v1")
    with pytest.raises(RegistryError, match="acme/missing exists"):
        QuayRemover(ctx(quay, quay_token="WRITE-TOKEN-SECRET")).untag(RepoAddress("quay.io", "acme/missing"), "v1")
    assert quay.tags["acme/app"]["v1"] == "sha256:aaa"


def test_a_start_ts_that_is_no_time_in_seconds_gives_no_push_time_and_no_traceback(quay: Quay) -> None:
    """Milliseconds (a year past 9999), NaN and a number too large for the platform are no push time (the tag is
    aged otherwise), never a crash of the whole cleanup; a time in seconds is read as before."""
    quay.tags["acme/app"] = {"ms": "sha256:aaa", "nan": "sha256:aaa", "huge": "sha256:bbb", "fine": "sha256:bbb"}
    quay.pushed.update({("acme/app", "ms"): 1_700_000_000_000, ("acme/app", "nan"): float("nan"),
                        ("acme/app", "huge"): 10 ** 30, ("acme/app", "fine"): 1_700_000_000})
    infos = {info.tag: info.created for info in QuayRemover(ctx(quay, quay_token="READ-TOKEN-SECRET")).list_tags(REPO)}
    assert infos == {"ms": None, "nan": None, "huge": None, "fine": "2023-11-14T22:13:20Z"}
