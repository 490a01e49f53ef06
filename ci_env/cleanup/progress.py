"""Progress of long cleanup runs: what is being done, at most one line every few seconds.

:class:`Throttle` turns a stream of ``(what, done, total)`` updates (from threads) into lines written
through ``emit``: the first update of a new ``what``, then at most one every ``every`` seconds, and its
last one (``done == total``), so a long phase always ends with its total and a short one writes at most
two lines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

#: Seconds between two progress lines of the same phase.
EVERY = 2.0

Update = Callable[[str, int, int], None]


class Throttle:
    """A thread-safe, rate-limited progress printer; call it as ``throttle(what, done, total)``."""

    def __init__(self, emit: Callable[[str], None], every: float = EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emit = emit
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._what: str | None = None
        self._last = 0.0
        self._final_written = False

    def __call__(self, what: str, done: int, total: int) -> None:
        """Report that ``done`` of ``total`` of ``what`` are done (``total`` 0: a phase without a count)."""
        now = self.clock()
        with self._lock:
            if what != self._what:
                self._what, self._last, self._final_written = what, now, done >= total
                line = True
            elif done >= total:
                line = not self._final_written
                self._final_written = True
            else:
                line = now - self._last >= self.every
            if line:
                self._last = now
                self.emit(f"{what}: {done}/{total}" if total else what)
