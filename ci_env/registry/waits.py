"""How long ci-env waits before asking a server again: the one place that decides it.

A server's ``Retry-After`` (delta seconds or an HTTP date) is honoured up to ``RETRY_AFTER_CAP`` seconds per
wait, and all the waits of one request (``Retry-After`` and backoff together) stop at ``REQUEST_WAIT_BUDGET``
seconds: a server asking for hours gets the request's error instead. Both the urllib3 retries of every session
(``ci_env.registry.http``) and the few retry loops written by hand use ``WaitBudget``. Standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

#: the longest single wait, whatever ``Retry-After`` asks for.
RETRY_AFTER_CAP = 60.0
#: the most one request waits in all before its last answer (or error) is given up with.
REQUEST_WAIT_BUDGET = 300.0

Sleeper = Callable[[float], None]
Clock = Callable[[], float]


def retry_after_seconds(value: str | None, *, now: Clock = time.time) -> float | None:
    """The seconds a ``Retry-After`` value asks for (>= 0), uncapped; None when absent or not understood."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class WaitBudget:
    """The waits of one request: each capped at ``cap``, together at ``budget``; ``sleep`` does the waiting."""

    def __init__(
        self, *, cap: float = RETRY_AFTER_CAP, budget: float = REQUEST_WAIT_BUDGET, sleep: Sleeper | None = None,
        waited: float = 0.0,
    ) -> None:
        self.cap = cap
        self.budget = budget
        self.sleep = sleep if sleep is not None else time.sleep
        self.waited = waited

    @property
    def spent(self) -> bool:
        """True when no more waiting is allowed for this request."""
        return self.waited >= self.budget

    def allowance(self, wanted: float) -> float:
        """The wait granted for ``wanted`` seconds: capped per wait and by what is left of the budget."""
        return max(0.0, min(wanted, self.cap, self.budget - self.waited))

    def wait(self, wanted: float) -> float:
        """Wait what ``allowance(wanted)`` grants and count it; returns the seconds waited."""
        granted = self.allowance(wanted)
        self.waited += granted
        if granted > 0:
            self.sleep(granted)
        return granted
