"""Protections that win over every cleanup policy: ``--keep-tag``, ``--keep-published-within``, ``--keep-list``.

``--keep-tag`` patterns match whole tags (RE2 syntax, in linear time: :mod:`ci_env.patterns`);
:func:`keep_tag_warnings` says which patterns protect nothing among the tags found, and what to write instead
(``^rel-`` -> ``^rel-.*``).

Pure parsing, no I/O except reading the keep-list file. Every malformed value raises
:class:`~ci_env.errors.UsageError` (exit 2) naming the option and what to write instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ci_env.errors import UsageError
from ci_env.output import plural
from ci_env.patterns import Pattern, PatternError, compile_pattern


def compile_keep_tags(patterns: Iterable[str]) -> tuple[Pattern, ...]:
    """Compile ``--keep-tag`` regular expressions (RE2 syntax); UsageError naming the bad one and what is wrong."""
    compiled = []
    for pattern in patterns:
        if not pattern:
            raise UsageError("--keep-tag '' is empty: give a regular expression matching whole tags, e.g. 'v.*'")
        try:
            compiled.append(compile_pattern(pattern))
        except PatternError as exc:
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
            pattern = compile_pattern(text)
        except PatternError:
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
