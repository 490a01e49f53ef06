"""The one set of words every removal reports, per tag or per manifest (reports, ``--json``, journals)."""

from __future__ import annotations

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
#: the tag points at another digest than the plan saw (pushed or retagged since): left alone.
MOVED = "moved"
#: an untagged manifest (a platform manifest, a referrer without a tag) left to the registry's garbage collection.
LEFT = "left"
