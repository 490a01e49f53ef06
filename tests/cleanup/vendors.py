"""Vendor registries for the cleanup end-to-end tests: each keeps ONE state that both its Registry API
(what cleanup lists and resolves) and its native API (what cleanup removes through) read and change.

- **ECR** (:class:`EcrRegistryApi`): moto's server holds the repositories and images (``put_image``);
  a local server plays ECR's Registry API (``/v2/NAME/tags/list``, ``HEAD|GET /v2/NAME/manifests/REF``)
  over moto's ``list_images`` / ``batch_get_image``, so a tag removed with ``batch_delete_image`` is
  gone from the listing too, as on ECR.
- **Docker Hub** (:class:`DockerHubOverRegistry`): the real CNCF registry plays Docker Hub's Registry
  API; a local server plays Docker Hub's API (``POST /v2/auth/token``, ``GET /v2/repositories/NS/REPO/``,
  ``GET /v2/repositories/NS/REPO/tags?page_size=N&page=P`` listing the tags with digest, media type and
  ``last_updated`` read from the registry's storage, ``DELETE /v2/repositories/NS/REPO/tags/TAG/``), removing
  only the tag's link in the registry's storage, which is what Docker Hub's tag delete does (the image stays
  for its other tags).
- **GitHub** (``tests.vendors.servers.GitHubPackages``): the real registry plays ghcr.io, package
  versions are derived from it.
- **AWS SDK relay** (:class:`AwsFront`): forwards ECR's API calls to moto, with a hook between two of them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.services.registry import RegistryService
from tests.vendors.fakeapi import Call, FakeApi, Reply

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
HUB_USER = "hubuser"
HUB_PAT = "dckr_pat_CLEANUPSECRET42"
HUB_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJodWJ1c2VyIn0.c2lnbmF0dXJl"


def _registry_error(status: int, code: str, message: str) -> Reply:
    return status, {"Content-Type": "application/json"}, {"errors": [{"code": code, "message": message}]}


class EcrRegistryApi:
    """ECR's Registry API (read side) over moto's ECR state; ``ecr`` is a boto3 ECR client on moto."""

    def __init__(self, api: FakeApi, ecr: Any) -> None:
        self.api = api
        self.ecr = ecr
        api.route("GET", r"/v2/")(lambda call: (200, {}, {}))
        api.route("GET", r"/v2/(.+)/tags/list")(self.tags_list)
        api.route("GET", r"/v2/(.+)/manifests/([^/]+)")(self.manifest)
        api.route("HEAD", r"/v2/(.+)/manifests/([^/]+)")(self.manifest)

    @property
    def host(self) -> str:
        return self.api.url.removeprefix("http://")

    def tags_list(self, call: Call, name: str) -> Reply:
        try:
            pages = self.ecr.get_paginator("list_images").paginate(
                repositoryName=name, filter={"tagStatus": "TAGGED"}
            )
            tags = sorted({i["imageTag"] for page in pages for i in page["imageIds"] if "imageTag" in i})
        except self.ecr.exceptions.RepositoryNotFoundException:
            return _registry_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        return 200, {}, {"name": name, "tags": tags}

    def manifest(self, call: Call, name: str, ref: str) -> Reply:
        image_id = {"imageDigest": ref} if ref.startswith("sha256:") else {"imageTag": ref}
        try:
            answer = self.ecr.batch_get_image(repositoryName=name, imageIds=[image_id])
        except self.ecr.exceptions.RepositoryNotFoundException:
            return _registry_error(404, "NAME_UNKNOWN", "repository name not known to registry")
        if not answer["images"]:
            return _registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        image = answer["images"][0]
        media = image.get("imageManifestMediaType") or DOCKER_MANIFEST
        headers = {"Docker-Content-Digest": image["imageId"]["imageDigest"], "Content-Type": media}
        return 200, headers, image["imageManifest"].encode()

    def put(self, path: str, tag: str, manifest: str) -> str:
        """``put_image`` ``manifest`` under ``path:tag`` (as a push to ECR does); its digest."""
        answer = self.ecr.put_image(repositoryName=path, imageManifest=manifest, imageTag=tag,
                                    imageManifestMediaType=DOCKER_MANIFEST)
        return str(answer["image"]["imageId"]["imageDigest"])

    def tags(self, path: str) -> set[str]:
        """The tags of ``path`` as ECR's own API lists them."""
        try:
            details = self.ecr.describe_images(repositoryName=path)["imageDetails"]
        except self.ecr.exceptions.RepositoryNotFoundException:
            return set()
        return {t for d in details for t in d.get("imageTags") or []}


def ecr_manifest(seed: str) -> str:
    """A small Docker image manifest, unique by ``seed``."""
    layer = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                   "digest": "sha256:" + hashlib.sha256(f"config {seed}".encode()).hexdigest()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3, "digest": layer}],
    })


class DockerHubOverRegistry:
    """Docker Hub's API for the repositories of a real registry (``NS/REPO``), one account with a PAT."""

    def __init__(self, api: FakeApi, registry: RegistryService) -> None:
        self.api = api
        self.storage = Path(registry.root) / "data" / "docker" / "registry" / "v2" / "repositories"
        self.blobs = self.storage.parent / "blobs"
        api.route("POST", r"/v2/auth/token")(self.auth_token)
        api.route("GET", r"/v2/repositories/([^/]+)/([^/]+)/")(self.get_repo)
        api.route("GET", r"/v2/repositories/([^/]+)/([^/]+)/tags/?")(self.list_tags)
        api.route("DELETE", r"/v2/repositories/([^/]+)/([^/]+)/tags/([^/]+)/")(self.delete_tag)

    def auth_token(self, call: Call) -> Reply:
        body = call.json()
        if body.get("identifier") != HUB_USER or body.get("secret") != HUB_PAT:
            return 401, {}, {"detail": "Incorrect authentication credentials"}
        return 200, {}, {"access_token": HUB_JWT}

    def _authorized(self, call: Call) -> bool:
        return call.headers.get("Authorization") == f"Bearer {HUB_JWT}"

    def get_repo(self, call: Call, ns: str, name: str) -> Reply:
        if not self._authorized(call):
            return 401, {}, {"detail": "authentication required"}
        if not (self.storage / ns / name).is_dir():
            return 404, {}, {"message": "object not found"}
        return 200, {}, {"namespace": ns, "name": name, "permissions": {"read": True, "write": True, "admin": True}}

    def list_tags(self, call: Call, ns: str, name: str) -> Reply:
        """Docker Hub's tag listing (``page_size`` at most 100, ``next`` the absolute URL of the following page),
        newest first, from the registry's storage; repositories are private here, so 404 without the JWT."""
        tags_dir = self.storage / ns / name / "_manifests" / "tags"
        if not self._authorized(call) or not (self.storage / ns / name).is_dir():
            return 404, {}, {"message": "object not found", "errinfo": {}}
        rows = []
        for link in tags_dir.glob("*/current/link") if tags_dir.is_dir() else []:
            digest = link.read_text().strip()
            algorithm, _, hexa = digest.partition(":")
            manifest = json.loads((self.blobs / algorithm / hexa[:2] / hexa / "data").read_bytes())
            updated = datetime.fromtimestamp(link.stat().st_mtime, timezone.utc)
            rows.append({
                "name": link.parent.parent.name, "digest": digest, "media_type": manifest.get("mediaType"),
                "content_type": "image", "tag_status": "active",
                "last_updated": updated.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            })
        rows.sort(key=lambda row: (row["last_updated"], row["name"]), reverse=True)
        size = min(int(call.query.get("page_size", ["10"])[0]), 100)
        page = int(call.query.get("page", ["1"])[0])
        base = f"{self.api.url}/v2/repositories/{ns}/{name}/tags"
        more = page * size < len(rows)
        return 200, {}, {
            "count": len(rows),
            "next": f"{base}?page={page + 1}&page_size={size}" if more else None,
            "previous": f"{base}?page={page - 1}&page_size={size}" if page > 1 else None,
            "results": rows[(page - 1) * size: page * size],
        }

    def listings(self) -> list[str]:
        """``NS/REPO`` of every tag listing asked for (one per page)."""
        return ["/".join(c.raw_path.strip("/").split("/")[2:4]) for c in self.api.calls
                if c.method == "GET" and c.raw_path.rstrip("/").endswith("/tags")]

    def delete_tag(self, call: Call, ns: str, name: str, tag: str) -> Reply:
        if not self._authorized(call):
            return 401, {}, {"detail": "authentication required"}
        link = self.storage / ns / name / "_manifests" / "tags" / tag
        if not link.is_dir():
            return 404, {}, {"message": "tag not found"}
        shutil.rmtree(link)
        return 204, {}, None

    def deleted(self) -> set[str]:
        """``NS/REPO:TAG`` of every tag deletion asked for."""
        result = set()
        for call in self.api.calls:
            if call.method == "DELETE":
                parts = call.raw_path.strip("/").split("/")  # v2 repositories NS REPO tags TAG
                result.add(f"{parts[2]}/{parts[3]}:{parts[5]}")
        return result


class AwsFront:
    """A relay in front of moto's server for the AWS SDK (``AWS_ENDPOINT_URL_ECR`` points at it): every JSON API
    call (``POST /`` with ``X-Amz-Target``) is forwarded unchanged and answered with moto's answer; ``before``,
    when set, is called with the operation name (``DescribeImages``, ``BatchDeleteImage``, ...) before it is
    forwarded: a test's concurrent writer that must land between two of ci-env's calls."""

    def __init__(self, api: FakeApi, moto_url: str) -> None:
        self.api = api
        self.moto_url = moto_url
        self.operations: list[str] = []
        self.before: Callable[[str], None] | None = None
        api.route("POST", r"/")(self.relay)

    @property
    def url(self) -> str:
        return self.api.url

    def relay(self, call: Call) -> Reply:
        import requests

        operation = call.headers.get("X-Amz-Target", "").rpartition(".")[2]
        self.operations.append(operation)
        if self.before is not None:
            self.before(operation)
        skip = {"host", "content-length", "connection", "accept-encoding"}
        headers = {k: v for k, v in call.headers.items() if k.lower() not in skip}
        answer = requests.post(self.moto_url + "/", data=call.body, headers=headers, timeout=30)
        kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "x-amzn-requestid")}
        return answer.status_code, kept, answer.content


class RegistryRelay:
    """A real registry's Registry API (reads: GET and HEAD) relayed unchanged, the way a front (a CDN, a proxy,
    a vendor's own gateway) serves it, except ``tag_list_answer``: when set, what every ``GET .../tags/list``
    is answered with instead (a test's failing tag list). ``host`` is what ci-env is pointed at."""

    def __init__(self, api: FakeApi, registry: RegistryService) -> None:
        self.api = api
        self.upstream = registry.url.rstrip("/")
        self.tag_list_answer: Reply | None = None
        api.route("GET", r"/v2/.*")(self.relay)
        api.route("HEAD", r"/v2/.*")(self.relay)

    @property
    def host(self) -> str:
        return self.api.url.removeprefix("http://")

    def relay(self, call: Call) -> Reply:
        import requests

        if self.tag_list_answer is not None and call.raw_path.endswith("/tags/list"):
            return self.tag_list_answer
        headers = {k: v for k, v in call.headers.items() if k.lower() in ("accept", "authorization")}
        answer = requests.request(call.method, self.upstream + call.target, headers=headers, timeout=30,
                                  allow_redirects=False)
        kept = {k: v for k, v in answer.headers.items()
                if k.lower() in ("content-type", "docker-content-digest", "link", "docker-distribution-api-version")}
        return answer.status_code, kept, answer.content


def registry_error(status: int, code: str, message: str) -> Reply:
    """A Registry API error answer (``{"errors": [{"code": ..., "message": ...}]}``)."""
    return _registry_error(status, code, message)
