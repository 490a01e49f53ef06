"""The retention rules model and its file: which repositories, and per repository, in priority order, which tags
to keep and which to remove by count and age, and what to do with untagged manifests.

The file (YAML; every mistake a :class:`~ci_env.errors.ConfigError` naming the file and line)::

    version: 1
    repositories:
    - glob: "team/*"              # or name: team/app (exact), or namespace: team (everything under team/)
      unit: tag                   # tag (default): each tag judged alone; image: a digest and all its tags together
      untagged: keep              # keep (default) | remove | {olderThan: 7d, exceptLast: 3}
      rules:                      # priority order: each tag is judged by the first rule whose tags cover it
      - tags: {include: ['v[0-9]+(\\.[0-9]+)*']}
        keep: all
      - tags: {include: ['.*'], exclude: [main, latest]}
        keep: {last: 10, within: 30d}   # the 10 most recent tags the rule covers, and those pushed within 30d
        remove: {olderThan: 90d}         # of the rest, those older than 90d (exceptLast: N spares N more)

Patterns match whole tags (as werf anchors its patterns), in RE2 syntax and in linear time
(:mod:`ci_env.patterns`: a tag someone pushes cannot stall the cleanup). A tag no rule covers is kept. Pure:
no network; only :func:`load_rules` reads the file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ci_env.durations import go_duration_or_none
from ci_env.errors import ConfigError
from ci_env.patterns import Pattern, PatternError, compile_pattern, shown
from ci_env.yaml_nodes import Reader, compose, is_null, line_of

VERSION = 1

#: What a rule or the untagged policy does with what it covers.
KEEP = "keep"
REMOVE = "remove"

#: The unit a repository's rules judge: each tag alone, or an image (a digest) with all its tags.
UNIT_TAG = "tag"
UNIT_IMAGE = "image"
UNITS = (UNIT_TAG, UNIT_IMAGE)

#: How a repository entry selects repositories.
SELECT_NAME = "name"
SELECT_GLOB = "glob"
SELECT_NAMESPACE = "namespace"
SELECTORS = (SELECT_NAME, SELECT_GLOB, SELECT_NAMESPACE)


def compile_tag_pattern(text: str) -> Pattern:
    """``text`` as a pattern (RE2 syntax) to match whole tags with ``fullmatch``; PatternError when it cannot be
    read or uses what RE2 refuses."""
    return compile_pattern(text)


@dataclass(frozen=True)
class TagSelection:
    """The tags a rule covers: those matching an ``include`` pattern in full and no ``exclude`` pattern."""

    include: tuple[str, ...] = (".*",)
    exclude: tuple[str, ...] = ()
    _include: tuple[Pattern, ...] = field(init=False, repr=False, compare=False)
    _exclude: tuple[Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", tuple(compile_tag_pattern(p) for p in self.include))
        object.__setattr__(self, "_exclude", tuple(compile_tag_pattern(p) for p in self.exclude))

    def includes(self, tag: str) -> bool:
        """True when an ``include`` pattern matches the whole tag."""
        return any(p.fullmatch(tag) for p in self._include)

    def excludes(self, tag: str) -> bool:
        """True when an ``exclude`` pattern matches the whole tag."""
        return any(p.fullmatch(tag) for p in self._exclude)

    def covers(self, tag: str) -> bool:
        return self.includes(tag) and not self.excludes(tag)

    def describe(self) -> str:
        """``tags .*`` / ``tags v.*, except main, latest``."""
        text = "tags " + ", ".join(self.include)
        return text + (", except " + ", ".join(self.exclude) if self.exclude else "")


@dataclass(frozen=True)
class Keep:
    """What a rule keeps of the tags it covers: all of them, or the ``last`` N most recent and those pushed
    ``within`` a duration (either or both; None: not that criterion)."""

    everything: bool = False
    last: int | None = None
    within: timedelta | None = None


@dataclass(frozen=True)
class Remove:
    """What a rule removes of what its ``keep`` leaves: those pushed more than ``older_than`` ago (None: whatever
    their age), except the ``except_last`` most recent of them."""

    older_than: timedelta | None = None
    except_last: int = 0


@dataclass(frozen=True)
class Rule:
    """One rule (``number``: its 1-based place, as reasons name it; ``line``: where it starts, 0 from options).
    ``remove`` is None for a rule that keeps all it covers."""

    number: int
    tags: TagSelection
    keep: Keep
    remove: Remove | None
    description: str | None = None
    line: int = 0

    @property
    def name(self) -> str:
        """``rule #2`` (or ``rule #2 (line 14)``, from a file)."""
        return f"rule #{self.number}" + (f" (line {self.line})" if self.line else "")


@dataclass(frozen=True)
class UntaggedPolicy:
    """What happens to untagged manifests nothing references (platform manifests, signatures and attestations
    always follow what references them): ``keep``, or ``remove`` those older than ``older_than`` (None: any age)
    except the ``except_last`` most recent."""

    action: str = KEEP
    older_than: timedelta | None = None
    except_last: int = 0


@dataclass(frozen=True)
class RepositorySelector:
    """``name`` (exact), ``glob`` (``*`` and ``?`` within a path segment, ``**`` across segments) or ``namespace``
    (every repository under it: a GitLab group, a GitHub owner, a Harbor project, a Docker Hub namespace, a path
    prefix of ECR or of a Registry-API catalog). A pattern naming a registry host matches ``host/path``; one
    without matches the path."""

    kind: str
    value: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind == SELECT_GLOB:
            regex = _glob_regex(self.value)
        elif self.kind == SELECT_NAMESPACE:
            regex = re.escape(self.value.rstrip("/")) + "/.+"
        else:
            regex = re.escape(self.value)
        object.__setattr__(self, "_regex", re.compile(regex + r"\Z"))

    def matches(self, repository: str) -> bool:
        """True when the repository (``host/path`` or ``path``) is selected."""
        candidates = [repository]
        first, _, rest = repository.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            candidates.append(rest)
        return any(self._regex.match(candidate) for candidate in candidates)

    def describe(self) -> str:
        return f"{self.kind} {self.value}"


def _glob_regex(pattern: str) -> str:
    """A glob as a regex: ``**`` any characters, ``*`` any within a segment, ``?`` one such, ``[...]`` a set
    (of characters within a segment too: ``[!-]`` matches no ``/``)."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 2)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1:end]
                # a set matches one character within a segment, as ``*`` and ``?`` do: never a ``/``
                out.append("(?!/)[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
                index = end + 1
                continue
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


@dataclass(frozen=True)
class RepositoryRules:
    """One entry of ``repositories``: which repositories, the unit judged, the rules in priority order and the
    untagged policy (``number``: its 1-based place; ``line``: where it starts, 0 from options)."""

    number: int
    selector: RepositorySelector
    rules: tuple[Rule, ...]
    untagged: UntaggedPolicy = UntaggedPolicy()
    unit: str = UNIT_TAG
    line: int = 0


@dataclass(frozen=True)
class RulesFile:
    """The whole rules file (or the options' equivalent); ``source`` names where it came from."""

    repositories: tuple[RepositoryRules, ...]
    source: str = "command line"

    def for_repository(self, repository: str) -> RepositoryRules | None:
        """The first entry that selects ``repository`` (entries are in priority order too); None: no entry does,
        and cleanup by rules leaves that repository alone."""
        return next((entry for entry in self.repositories if entry.selector.matches(repository)), None)


# ---------------------------------------------------------------- the file

_TOP_KEYS = {"version": "1", "repositories": "a list of repository entries"}
_ENTRY_KEYS = {
    "name": "one repository, exactly", "glob": "repositories matching a glob (*, ?, **)",
    "namespace": "every repository under a group, owner, project or prefix",
    "unit": "tag or image", "untagged": "keep, remove, or olderThan/exceptLast", "rules": "a list of rules",
}
_RULE_KEYS = {"description": "text", "tags": "include and exclude patterns", "keep": "all, or last/within",
              "remove": "all, or olderThan/exceptLast"}
_TAGS_KEYS = {"include": "patterns matching whole tags", "exclude": "patterns matching whole tags"}
_KEEP_KEYS = {"last": "how many of the most recent", "within": "a duration: 30d, 168h, 1h30m"}
_REMOVE_KEYS = {"olderThan": "a duration: 90d, 2160h", "exceptLast": "how many of the most recent to spare"}
DURATION_HINT = "write a number with a unit (s, m, h, d), e.g. 7d, 90d, 168h or 1h30m"


def load_rules(path: Path) -> RulesFile:
    """Read and validate the rules file at ``path``; ConfigError (exit 2) with ``file:line`` for any mistake,
    UsageError-like ConfigError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"the rules file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"the rules file {str(path)!r} is not UTF-8 text") from None
    return parse_rules(text, path)


def parse_rules(text: str, path: Path) -> RulesFile:
    """The rules file's text as a RulesFile (``path`` names it in errors)."""
    node = compose(path, text)
    if node is None or is_null(node):
        raise ConfigError(f"{path}:1: the rules file is empty: write version: 1 and a repositories list")
    read = Reader(path)
    top = read.mapping(node, "the rules file", _TOP_KEYS)
    if "version" not in top:
        raise read.fail(node, "the rules file has no version: write version: 1 at the top")
    version_node = top["version"][1]
    if read.scalar(version_node, "version") != str(VERSION):
        raise read.fail(version_node, f"version must be {VERSION} (the only version this ci-env reads)")
    if "repositories" not in top or is_null(top["repositories"][1]):
        raise read.fail(node, "the rules file has no repositories: list at least one (- glob: '*' with rules)")
    items = read.sequence(top["repositories"][1], "repositories", "- name: team/app")
    if not items:
        raise read.fail(top["repositories"][1], "repositories is empty: list at least one entry")
    entries = tuple(_entry(read, item, number) for number, item in enumerate(items, 1))
    return RulesFile(entries, str(path))


def _entry(read: Reader, node: Any, number: int) -> RepositoryRules:
    where = f"repositories entry #{number}"
    fields = read.mapping(node, where, _ENTRY_KEYS)
    kinds = [kind for kind in SELECTORS if kind in fields]
    if len(kinds) != 1:
        raise read.fail(node, f"{where} must name exactly one of name, glob or namespace")
    kind = kinds[0]
    selector = RepositorySelector(kind, read.scalar(fields[kind][1], f"{where} {kind}"))
    unit = UNIT_TAG
    if "unit" in fields:
        unit = read.scalar(fields["unit"][1], f"{where} unit")
        if unit not in UNITS:
            raise read.fail(fields["unit"][1], f"{where} unit must be tag or image (got {unit!r})")
    untagged = _untagged(read, fields["untagged"][1], f"{where} untagged") if "untagged" in fields else UntaggedPolicy()
    if "rules" not in fields or is_null(fields["rules"][1]):
        raise read.fail(node, f"{where} has no rules: give at least one (- keep: {{last: 10}})")
    rule_nodes = read.sequence(fields["rules"][1], f"{where} rules", "- keep: {last: 10}")
    if not rule_nodes:
        raise read.fail(fields["rules"][1], f"{where} rules is empty: give at least one rule")
    rules = tuple(_rule(read, item, index, where) for index, item in enumerate(rule_nodes, 1))
    return RepositoryRules(number, selector, rules, untagged, unit, line_of(node))


def _rule(read: Reader, node: Any, number: int, entry: str) -> Rule:
    where = f"{entry} rule #{number}"
    fields = read.mapping(node, where, _RULE_KEYS)
    tags = _tags(read, fields["tags"][1], f"{where} tags") if "tags" in fields else TagSelection()
    if "keep" not in fields and "remove" not in fields:
        raise read.fail(node, f"{where} says neither keep nor remove: write keep: all, keep: {{last: N}}, "
                              "remove: {olderThan: 90d} or both keep and remove")
    keep = _keep(read, fields["keep"][1], f"{where} keep") if "keep" in fields else Keep()
    remove: Remove | None
    if keep.everything:
        if "remove" in fields:
            raise read.fail(fields["remove"][0], f"{where} keeps all it covers (keep: all), so remove has no "
                                                 "effect: drop one of them")
        remove = None
    elif "remove" in fields:
        remove = _remove(read, fields["remove"][1], f"{where} remove")
    else:
        remove = Remove()  # keep: {last/within} alone removes the rest, as ECR's imageCountMoreThan does
    description = read.scalar(fields["description"][1], f"{where} description") if "description" in fields else None
    return Rule(number, tags, keep, remove, description, line_of(node))


def _tags(read: Reader, node: Any, where: str) -> TagSelection:
    fields = read.mapping(node, where, _TAGS_KEYS)
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("include", "exclude"):
        if key not in fields:
            continue
        items = read.strings(fields[key][1], f"{where}.{key}", "['v.*', 'release-.*']")
        for text, item in items:
            try:
                compile_tag_pattern(text)
            except PatternError as exc:
                hint = "; list the tags to leave out in tags.exclude instead (include: ['.*'], exclude: [main])" if (
                    exc.lookaround) else ""
                raise read.fail(item, f"{where}.{key} {shown(text)} is not a valid regular expression: {exc}{hint}"
                                ) from None
        lists[key] = tuple(text for text, _ in items)
    if "include" in lists and not lists["include"]:
        raise read.fail(fields["include"][1], f"{where}.include is empty: give a pattern, or drop it to cover "
                                              "every tag")
    return TagSelection(lists.get("include", (".*",)), lists.get("exclude", ()))


def _keep(read: Reader, node: Any, where: str) -> Keep:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.value != "all":
            raise read.fail(node, f"{where} must be all or a mapping with last and/or within (got {node.value!r})")
        return Keep(everything=True)
    fields = read.mapping(node, where, _KEEP_KEYS)
    if not fields:
        raise read.fail(node, f"{where} is empty: give last: N and/or within: DURATION, or write keep: all")
    last = read.integer(fields["last"][1], f"{where}.last", 0) if "last" in fields else None
    within = _duration(read, fields["within"][1], f"{where}.within") if "within" in fields else None
    return Keep(False, last, within)


def _remove(read: Reader, node: Any, where: str) -> Remove:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.value != "all":
            raise read.fail(node, f"{where} must be all or a mapping with olderThan and/or exceptLast "
                                  f"(got {node.value!r})")
        return Remove()
    fields = read.mapping(node, where, _REMOVE_KEYS)
    older = _duration(read, fields["olderThan"][1], f"{where}.olderThan") if "olderThan" in fields else None
    spare = read.integer(fields["exceptLast"][1], f"{where}.exceptLast", 0) if "exceptLast" in fields else 0
    return Remove(older, spare)


def _untagged(read: Reader, node: Any, where: str) -> UntaggedPolicy:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.value not in (KEEP, REMOVE):
            raise read.fail(node, f"{where} must be keep, remove, or a mapping with olderThan and/or exceptLast "
                                  f"(got {node.value!r})")
        return UntaggedPolicy(node.value)
    remove = _remove(read, node, where)
    return UntaggedPolicy(REMOVE, remove.older_than, remove.except_last)


def _duration(read: Reader, node: Any, where: str) -> timedelta:
    text = read.scalar(node, where)
    value = parse_duration_text(text)
    if value is None:
        raise read.fail(node, f"{where} {text!r} is not a duration: {DURATION_HINT}")
    return value


def parse_duration_text(text: str) -> timedelta | None:
    """A non-negative duration as werf.yaml's ``in`` reads it (``7d``, ``168h``, ``1h30m``, ``21.5h``); None when
    ``text`` is not one."""
    value = go_duration_or_none(text)
    return None if value is None or value < timedelta(0) else value


def duration_text(value: timedelta) -> str:
    """``90d``, ``1d12h``, ``36h30m``, ``45s``: a duration as a reader would write it."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def describe_rules(rules: Sequence[Rule]) -> list[str]:
    """One line per rule, as ``--dry-run`` could print them: ``rule #1: tags v.*: keep all``."""
    lines = []
    for rule in rules:
        if rule.keep.everything:
            action = "keep all"
        else:
            keep = []
            if rule.keep.last is not None:
                keep.append(f"the {rule.keep.last} most recent")
            if rule.keep.within is not None:
                keep.append(f"those pushed within {duration_text(rule.keep.within)}")
            remove = rule.remove or Remove()
            removed = "remove" + (" the rest" if keep else "")
            if remove.older_than is not None:
                removed += f" older than {duration_text(remove.older_than)}"
            if remove.except_last:
                removed += f" except the {remove.except_last} most recent of those"
            action = (f"keep {' and '.join(keep)}; " if keep else "") + removed
        lines.append(f"{rule.name}: {rule.tags.describe()}: {action}")
    return lines
