"""Small readers of CI variables shared by the CI modules."""

from __future__ import annotations

from collections.abc import Mapping

from ci_env.boolean import boolean_word


def first(env: Mapping[str, str], *names: str) -> str | None:
    """The value of the first of ``names`` that is set and not empty, else None."""
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def is_true(env: Mapping[str, str], name: str) -> bool:
    """True when ``name`` is set to a true word (:mod:`ci_env.boolean`); anything else is False, never an error:
    these are the CI system's own variables."""
    return boolean_word(env.get(name, "")) is True


def parse_ref(ref: str) -> tuple[str | None, str | None, str | None]:
    """Split a git ref or a webhook trigger into ``(branch, tag, pull_request)``; unknown forms give Nones.

    Understands ``refs/heads/B``, ``refs/tags/T``, ``refs/pull/N/...``,
    ``refs/merge-requests/N/...`` and AWS CodeBuild's ``branch/B``, ``tag/T``, ``pr/N``.
    """
    for prefix, kind in (("refs/heads/", 0), ("branch/", 0), ("refs/tags/", 1), ("tag/", 1)):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            parts: list[str | None] = [None, None, None]
            parts[kind] = ref[len(prefix) :]
            return parts[0], parts[1], parts[2]
    for prefix in ("refs/pull/", "refs/merge-requests/", "pr/"):
        if ref.startswith(prefix):
            number = ref[len(prefix) :].split("/", 1)[0]
            if number:
                return None, None, number
    return None, None, None
