"""Test servers shared by the vendor tests and the cleanup end-to-end runs.

``GitHubPackages``: GitHub's packages REST API (org ``acme``) on a FakeApi, its package versions DERIVED from a
real registry playing ghcr.io's Registry API (one version per digest, ``metadata.container.tags`` = the tags on
it; every other manifest the registry holds (platform manifests of an index, signatures, attestations) is an
untagged version, as ghcr.io lists them; ``DELETE .../versions/ID`` deletes the digest on the registry, as ghcr.io
does). The token it accepts is :data:`TOKEN`. (The moto server for ECR is the ``moto_url`` fixture of
``tests/vendors/conftest.py``.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ci_env.registry.client import RegistryClient
from tests.services.registry import RegistryService
from tests.vendors.fakeapi import Call, FakeApi, Reply
from tests.vendors.images import tag_map

TOKEN = "ghp_SECRETTOKEN0123456789"
#: a version's created_at/updated_at unless a test sets its own (``GitHubPackages.pushed``)
PUSHED = "2024-01-01T00:00:00Z"


class GitHubPackages:
    """GitHub's packages REST API for org ``acme``, versions derived from a real registry."""

    def __init__(self, api: FakeApi, registry: RegistryService, scopes: str | None) -> None:
        self.api = api
        self.client = RegistryClient(registry.host)
        self.storage = Path(registry.root) / "data" / "docker" / "registry" / "v2" / "repositories"
        self.scopes = scopes
        self.ids: dict[str, int] = {}
        #: digest -> when its version was created and last updated (a tag moved onto it), as GitHub lists them
        self.pushed: dict[str, str] = {}
        self.page_size = 100
        #: tags the versions listing leaves out (as a lagging listing does): their versions look untagged
        self.hidden_tags: set[str] = set()
        #: tag -> the digest the versions listing shows it on instead of the one it points at (a lagging listing:
        #: the tag moved, its old version still shows it, its new one does not yet)
        self.listed_on: dict[str, str] = {}
        #: called with the number of the versions listing (its first page) about to be answered: 1, 2, ...
        self.before_listing: Callable[[int], None] | None = None
        #: digest -> the ``metadata`` its version is listed with instead of the real one (an unexpected shape)
        self.metadata: dict[str, Any] = {}
        self.listings = 0
        api.route("GET", r"/user")(self.user)
        api.route("GET", r"/(orgs|users)/([^/]+)/packages/container/([^/]+)")(self.package)
        api.route("GET", r"/(orgs|users)/([^/]+)/packages/container/([^/]+)/versions")(self.versions)
        api.route("GET", r"/(orgs|users)/([^/]+)/packages/container/([^/]+)/versions/(\d+)")(self.version)
        api.route("DELETE", r"/(orgs|users)/([^/]+)/packages/container/([^/]+)/versions/(\d+)")(self.delete)

    def _ok(self, call: Call) -> bool:
        return call.headers.get("Authorization") == f"Bearer {TOKEN}"

    def user(self, call: Call) -> Reply:
        if not self._ok(call):
            return 401, {}, {"message": "Bad credentials"}
        headers = {} if self.scopes is None else {"X-OAuth-Scopes": self.scopes}
        return 200, headers, {"login": "someone-else"}

    def _path(self, kind: str, owner: str, package: str) -> str | None:
        if kind != "orgs" or owner != "acme":
            return None
        path = f"acme/{unquote(package)}"
        # read from the registry's storage, not its API: the tests count the Registry API requests ci-env sends
        tags = self.storage / path / "_manifests" / "tags"
        return path if tags.is_dir() and any(tags.iterdir()) else None

    def _versions(self, path: str) -> list[dict[str, Any]]:
        by_digest: dict[str, list[str]] = {digest: [] for digest in self._revisions(path)}
        for tag, digest in tag_map(self.client, path).items():
            if tag not in self.hidden_tags:
                by_digest.setdefault(self.listed_on.get(tag, digest), []).append(tag)
        versions = []
        for digest, tags in by_digest.items():
            ident = self.ids.setdefault(digest, 1000 + len(self.ids))
            when = self.pushed.get(digest, PUSHED)
            metadata = self.metadata.get(digest, {"package_type": "container", "container": {"tags": sorted(tags)}})
            versions.append({"id": ident, "name": digest, "created_at": when, "updated_at": when,
                             "metadata": metadata})
        return sorted(versions, key=lambda v: -v["id"])

    def _revisions(self, path: str) -> list[str]:
        """Every manifest the registry holds in ``path``, tagged or not."""
        revisions = self.storage / path / "_manifests" / "revisions" / "sha256"
        return sorted(f"sha256:{link.parent.name}" for link in revisions.glob("*/link")) if revisions.is_dir() else []

    def package(self, call: Call, kind: str, owner: str, package: str) -> Reply:
        if not self._ok(call):
            return 401, {}, {"message": "Bad credentials"}
        if self._path(kind, owner, package) is None:
            return 404, {}, {"message": "Package not found."}
        return 200, {}, {"name": unquote(package), "package_type": "container"}

    def versions(self, call: Call, kind: str, owner: str, package: str) -> Reply:
        path = self._path(kind, owner, package)
        if path is None:
            return 404, {}, {"message": "Package not found."}
        size = min(int(call.query.get("per_page", ["30"])[0]), self.page_size)
        page = int(call.query.get("page", ["1"])[0])
        if page == 1:
            self.listings += 1
            if self.before_listing is not None:
                self.before_listing(self.listings)
        versions = self._versions(path)
        chunk = versions[(page - 1) * size: page * size]
        headers = {}
        if page * size < len(versions):
            headers["Link"] = f'<{self.api.url}{call.raw_path}?per_page={size}&page={page + 1}>; rel="next"'
        return 200, headers, chunk

    def version(self, call: Call, kind: str, owner: str, package: str, ident: str) -> Reply:
        path = self._path(kind, owner, package)
        found = [v for v in self._versions(path) if v["id"] == int(ident)] if path is not None else []
        if not found:
            return 404, {}, {"message": "Package version not found."}
        return 200, {}, found[0]

    def delete(self, call: Call, kind: str, owner: str, package: str, ident: str) -> Reply:
        path = self._path(kind, owner, package)
        digest = {v: k for k, v in self.ids.items()}.get(int(ident))
        if path is None or digest is None or digest not in self._revisions(path):
            return 404, {}, {"message": "Package version not found."}
        self.client.delete_manifest(path, digest)
        return 204, {}, None
