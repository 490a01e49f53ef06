"""The namespace listings of the vendor APIs, as their documentation describes them, on recording FakeApi servers.

Each fake lists the repositories ``paths()`` gives (a static list, or the repositories a real registry holds:
:func:`stored_repositories`), so a cleanup by rules lists through the fake and removes through the vendor's remover
from the same registry:

- GitHub: ``GET /orgs/ORG/packages`` and ``/users/USER/packages`` (``package_type=container`` required,
  ``per_page``/``page``, ``Link: rel="next"`` absolute), ``Authorization: Bearer TOKEN`` required.
- GitLab: ``GET /api/v4/groups/ID/registry/repositories`` (the group's and its subgroups' projects) and
  ``/api/v4/projects/ID/registry/repositories`` (ID: the URL-encoded path), ``per_page``/``page`` with
  ``X-Next-Page``; anonymous reads for public groups, ``PRIVATE-TOKEN`` otherwise.
- Harbor: ``GET /api/v2.0/projects/P/repositories`` (``page``/``page_size``, ``Link`` relative, ``X-Total-Count``),
  404 for an unknown project; plus what the Harbor remover calls, removing a tag's link in the registry's storage.
- Docker Hub: ``GET /v2/namespaces/NS/repositories`` (``page_size``/``page``, ``next`` absolute), 404 for an
  unknown namespace.
- Quay: ``GET /api/v1/repository?namespace=NS`` (``next_page`` token), ``GET /api/v1/organization/NS`` and
  ``/api/v1/users/NS`` (404 when unknown).

``next_host``: when set, a fake's next page points at that origin instead (a server sending a listing elsewhere).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from tests.services.registry import RegistryService
from tests.vendors.fakeapi import Call, FakeApi, Reply

Paths = Callable[[], list[str]]
#: a repository path -> its tags and their digests, as the registry holds them now
TagsOf = Callable[[str], dict[str, str]]


def storage_of(registry: RegistryService) -> Path:
    return Path(registry.root) / "data" / "docker" / "registry" / "v2" / "repositories"


def stored_repositories(registry: RegistryService) -> Paths:
    """The paths of the repositories of ``registry`` that hold a tag, read from its storage (not its API: tests
    count the Registry API requests ci-env sends)."""
    root = storage_of(registry)

    def paths() -> list[str]:
        found = []
        for tags in root.glob("**/_manifests/tags"):
            if tags.is_dir() and any(tags.iterdir()):
                found.append(str(tags.parent.parent.relative_to(root)))
        return sorted(found)

    return paths


def _page(call: Call, size_key: str, default: int) -> tuple[int, int]:
    return int(call.query.get("page", ["1"])[0]), int(call.query.get(size_key, [str(default)])[0])


class _Fake:
    def __init__(self, api: FakeApi, paths: Paths) -> None:
        self.api = api
        self.paths = paths
        self.next_host: str | None = None

    def _origin(self) -> str:
        return self.next_host or self.api.url

    def listings(self) -> list[Call]:
        return [call for call in self.api.calls if call.method == "GET"]


class GitHubOwners(_Fake):
    """GitHub's "List packages for an organization / a user" for orgs ``orgs`` and users ``users``."""

    def __init__(self, api: FakeApi, paths: Paths, token: str, orgs: tuple[str, ...] = ("acme",),
                 users: tuple[str, ...] = ()) -> None:
        super().__init__(api, paths)
        self.token, self.orgs, self.users = token, orgs, users
        self.page_size = 100  #: GitHub's maximum per_page
        api.route("GET", r"/(orgs|users)/([^/]+)/packages")(self.packages)

    def packages(self, call: Call, kind: str, owner: str) -> Reply:
        if call.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {}, {"message": "Bad credentials"}
        if owner not in (self.orgs if kind == "orgs" else self.users):
            return 404, {}, {"message": "Not Found"}
        if call.query.get("package_type") != ["container"]:
            return 400, {}, {"message": "package_type is required"}
        page, size = _page(call, "per_page", 30)
        size = min(size, self.page_size)
        names = [path.removeprefix(f"{owner}/") for path in self.paths() if path.startswith(f"{owner}/")]
        rows = [{"id": 500 + n, "name": name, "package_type": "container", "visibility": "private"}
                for n, name in enumerate(names)]
        headers = {}
        if page * size < len(rows):
            headers["Link"] = (f'<{self._origin()}{call.raw_path}?package_type=container&per_page={size}'
                               f'&page={page + 1}>; rel="next"')
        return 200, headers, rows[(page - 1) * size: page * size]


class GitLabGroups(_Fake):
    """GitLab's group and project registry repository listings; ``groups`` and ``projects`` are paths."""

    def __init__(self, api: FakeApi, paths: Paths, groups: tuple[str, ...], projects: tuple[str, ...] = (),
                 token: str | None = None, tags_of: TagsOf | None = None) -> None:
        super().__init__(api, paths)
        self.groups, self.projects, self.token, self.tags_of = groups, projects, token, tags_of
        api.route("GET", r"/api/v4/(groups|projects)/([^/]+)/registry/repositories")(self.repositories)
        if tags_of is not None:  # each stored repository is a project's root repository, as GitLab lists them
            api.route("GET", r"/api/v4/projects/([^/]+)")(self.project)
            api.route("GET", r"/api/v4/projects/(\d+)/registry/repositories/(\d+)/tags")(self.tags)
            api.route("GET", r"/api/v4/projects/(\d+)/registry/repositories/(\d+)/tags/([^/]+)")(self.tag)

    def _path_of(self, ident: str) -> str | None:
        """The stored repository a project id or URL-encoded path names, or None."""
        paths = self.paths()
        if ident.isdigit():
            index = int(ident) - 1000
            return paths[index] if 0 <= index < len(paths) else None
        path = unquote(ident)
        return path if path in paths else None

    def project(self, call: Call, ident: str) -> Reply:
        path = self._path_of(ident)
        if path is None:
            return 404, {}, {"message": "404 Project Not Found"}
        return 200, {}, {"id": 1000 + self.paths().index(path), "path_with_namespace": path}

    def tags(self, call: Call, project: str, _repository: str) -> Reply:
        path = self._path_of(project)
        assert self.tags_of is not None
        if path is None:
            return 404, {}, {"message": "404 Repository Not Found"}
        return 200, {}, [{"name": tag, "path": f"{path}:{tag}"} for tag in sorted(self.tags_of(path))]

    def tag(self, call: Call, project: str, _repository: str, tag: str) -> Reply:
        path = self._path_of(project)
        assert self.tags_of is not None
        digest = self.tags_of(path).get(unquote(tag)) if path is not None else None
        if digest is None:
            return 404, {}, {"message": "404 Tag Not Found"}
        return 200, {}, {"name": unquote(tag), "digest": digest, "created_at": "2026-01-01T00:00:00.000+00:00"}

    def repositories(self, call: Call, kind: str, ident: str) -> Reply:
        if self.token is not None and call.headers.get("PRIVATE-TOKEN") != self.token:
            return 401, {}, {"message": "401 Unauthorized"}
        path = unquote(ident)
        by_id = self._path_of(ident) if kind == "projects" and ident.isdigit() and self.tags_of else None
        if by_id is not None:  # a project by id (the tag listing's path): its root repository
            path = by_id
        elif path not in (self.groups if kind == "groups" else self.projects):
            return 404, {}, {"message": f"404 {kind[:-1].title()} Not Found"}
        page, size = _page(call, "per_page", 20)
        under = [p for p in self.paths() if p == path or (by_id is None and p.startswith(f"{path}/"))]
        rows = [{"id": 70 + n, "name": p.rsplit("/", 1)[-1], "path": p,
                 "project_id": 1000 + self.paths().index(p) if self.tags_of is not None else 9,
                 "location": f"registry.example/{p}"} for n, p in enumerate(under)]
        headers = {"X-Page": str(page), "X-Per-Page": str(size)}
        if page * size < len(rows):
            headers["X-Next-Page"] = str(page + 1)
        return 200, headers, rows[(page - 1) * size: page * size]


class HarborProjects(_Fake):
    """Harbor's project repository listing, and the calls of the Harbor remover over a real registry's storage
    (its tag delete removes the tag's link, as Harbor's does: the artifact stays for its other tags). The artifact
    listing has the untagged manifests too (a revision no tag links to, ``tags: null``, as Harbor lists an artifact
    without tags; it lists the children of indexes and the accessories too, where Harbor hides them); ``GET
    .../artifacts/REF`` reads one artifact with its tags, its ``references`` (an index's children) and, with
    ``with_accessory=true``, its ``accessories`` (the manifests whose ``subject`` it is, and those under a cosign tag
    ``sha256-<hex>.sig``/``.att``/``.sbom`` naming it). ``DELETE .../artifacts/REF`` deletes as Harbor's artifact
    controller does (``deleteDeeply``): refused (412) for an artifact an index references; else the artifact with
    every tag it has, each of its accessories with every tag on it, and each child no tag and no other index
    holds (with its accessories): their revision links and tag links go."""

    def __init__(self, api: FakeApi, paths: Paths, projects: tuple[str, ...], user: tuple[str, str],
                 storage: Path | None = None) -> None:
        super().__init__(api, paths)
        self.projects, self.user, self.storage = projects, user, storage
        self.broken: set[str] = set()  #: repositories whose artifact listing is forbidden (403)
        self.pushed: dict[str, str] = {}  #: digest -> its artifact's push_time (default: 2026-01-01)
        self.artifact_listings = 0  #: artifact listings answered so far
        #: called with the listing's number (1, 2, ...) before the artifact listing is answered
        self.before_listing: Callable[[int], None] | None = None
        #: called with the digest before an artifact DELETE is answered (another job pushing meanwhile)
        self.before_delete: Callable[[str], None] | None = None
        #: the error of the artifact DELETE (status, body), None: deletes
        self.delete_refused: tuple[int, dict[str, Any]] | None = None
        api.route("GET", r"/api/v2.0/projects/([^/]+)/repositories")(self.repositories)
        api.route("GET", r"/api/v2.0/projects/([^/]+)")(self.project)
        api.route("GET", r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)")(self.repository)
        api.route("DELETE", r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)/artifacts/([^/]+)/tags/([^/]+)")(
            self.delete_tag)
        api.route("GET", r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)/artifacts")(self.artifacts)
        api.route("GET", r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)/artifacts/([^/]+)")(self.artifact)
        api.route("DELETE", r"/api/v2.0/projects/([^/]+)/repositories/([^/]+)/artifacts/([^/]+)")(
            self.delete_artifact)

    def _manifests(self, project: str, repository: str) -> Path:
        assert self.storage is not None
        return self.storage / project / unquote(unquote(repository)) / "_manifests"

    def _tags_by_digest(self, manifests: Path) -> dict[str, list[str]]:
        by_digest: dict[str, list[str]] = {}
        for tag in sorted((manifests / "tags").iterdir()) if (manifests / "tags").is_dir() else []:
            link = tag / "current" / "link"
            if link.is_file():
                by_digest.setdefault(link.read_text().strip(), []).append(tag.name)
        return by_digest

    def _revisions(self, manifests: Path) -> list[str]:
        revisions = manifests / "revisions" / "sha256"
        return sorted(f"sha256:{link.parent.name}" for link in revisions.glob("*/link")) if revisions.is_dir() else []

    def _row(self, digest: str, tags: list[str]) -> dict[str, Any]:
        return {"digest": digest, "push_time": self.pushed.get(digest, "2026-01-01T00:00:00.000Z"),
                "tags": [{"name": tag, "push_time": "2026-01-01T00:00:00.000Z"} for tag in tags] or None}

    def artifacts(self, call: Call, project: str, repository: str) -> Reply:
        """``?with_tag=true``: the repository's artifacts (one per digest) with their tags, from the storage's tag
        links, every tag pushed on 2026-01-01, and the revisions no tag links to (``tags: null``; one page: the
        fake's repositories are small)."""
        if not self._ok(call):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        if f"{project}/{unquote(unquote(repository))}" in self.broken:
            return 403, {}, {"errors": [{"code": "FORBIDDEN", "message": "forbidden"}]}
        self.artifact_listings += 1
        if self.before_listing is not None:
            self.before_listing(self.artifact_listings)
        manifests = self._manifests(project, repository)
        if not (manifests / "tags").is_dir():
            return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": "repository not found"}]}
        by_digest = self._tags_by_digest(manifests)
        for digest in self._revisions(manifests):
            by_digest.setdefault(digest, [])
        rows = [self._row(digest, tags) for digest, tags in sorted(by_digest.items())]
        return 200, {"X-Total-Count": str(len(rows))}, rows

    def artifact(self, call: Call, project: str, repository: str, reference: str) -> Reply:
        """One artifact by digest, with its tags (``with_tag=true``), its references and (``with_accessory=true``)
        its accessories."""
        if not self._ok(call):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        manifests, digest = self._manifests(project, repository), unquote(reference)
        if digest not in self._revisions(manifests):
            return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": f"artifact {digest} not found"}]}
        row = self._row(digest, self._tags_by_digest(manifests).get(digest, []))
        row["references"] = [{"child_digest": child} for child in self._references(digest)] or None
        if call.query.get("with_accessory") == ["true"]:
            row["accessories"] = [{"digest": accessory, "subject_artifact_digest": digest, "type": kind}
                                  for accessory, kind in self._accessories(manifests, digest)] or None
        return 200, {}, row

    def _manifest(self, digest: str) -> dict[str, Any]:
        """The manifest ``digest`` from the registry's blob storage, parsed ({} for what is not a JSON object)."""
        assert self.storage is not None
        hexa = digest.removeprefix("sha256:")
        try:
            parsed = json.loads((self.storage.parent / "blobs" / "sha256" / hexa[:2] / hexa / "data").read_bytes())
        except (OSError, ValueError):
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def _references(self, digest: str) -> list[str]:
        """The children of the index ``digest`` (none for an image manifest)."""
        entries = self._manifest(digest).get("manifests") or []
        return [e["digest"] for e in entries if isinstance(e, dict) and isinstance(e.get("digest"), str)]

    def _accessories(self, manifests: Path, digest: str) -> list[tuple[str, str]]:
        """(digest, type) of the accessories of ``digest``, as Harbor records them at push: the manifests naming
        it as ``subject``, and those under a cosign tag naming it."""
        found: dict[str, str] = {}
        for revision in self._revisions(manifests):
            subject = self._manifest(revision).get("subject")
            if isinstance(subject, dict) and subject.get("digest") == digest:
                found[revision] = "subject.accessory"
        cosign = digest.replace(":", "-")
        for revision, tags in self._tags_by_digest(manifests).items():
            if any(tag in (f"{cosign}.sig", f"{cosign}.att", f"{cosign}.sbom") for tag in tags):
                found.setdefault(revision, "signature.cosign")
        return sorted(found.items())

    def _delete_deeply(self, manifests: Path, digest: str, root: bool, dropped: set[str]) -> bool:
        """Harbor's ``deleteDeeply``: False (nothing deleted) for a root artifact an index references; a child
        with a tag or another index referencing it stays. ``dropped``: the indexes whose references are gone."""
        if digest not in self._revisions(manifests):
            return True
        if not root and self._tags_by_digest(manifests).get(digest):
            return True
        if any(p not in dropped and p != digest and digest in self._references(p)
               for p in self._revisions(manifests)):
            return not root
        for accessory, _kind in self._accessories(manifests, digest):
            if accessory != digest:
                self._delete_deeply(manifests, accessory, True, dropped)
        dropped.add(digest)
        for child in self._references(digest):
            self._delete_deeply(manifests, child, False, dropped)
        for tag in self._tags_by_digest(manifests).get(digest, []) if root else []:
            shutil.rmtree(manifests / "tags" / tag)
        shutil.rmtree(manifests / "revisions" / "sha256" / digest.removeprefix("sha256:"), ignore_errors=True)
        return True

    def delete_artifact(self, call: Call, project: str, repository: str, reference: str) -> Reply:
        """The artifact goes with every tag it has (Harbor's artifact delete)."""
        if not self._ok(call):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        digest = unquote(reference)
        if self.before_delete is not None:
            self.before_delete(digest)
        if self.delete_refused is not None:
            return self.delete_refused[0], {}, self.delete_refused[1]
        manifests = self._manifests(project, repository)
        if digest not in self._revisions(manifests):
            return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": f"artifact {digest} not found"}]}
        if not self._delete_deeply(manifests, digest, True, set()):
            return 412, {}, {"errors": [{"code": "PRECONDITION", "message":
                                         "the deleting artifact is referenced by others"}]}
        return 200, {}, None

    def _ok(self, call: Call) -> bool:
        expected = base64.b64encode(":".join(self.user).encode()).decode()
        return call.headers.get("Authorization") == f"Basic {expected}"

    def repositories(self, call: Call, project: str) -> Reply:
        if not self._ok(call):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}
        if project not in self.projects:
            return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": f"project {project} not found"}]}
        page, size = _page(call, "page_size", 10)
        rows = [{"id": 30 + n, "name": p, "artifact_count": 1} for n, p in enumerate(self.paths())
                if p.startswith(f"{project}/")]
        headers = {"X-Total-Count": str(len(rows))}
        if page * size < len(rows):
            target = f"/api/v2.0/projects/{project}/repositories?page={page + 1}&page_size={size}"
            headers["Link"] = f'<{self.next_host + target if self.next_host else target}>; rel="next"'
        return 200, headers, rows[(page - 1) * size: page * size]

    def project(self, call: Call, name: str) -> Reply:
        if not self._ok(call):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        if name not in self.projects:
            return 404, {}, {"errors": [{"code": "NOT_FOUND"}]}
        return 200, {}, {"project_id": 3, "name": name}

    def repository(self, call: Call, project: str, repository: str) -> Reply:
        path = f"{project}/{unquote(unquote(repository))}"
        if path not in self.paths():
            return 404, {}, {"errors": [{"code": "NOT_FOUND"}]}
        return 200, {}, {"name": path}

    def delete_tag(self, call: Call, project: str, repository: str, reference: str, tag: str) -> Reply:
        assert self.storage is not None
        if not self._ok(call):
            return 401, {}, {"errors": [{"code": "UNAUTHORIZED"}]}
        link = self.storage / project / unquote(unquote(repository)) / "_manifests" / "tags" / unquote(tag)
        if not link.is_dir():
            return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": "tag not found"}]}
        shutil.rmtree(link)
        return 200, {}, None

    def deleted(self) -> list[str]:
        """The tags deleted (``REPOSITORY:TAG``)."""
        return [unquote(unquote(c.raw_path.split("/")[6])) + ":" + unquote(c.raw_path.split("/")[-1])
                for c in self.api.calls if c.method == "DELETE" and "/tags/" in c.raw_path]

    def deleted_artifacts(self) -> list[str]:
        """The artifacts deleted by digest, in order."""
        return [unquote(c.raw_path.rsplit("/", 1)[1]) for c in self.api.calls
                if c.method == "DELETE" and "/tags/" not in c.raw_path]


class DockerHubNamespaces(_Fake):
    """Docker Hub's "List repositories" of namespaces ``namespaces``; with ``jwt``, it is required."""

    def __init__(self, api: FakeApi, paths: Paths, namespaces: tuple[str, ...], jwt: str | None = None) -> None:
        super().__init__(api, paths)
        self.namespaces, self.jwt = namespaces, jwt
        api.route("GET", r"/v2/namespaces/([^/]+)/repositories")(self.repositories)

    def repositories(self, call: Call, namespace: str) -> Reply:
        if self.jwt is not None and call.headers.get("Authorization") != f"Bearer {self.jwt}":
            return 401, {}, {"detail": "authentication required"}
        if namespace not in self.namespaces:
            return 404, {}, {"message": "object not found", "errinfo": {}}
        page, size = _page(call, "page_size", 10)
        rows = [{"name": p.split("/", 1)[1], "namespace": namespace, "repository_type": "image",
                 "status": 1} for p in self.paths() if p.startswith(f"{namespace}/")]
        base = f"{self._origin()}/v2/namespaces/{namespace}/repositories"
        more = page * size < len(rows)
        return 200, {}, {"count": len(rows), "next": f"{base}?page={page + 1}&page_size={size}" if more else None,
                         "previous": None, "results": rows[(page - 1) * size: page * size]}


class QuayNamespaces(_Fake):
    """Quay's repository listing by namespace (``next_page`` tokens, 2 a page) and its organization and user
    look-ups; ``token`` is sent back as required when set."""

    def __init__(self, api: FakeApi, paths: Paths, orgs: tuple[str, ...], users: tuple[str, ...] = (),
                 token: str | None = None, page_size: int = 2) -> None:
        super().__init__(api, paths)
        self.orgs, self.users, self.token, self.page_size = orgs, users, token, page_size
        api.route("GET", r"/api/v1/repository")(self.repositories)
        api.route("GET", r"/api/v1/(organization|users)/([^/]+)")(self.owner)

    def repositories(self, call: Call) -> Reply:
        if self.token is not None and call.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {}, {"error_message": "Invalid token"}
        namespace = call.query["namespace"][0]
        start = int(call.query.get("next_page", ["0"])[0].removeprefix("tok"))
        rows: list[dict[str, Any]] = [{"namespace": namespace, "name": p.split("/", 1)[1], "is_public": False}
                                      for p in self.paths() if p.startswith(f"{namespace}/")]
        body: dict[str, Any] = {"repositories": rows[start: start + self.page_size]}
        if start + self.page_size < len(rows):
            body["next_page"] = f"tok{start + self.page_size}"
        return 200, {}, body

    def owner(self, call: Call, kind: str, name: str) -> Reply:
        if name in (self.orgs if kind == "organization" else self.users):
            return 200, {}, {"name": name}
        return 404, {}, {"error_message": "Not Found"}


def quoted(path: str) -> str:
    return quote(path, safe="")
