"""The Registry API client: list, resolve, get/put manifests, retag, and untag without collateral.

One ``RegistryClient`` talks to one registry host over one pooled session with retries
(``ci_env.registry.http``). Authentication (Basic or Bearer tokens per scope) is answered on
demand from the registry's challenge (``ci_env.registry.auth``). Plain HTTP is used only for
loopback registries and those listed as insecure; everything else is HTTPS.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ci_env.errors import AuthError, RegistryError
from ci_env.registry import manifests as mf
from ci_env.registry.auth import Authenticator, Credential, credentials_for, docker_config_dir, repository_scope
from ci_env.registry.insecure import from_env as insecure_from_env
from ci_env.registry.insecure import is_listed, is_loopback
from ci_env.registry.origins import RegistryOrigins
from ci_env.registry.outcomes import ABSENT, REMOVED
from ci_env.registry.paging import PageGuard
from ci_env.registry.waits import retry_after_seconds

if TYPE_CHECKING:
    import requests

    from ci_env.registry.reference import RepoAddress
    from ci_env.registry.untag_engine import OutcomeReport, TagOutcome

#: a digest no registry holds: deleting it is the harmless probe of whether deletion is allowed.
PROBE_DIGEST = "sha256:" + "0" * 64
#: requests at once when reading a repository (HEADs and GETs): reads are cheap for a registry, and a registry
#: far away answers each after a round trip, so many in flight hide the latency (the pool keeps 64 per host).
LISTING_PARALLELISM = 32
#: bytes read from the source and sent to the target at a time when a blob is streamed across.
BLOB_CHUNK = 1 << 20
#: redirects followed per request at most (as requests and Go's net/http do).
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})



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
        return self._response.raw.stream(BLOB_CHUNK, decode_content=False)


class RegistryClient:
    """Registry API operations on one registry (``host[:port]``); safe to share between threads."""

    def __init__(
        self,
        registry: str,
        *,
        docker_config: Path | None = None,
        credentials: tuple[str, str] | None = None,
        insecure_registries: Sequence[str] = (),
        session: requests.Session | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        from ci_env.registry.http import make_session

        self.registry = registry
        self._env = os.environ if env is None else env
        self._docker_config = docker_config
        self._explicit = Credential(credentials[0], credentials[1]) if credentials else None
        insecure = (*insecure_registries, *insecure_from_env(self._env))
        self.plain_http = is_loopback(registry) or is_listed(registry, insecure)
        self.insecure = self.plain_http and not is_loopback(registry)
        self._scheme: str | None = "http" if is_loopback(registry) else (None if self.insecure else "https")
        self.origins = RegistryOrigins(registry, insecure)
        if insecure:
            _quiet_unverified_tls()
        self.session = session if session is not None else make_session()
        self._auth = Authenticator(registry, self.session, None, self.origins)
        self._credential_loaded = False
        self._lock = threading.Lock()
        self._count = 0
        self._placeholder_config: set[str] = set()
        self._placeholder_lock = threading.Lock()
        self._phases: dict[str, _PhaseLock] = {}

    def _phase(self, path: str) -> _PhaseLock:
        with self._lock:
            return self._phases.setdefault(path, _PhaseLock())

    def _mutate(self, kind: str, method: str, path: str, url_path: str, **kwargs: Any) -> requests.Response:
        """A manifest PUT or DELETE in ``path``, never overlapping one of the other kind (see ``_PhaseLock``)."""
        phase = self._phase(path)
        phase.acquire(kind)
        try:
            return self.request(method, url_path, **kwargs)
        finally:
            phase.release()

    # ------------------------------------------------------------------ plumbing

    def request_count(self) -> int:
        """HTTP requests made so far by this client, token requests included."""
        return self._count + self._auth.token_requests

    @property
    def base_url(self) -> str:
        """``scheme://host`` of the registry (for an insecure registry: HTTPS if it answers, else HTTP)."""
        if self._scheme is None:
            self._scheme = self._probe_scheme()
        return f"{self._scheme}://{self.registry}"

    def _probe_scheme(self) -> str:
        import requests

        try:
            self._count += 1
            self.session.get(f"https://{self.registry}/v2/", verify=False, timeout=5)
            return "https"
        except requests.RequestException:
            return "http"

    def _credential(self) -> Credential | None:
        if self._explicit is not None:
            self._auth.credential = self._explicit
            return self._explicit
        if not self._credential_loaded:
            self._auth.credential = credentials_for(self.registry, docker_config_dir(self._docker_config, self._env))
            self._credential_loaded = True
        return self._auth.credential

    def request(
        self,
        method: str,
        url_path: str,
        *,
        scopes: Sequence[str] = (),
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        stream: bool = False,
        absolute: bool = False,
    ) -> requests.Response:
        """Send one request (answering an auth challenge once); RegistryError when the registry is unreachable.

        ``url_path`` is a path on the registry, or (``absolute``) a URL the registry handed back. The registry's
        credentials go only where ``RegistryOrigins.carries_credentials`` allows; redirects are followed (at
        most ``MAX_REDIRECTS``), without credentials when they leave the registry, and a downgrade from HTTPS
        to plain HTTP is refused (``RegistryOrigins.check_target``).
        """
        base = self.base_url
        url = url_path if absolute else base + url_path
        if absolute:
            self.origins.check_target(url, base, f"{method} {_path_of(url)}")
        response: requests.Response | None = None
        for attempt in range(2):
            response = self._send_following_redirects(method, url, scopes, headers, data, stream, url_path)
            if response.status_code != 401 or attempt == 1 or not self.origins.carries_credentials(response.url):
                break
            self._credential()
            if not self._auth.learn(response.headers.get("WWW-Authenticate"), scopes):
                break
            response.close()
        assert response is not None
        return response

    def _send_following_redirects(
        self, method: str, url: str, scopes: Sequence[str], headers: Mapping[str, str] | None, data: Any,
        stream: bool, url_path: str,
    ) -> requests.Response:
        import requests

        from ci_env.registry.http import failure_cause

        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            if self.origins.carries_credentials(url):
                authorization = self._auth.authorization(scopes)
                if authorization:
                    sent["Authorization"] = authorization
            with self._lock:
                self._count += 1
            try:
                response = self.session.request(
                    method, url, headers=sent, data=data, stream=stream, verify=self.origins.verify(url),
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                where = (f"the registry {self.registry}" if self.origins.is_registry(url)
                         else f"{_host_of(url)} (for {self.registry})")
                raise RegistryError(
                    f"cannot reach {where} ({method} {_path_of(url)}): {failure_cause(exc)}"
                ) from None
            location = response.headers.get("Location")
            if response.status_code not in REDIRECT_STATUSES or not location:
                return response
            what = f"a redirect for {method} {_path_of(url)}"
            target = self.origins.resolve(response.url, location, what)
            self.origins.check_target(target, url, what)
            if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                method, data = ("HEAD" if method == "HEAD" else "GET"), None
            elif data is not None and not isinstance(data, bytes):
                raise RegistryError(f"{self.registry} redirected the upload {method} {_path_of(url)}: a streamed "
                                    "body cannot be sent twice; run the command again")
            response.close()
            url = target
        raise RegistryError(f"{self.registry} redirected {method} {url_path.split('?')[0]} more than "
                            f"{MAX_REDIRECTS} times")

    def _fail(self, response: requests.Response, what: str) -> RegistryError | AuthError:
        """The error for an unexpected answer: status, the registry's error code, and what to do."""
        codes, message = _error_codes(response)
        status = response.status_code
        credential = self._auth.credential
        who = f" as {credential.username}" if credential and credential.username else ""
        if status == 401 and "insufficient_scope" in (response.headers.get("WWW-Authenticate") or ""):
            return AuthError(f"{self.registry} refused {what}{who}: the token lacks the permission for it "
                             "(insufficient_scope); use credentials that may delete")
        if status == 401:
            hint = (
                "check the credentials" if self._auth.credential or self._explicit
                else "no credentials for it were found in the Docker config: run docker login or ci-env login"
            )
            return AuthError(f"{self.registry} refused {what}{who} (401 {codes or 'UNAUTHORIZED'}); {hint}")
        if status == 403:
            return AuthError(f"{self.registry} denied {what}{who} (403 {codes or 'DENIED'}): the credentials lack "
                             "the permission for it")
        if status == 405 and "UNSUPPORTED" in codes:
            return RegistryError(
                f"{self.registry} does not allow {what} (405 UNSUPPORTED): deletion is disabled on this registry "
                "(distribution: storage.delete.enabled=true / REGISTRY_STORAGE_DELETE_ENABLED=true)"
            )
        if status == 404 and "NAME_UNKNOWN" in codes:
            return RegistryError(f"{what}: the repository does not exist on {self.registry} (404 NAME_UNKNOWN)")
        detail = f" {codes}" if codes else ""
        text = f": {message}" if message else ""
        return RegistryError(f"{self.registry} answered {status}{detail} to {what}{text}")

    @staticmethod
    def _manifest_url(path: str, ref: str) -> str:
        return f"/v2/{path}/manifests/{quote(ref, safe=':')}"

    # ------------------------------------------------------------------ reading

    def ping(self) -> None:
        """Check that the registry answers the Registry API and accepts the credentials (``GET /v2/``)."""
        response = self.request("GET", "/v2/")
        if response.status_code != 200:
            raise self._fail(response, "GET /v2/")

    def list_tags(self, path: str) -> list[str]:
        """Every tag of repository ``path``, following ``Link`` pagination; [] when it has none.

        RegistryError when the repository does not exist (404 NAME_UNKNOWN), when an answer is not a tag list,
        when a next page is on another host (never merged, never sent credentials) and when the pages repeat
        or never end (``ci_env.registry.paging``).
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
                raise self._fail(response, what)
            tags.extend(_tag_names(response, what))
            next_url = _next_link(response, self.origins)
            if next_url is None:
                break
            if not self.origins.is_registry(next_url):
                raise RegistryError(
                    f"{what}: the registry's next page is on another host ({_host_of(next_url)}); a listing is "
                    "never continued on another host"
                )
            guard.advance(next_url)
            url, absolute = next_url, True
        return list(dict.fromkeys(tags))

    def resolve(self, path: str, ref: str) -> ManifestInfo | None:
        """The digest, media type and size ``ref`` (tag or digest) points at; None when it does not exist."""
        response = self.request(
            "HEAD", self._manifest_url(path, ref), scopes=[repository_scope(path, "pull")],
            headers={"Accept": mf.ACCEPT_ALL},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"resolving {path}:{ref}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            _, info = self.get_manifest(path, ref)
            return info
        media = (response.headers.get("Content-Type") or mf.OCI_MANIFEST).split(";", 1)[0].strip()
        length = (response.headers.get("Content-Length") or "").strip()
        return ManifestInfo(digest, media, int(length) if length.isdigit() else 0)

    def get_manifest(self, path: str, ref: str) -> tuple[bytes, ManifestInfo]:
        """The manifest bytes ``ref`` points at and its info; RegistryError when absent."""
        response = self.request(
            "GET", self._manifest_url(path, ref), scopes=[repository_scope(path, "pull")],
            headers={"Accept": mf.ACCEPT_ALL},
        )
        if response.status_code != 200:
            if response.status_code == 404 and "NAME_UNKNOWN" not in _error_codes(response)[0]:
                raise RegistryError(f"{self.registry}/{path}:{ref} does not exist (404)")
            raise self._fail(response, f"reading the manifest {path}:{ref}")
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

    def tag_infos(self, path: str, *, created: bool = True, parallel: int = LISTING_PARALLELISM) -> list[TagInfo]:
        """Every tag with its digest and media type, and (``created``) the image's creation time where known."""
        tags = self.list_tags(path)
        infos = self._resolve_all(path, tags, parallel)
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

    def _resolve_all(self, path: str, tags: Sequence[str], parallel: int) -> dict[str, ManifestInfo | None]:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            return dict(zip(tags, pool.map(lambda tag: self.resolve(path, tag), tags), strict=True))

    # ------------------------------------------------------------------ writing

    def put_manifest(self, path: str, ref: str, body: bytes, media_type: str) -> str:
        """Store ``body`` at ``ref`` (a tag or its digest); returns the manifest's digest."""
        response = self._mutate(
            "put", "PUT", path, self._manifest_url(path, ref), scopes=[repository_scope(path)],
            headers={"Content-Type": media_type}, data=body,
        )
        if response.status_code not in (200, 201, 202):
            raise self._fail(response, f"writing the manifest {path}:{ref}")
        return response.headers.get("Docker-Content-Digest") or mf.sha256_digest(body)

    def delete_manifest(self, path: str, digest: str) -> bool:
        """Delete the manifest ``digest`` and so EVERY tag on it when the registry runs the DELETE (a tag moved
        onto it a moment before included: removing tags is ``untag``'s work, never this); True when deleted now,
        False when it was already gone (not an error)."""
        response = self._mutate("delete", "DELETE", path, self._manifest_url(path, digest),
                                scopes=[repository_scope(path)])
        if response.status_code in (200, 202, 204):
            return True
        if response.status_code == 404 and "NAME_UNKNOWN" not in _error_codes(response)[0]:
            return False
        raise self._fail(response, f"deleting {path}@{digest}")

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
            raise self._fail(response, f"starting a blob upload to {path}")
        return self.origins.resolve(self.base_url + "/", response.headers["Location"], f"the upload of {path}")

    def _finish_upload(self, path: str, location: str, digest: str, data: Any, scopes: Sequence[str]) -> None:
        separator = "&" if "?" in location else "?"
        response = self.request(
            "PUT", f"{location}{separator}digest={quote(digest)}", scopes=scopes, absolute=True,
            headers={"Content-Type": "application/octet-stream"}, data=data,
        )
        if response.status_code not in (201, 204):
            raise self._fail(response, f"uploading the blob {digest} to {path}")

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
            raise self._fail(response, f"mounting {digest} from {source_path} into {target_path}")
        location = self.origins.resolve(self.base_url + "/", response.headers["Location"],
                                        f"the upload of {target_path}")
        blob = self.request("GET", f"/v2/{source_path}/blobs/{digest}", scopes=scopes, stream=True)
        try:
            if blob.status_code != 200:
                raise self._fail(blob, f"reading the blob {digest} of {source_path}")
            self._finish_upload(target_path, location, digest, _BlobStream(blob), scopes)
        finally:
            blob.close()

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

    def point_at_placeholder(self, path: str, tag: str) -> str:
        """Point ``tag`` at a new, unique, tiny placeholder manifest; returns the placeholder's digest."""
        self.ensure_placeholder_config(path)
        body = mf.placeholder_manifest()
        return self.put_manifest(path, tag, body, mf.OCI_MANIFEST)

    # ------------------------------------------------------------------ deleting

    def can_delete(self, path: str) -> None:
        """Preflight: raise unless deleting manifests in ``path`` is allowed; deletes nothing.

        Deletes a digest no registry holds: 404 means allowed; 405 UNSUPPORTED means deletion is disabled;
        401/403 means the credentials lack delete permission.
        """
        response = self.request("DELETE", self._manifest_url(path, PROBE_DIGEST), scopes=[repository_scope(path)])
        if response.status_code in (200, 202, 404):
            return
        raise self._fail(response, f"deleting manifests in {path}")

    # ------------------------------------------------------------------ untag (``ci_env.registry.untag_engine``)

    def untag(self, path: str, tag: str) -> str:
        """Remove exactly ``tag`` from ``path``: ``"removed"``, or ``"absent"`` (``untag_engine.untag``)."""
        from ci_env.registry import untag_engine

        return untag_engine.untag(self, path, tag)

    def untag_many(
        self, path: str, tags: Sequence[str], *, parallel: int = LISTING_PARALLELISM,
        report: OutcomeReport | None = None, expected: Mapping[str, str] | None = None,
        known: Mapping[str, str | None] | None = None,
    ) -> dict[str, TagOutcome]:
        """Remove exactly ``tags`` from ``path`` in one batch (``untag_engine.untag_many``)."""
        from ci_env.registry import untag_engine

        return untag_engine.untag_many(self, path, tags, parallel=parallel, report=report, expected=expected,
                                       known=known)

    def retire_tags(self, path: str, tags: Sequence[str], *, parallel: int = LISTING_PARALLELISM,
                    ) -> dict[str, TagOutcome]:
        """Remove ``tags`` only ci-env writes, without reading them (``untag_engine.retire_tags``)."""
        from ci_env.registry import untag_engine

        return untag_engine.retire_tags(self, path, tags, parallel=parallel)

    def ensure_placeholder_config(self, path: str) -> None:
        """Make the placeholder manifest's config blob exist in ``path`` (checked once per repository)."""
        with self._placeholder_lock:
            if path not in self._placeholder_config:
                self.ensure_blob(path, mf.sha256_digest(mf.PLACEHOLDER_CONFIG), mf.PLACEHOLDER_CONFIG)
                self._placeholder_config.add(path)

    def oci_tag_delete(self, path: str, tag: str) -> str:
        """The OCI tag delete (``DELETE /v2/NAME/manifests/TAG``): ``"removed"`` or ``"absent"``."""
        response = self._mutate("delete", "DELETE", path, self._manifest_url(path, tag),
                                scopes=[repository_scope(path)])
        if response.status_code in (200, 202, 204):
            return REMOVED
        if response.status_code == 404 and "NAME_UNKNOWN" not in _error_codes(response)[0]:
            return ABSENT
        raise self._fail(response, f"deleting the tag {path}:{tag}")

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()


class ClientPool:
    """One ``RegistryClient`` per registry host, made on first use and shared by every thread.

    ``pool(repo_or_host)`` takes a ``RepoAddress`` (its API host is used) or a ``host[:port]``. Sharing one
    client per host shares its sessions, tokens and tag maps: what one caller listed and resolved (see
    ``RegistryClient.remember``), the next one's removals start from.
    """

    def __init__(
        self,
        docker_config: Path | None = None,
        insecure_registries: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.docker_config = docker_config
        self.insecure_registries = tuple(insecure_registries)
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._clients: dict[str, RegistryClient] = {}
        self._lock = threading.Lock()

    def __call__(self, repo_or_host: RepoAddress | str) -> RegistryClient:
        """The client of the registry of ``repo_or_host`` (made now when it is the first use of that host)."""
        host = repo_or_host if isinstance(repo_or_host, str) else repo_or_host.api_host()
        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = RegistryClient(host, docker_config=self.docker_config,
                                        insecure_registries=self.insecure_registries, env=self.env)
                self._clients[host] = client
            return client

    def put(self, host: str, client: RegistryClient) -> None:
        """Use ``client`` for ``host`` from now on (a client on a special session, in tests)."""
        with self._lock:
            self._clients[host] = client

    @property
    def clients(self) -> dict[str, RegistryClient]:
        """A snapshot of the clients made so far, by host."""
        with self._lock:
            return dict(self._clients)

    def request_count(self) -> int:
        """HTTP requests made by every client of the pool so far."""
        return sum(client.request_count() for client in self.clients.values())

    def close(self) -> None:
        """Close every client's pooled connections."""
        for client in self.clients.values():
            client.close()


def _error_codes(response: requests.Response) -> tuple[str, str]:
    """(comma-separated error codes, first message) of a Registry API error body; ("", "") when none."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return "", ""
    codes = [str(e.get("code")) for e in errors if isinstance(e, dict) and e.get("code")]
    messages = [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]
    return _one_line(",".join(codes), 100), _one_line(messages[0] if messages else "", 200)


def _one_line(text: str, limit: int) -> str:
    """``text`` (the registry's, untrusted) on one line: whitespace runs as one space, other control characters
    dropped, at most ``limit`` characters; a newline in it would forge lines of the job's log."""
    return "".join(char for char in " ".join(text.split()) if char.isprintable())[:limit]


def _next_link(response: requests.Response, origins: RegistryOrigins) -> str | None:
    """The absolute URL of the ``Link: <...>; rel="next"`` header, or None; RegistryError when its host is
    ambiguous (``RegistryOrigins.resolve``)."""
    import re

    header = response.headers.get("Link")
    if not header:
        return None
    match = re.search(r'<([^>]+)>\s*;\s*rel="?next"?', header)
    return origins.resolve(response.url, match.group(1), "the next page of a tag list") if match else None


def _path_of(url: str) -> str:
    """The path of ``url``, for messages (no host, no query: a query may carry an upload's secrets)."""
    from urllib.parse import urlsplit

    return urlsplit(url).path[:200] or "/"


def _host_of(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).netloc.rpartition("@")[2] or "?")[:100]


def _tag_names(response: requests.Response, what: str) -> list[str]:
    """The tag names of one Registry API tag-list page; RegistryError for anything but ``{"tags": [str, ...]}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
        kind = (response.headers.get("Content-Type") or "no content type").split(";")[0]
        problem = f"an answer that is not JSON ({kind})"
    else:
        problem = "JSON that is not a tag list"
    if isinstance(body, dict):
        names = body.get("tags")
        if names is None:
            return []
        if isinstance(names, list) and all(isinstance(name, str) for name in names):
            return names
    raise RegistryError(f"{what}: the registry answered 200 with {problem} (expected {{\"tags\": [...]}})")


def _quiet_unverified_tls() -> None:
    """No urllib3 warning per host for the unverified HTTPS the user asked for with --insecure-registry."""
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
