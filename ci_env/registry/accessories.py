"""Accessories of an image: signatures, attestations, SBOMs and other OCI 1.1 referrers, and where they live.

Three places name them (pure functions here, no I/O):

- cosign's tags beside the image: ``sha256-<hex>.sig`` (signature), ``.att`` (attestation), ``.sbom`` (SBOM), each
  a manifest whose subject is ``sha256:<hex>``;
- the referrers tag schema: a tag ``sha256-<hex>`` holding an OCI index whose ``manifests`` are the referrers of
  ``sha256:<hex>``, kept by clients on registries without the referrers API (a ``sha512`` digest is cut to 64
  hex characters there);
- the referrers API, ``GET /v2/<name>/referrers/<digest>``: an OCI index of the same descriptors.

The kind of a referrer comes from its ``artifactType`` (or, for cosign's tags, the suffix). Everything here is
pure except :func:`copy_cosign_tags` (retag across repositories).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ci_env.registry.client import RegistryClient

SIGNATURE = "signature"
ATTESTATION = "attestation"
SBOM = "sbom"
REFERRER = "referrer"
#: the referrers tag schema's index (``sha256-<hex>``): it lists the referrers of its subject.
REFERRERS_INDEX = "referrers-index"

#: cosign's tag suffix -> the kind of what it holds.
COSIGN_SUFFIXES: dict[str, str] = {"sig": SIGNATURE, "att": ATTESTATION, "sbom": SBOM}

_TAG = re.compile(r"^(?P<algorithm>sha256|sha512)-(?P<hex>[0-9a-f]{64})(?:\.(?P<suffix>sig|att|sbom))?$")

#: (substring of an artifactType or layer media type, kind): the first match wins.
_KINDS: tuple[tuple[str, str], ...] = (
    ("cosign.artifact.sig", SIGNATURE),
    ("cosign.simplesigning", SIGNATURE),
    ("notary.signature", SIGNATURE),
    ("sigstore.bundle", SIGNATURE),
    ("in-toto", ATTESTATION),
    ("dsse", ATTESTATION),
    ("attestation", ATTESTATION),
    ("provenance", ATTESTATION),
    ("spdx", SBOM),
    ("cyclonedx", SBOM),
    ("sbom", SBOM),
    ("syft", SBOM),
)


@dataclass(frozen=True)
class AccessoryTag:
    """A tag that holds an accessory of another manifest rather than an image: cosign's ``.sig``/``.att``/``.sbom``
    tags and the referrers tag schema's ``sha256-<hex>``."""

    tag: str
    #: the digest (``sha256:<hex>``) of the manifest it belongs to; for a cut sha512 digest, its first 64 hex.
    subject: str
    kind: str

    def belongs_to(self, digest: str) -> bool:
        """True when ``digest`` is this tag's subject (a sha512 digest matched by its first 64 hex characters)."""
        return digest == self.subject or (self.subject.startswith("sha512:") and digest.startswith(self.subject))


def accessory_tag(tag: str) -> AccessoryTag | None:
    """What ``tag`` holds when it is an accessory tag, else None (an ordinary tag)."""
    match = _TAG.match(tag)
    if match is None:
        return None
    suffix = match.group("suffix")
    kind = COSIGN_SUFFIXES[suffix] if suffix else REFERRERS_INDEX
    return AccessoryTag(tag, f"{match.group('algorithm')}:{match.group('hex')}", kind)


def is_accessory_tag(tag: str) -> bool:
    """True for cosign's tags and the referrers tag schema's tags."""
    return _TAG.match(tag) is not None


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``: ``<algorithm>-<hex cut to 64>``."""
    algorithm, _, hexa = digest.partition(":")
    return f"{algorithm}-{hexa[:64]}"


def cosign_tags(digest: str) -> tuple[str, ...]:
    """cosign's tags for the accessories of ``digest`` (signature, attestation, SBOM)."""
    base = referrers_tag(digest)
    return tuple(f"{base}.{suffix}" for suffix in COSIGN_SUFFIXES)


def kind_of(artifact_type: str | None, media_types: tuple[str, ...] = ()) -> str:
    """The kind of a referrer from its ``artifactType`` (else its layers' media types): signature, attestation,
    sbom, or referrer when nothing says."""
    for text in (artifact_type or "", *media_types):
        lowered = text.lower()
        for needle, kind in _KINDS:
            if needle in lowered:
                return kind
    return REFERRER


def copy_cosign_tags(client: RegistryClient, source_path: str, target_path: str, digest: str) -> list[str]:
    """Copy cosign's signature, attestation and SBOM tags of ``digest`` from ``source_path`` to ``target_path``
    (blobs mounted, manifests unchanged): a retagged image keeps the same digest, so its signatures stay valid
    and ``cosign verify`` finds them in the target. Returns the tags copied (those that exist)."""
    if source_path == target_path:
        return []
    copied = []
    for tag in cosign_tags(digest):
        if client.resolve(source_path, tag) is not None:
            client.retag(source_path, tag, target_path, [tag])
            copied.append(tag)
    return copied
