"""The Registry API verbs on one registry, as regclient's ``scheme/reg`` has them: ping, tags (paged listing),
manifests (resolve by HEAD, get, put, delete), blobs (ensure, mount, upload, stream across), referrers, retag.

Every request goes through the registry's :class:`~ci_env.registry.transport.Transport` (credentials, redirects,
error mapping). A verb says what it promises of the registry's answer and raises ``RegistryError``/``AuthError``
for anything else. Manifest PUTs and DELETEs of one repository never overlap (:class:`_PhaseLock`).
Removing tags without collateral is not a verb: it is the untag engine's (``ci_env.registry.untag_engine``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ci_env.errors import RegistryError, RepositoryUnknownError
from ci_env.registry import manifests as mf
from ci_env.registry.auth import repository_scope
from ci_env.registry.outcomes import Status
from ci_env.registry.paging import PageGuard
from ci_env.registry.transport import Transport, host_of, is_missing, next_link
from ci_env.registry.waits import retry_after_seconds

if TYPE_CHECKING:
    import requests

    from ci_env.registry.origins import RegistryOrigins

#: a digest no registry holds: deleting it is the harmless probe of whether deletion is allowed.
PROBE_DIGEST = "sha256:" + "0" * 64
#: requests at once when reading a repository (HEADs and GETs): reads are cheap for a registry, and a registry
#: far away answers each after a round trip, so many in flight hide the latency (the pool keeps 64 per host).
LISTING_PARALLELISM = 32
#: bytes read from the source and sent to the target at a time when a blob is streamed across.
BLOB_CHUNK = 1 << 20


@dataclass(frozen=True)
class ManifestInfo:
    """What a registry says about one manifest."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class TagInfo:
    """One tag of a repository: its digest, media type and creation time, where known."""

    tag: str
    digest: str | None
    media_type: str | None
    created: str | None


class _PhaseLock:
    """Lets requests of one kind run together but never beside requests of the other kind.

    Distribution 2.8 reads every tag link of a repository while it deletes a manifest; a tag written at the
    same moment can be read half-written, the DELETE fails with 500 after removing the manifest and leaves a
    dangling tag. So within one repository, manifest PUTs and DELETEs never overlap (each may run in parallel
    with its own kind).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._kind: str | None = None
        self._active = 0

    def acquire(self, kind: str) -> None:
        """Wait until no request of another kind runs, then count one request of ``kind`` in."""
        with self._cond:
            while self._active and self._kind != kind:
                self._cond.wait()
            self._kind = kind
            self._active += 1

    def release(self) -> None:
        """Count one request out; the last one out lets the other kind in."""
        with self._cond:
            self._active -= 1
            if not self._active:
                self._kind = None
                self._cond.notify_all()


class _BlobStream:
    """A blob being read (a streamed GET), as a request body: iterated once, chunk by chunk, with its length.

    Its ``len`` (the GET's Content-Length) lets requests send a Content-Length instead of chunked encoding. A
    second iteration (a retry of the PUT after the body was consumed) fails with OSError, so the request ends
    with an error instead of sending an empty body.
    """

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        length = (response.headers.get("Content-Length") or "").strip()
        self._length = int(length) if length.isdigit() else None
        self._used = False

    def __len__(self) -> int:
        return self._length or 0

    def __iter__(self) -> Iterator[bytes]:
        if self._used:
            raise OSError("the blob stream was already sent; it cannot be sent twice")
        self._used = True
        stream: Iterator[bytes] = self._response.raw.stream(BLOB_CHUNK, decode_content=False)
        return stream


class RegistryApi:
    """The Registry API verbs on one registry, over its ``transport``; safe to share between threads."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.registry = transport.registry
        self._lock = threading.Lock()
        self._phases: dict[str, _PhaseLock] = {}

    # ------------------------------------------------------------------ the transport, as callers see it

    @property
    def session(self) -> requests.Session:
        """The pooled session every request of this registry goes through."""
        return self.transport.session

    @property
    def origins(self) -> RegistryOrigins:
        """What the registry's URLs are judged by (``ci_env.registry.origins``)."""
        return self.transport.origins

    @property
    def plain_http(self) -> bool:
        """True when the registry may be spoken to over plain HTTP (loopback, or listed insecure)."""
        return self.transport.plain_http

    @property
    def insecure(self) -> bool:
        """True when the registry is listed insecure (and is not loopback)."""
        return self.transport.insecure

    @property
    def base_url(self) -> str:
        """``scheme://host`` of the registry."""
        return self.transport.base_url

    def request(self, method: str, url_path: str, **kwargs: Any) -> requests.Response:
        """One request through the transport (:meth:`Transport.request`)."""
        return self.transport.request(method, url_path, **kwargs)

    def request_count(self) -> int:
        """HTTP requests made so far to this registry, token requests included."""
        return self.transport.request_count()

    def close(self) -> None:
        """Close the pooled connections."""
        self.transport.close()

    @staticmethod
    def _manifest_url(path: str, ref: str) -> str:
        return f"/v2/{path}/manifests/{quote(ref, safe=':')}"

    def _mutate(self, kind: str, method: str, path: str, url_path: str, **kwargs: Any) -> requests.Response:
        """A manifest PUT or DELETE in ``path``, never overlapping one of the other kind (see ``_PhaseLock``)."""
        with self._lock:
            phase = self._phases.setdefault(path, _PhaseLock())
        phase.acquire(kind)
        try:
            return self.transport.request(method, url_path, **kwargs)
        finally:
            phase.release()

    # ------------------------------------------------------------------ reading

    def ping(self) -> None:
        """Check that the registry answers the Registry API and accepts the credentials (``GET /v2/``)."""
        response = self.request("GET", "/v2/")
        if response.status_code != 200:
            raise self.transport.fail(response, "GET /v2/")

    def list_tags(self, path: str) -> list[str]:
        """Every tag of repository ``path``, following ``Link`` pagination; [] when it has none.

        RepositoryUnknownError when the repository does not exist (404 NAME_UNKNOWN); RegistryError when an
        answer is not a tag list, when a next page is on another host (never merged, never sent credentials) and
        when the pages repeat or never end (``ci_env.registry.paging``).
        """
        scopes = [repository_scope(path, "pull")]
        what = f"listing the tags of {path} on {self.registry}"
        url = f"/v2/{path}/tags/list"
        absolute = False
        tags: list[str] = []
        guard = PageGuard(what, first=self.base_url + url)
        while True:
            response = self.request("GET", url, scopes=scopes, absolute=absolute)
            if response.status_code != 200:
                raise self.transport.fail(response, what)
            tags.extend(_tag_names(response, what))
            next_url = next_link(response, self.origins, "the next page of a tag list")
            if next_url is None:
                break
            if not self.origins.is_registry(next_url):
                raise RegistryError(
                    f"{what}: the registry's next page is on another host ({host_of(next_url)}); a listing is "
                    "never continued on another host"
                )
            guard.advance(next_url)
            url, absolute = next_url, True
        return list(dict.fromkeys(tags))

    def list_catalog(self, *, page_size: int = 1000) -> list[str]:
        """Every repository of the registry (``GET /v2/_catalog``, ``n`` per page, following ``Link``), each once.

        RegistryError when the registry does not list its catalog (401/403/404: it is disabled or the
        credentials lack ``registry:catalog:*``), when an answer is not a repository list, when a next page is on
        another host and when the pages repeat or never end (``ci_env.registry.paging``)."""
        what = f"listing the repositories of {self.registry} (GET /v2/_catalog)"
        url = f"/v2/_catalog?n={page_size}"
        absolute = False
        names: list[str] = []
        guard = PageGuard(what, first=self.base_url + url)
        while True:
            response = self.request("GET", url, scopes=["registry:catalog:*"], absolute=absolute)
            if response.status_code != 200:
                raise self.transport.fail(response, what)
            names.extend(_names(response, what, "repositories"))
            next_url = next_link(response, self.origins, "the next page of the catalog")
            if next_url is None:
                break
            if not self.origins.is_registry(next_url):
                raise RegistryError(f"{what}: the registry's next page is on another host ({host_of(next_url)}); a "
                                    "listing is never continued on another host")
            guard.advance(next_url)
            url, absolute = next_url, True
        return list(dict.fromkeys(names))

    def resolve(self, path: str, ref: str) -> ManifestInfo | None:
        """The digest, media type and size ``ref`` (tag or digest) points at; None when it does not exist."""
        response = self.request(
            "HEAD", self._manifest_url(path, ref), scopes=[repository_scope(path, "pull")],
            headers={"Accept": mf.ACCEPT_ALL},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.transport.fail(response, f"resolving {path}:{ref}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            _, info = self.get_manifest(path, ref)
            return info
        media = (response.headers.get("Content-Type") or mf.OCI_MANIFEST).split(";", 1)[0].strip()
        length = (response.headers.get("Content-Length") or "").strip()
        return ManifestInfo(digest, media, int(length) if length.isdigit() else 0)

    def resolve_tags(self, path: str, tags: Sequence[str], *, parallel: int = LISTING_PARALLELISM,
                     ) -> dict[str, ManifestInfo | None]:
        """Each of ``tags`` resolved (one HEAD each, ``parallel`` at a time): tag -> its manifest, None: absent."""
        if not tags:
            return {}
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(tags)))) as pool:
            return dict(zip(tags, pool.map(lambda tag: self.resolve(path, tag), tags), strict=True))

    def list_repository(self, path: str, *, parallel: int = LISTING_PARALLELISM) -> dict[str, ManifestInfo | None]:
        """Every tag of ``path`` resolved (tag -> its manifest, None: it vanished); an unknown repository has none."""
        try:
            tags = self.list_tags(path)
        except RepositoryUnknownError:
            return {}
        return self.resolve_tags(path, tags, parallel=parallel)

    def find_manifest(self, path: str, ref: str) -> tuple[bytes, ManifestInfo] | None:
        """The manifest bytes ``ref`` points at and its info; None when the registry does not have it (404);
        RegistryError for any other answer, a body that is not a manifest, or one that does not match its digest."""
        response = self.request(
            "GET", self._manifest_url(path, ref), scopes=[repository_scope(path, "pull")],
            headers={"Accept": mf.ACCEPT_ALL},
        )
        if is_missing(response):
            return None
        if response.status_code != 200:
            raise self.transport.fail(response, f"reading the manifest {path}:{ref}")
        body = response.content
        if not mf.is_manifest_document(body):
            kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
            raise RegistryError(f"{self.registry} answered the manifest {path}:{ref} with something that is not a "
                                f"manifest ({kind}, {len(body)} bytes)")
        computed = mf.sha256_digest(body)
        digest = response.headers.get("Docker-Content-Digest") or computed
        if mf.is_digest(ref) and ref.startswith("sha256:") and computed != ref:
            raise RegistryError(f"{self.registry}/{path}@{ref}: the manifest received does not match its digest")
        media = mf.media_type_of(body, response.headers.get("Content-Type"))
        return body, ManifestInfo(digest, media, len(body))

    def get_manifest(self, path: str, ref: str) -> tuple[bytes, ManifestInfo]:
        """The manifest bytes ``ref`` points at and its info; RegistryError when absent."""
        found = self.find_manifest(path, ref)
        if found is None:
            raise RegistryError(f"{self.registry}/{path}:{ref} does not exist (404)")
        return found

    def tag_infos(self, path: str, *, created: bool = True, parallel: int = LISTING_PARALLELISM) -> list[TagInfo]:
        """Every tag with its digest and media type, and (``created``) the image's creation time where known."""
        tags = self.list_tags(path)
        infos = self.resolve_tags(path, tags, parallel=parallel)
        times: dict[str, str | None] = {}
        if created:
            digests = sorted({info.digest for info in infos.values() if info is not None})
            with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
                for digest, when in zip(digests, pool.map(lambda d: self._created(path, d), digests), strict=True):
                    times[digest] = when
        result = []
        for tag in sorted(tags):
            info = infos.get(tag)
            result.append(TagInfo(tag, info.digest if info else None, info.media_type if info else None,
                                  times.get(info.digest) if info else None))
        return result

    def image_created(self, path: str, digest: str) -> str | None:
        """When the image ``digest`` was created: its manifest's ``org.opencontainers.image.created`` annotation,
        else its config's ``created`` (a manifest read, and a blob read for the config); None when neither says."""
        return self._created(path, digest)

    def _created(self, path: str, digest: str) -> str | None:
        body, info = self.get_manifest(path, digest)
        when = mf.created_of(body)
        if when or info.media_type not in mf.IMAGE_TYPES:
            return when
        refs = mf.references(body)
        if not refs.blobs:
            return None
        response = self.request("GET", f"/v2/{path}/blobs/{refs.blobs[0]}", scopes=[repository_scope(path, "pull")])
        if response.status_code != 200:
            return None
        try:
            value = response.json().get("created")
        except (ValueError, AttributeError):
            return None
        return str(value) if isinstance(value, str) else None

    def referrers(self, path: str, digest: str) -> list[dict[str, Any]] | None:
        """``GET /v2/<name>/referrers/<digest>`` (following ``Link`` pages): the descriptors; None when the registry
        does not answer it with an index (404, or anything but 200: then the tag schema is what clients used)."""
        url: str | None = f"/v2/{path}/referrers/{quote(digest, safe=':')}"
        scopes = [repository_scope(path, "pull")]
        absolute = False
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        while url:
            response = self.request("GET", url, scopes=scopes, absolute=absolute, headers={"Accept": mf.OCI_INDEX})
            if response.status_code != 200:
                return found or None
            try:
                doc = response.json()
            except ValueError:
                return None
            if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
                return None
            found.extend(e for e in doc.get("manifests") or [] if isinstance(e, dict))
            following = next_link(response, self.origins, "the next page of a listing")
            if following is None or following in seen:
                break
            seen.add(following)
            url, absolute = following, True
        return found

    # ------------------------------------------------------------------ writing and deleting manifests

    def put_manifest(self, path: str, ref: str, body: bytes, media_type: str) -> str:
        """Store ``body`` at ``ref`` (a tag or its digest); returns the manifest's digest."""
        response = self._mutate(
            "put", "PUT", path, self._manifest_url(path, ref), scopes=[repository_scope(path)],
            headers={"Content-Type": media_type}, data=body,
        )
        if response.status_code not in (200, 201, 202):
            raise self.transport.fail(response, f"writing the manifest {path}:{ref}")
        return response.headers.get("Docker-Content-Digest") or mf.sha256_digest(body)

    def delete_manifest(self, path: str, digest: str) -> bool:
        """Delete the manifest ``digest`` and so EVERY tag on it when the registry runs the DELETE (a tag moved
        onto it a moment before included: removing tags is ``untag``'s work, never this); True when deleted now,
        False when it was already gone (not an error)."""
        response = self._mutate("delete", "DELETE", path, self._manifest_url(path, digest),
                                scopes=[repository_scope(path)])
        if response.status_code in (200, 202, 204):
            return True
        if is_missing(response):
            return False
        raise self.transport.fail(response, f"deleting {path}@{digest}")

    def oci_tag_delete(self, path: str, tag: str) -> Status:
        """The OCI tag delete (``DELETE /v2/NAME/manifests/TAG``): ``"removed"`` or ``"absent"``."""
        response = self._mutate("delete", "DELETE", path, self._manifest_url(path, tag),
                                scopes=[repository_scope(path)])
        if response.status_code in (200, 202, 204):
            return Status.REMOVED
        if is_missing(response):
            return Status.ABSENT
        raise self.transport.fail(response, f"deleting the tag {path}:{tag}")

    def can_delete(self, path: str) -> None:
        """Preflight: raise unless deleting manifests in ``path`` is allowed; deletes nothing.

        Deletes a digest no registry holds: 404 means allowed; 405 UNSUPPORTED means deletion is disabled;
        401/403 means the credentials lack delete permission.
        """
        response = self.request("DELETE", self._manifest_url(path, PROBE_DIGEST), scopes=[repository_scope(path)])
        if response.status_code in (200, 202, 404):
            return
        raise self.transport.fail(response, f"deleting manifests in {path}")

    def retag(self, source_path: str, source_ref: str, target_path: str, tags: Sequence[str]) -> ManifestInfo:
        """Add ``tags`` in ``target_path`` to the image ``source_path:source_ref``, without moving layers.

        Across repositories, the blobs (and an index's child manifests) are mounted first.
        """
        body, info = self.get_manifest(source_path, source_ref)
        if target_path != source_path:
            self._copy_references(source_path, target_path, body)
        for tag in tags:
            self.put_manifest(target_path, tag, body, info.media_type)
        return info

    def _copy_references(self, source_path: str, target_path: str, body: bytes) -> None:
        try:
            refs = mf.references(body)
        except ValueError as exc:
            raise RegistryError(f"cannot retag from {source_path}: {exc}") from None
        for blob in refs.blobs:
            self.mount_blob(source_path, target_path, blob)
        for child in refs.children:
            child_body, child_info = self.get_manifest(source_path, child)
            self._copy_references(source_path, target_path, child_body)
            self.put_manifest(target_path, child, child_body, child_info.media_type)

    # ------------------------------------------------------------------ blobs

    def ensure_blob(self, path: str, digest: str, data: bytes) -> None:
        """Make the blob ``digest`` (content ``data``) exist in ``path``: HEAD, upload when missing."""
        scopes = [repository_scope(path)]
        head = self.request("HEAD", f"/v2/{path}/blobs/{digest}", scopes=scopes)
        if head.status_code == 200:
            return
        location = self._start_upload(path, f"/v2/{path}/blobs/uploads/", scopes)
        self._finish_upload(path, location, digest, data, scopes)

    def _start_upload(self, path: str, url: str, scopes: Sequence[str]) -> str:
        """POST an upload; retried when the answer is a 429/5xx (starting an upload twice is harmless)."""
        from ci_env.registry.http import wait_budget

        budget = wait_budget(self.session)
        response = self.request("POST", url, scopes=scopes)
        for _ in range(3):
            if response.status_code not in (429, 500, 502, 503, 504) or budget.spent:
                break
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            budget.wait(1.0 if asked is None else asked)
            response = self.request("POST", url, scopes=scopes)
        if response.status_code != 202 or not response.headers.get("Location"):
            raise self.transport.fail(response, f"starting a blob upload to {path}")
        return self.origins.resolve(self.base_url + "/", response.headers["Location"], f"the upload of {path}")

    def _finish_upload(self, path: str, location: str, digest: str, data: Any, scopes: Sequence[str]) -> None:
        separator = "&" if "?" in location else "?"
        response = self.request(
            "PUT", f"{location}{separator}digest={quote(digest)}", scopes=scopes, absolute=True,
            headers={"Content-Type": "application/octet-stream"}, data=data,
        )
        if response.status_code not in (201, 204):
            raise self.transport.fail(response, f"uploading the blob {digest} to {path}")

    def mount_blob(self, source_path: str, target_path: str, digest: str) -> None:
        """Make blob ``digest`` of ``source_path`` exist in ``target_path`` by a cross-repository mount.

        When the registry will not mount (it answers 202), the blob is streamed across instead: read from the
        source and written to the target in chunks of ``BLOB_CHUNK`` bytes, never held whole in memory (the
        registry checks the digest when the upload completes).
        """
        scopes = [repository_scope(target_path), repository_scope(source_path, "pull")]
        url = f"/v2/{target_path}/blobs/uploads/?mount={quote(digest)}&from={quote(source_path, safe='/')}"
        response = self.request("POST", url, scopes=scopes)
        if response.status_code == 201:
            return
        if response.status_code != 202 or not response.headers.get("Location"):
            raise self.transport.fail(response, f"mounting {digest} from {source_path} into {target_path}")
        location = self.origins.resolve(self.base_url + "/", response.headers["Location"],
                                        f"the upload of {target_path}")
        blob = self.request("GET", f"/v2/{source_path}/blobs/{digest}", scopes=scopes, stream=True)
        try:
            if blob.status_code != 200:
                raise self.transport.fail(blob, f"reading the blob {digest} of {source_path}")
            self._finish_upload(target_path, location, digest, _BlobStream(blob), scopes)
        finally:
            blob.close()


def _tag_names(response: requests.Response, what: str) -> list[str]:
    """The tag names of one Registry API tag-list page; RegistryError for anything but ``{"tags": [str, ...]}``."""
    return _names(response, what, "tags")


def _names(response: requests.Response, what: str, key: str) -> list[str]:
    """The names of one Registry API list page (``key``: ``tags`` or ``repositories``); RegistryError for anything
    but ``{key: [str, ...]}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
        kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        problem = f"an answer that is not JSON ({kind})"
    else:
        problem = f"JSON that is not a {'tag' if key == 'tags' else 'repository'} list"
    if isinstance(body, dict):
        names = body.get(key)
        if names is None:
            return []
        if isinstance(names, list) and all(isinstance(name, str) for name in names):
            return names
    raise RegistryError(f"{what}: the registry answered 200 with {problem} (expected {{\"{key}\": [...]}})")


