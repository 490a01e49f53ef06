"""The one set of words every removal reports, per tag or per manifest: the untag engine, the removers, the
removal of images with their accessories, the cleanup journal and the reports (``--json``, HTML, step summary).

:class:`Status` is a ``str`` enum: a status compares equal to its word and is written as it (JSON, journals,
messages), so what users read stays the same strings.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """What happened to one tag, manifest or stage."""

    #: the tag (or manifest) was removed by this run.
    REMOVED = "removed"
    #: it was already gone when the removal came to it.
    ABSENT = "absent"
    #: the removal failed; the reason says why, and nothing else was touched.
    FAILED = "failed"
    #: a dry run: it would be removed.
    WOULD_REMOVE = "would-remove"
    #: a removal the run did not start (it stopped first: ``--time-budget``), or an accessory whose image stayed.
    NOT_ATTEMPTED = "not-attempted"
    #: the tag points at another digest than the plan saw (pushed or retagged since), or was published again since
    #: the plan (a new publication record, the same image): left alone.
    MOVED = "moved"
    #: an untagged manifest (a platform manifest, a referrer without a tag) left to the registry's garbage collection.
    LEFT = "left"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Left(str):
    """``left`` (equal to :attr:`Status.LEFT`) with why: a remover's answer for a manifest it did not delete for a
    reason of its own (Harbor: what its delete would take along)."""

    reason: str

    def __new__(cls, reason: str) -> Left:
        made = super().__new__(cls, Status.LEFT.value)
        made.reason = reason
        return made


#: the statuses of something that is no longer in the registry (removed now, or gone before).
GONE = frozenset({Status.REMOVED, Status.ABSENT})
