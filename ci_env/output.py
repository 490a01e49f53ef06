"""What long-running steps print: status lines, collapsible log sections, a closing table.

One table, :data:`SECTION_STYLES`, says how each CI family folds a section of the log:

- ``gitlab``: ``ESC[0Ksection_start:TIME:NAME[collapsed=true]\\rESC[0KTITLE`` ...
  ``ESC[0Ksection_end:TIME:NAME\\rESC[0K`` (GitLab's documented escape lines);
- ``github``: ``::group::TITLE`` ... ``::endgroup::`` (workflow commands);
- ``generic``: a ``--- TITLE`` header and an ``--- end`` line, lines indented by two spaces.

All writes go through one lock, so status lines of parallel work never tear. When
several sections run at once (``live=False``), a section's lines are kept and written
in one piece when it closes, so folds never interleave. Build and cleanup share this.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from ci_env.redact import strip_userinfo_in

ESC = "\x1b"


@dataclass(frozen=True)
class SectionStyle:
    """How one CI family opens and closes a collapsible section, and prefixes its lines."""

    start: Callable[[str, str, int], str]
    end: Callable[[str, int], str]
    indent: str = ""


def _gitlab_start(name: str, title: str, now: int) -> str:
    return f"{ESC}[0Ksection_start:{now}:{name}[collapsed=true]\r{ESC}[0K{title}"


def _gitlab_end(name: str, now: int) -> str:
    return f"{ESC}[0Ksection_end:{now}:{name}\r{ESC}[0K"


#: CI family -> how sections look in its log. Unknown families use ``generic``.
SECTION_STYLES: dict[str, SectionStyle] = {
    "gitlab": SectionStyle(start=_gitlab_start, end=_gitlab_end),
    "github": SectionStyle(start=lambda _n, title, _t: f"::group::{title}", end=lambda _n, _t: "::endgroup::"),
    "generic": SectionStyle(start=lambda _n, title, _t: f"--- {title}", end=lambda _n, _t: "--- end", indent="  "),
}

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean(text: str) -> str:
    """One line of text without control characters (no escape sequences from build output)."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


class Output:
    """A thread-safe printer for one command run; ``family`` picks the section style."""

    def __init__(self, family: str = "generic", stream: TextIO | None = None, *, live: bool = True) -> None:
        self.style = SECTION_STYLES.get(family, SECTION_STYLES["generic"])
        self.stream = stream if stream is not None else sys.stdout
        self.live = live
        self._lock = threading.Lock()
        self._count = 0

    def write_lines(self, lines: Sequence[str]) -> None:
        """Write ``lines`` together, never interleaved with other threads' output, without URL credentials."""
        with self._lock:
            for line in lines:
                self.stream.write(strip_userinfo_in(line) + "\n")
            self.stream.flush()

    def status(self, text: str) -> None:
        """One status line."""
        self.write_lines([_clean(text)])

    def section(self, title: str, name: str = "section") -> Section:
        """A collapsible section titled ``title``; use it as a context manager and call ``line()``."""
        with self._lock:
            self._count += 1
            unique = f"{_NAME_CHARS.sub('_', name)[:40]}_{self._count}"
        return Section(self, unique, _clean(title))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Print an aligned plain-text table (also readable when folded logs are not supported)."""
        self.write_lines(format_table(headers, rows))


class Section:
    """An open section: lines go to the log live, or all at once on close when the output is not live."""

    def __init__(self, output: Output, name: str, title: str) -> None:
        self.output = output
        self.name = name
        self.title = title
        self._buffer: list[str] = []

    def __enter__(self) -> Section:
        opening = self.output.style.start(self.name, self.title, int(time.time()))
        if self.output.live:
            self.output.write_lines([opening])
        else:
            self._buffer.append(opening)
        return self

    def line(self, text: str) -> None:
        """Add log text (possibly several lines) to the section."""
        parts = [part.rstrip() for part in _clean(text).split("\n")]
        lines = [self.output.style.indent + part for part in parts if part]
        if not lines:
            return
        if self.output.live:
            self.output.write_lines(lines)
        else:
            self._buffer.extend(lines)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        closing = self.output.style.end(self.name, int(time.time()))
        self._buffer.append(closing)
        self.output.write_lines(self._buffer)
        self._buffer = []


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a left-aligned table with a header and a rule."""
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))

    def render(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    return [render(headers), render(["-" * w for w in widths]), *(render(row) for row in rows)]


def format_duration(seconds: float) -> str:
    """``0.4s``, ``12.3s``, ``2m05s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 tag``, ``2 tags``; ``many`` for irregular plurals (``policy`` -> ``policies`` is known)."""
    if count == 1:
        return f"{count} {word}"
    if many is None:
        many = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    return f"{count} {many}"
