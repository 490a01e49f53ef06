"""werf.yaml's ``cleanup`` section: keep policies for git-history-based cleanup, parsed and validated.

The meta document (the one with ``project:``) may hold, with werf's syntax and meaning::

    cleanup:
      keepPolicies:
      - references:
          branch: /.*/            # or tag: ...; a literal name, or /REGEX/ (matched in full)
          limit:                  # which references: the newest `last` by head date, those within `in`
            last: 10
            in: 168h
            operator: And         # And (default) or Or
        imagesPerReference:       # how many distinct images to keep per reference
          last: 2                 # default 1; -1: no limit
          in: 168h
          operator: And
      keepImagesBuiltWithinLastNHours: 2
      disableGitHistoryBasedPolicy: false
      disableKubernetesBasedPolicy: false
      disableBuiltWithinLastNHoursPolicy: false

Without ``keepPolicies`` werf's defaults apply (:func:`default_policies`). Every mistake is a
:class:`~ci_env.errors.ConfigError` naming the file and line, raised when werf.yaml is loaded, so a
cleanup never starts with a malformed policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ci_env.durations import go_duration_or_none
from ci_env.patterns import Pattern, PatternError, compile_pattern
from ci_env.yaml_nodes import Reader, is_null

AND = "And"
OR = "Or"
BRANCH = "branch"
TAG = "tag"


@dataclass(frozen=True)
class Limit:
    """``last`` (None: unset), ``in`` (None: unset) and how they combine (``And``/``Or``)."""

    last: int | None = None
    within: timedelta | None = None
    operator: str = AND

    def describe(self, default_last: int) -> str:
        """``last 10 and in 7d`` / ``in 7d`` / ``last 2``: the limit as a reader would say it."""
        parts = []
        last = self.effective_last(default_last)
        if self.last is not None or self.within is None:
            parts.append("no limit" if last < 0 else f"last {last}")
        if self.within is not None:
            parts.append(f"in {_duration_text(self.within)}")
        return f" {self.operator.lower()} ".join(parts)

    def effective_last(self, default_last: int) -> int:
        """``last`` with werf's default for its place (-1 for references, 1 for images per reference)."""
        return default_last if self.last is None else self.last


#: werf's defaults: references without a limit are all selected; one image per reference is kept.
REFERENCES_DEFAULT_LAST = -1
IMAGES_DEFAULT_LAST = 1


@dataclass(frozen=True)
class KeepPolicy:
    """One entry of ``keepPolicies`` (``number``: its 1-based place, as reasons name it)."""

    number: int
    kind: str  #: BRANCH or TAG
    pattern: Pattern
    text: str  #: as written: ``main`` or ``/^release-.*/``
    references_limit: Limit | None = None
    images_per_reference: Limit = field(default_factory=Limit)
    line: int = 0

    def selects(self, name: str) -> bool:
        """True when the branch or tag ``name`` matches the policy's name, or its regex as werf anchors it
        (``^REGEX$``: in full, except that a top-level ``a|b`` is ``^a`` or ``b$``)."""
        return self.pattern.search(name)

    @property
    def images_last(self) -> int:
        return self.images_per_reference.effective_last(IMAGES_DEFAULT_LAST)

    def describe(self) -> str:
        """``policy #2 (branch /.*/: last 10 and in 7d; 2 images per reference and in 7d)``."""
        text = f"{self.kind} {self.text}"
        if self.references_limit is not None:
            text += f": {self.references_limit.describe(REFERENCES_DEFAULT_LAST)}"
        images = self.images_per_reference.describe(IMAGES_DEFAULT_LAST)
        return f"policy #{self.number} ({text}; images per reference: {images})"


@dataclass(frozen=True)
class CleanupConfig:
    """The ``cleanup`` section as cleanup uses it (werf's defaults where it says nothing)."""

    keep_policies: tuple[KeepPolicy, ...]
    defaults: bool = True  #: True: no ``keepPolicies`` given, werf's default policies apply
    disable_git_history_based_policy: bool = False
    disable_kubernetes_based_policy: bool = False
    disable_built_within_last_n_hours_policy: bool = False
    keep_images_built_within_last_n_hours: int | None = None
    disable: bool = False


def _regex(text: str) -> Pattern:
    """``/REGEX/`` or a literal name, compiled as werf compiles it: ``^REGEX$`` in Go's RE2 syntax, matched with
    ``search`` (a top-level ``a|b`` is ``^a`` or ``b$``, as in werf), in linear time; PatternError for what
    cannot be read or what RE2 refuses."""
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        body = text[1:-1]
        # Go reads ``^(?i)x$``; Python's parser wants global flags first, where they mean the same
        flags = _LEADING_FLAGS.match(body)
        lead = flags.group(0) if flags is not None else ""
        return compile_pattern(f"{lead}^{body[len(lead):]}$")
    return compile_pattern(f"^{re.escape(text)}$")


_LEADING_FLAGS = re.compile(r"(?:\(\?[imsx]+\))*")


def default_policies() -> tuple[KeepPolicy, ...]:
    """werf's default keep policies: every git tag, newest 10; every branch, newest 10 and within 7 days, 2
    images each within 7 days; main, master, staging and production, 10 images each."""
    week = timedelta(days=7)
    return (
        KeepPolicy(1, TAG, _regex("/.*/"), "/.*/", Limit(last=10)),
        KeepPolicy(2, BRANCH, _regex("/.*/"), "/.*/", Limit(last=10, within=week, operator=AND),
                   Limit(last=2, within=week, operator=AND)),
        KeepPolicy(3, BRANCH, _regex("/^(main|master|staging|production)$/"), "/^(main|master|staging|production)$/",
                   None, Limit(last=10)),
    )


DEFAULT = CleanupConfig(default_policies())

# ---------------------------------------------------------------- parsing (a YAML node, for line numbers)

_SECTION_KEYS = {
    "keepPolicies": "a list of keep policies",
    "keepImagesBuiltWithinLastNHours": "hours (a whole number)",
    "disableGitHistoryBasedPolicy": "true or false",
    "disableKubernetesBasedPolicy": "true or false",
    "disableBuiltWithinLastNHoursPolicy": "true or false",
    "disable": "true or false",
}
_POLICY_KEYS = {"references": "branch or tag, and limit", "imagesPerReference": "last, in, operator"}
_REFERENCES_KEYS = {"branch": "a branch name or /REGEX/", "tag": "a git tag name or /REGEX/",
                    "limit": "last, in, operator"}
_LIMIT_KEYS = {"last": "a whole number, negative for no limit", "in": "a duration: 30m, 21.5h, 1h30m, 168h, 7d",
               "operator": "And or Or"}


class _Reader(Reader):
    """Reads werf.yaml's ``cleanup`` node tree, failing with ``file:line`` and what to write; booleans and whole
    numbers as werf's YAML reader (go-yaml v2) reads them."""

    def boolean(self, node: Any, where: str) -> bool:
        """A YAML 1.1 boolean as werf's YAML reader (go-yaml v2) reads it: ``true``/``false``, ``yes``/``no``,
        ``on``/``off``, ``y``/``n``, each lower case, capitalised or upper case, unquoted. (``true``/``false``
        are also taken quoted or in any case, as ci-env always did.)"""
        text = self.scalar(node, where)
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if getattr(node, "style", None) is None and text in YAML11_BOOLEANS:
            return YAML11_BOOLEANS[text]
        quoted = " (quoted, it is a string: write it without quotes)" if text in YAML11_BOOLEANS else ""
        raise self.fail(node, f"{where} must be true or false (or yes/no, on/off); got {text!r}{quoted}")

    def integer(self, node: Any, where: str, minimum: int | None) -> int:
        """A whole number as werf's YAML reader reads it (``1_000``, ``0x10``, ``0o17``, ``017``, ``0b101``, a
        sign); below ``minimum`` (None: any) is an error."""
        text = self.scalar(node, where)
        value = yaml_int(text)
        if value is None or (minimum is not None and value < minimum):
            lowest = "" if minimum is None else f" ({minimum} or more)"
            raise self.fail(node, f"{where} must be a whole number{lowest}; got {text!r}")
        return value


#: YAML 1.1's booleans as go-yaml v2 (werf's YAML reader) resolves an unquoted scalar.
YAML11_BOOLEANS: dict[str, bool] = {
    **{word: True for base in ("y", "yes", "true", "on") for word in (base, base.capitalize(), base.upper())},
    **{word: False for base in ("n", "no", "false", "off") for word in (base, base.capitalize(), base.upper())},
}

_YAML_INT = re.compile(r"([-+]?)(0b[01]+|0o[0-7]+|0x[0-9a-fA-F]+|0[0-7]+|[0-9]+)")


def yaml_int(text: str) -> int | None:
    """``text`` as go-yaml v2 resolves an integer (underscores dropped; ``0x``, ``0o``, ``0b`` and a leading ``0``
    for octal, as Go's ``strconv.ParseInt`` with base 0); None when it is not one."""
    match = _YAML_INT.fullmatch(text.strip().replace("_", ""))
    if match is None:
        return None
    sign, digits = match.groups()
    base = {"0b": 2, "0o": 8, "0x": 16}.get(digits[:2], 8 if len(digits) > 1 and digits[0] == "0" else 10)
    value = int(digits[2:] if base in (2, 16) or digits[:2] == "0o" else digits, base)
    return -value if sign == "-" else value


def parse_cleanup(node: Any | None, path: Path) -> CleanupConfig:
    """The meta document's ``cleanup`` value (a YAML node, None when absent) as a CleanupConfig.

    As in werf, a null ``cleanup:`` is no section, and an empty or null ``keepPolicies`` means werf's default
    policies (never "no policy", which would keep nothing)."""
    if node is None or is_null(node):
        return DEFAULT
    read = _Reader(path)
    section = read.mapping(node, "cleanup", _SECTION_KEYS)
    flags: dict[str, bool] = {
        name: read.boolean(section[name][1], f"cleanup.{name}")
        for name in ("disableGitHistoryBasedPolicy", "disableKubernetesBasedPolicy",
                     "disableBuiltWithinLastNHoursPolicy", "disable")
        if name in section
    }
    hours = None
    if "keepImagesBuiltWithinLastNHours" in section:
        hours = read.integer(section["keepImagesBuiltWithinLastNHours"][1], "cleanup.keepImagesBuiltWithinLastNHours",
                             0)
    given: tuple[KeepPolicy, ...] = ()
    if "keepPolicies" in section and not is_null(section["keepPolicies"][1]):
        given = _policies(read, section["keepPolicies"][1])
    defaults = not given
    policies = default_policies() if defaults else given
    return CleanupConfig(
        policies, defaults,
        disable_git_history_based_policy=flags.get("disableGitHistoryBasedPolicy", False),
        disable_kubernetes_based_policy=flags.get("disableKubernetesBasedPolicy", False),
        disable_built_within_last_n_hours_policy=flags.get("disableBuiltWithinLastNHoursPolicy", False),
        keep_images_built_within_last_n_hours=hours,
        disable=flags.get("disable", False),
    )


def _policies(read: _Reader, node: Any) -> tuple[KeepPolicy, ...]:
    import yaml

    if not isinstance(node, yaml.SequenceNode):
        raise read.fail(node, "cleanup.keepPolicies must be a list of policies (- references: {branch: ...})")
    return tuple(_policy(read, item, number) for number, item in enumerate(node.value, 1))


def _policy(read: _Reader, node: Any, number: int) -> KeepPolicy:
    where = f"keep policy #{number}"
    policy = read.mapping(node, where, _POLICY_KEYS)
    if "references" not in policy:
        raise read.fail(node, f"{where} has no 'references': give references.branch or references.tag")
    references = read.mapping(policy["references"][1], f"{where} references", _REFERENCES_KEYS)
    kinds = [k for k in (BRANCH, TAG) if k in references]
    if len(kinds) != 1:
        raise read.fail(policy["references"][1],
                        f"{where} references must name exactly one of branch or tag (a name, or /REGEX/)")
    kind = kinds[0]
    value_node = references[kind][1]
    text = read.scalar(value_node, f"{where} references.{kind}")
    try:
        pattern = _regex(text)
    except PatternError as exc:
        raise read.fail(value_node, f"{where} references.{kind} {text!r} is not a valid regular expression: {exc}"
                        ) from None
    limit = _limit(read, references["limit"][1], f"{where} references.limit") if "limit" in references else None
    images = (_limit(read, policy["imagesPerReference"][1], f"{where} imagesPerReference")
              if "imagesPerReference" in policy else Limit())
    return KeepPolicy(number, kind, pattern, text, limit, images, node.start_mark.line + 1)


def _limit(read: _Reader, node: Any, where: str) -> Limit:
    fields = read.mapping(node, where, _LIMIT_KEYS)
    last = None
    if "last" in fields:  # as werf: any negative number is "no limit"
        last = max(read.integer(fields["last"][1], f"{where}.last", None), -1)
    within = None
    if "in" in fields:
        text = read.scalar(fields["in"][1], f"{where}.in")
        within = go_duration_or_none(text)
        if within is None:
            raise read.fail(fields["in"][1], f"{where}.in {text!r} is not a duration: write a number with a unit "
                                             "(ns, us, ms, s, m, h, d), e.g. 30m, 21.5h, 1h30m, 168h or 7d")
    operator = AND
    if "operator" in fields:
        operator = read.scalar(fields["operator"][1], f"{where}.operator")
        if operator not in (AND, OR):
            raise read.fail(fields["operator"][1], f"{where}.operator must be And or Or (got {operator!r})")
    return Limit(last, within, operator)


def _duration_text(value: timedelta) -> str:
    """``7d``, ``1d12h``, ``21h30m``, ``500ms``, ``-1h``: the duration as a reader would write it."""
    if value < timedelta(0):
        return "-" + _duration_text(-value)
    seconds = int(value.total_seconds())
    units: tuple[tuple[str, int], ...] = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts = []
    for unit, size in units:
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    milliseconds = value.microseconds // 1000
    if milliseconds or (not parts and value.microseconds):
        parts.append(f"{milliseconds}ms" if milliseconds else f"{value.microseconds}us")
    return "".join(parts) or "0s"
