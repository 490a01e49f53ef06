"""Durations as users write them: ``--keep-published-within 2h``, ``--time-budget 50m`` (:func:`duration_or_none`),
and werf.yaml's ``in: 168h`` as Go's ``time.ParseDuration`` reads it (:func:`go_duration_or_none`); each cut to
:data:`LONGEST`."""

from __future__ import annotations

import re
from datetime import timedelta

from ci_env.errors import UsageError

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")

#: The longest duration cleanup works with: anything longer means "forever" and is cut to it, so that
#: ``now - duration`` stays a date (git history starts in 1970).
LONGEST = timedelta(days=36500)


def bounded_duration(*, days: int = 0, hours: int = 0, minutes: int = 0, seconds: int = 0) -> timedelta:
    """The duration, cut to :data:`LONGEST` (whole numbers of any size, never an OverflowError)."""
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return timedelta(seconds=min(total, int(LONGEST.total_seconds())))


def duration_or_none(text: str) -> timedelta | None:
    """``90m``, ``2h``, ``168h``, ``7d``, ``1d12h``, ``30s``, ``0`` -> timedelta (at most :data:`LONGEST`); None when
    ``text`` is not one."""
    value = text.strip().lower()
    if value == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return bounded_duration(days=days, hours=hours, minutes=minutes, seconds=seconds)


#: Go's ``time.ParseDuration`` units (``µs`` in both spellings), plus ci-env's ``d``, in nanoseconds.
_GO_UNITS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
             "h": 3600 * 10**9, "d": 86400 * 10**9}
_GO_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([a-z\u00b5\u03bc]+)", re.IGNORECASE)


def go_duration_or_none(text: str) -> timedelta | None:
    """A duration as Go's ``time.ParseDuration`` reads it (werf's reading of werf.yaml's ``in``): an optional
    sign, then ``0`` or a sequence of decimal numbers, each with a fraction if wanted and a unit (``ns``, ``us``,
    ``µs``, ``ms``, ``s``, ``m``, ``h``; ci-env adds ``d``, and takes the units in any case): ``1h30m``,
    ``21.5h``, ``500ms``, ``-1h``. None when ``text`` is not one; a duration longer than :data:`LONGEST` is cut
    to it (Go fails on one beyond 290 years)."""
    value = text.strip()
    sign = -1 if value.startswith("-") else 1
    body = value[1:] if value[:1] in "+-" else value
    if body == "0":
        return timedelta(0)
    if not body:
        return None
    nanoseconds, index = 0, 0
    while index < len(body):
        match = _GO_PART.match(body, index)
        if match is None or not (match.group(1) or match.group(2)):
            return None
        whole, fraction, unit = match.group(1), match.group(2) or "", match.group(3).lower()
        size = _GO_UNITS.get(unit)
        if size is None:
            return None
        nanoseconds += int(whole or 0) * size + (int(fraction) * size // 10 ** len(fraction) if fraction else 0)
        index = match.end()
    limit = int(LONGEST.total_seconds()) * 10**9
    return sign * timedelta(microseconds=min(nanoseconds, limit) // 1000)


def parse_duration(text: str, option: str = "--keep-published-within") -> timedelta:
    """``90m``, ``2h``, ``3d``, ``1d12h``, ``0`` -> timedelta; UsageError naming ``option`` for anything else."""
    duration = duration_or_none(text)
    if duration is None:
        raise UsageError(
            f"{option} {text!r} is not a duration: write a number with a unit, e.g. 90m, 2h, 3d or 1d12h "
            "(s, m, h, d), or 0 to protect nothing by age"
        )
    return duration
