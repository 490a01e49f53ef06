"""The rules file's command-line equivalent, parsed into the same model (:class:`~ci_env.retention.rules.RulesFile`).

- ``--repository SELECTOR`` (repeatable): ``team/app`` exactly, ``team/*`` a glob (``*``, ``?``, ``**``, ``[...]``),
  ``team/`` (a trailing slash) everything under that namespace;
- ``--rule SPEC`` (repeatable, in priority order): ``key=value`` pairs separated by ``;``: ``tags=REGEX`` and
  ``exclude=REGEX`` (each may repeat; RE2 syntax, matching whole tags), ``keep=all``, ``keep-last=N``,
  ``keep-within=DURATION``, ``older-than=DURATION``, ``except-last=N``;
  e.g. ``--rule 'exclude=main;keep-last=10;older-than=90d'``;
- ``--untagged keep|remove|SPEC`` with ``older-than=DURATION;except-last=N``;
- ``--unit tag|image``.

Every mistake is a :class:`~ci_env.errors.UsageError` (exit 2) naming the option and what to write.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from ci_env.errors import UsageError, did_you_mean
from ci_env.patterns import PatternError, shown
from ci_env.retention.rules import (
    DURATION_HINT,
    KEEP,
    REMOVE,
    SELECT_GLOB,
    SELECT_NAME,
    SELECT_NAMESPACE,
    UNIT_TAG,
    UNITS,
    Keep,
    Remove,
    RepositoryRules,
    RepositorySelector,
    Rule,
    RulesFile,
    TagSelection,
    UntaggedPolicy,
    compile_tag_pattern,
    parse_duration_text,
)

_RULE_KEYS = ("tags", "exclude", "keep", "keep-last", "keep-within", "older-than", "except-last")
_UNTAGGED_KEYS = ("older-than", "except-last")


def rules_from_options(repositories: Sequence[str], rules: Sequence[str], untagged: str | None = None,
                       unit: str | None = None) -> RulesFile:
    """The options as a RulesFile: one entry per ``--repository`` (in the order given), each with every
    ``--rule``; UsageError naming the option for anything malformed."""
    if not repositories:
        raise UsageError("--rule needs --repository: name the repositories the rules apply to "
                         "(team/app, a glob such as 'team/*', or team/ for everything under team)")
    if not rules:
        raise UsageError("--repository needs at least one --rule, e.g. --rule 'keep-last=10;older-than=90d'")
    chosen_unit = UNIT_TAG if unit is None else unit
    if chosen_unit not in UNITS:
        raise UsageError(f"--unit {shown(chosen_unit)} is not a unit: write tag (each tag judged alone) or image "
                         "(a digest and all its tags together)")
    parsed = tuple(_rule(spec, number) for number, spec in enumerate(rules, 1))
    policy = _untagged(untagged) if untagged is not None else UntaggedPolicy()
    entries = tuple(RepositoryRules(number, _selector(text), parsed, policy, chosen_unit)
                    for number, text in enumerate(repositories, 1))
    return RulesFile(entries)


def _selector(text: str) -> RepositorySelector:
    value = text.strip()
    if not value or value == "/":
        raise UsageError(f"--repository {shown(text)} names no repository: write team/app, 'team/*' or team/")
    if value.endswith("/"):
        return RepositorySelector(SELECT_NAMESPACE, value.rstrip("/"))
    if any(char in value for char in "*?["):
        return RepositorySelector(SELECT_GLOB, value)
    return RepositorySelector(SELECT_NAME, value)


def _pairs(option: str, spec: str, allowed: Sequence[str]) -> list[tuple[str, str]]:
    pairs = []
    for part in spec.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in allowed:
            raise UsageError(f"{option} {shown(spec)}: {shown(part.strip())} is not KEY=VALUE with a known key"
                             f"{did_you_mean(key, allowed)} (keys: {', '.join(allowed)})")
        if not value:
            raise UsageError(f"{option} {shown(spec)}: {key}= has no value")
        pairs.append((key, value))
    if not pairs:
        raise UsageError(f"{option} {shown(spec)} is empty: e.g. {option} 'keep-last=10;older-than=90d'")
    return pairs


def _separator_hint(value: str) -> str:
    """A hint when ``value`` holds the next pair after a comma or a space: pairs are separated by ``;``."""
    return "; separate the KEY=VALUE pairs with ';'" if re.search(r"[, ]\s*[a-z-]+=", value) else ""


def _single(option: str, spec: str, pairs: Sequence[tuple[str, str]], key: str) -> str | None:
    values = [value for name, value in pairs if name == key]
    if len(values) > 1:
        raise UsageError(f"{option} {shown(spec)} gives {key}= more than once")
    return values[0] if values else None


def _count(option: str, spec: str, key: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]+", value.strip()):
        raise UsageError(f"{option} {shown(spec)}: {key}={shown(value)} must be a whole number (0 or more)"
                         f"{_separator_hint(value)}")
    return int(value)


def _duration(option: str, spec: str, key: str, value: str | None) -> timedelta | None:
    if value is None:
        return None
    duration = parse_duration_text(value)
    if duration is None:
        raise UsageError(f"{option} {shown(spec)}: {key}={shown(value)} is not a duration: {DURATION_HINT}"
                         f"{_separator_hint(value)}")
    return duration


def _rule(spec: str, number: int) -> Rule:
    option = "--rule"
    pairs = _pairs(option, spec, _RULE_KEYS)
    patterns: dict[str, list[str]] = {"tags": [], "exclude": []}
    for key, value in pairs:
        if key in patterns:
            try:
                compile_tag_pattern(value)
            except PatternError as exc:
                hint = "; list the tags to leave out with exclude= instead (exclude=main;keep-last=10)" if (
                    exc.lookaround) else ""
                raise UsageError(f"{option} {shown(spec)}: {key}={shown(value)} is not a valid regular expression: "
                                 f"{exc}{hint}") from None
            patterns[key].append(value)
    selection = TagSelection(tuple(patterns["tags"]) or (".*",), tuple(patterns["exclude"]))
    everything = _single(option, spec, pairs, "keep")
    if everything is not None and everything != "all":
        raise UsageError(f"{option} {shown(spec)}: keep={shown(everything)}: write keep=all, or keep-last=N / "
                         "keep-within=D")
    last = _count(option, spec, "keep-last", _single(option, spec, pairs, "keep-last"))
    within = _duration(option, spec, "keep-within", _single(option, spec, pairs, "keep-within"))
    older = _duration(option, spec, "older-than", _single(option, spec, pairs, "older-than"))
    spare = _count(option, spec, "except-last", _single(option, spec, pairs, "except-last"))
    if everything is not None:
        if any(v is not None for v in (last, within, older, spare)):
            raise UsageError(f"{option} {shown(spec)}: keep=all keeps every tag the rule covers: drop the other "
                             "limits")
        return Rule(number, selection, Keep(everything=True), None)
    if all(v is None for v in (last, within, older, spare)):
        raise UsageError(f"{option} {shown(spec)} says neither what to keep nor what to remove: add keep=all, "
                         "keep-last=N, keep-within=D or older-than=D")
    return Rule(number, selection, Keep(False, last, within), Remove(older, spare or 0))


def _untagged(spec: str) -> UntaggedPolicy:
    option = "--untagged"
    if spec.strip() in (KEEP, REMOVE):
        return UntaggedPolicy(spec.strip())
    try:
        pairs = _pairs(option, spec, _UNTAGGED_KEYS)
    except UsageError:
        raise UsageError(f"--untagged {shown(spec)}: write keep, remove, or older-than=D and/or except-last=N "
                         "(e.g. --untagged 'older-than=7d')") from None
    older = _duration(option, spec, "older-than", _single(option, spec, pairs, "older-than"))
    spare = _count(option, spec, "except-last", _single(option, spec, pairs, "except-last"))
    return UntaggedPolicy(REMOVE, older, spare or 0)
