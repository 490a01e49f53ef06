"""Progress of long cleanup runs: on a terminal a bar redrawn in place (:class:`Bar`); elsewhere (CI logs) what is
being done, at most one line every few seconds (:class:`Throttle`). Both write to stderr, never to stdout.

:class:`Throttle` turns a stream of ``(what, done, total)`` updates (from threads) into lines written
through ``emit``: the first update of a new ``what``, then at most one every ``every`` seconds, and its
last one (``done == total``), so a long phase always ends with its total and a short one writes at most
two lines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TextIO

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


class Bar:
    """Progress on a terminal: one line per phase, redrawn in place at most every ``every`` seconds with a bar,
    the count, the rate and the time left (``resolving the tags of R [#####.....] 1200/5000 340/s 11s left``);
    a phase's line ends when it reaches its total or another phase starts. Call it as ``bar(what, done, total)``
    (``total`` 0: a phase without a count, written as a plain line), and :meth:`close` at the end."""

    def __init__(self, stream: TextIO, prefix: str = "ci-env: ", every: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, columns: int | None = None) -> None:
        self.stream = stream
        self.prefix = prefix
        self.every = every
        self.clock = clock
        self.columns = columns
        self._lock = threading.Lock()
        self._what: str | None = None
        self._open = False  #: a line is drawn without its end
        self._started = 0.0
        self._last = 0.0
        self._ended = False

    def __call__(self, what: str, done: int, total: int, detail: str = "") -> None:
        now = self.clock()
        with self._lock:
            if what != self._what:
                self._end_line()
                self._what, self._started, self._last, self._ended = what, now, now, False
                if not total:
                    self._write(self.prefix + what + "\n")
                    self._ended = True
                    return
                self._draw(done, total, detail, now)
            elif self._ended:
                return
            elif done >= total or now - self._last >= self.every:
                self._draw(done, total, detail, now)
            if total and done >= total:
                self._end_line()
                self._ended = True

    def close(self) -> None:
        """End the line being drawn, if any."""
        with self._lock:
            self._end_line()

    def _draw(self, done: int, total: int, detail: str, now: float) -> None:
        import shutil

        self._last = now
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = f" {format_seconds((total - done) / rate)} left" if rate > 0 and done < total else ""
        tail = f" {done}/{total} {rate:,.0f}/s{left}" + (f" ({detail})" if detail else "")
        columns = self.columns or shutil.get_terminal_size((100, 24)).columns
        width = max(10, min(30, columns // 5))
        filled = min(width, width * done // total) if total else 0
        bar = " [" + "#" * filled + "." * (width - filled) + "]"
        room = max(8, columns - 1 - len(self.prefix) - len(bar) - len(tail))
        what = self._what or ""
        if len(what) > room:
            what = "\u2026" + what[-(room - 1):]
        self._write("\r\x1b[2K" + self.prefix + what + bar + tail)
        self._open = True

    def _end_line(self) -> None:
        if self._open:
            self._write("\n")
            self._open = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass


def format_seconds(seconds: float) -> str:
    """``45s``, ``3m05s``, ``1h02m``."""
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def for_stream(stream: TextIO, emit: Callable[[str], None], env: Mapping[str, str] | None = None) -> Bar | Throttle:
    """A :class:`Bar` when ``stream`` is a terminal (and ``TERM`` is not ``dumb``), else a :class:`Throttle`
    writing through ``emit``: one line every few seconds, as a CI log wants."""
    import os

    env = os.environ if env is None else env
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if terminal and env.get("TERM", "") != "dumb":
        return Bar(stream)
    return Throttle(emit)
