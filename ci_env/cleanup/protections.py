"""Protections that win over every cleanup policy: ``--keep-tag``, ``--keep-published-within``, ``--keep-list``.

``--keep-tag`` patterns match whole tags (``re.fullmatch``); :func:`keep_tag_warnings` says which
patterns protect nothing among the tags found, and what to write instead (``^rel-`` -> ``^rel-.*``).

Pure parsing, no I/O except reading the keep-list file. Every malformed value raises
:class:`~ci_env.errors.UsageError` (exit 2) naming the option and what to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ci_env.errors import UsageError
from ci_env.output import plural

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


def compile_keep_tags(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    """Compile ``--keep-tag`` regular expressions; UsageError naming the bad one and the regex error."""
    compiled = []
    for pattern in patterns:
        if not pattern:
            raise UsageError("--keep-tag '' is empty: give a regular expression matching whole tags, e.g. 'v.*'")
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise UsageError(f"--keep-tag {pattern!r} is not a valid regular expression: {exc}") from None
    return tuple(compiled)


@dataclass(frozen=True)
class KeepList:
    """Tags to keep whatever the policies say: ``tags`` for every image, ``image_tags`` for one image.

    An image is its name (``~`` for the nameless image) or the full repository (``host/path``).
    """

    tags: frozenset[str] = frozenset()
    image_tags: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def match(self, image: str | None, repository: str, tag: str, stored_tag: str) -> str | None:
        """The keep-list line that protects this tag, or None."""
        for candidate in {tag, stored_tag}:
            if candidate in self.tags:
                return candidate
        image_key = "~" if image is None else image
        for key in (image_key, repository):
            for candidate in {tag, stored_tag}:
                if (key, candidate) in self.image_tags:
                    return f"{key}:{candidate}"
        return None


def read_keep_list(path: Path) -> KeepList:
    """Read a keep-list file: one ``TAG`` or ``IMAGE:TAG`` per line; ``#`` starts a comment; blanks ignored.

    ``IMAGE`` is a managed image name (``~`` for the nameless image) or a repository ``host/path``;
    the last ``:`` separates the tag. UsageError for an unreadable file or a malformed line (with its number).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--keep-list {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--keep-list {str(path)!r} is not UTF-8 text: one tag or image:tag per line") from None
    tags: set[str] = set()
    image_tags: set[tuple[str, str]] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if any(c.isspace() for c in line):
            raise UsageError(f"--keep-list {path}:{number}: {line!r} contains whitespace: one tag or image:tag a line")
        image, sep, tag = line.rpartition(":")
        if sep and "/" in tag:
            # host:port/path without a tag
            raise UsageError(f"--keep-list {path}:{number}: {line!r} has no tag: write IMAGE:TAG or TAG")
        if not sep:
            tags.add(line)
        elif not image or not tag:
            raise UsageError(f"--keep-list {path}:{number}: {line!r} has an empty image or tag: write IMAGE:TAG or TAG")
        else:
            image_tags.add((image, tag))
    return KeepList(frozenset(tags), frozenset(image_tags))


def keep_tag_warnings(patterns: Sequence[str], tags: Iterable[str]) -> list[str]:
    """One warning per ``--keep-tag`` pattern that matches none of ``tags`` in full (the way cleanup matches),
    saying what it would match as a prefix or inside a tag and the pattern that keeps those; none when there
    are no tags at all (nothing to protect yet)."""
    found = sorted(set(tags))
    if not found:
        return []
    warnings = []
    for text in patterns:
        try:
            pattern = re.compile(text)
        except re.error:
            continue  # compile_keep_tags reports it
        if any(pattern.fullmatch(tag) for tag in found):
            continue
        prefixed = [tag for tag in found if pattern.match(tag)]
        inside = [tag for tag in found if pattern.search(tag)]
        if prefixed:
            warnings.append(_partial(text, prefixed, "the start of", f"{text}.*"))
        elif inside:
            warnings.append(_partial(text, inside, "a part of", f".*{text.lstrip('^')}.*"))
        else:
            warnings.append(
                f"--keep-tag {text!r} matches none of the {plural(len(found), 'tag')} found: it protects nothing; "
                "check the pattern (it must match whole tags)"
            )
    return warnings


def _partial(text: str, matched: Sequence[str], where: str, suggestion: str) -> str:
    return (
        f"--keep-tag {text!r} matches no tag in full, only {where} {plural(len(matched), 'tag')} "
        f"(e.g. {matched[0]!r}), and --keep-tag matches whole tags, so it protects nothing: "
        f"write {suggestion!r} to keep them"
    )
