"""The time a cleanup may take (``--time-budget``): when to stop starting removals so the run ends in time.

A run stops starting new removals once what is left of its budget falls below a safety margin plus the
longest batch of removals so far (the batch in flight must still fit), finishes the ones in flight, writes
its report and journal, and exits with ``EXIT_PARTIAL``. The margin is a tenth of the budget, at least
``MIN_MARGIN`` and at most ``MAX_MARGIN`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: the exit code of a run stopped by its time budget with removals left: run it again to continue.
EXIT_PARTIAL = 3
MIN_MARGIN = 10.0
MAX_MARGIN = 120.0


@dataclass
class TimeBudget:
    """``seconds`` from ``started`` (on ``clock``); ``reached(upcoming)`` says whether to stop starting work."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    @property
    def margin(self) -> float:
        """The seconds kept for finishing cleanly: writing the report and the journal, printing, exiting."""
        return min(MAX_MARGIN, max(MIN_MARGIN, self.seconds / 10))

    def remaining(self) -> float:
        """Seconds left of the budget (negative once it is spent)."""
        return self.seconds - (self.clock() - self.started)

    def reached(self, upcoming: float = 0.0) -> bool:
        """True when work expected to take ``upcoming`` seconds would not end before the margin."""
        return self.remaining() < self.margin + upcoming
