"""The untag engine of the Registry API: remove exactly the tags named, and never a manifest.

A manifest ``DELETE`` by digest takes with it every tag that points at that digest *when the registry runs
it* (distribution untags them all). Deleting "the manifest of a stale tag" is therefore safe only while
nothing else points at it, which no client can know: another job may retag ``latest`` onto that image a
moment before the ``DELETE`` lands, and ``latest`` would go too. So this engine never deletes an image. It
moves each tag to remove onto a placeholder manifest unique to the batch (a tiny OCI manifest without layers,
with a random annotation, :func:`ci_env.registry.manifests.placeholder_manifest`), then deletes that
placeholder by digest: only the tags this batch pointed at it go. A kept tag pushed or retagged onto any image
meanwhile keeps its manifest. regclient removes a tag the same way (``scheme/reg/tag.go``) where the registry
has no tag delete.

The images that lost their last tag stay in the registry, untagged, until its garbage collection removes them
(distribution: ``registry garbage-collect --delete-untagged``; GitLab, Harbor, ECR: their own untagged-manifest
policies). No garbage collector removes a tagged manifest, nor the children and referrers of one.

Per tag: a ``HEAD`` (is it there, and is it still at the digest the plan saw?) and a ``PUT``; one ``DELETE`` per
batch (``BATCH_PER_WORKER`` tags per worker); the placeholder's config blob once per repository. A tag whose digest
is no longer the one ``expected`` is left alone and reported ``moved``; one still on a placeholder of an earlier,
interrupted run is removed.

What remains: the tags being removed themselves. A tag re-pushed between its ``HEAD`` and its ``PUT`` (the
time of one request) is removed anyway, and a tag pushed by someone else *onto this batch's placeholder*
(whose digest nobody else knows) would go with it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ci_env.errors import CiEnvError, RegistryError
from ci_env.registry import manifests as mf
from ci_env.registry.outcomes import Status

if TYPE_CHECKING:
    from ci_env.registry.api import ManifestInfo, RegistryApi

#: tags moved onto one placeholder before it is deleted, per worker (and at most ``PLACEHOLDER_BATCH``): one
#: DELETE per batch (distribution reads every tag link of the repository on each manifest DELETE, so fewer
#: DELETEs are cheaper for the registry too), and outcomes that still come in steps (progress, the journal).
BATCH_PER_WORKER = 16
PLACEHOLDER_BATCH = 512
#: tries at deleting a placeholder (re-written by digest between tries, see :meth:`UntagEngine._delete_placeholder`).
DELETE_TRIES = 3
#: a manifest at most this big may be one of our placeholders (they are about 400 bytes).
PLACEHOLDER_MAX_SIZE = 1024
#: this process's runs: a part of every placeholder's annotation, so two runs never share one.
RUN_NONCE = uuid.uuid4().hex[:12]

#: what happened to one tag: ``removed``, ``absent``, ``moved``, or the error that stopped it.
TagOutcome = Status | CiEnvError
#: called once per tag as soon as its outcome is known (from worker threads).
OutcomeReport = Callable[[str, TagOutcome], None]
#: decides, right before a tag is moved, whether it goes: None (move it), or the outcome to report instead.
_Check = Callable[[str], "TagOutcome | None"]


class UntagEngine:
    """The placeholder route on one registry (its Registry API verbs, ``api``); safe to share between threads.

    Remembers the repositories that hold the placeholder's config blob (checked once per repository).
    """

    def __init__(self, api: RegistryApi) -> None:
        self.api = api
        self._configs: set[str] = set()
        self._lock = threading.Lock()

    def ensure_placeholder_config(self, path: str) -> None:
        """Make the placeholder manifest's config blob exist in ``path`` (checked once per repository)."""
        with self._lock:
            if path not in self._configs:
                self.api.ensure_blob(path, mf.sha256_digest(mf.PLACEHOLDER_CONFIG), mf.PLACEHOLDER_CONFIG)
                self._configs.add(path)

    def point_at_placeholder(self, path: str, tag: str) -> str:
        """Point ``tag`` at a new, unique, tiny placeholder manifest; returns the placeholder's digest (a vendor
        API then deletes what holds it: GitHub's package version)."""
        self.ensure_placeholder_config(path)
        return self.api.put_manifest(path, tag, mf.placeholder_manifest(), mf.OCI_MANIFEST)

    def untag(self, path: str, tag: str) -> Status:
        """Remove exactly ``tag`` from ``path``: ``removed``, or ``absent`` when it did not exist (errors raise)."""
        outcome = self.untag_many(path, [tag], parallel=1)[tag]
        if isinstance(outcome, CiEnvError):
            raise outcome
        return outcome

    def untag_many(
        self, path: str, tags: Sequence[str], *, parallel: int = 8,
        report: OutcomeReport | None = None, expected: Mapping[str, str] | None = None,
        known: Mapping[str, str | None] | None = None,
    ) -> dict[str, TagOutcome]:
        """Remove exactly ``tags`` from ``path``; per tag ``removed``, ``absent``, ``moved`` or its error.

        Never raises for a registry's answer (``report(tag, outcome)`` hears each as soon as it is known). Each tag
        is resolved right before it is moved onto the batch's placeholder, unless ``known`` (tag -> digest, None: it
        does not exist) says what the caller resolved a moment ago. ``expected`` (tag -> digest) guards the batch: a
        tag at another digest now is left alone, ``moved`` (a tag still on a placeholder of an interrupted run is
        not an image: it goes).
        """
        unique = list(dict.fromkeys(tags))
        results: dict[str, TagOutcome] = {}
        lock = threading.Lock()

        def settle(tag: str, outcome: TagOutcome) -> None:
            with lock:
                results[tag] = outcome
            if report is not None:
                report(tag, outcome)

        def check(tag: str) -> TagOutcome | None:
            info: ManifestInfo | None = None
            if known is not None and tag in known:
                digest = known[tag]
            else:
                try:
                    info = self.api.resolve(path, tag)
                except CiEnvError as exc:
                    return exc
                digest = info.digest if info is not None else None
            if digest is None:
                return Status.ABSENT
            wanted = (expected or {}).get(tag)
            if wanted is not None and digest != wanted and not self._on_placeholder(path, info):
                return Status.MOVED
            return None

        self._point_and_delete(path, unique, max(1, parallel), settle, check)
        return {tag: results[tag] for tag in unique}

    def retire_tags(self, path: str, tags: Sequence[str], *, parallel: int = 8) -> dict[str, TagOutcome]:
        """Remove ``tags`` without reading them first: for tags only ci-env writes (its records), which nobody
        moves.

        One request per tag and one DELETE per batch, with no listing and no resolving. A tag that did not exist
        is briefly created and removed with the others. Never raises for a registry's answer.
        """
        results: dict[str, TagOutcome] = {}
        unique = list(dict.fromkeys(tags))
        if unique:
            self._point_and_delete(path, unique, max(1, parallel), results.__setitem__, None)
        return results

    def _on_placeholder(self, path: str, info: ManifestInfo | None) -> bool:
        """True when ``info`` is one of ci-env's placeholders (a tag an interrupted run left on it)."""
        if info is None or info.media_type != mf.OCI_MANIFEST or not 0 < info.size <= PLACEHOLDER_MAX_SIZE:
            return False
        try:
            body, _ = self.api.get_manifest(path, info.digest)
        except CiEnvError:
            return False
        return mf.is_placeholder(body)

    def _point_and_delete(
        self, path: str, tags: Sequence[str], workers: int, settle: OutcomeReport, check: _Check | None,
    ) -> None:
        """In batches (``BATCH_PER_WORKER`` per worker): ``check`` then point each tag at the batch's new placeholder
        (in parallel), then delete the placeholder once."""
        try:
            self.ensure_placeholder_config(path)
        except CiEnvError as exc:
            for tag in tags:
                settle(tag, exc)
            return

        size = min(PLACEHOLDER_BATCH, BATCH_PER_WORKER * workers)
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(tags)))) as pool:
            for start in range(0, len(tags), size):
                chunk = tags[start:start + size]
                body = mf.placeholder_manifest(f"{RUN_NONCE}-{uuid.uuid4().hex}")
                placeholder = mf.sha256_digest(body)

                def point(tag: str, body: bytes = body) -> bool:
                    if check is not None:
                        verdict = check(tag)
                        if verdict is not None:
                            settle(tag, verdict)
                            return False
                    try:
                        self.api.put_manifest(path, tag, body, mf.OCI_MANIFEST)
                    except CiEnvError as exc:
                        settle(tag, exc)
                        return False
                    return True

                pointed = [tag for tag, moved in zip(chunk, pool.map(point, chunk), strict=True) if moved]
                if not pointed:
                    continue
                error = self._delete_placeholder(path, placeholder, body)
                outcome: TagOutcome = Status.REMOVED
                if error is not None:
                    outcome = type(error)(
                        f"{error.message}; the tag now points at the placeholder {placeholder} (no image; no other "
                        "tag moved): run the removal again to finish"
                    )
                for tag in pointed:
                    settle(tag, outcome)

    def _delete_placeholder(self, path: str, digest: str, body: bytes) -> CiEnvError | None:
        """Delete the placeholder ``digest`` with every tag on it; None when done, else the error.

        Distribution deletes the manifest first and then untags each tag on it, reading every tag link of the
        repository; a tag link another client writes at that moment can be read half-written, and the DELETE then
        fails (500) with the manifest gone but some of its tags left dangling, and its retry answers 404. So
        anything but a 202 to a DELETE of a manifest that existed is answered by writing the placeholder again by
        digest (its tags link to it again) and deleting it again.
        """
        error: CiEnvError | None = None
        for attempt in range(DELETE_TRIES):
            if attempt:
                try:
                    self.api.put_manifest(path, digest, body, mf.OCI_MANIFEST)
                except CiEnvError as exc:
                    return exc
            try:
                if self.api.delete_manifest(path, digest):
                    return None
                error = RegistryError(f"{self.api.registry}/{path}@{digest}: the placeholder was gone before its "
                                      "DELETE")
            except CiEnvError as exc:
                error = exc
        return error
