"""What a cleanup frees: bytes of the blobs only removed manifests reference, from the manifests the run read.

:func:`measure` is pure: it takes the manifests of the removed digests (and of kept ones where the run read
them) and gives the figures. A blob (layer, config, or a manifest itself) is counted once however many removed
manifests share it, and not at all when a kept manifest the run read references it. Kept manifests the run did
not read may share layers with removed ones, so then the figure is an upper bound (``at_most``). Nothing is
freed until the registry's garbage collection runs: removing a tag only unlinks.

:func:`parse_manifest` turns a manifest body into the :class:`Manifest` this needs.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: removals listed by size in the report (``largest``)
LARGEST = 10


@dataclass(frozen=True)
class Manifest:
    """One manifest as far as storage goes: its own size, the blobs it references (digest -> size) and, for an
    index, its child manifests."""

    digest: str
    size: int
    blobs: Mapping[str, int] = field(default_factory=dict)
    children: tuple[str, ...] = ()


@dataclass(frozen=True)
class Removal:
    """A removed (or would-be removed) tag: its image (the report's image column), name and digest."""

    image: str
    tag: str
    digest: str


@dataclass(frozen=True)
class ImageBytes:
    """The figures of one image: the bytes its removals free (blobs shared between its removals counted once;
    a blob shared with another image's removal counts in both images but once in the total)."""

    image: str
    freed: int
    removed: int
    unknown: int  #: removals whose manifest could not be read: not counted


@dataclass(frozen=True)
class Bytes:
    """What the removals free, per image and in total, and the largest removals."""

    freed: int
    #: True: kept manifests (or tags left alone) the run did not read may share blobs with removed ones, so
    #: ``freed`` may be less
    at_most: bool
    #: bytes the kept manifests the run read reference (None: it read none)
    kept: int | None
    kept_unread: int  #: kept digests whose manifests were not read, and tags left alone that were not read
    unknown: int  #: removals whose manifests could not be read (not counted)
    images: tuple[ImageBytes, ...] = ()
    #: (image, tag, digest, bytes of that image's blobs), largest first; shared blobs count in each
    largest: tuple[tuple[str, str, str, int], ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The report's ``bytes`` object (see the schema)."""
        return {
            "freed": self.freed,
            "at_most": self.at_most,
            "kept": self.kept,
            "kept_unread": self.kept_unread,
            "unknown": self.unknown,
            "when": "freed once the registry's garbage collection runs",
            "images": [{"image": i.image, "freed": i.freed, "removed": i.removed, "unknown": i.unknown}
                       for i in self.images],
            "largest": [{"image": image, "tag": tag, "digest": digest, "size": size}
                        for image, tag, digest, size in self.largest],
        }

    def phrase(self, dry_run: bool = False) -> str:
        """``at most 1.2 GiB freed once the registry's garbage collection runs`` (the status line's words)."""
        words = ("at most " if self.at_most else "") + human(self.freed)
        unknown = f" ({self.unknown} not measured)" if self.unknown else ""
        verb = "would be freed" if dry_run else "freed"
        return f"{words}{unknown} {verb} once the registry's garbage collection runs"


def human(count: int) -> str:
    """``1.5 GiB``, ``512 B``: binary units, one decimal from KiB up."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _closure(roots: Iterable[str], manifests: Mapping[str, Manifest]) -> tuple[dict[str, int], set[str]]:
    """The blobs (digest -> size, the manifests themselves included) reachable from ``roots``, and the roots or
    children whose manifest is unknown."""
    blobs: dict[str, int] = {}
    unknown: set[str] = set()
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in seen:
            continue
        seen.add(digest)
        manifest = manifests.get(digest)
        if manifest is None:
            unknown.add(digest)
            continue
        blobs[digest] = manifest.size
        blobs.update(manifest.blobs)
        stack.extend(manifest.children)
    return blobs, unknown


def measure(removals: Sequence[Removal], kept: Iterable[str], manifests: Mapping[str, Manifest],
            unread: int = 0) -> Bytes:
    """The bytes ``removals`` free, given the digests still tagged (``kept``) and the manifests read (of removed
    digests, and of kept ones where known). A removal whose digest a kept tag still points at frees nothing.
    ``unread``: tags still there whose digest is not even known (they count in ``kept_unread``)."""
    kept_roots = set(kept)
    kept_blobs, kept_unread = _closure(kept_roots, manifests)
    gone = [r for r in removals if r.digest not in kept_roots]
    total, unknown_roots = _closure((r.digest for r in gone), manifests)
    freed = sum(size for digest, size in total.items() if digest not in kept_blobs)

    per_image: dict[str, list[Removal]] = {}
    for removal in removals:
        per_image.setdefault(removal.image, []).append(removal)
    images = []
    sizes: list[tuple[int, str, str, str]] = []
    for image, items in per_image.items():
        own, unknown = _closure((r.digest for r in items if r.digest not in kept_roots), manifests)
        images.append(ImageBytes(image, sum(s for d, s in own.items() if d not in kept_blobs), len(items),
                                 sum(1 for r in items if r.digest in unknown)))
        for removal in items:
            if removal.digest in kept_roots or removal.digest not in manifests:
                continue
            blobs, _ = _closure([removal.digest], manifests)
            sizes.append((sum(blobs.values()), removal.image, removal.tag, removal.digest))
    largest = tuple((image, tag, digest, size) for size, image, tag, digest in heapq.nlargest(LARGEST, sizes))
    return Bytes(
        freed=freed, at_most=bool(kept_unread) or unread > 0, kept=sum(kept_blobs.values()) if kept_blobs else None,
        kept_unread=len(kept_unread) + unread, unknown=sum(1 for r in gone if r.digest in unknown_roots),
        images=tuple(sorted(images, key=lambda i: i.image)), largest=largest,
    )


def parse_manifest(digest: str, body: bytes) -> Manifest:
    """The :class:`Manifest` of ``body`` (layers, config and child manifests with their sizes); ValueError for a
    body that is not a schema 2 / OCI manifest or index. Foreign layers (not stored by the registry) are left
    out."""
    from ci_env import untrusted_json
    from ci_env.registry import manifests as mf

    refs = mf.references(body)  # ValueError for what is not a manifest
    doc = untrusted_json.loads(body)
    blobs: dict[str, int] = {}
    if refs.blobs:
        described = [doc.get("config"), *(doc.get("layers") or [])]
        for item in described:
            if isinstance(item, dict) and item.get("digest") in refs.blobs:
                size = item.get("size")
                blobs[str(item["digest"])] = size if isinstance(size, int) and size >= 0 else 0
    return Manifest(digest, len(body), blobs, refs.children)
