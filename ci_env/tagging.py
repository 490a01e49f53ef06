"""Git refs made into valid Docker tags (and other safe names) without collisions."""

from __future__ import annotations

import hashlib
import re

#: A valid Docker tag: https://docs.docker.com/reference/cli/docker/image/tag/
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9_.-]+")
#: Length of the hash of the original appended when a name had to be changed.
HASH_LENGTH = 8
MAX_TAG_LENGTH = 128


def safe_name(text: str, max_length: int = MAX_TAG_LENGTH) -> str:
    """``text`` unchanged when it matches ``[A-Za-z0-9_][A-Za-z0-9_.-]*`` within ``max_length``;
    otherwise each run of other characters becomes ``-``, leading/trailing ``.``/``-`` go, the
    result is cut to fit, and ``-<8 hex of sha256(text)>`` is appended, so two different inputs
    never give the same name (a valid input is never changed, a changed one always has the hash).
    """
    if len(text) <= max_length and TAG_PATTERN.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]
    body = _INVALID_RUN.sub("-", text).strip(".-")[: max_length - HASH_LENGTH - 1].rstrip(".-")
    return f"{body}-{digest}" if body else digest


def docker_tag(ref: str) -> str:
    """A valid Docker tag for the git ref name ``ref`` (branch or tag name), see :func:`safe_name`."""
    return safe_name(ref, MAX_TAG_LENGTH)
