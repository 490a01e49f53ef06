"""Regular expressions users write to select names (tags, branches) that someone else pushes, matched in time
linear in the pattern's size times the name's length, whatever either contains.

Python's ``re`` backtracks: ``(a+)+z`` against ``aaa...a`` (a tag may be 128 characters) takes exponential time,
so whoever can push a tag could stall every cleanup. werf matches with Go's ``regexp`` and GitLab's cleanup
policies with RE2, both linear. This module gives ci-env RE2 semantics: the pattern is read by Python's own regex
parser, what RE2 refuses is refused (backreferences, lookahead and lookbehind, atomic groups, possessive
quantifiers, conditionals; counted repetitions over 1000), and the rest is run as a Thompson NFA whose state
sets are cached as a DFA built lazily (as RE2 does), so a match costs a dictionary lookup per character once
the states it meets are known.

What RE2 and this module read alike: literals, ``.``, sets ``[...]`` with ranges, negation, ``\\d \\w \\s`` (ASCII,
as in RE2) and POSIX classes ``[[:digit:]]``, groups (capturing, named, non-capturing), ``|``, ``* + ? {m}
{m,} {m,n}`` greedy or lazy, ``^ $ \\A \\z \\b \\B`` (``$`` is the end of the text unless ``(?m)``), and the
flags ``(?i) (?s) (?m)``. Python-only spellings Python's parser reads (``\\Z``, ``(?#...)``, ``(?x)``) are
accepted too.
"""

from __future__ import annotations

import functools
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

if sys.version_info >= (3, 11):
    import re._constants as _constants
    import re._parser as _parser
else:  # pragma: no cover - Python 3.10
    import sre_constants as _constants
    import sre_parse as _parser

_C: Any = _constants
_parse: Callable[..., Any] = _parser.parse

#: RE2's largest repetition count (``a{1001}`` is refused there too).
MAX_REPEAT = 1000
#: The most NFA instructions a pattern may expand to (``(a{0,100}){0,100}`` is over it).
MAX_PROGRAM = 20_000
#: DFA states kept per pattern before its cache is dropped and rebuilt (bounds memory, not time).
_MAX_STATES = 2_000

RE2_SYNTAX = "patterns use RE2 syntax, as werf and GitLab's cleanup policies do"


class PatternError(ValueError):
    """A pattern this module will not run: unreadable, or using what RE2 refuses. The message says what and
    what to write instead; callers prefix where the pattern came from. ``lookaround`` is true for a lookahead or
    lookbehind, so a caller that has an exclude list can say to use it instead."""

    def __init__(self, message: str, *, lookaround: bool = False) -> None:
        super().__init__(message)
        self.lookaround = lookaround


def _refused(construct: str, *, lookaround: bool = False) -> PatternError:
    return PatternError(f"{construct} is not supported: {RE2_SYNTAX}", lookaround=lookaround)


#: What a glob's ``*`` or ``?`` (or ``**``) where nothing precedes it looks like to a regular expression parser.
_GLOB_SLIPS = ("nothing to repeat", "multiple repeat")
_GROUP_REFERENCE = re.compile(r"(?:invalid|unknown) group (?:reference|name) (\S+)")


def shown(text: str) -> str:
    """``text`` quoted for a message as the user wrote it (``'v\\.[0-9]+'`` shows one backslash, not two); a
    text with a quote or a control character is shown as Python's repr, so nothing in it hides."""
    if "'" in text or any(not char.isprintable() for char in text):
        return repr(text)
    return f"'{text}'"


def _unreadable(exc: re.error) -> PatternError:
    """The PatternError for what Python's parser refused: a backreference to a group that does not exist is a
    backreference all the same (RE2 refuses every one), and a repetition with nothing before it is most often a
    glob's ``*`` written where a regular expression is read."""
    message = str(exc)
    reference = _GROUP_REFERENCE.match(message)
    if reference is not None:
        group = reference.group(1).strip("'")
        spelled = f"(\\{group})" if group.isdigit() else f"(?P={group})"
        return _refused(f"a backreference {spelled}")
    if message.startswith(_GLOB_SLIPS):
        return PatternError(f"{message}: patterns are regular expressions, not globs: write "
                            ".* where a glob has * and . where it has ? (v.* for v*)")
    return PatternError(message)


# ---------------------------------------------------------------- POSIX classes and \z (RE2 spellings)

#: RE2's POSIX classes, as the inside of a Python character set.
_POSIX = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~", "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z", "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]+):\]")


def _re2_spellings(source: str) -> str:
    """``source`` with each ``[:name:]`` inside a character set replaced by its ranges and RE2's ``\\z`` (end of
    text) written as Python's ``\\Z``; PatternError for an unknown or negated POSIX class."""
    out: list[str] = []
    index, in_set = 0, False
    while index < len(source):
        char = source[index]
        if char == "\\":
            escape = source[index:index + 2]
            out.append("\\Z" if escape == "\\z" and not in_set else escape)
            index += 2
            continue
        if in_set:
            match = _POSIX_CLASS.match(source, index)
            if match is not None:
                negated, name = match.groups()
                if negated or name not in _POSIX:
                    raise PatternError(f"the POSIX class {match.group(0)} is not supported here; write the "
                                       "characters as a set instead, e.g. [0-9] for [:digit:]")
                out.append(_POSIX[name])
                index = match.end()
                continue
            if char == "]" and out[-1] not in ("[", "[^"):
                in_set = False
        elif char == "[":
            in_set = True
            if source.startswith("^", index + 1):
                out.append("[^")
                index += 2
                continue
        out.append(char)
        index += 1
    return "".join(out)


# ---------------------------------------------------------------- characters

def _is_word(char: str) -> bool:
    return char == "_" or ("0" <= char <= "9") or ("a" <= char <= "z") or ("A" <= char <= "Z")


_CATEGORIES: dict[Any, Callable[[str], bool]] = {
    _C.CATEGORY_DIGIT: lambda c: "0" <= c <= "9",
    _C.CATEGORY_NOT_DIGIT: lambda c: not "0" <= c <= "9",
    _C.CATEGORY_WORD: _is_word,
    _C.CATEGORY_NOT_WORD: lambda c: not _is_word(c),
    _C.CATEGORY_SPACE: lambda c: c in "\t\n\f\r ",
    _C.CATEGORY_NOT_SPACE: lambda c: c not in "\t\n\f\r ",
}


def _variants(char: str) -> tuple[str, ...]:
    """``char`` and its single-character lower and upper cases (what ``(?i)`` compares)."""
    return tuple({char, *(c for c in (char.lower(), char.upper()) if len(c) == 1)})


def _literal(code: int, icase: bool) -> Callable[[str], bool]:
    char = chr(code)
    if not icase:
        return char.__eq__
    accepted = frozenset(_variants(char))
    return lambda c: any(v in accepted for v in _variants(c))


def _set(items: list[tuple[Any, Any]], icase: bool) -> Callable[[str], bool]:
    negate = False
    literals: set[str] = set()
    ranges: list[tuple[int, int]] = []
    categories: list[Callable[[str], bool]] = []
    for op, arg in items:
        if op is _C.NEGATE:
            negate = True
        elif op is _C.LITERAL:
            literals.add(chr(arg))
        elif op is _C.RANGE:
            ranges.append(arg)
        elif op is _C.CATEGORY:
            if arg not in _CATEGORIES:
                raise PatternError(f"the class {arg} is not supported")
            categories.append(_CATEGORIES[arg])
        else:  # pragma: no cover - the parser puts nothing else in a set
            raise PatternError(f"{op} in a set is not supported")

    def one(c: str) -> bool:
        if c in literals:
            return True
        code = ord(c)
        return any(lo <= code <= hi for lo, hi in ranges) or any(test(c) for test in categories)

    def member(c: str) -> bool:
        hit = any(one(v) for v in _variants(c)) if icase else one(c)
        return hit != negate

    return member


# ---------------------------------------------------------------- the program (a Thompson NFA)

_CHAR, _SPLIT, _ASSERT, _MATCH = range(4)
# assertions: what the characters either side of a position must be
_BEGIN_TEXT, _END_TEXT, _BEGIN_LINE, _END_LINE, _WORD_EDGE, _NOT_WORD_EDGE = range(6)

_FLAG_I, _FLAG_S, _FLAG_M = _C.SRE_FLAG_IGNORECASE, _C.SRE_FLAG_DOTALL, _C.SRE_FLAG_MULTILINE


class _Program:
    """Instructions in parallel lists (``op``, ``arg``: a character test or an assertion, ``out``, ``alt``: the
    second branch of a split), built backwards from MATCH so each piece knows where it continues."""

    def __init__(self) -> None:
        self.op: list[int] = []
        self.arg: list[Any] = []
        self.out: list[int] = []
        self.alt: list[int] = []
        self.uses_word = False
        self.uses_line = False

    def add(self, op: int, arg: Any = None, out: int = -1, alt: int = -1) -> int:
        if len(self.op) >= MAX_PROGRAM:
            raise PatternError(f"the pattern is too large once its counted repetitions are expanded (over "
                               f"{MAX_PROGRAM} steps): write a shorter one, e.g. .* instead of a long count")
        self.op.append(op)
        self.arg.append(arg)
        self.out.append(out)
        self.alt.append(alt)
        return len(self.op) - 1

    def sequence(self, items: Any, flags: int, then: int) -> int:
        for op, arg in reversed(list(items)):
            then = self.item(op, arg, flags, then)
        return then

    def item(self, op: Any, arg: Any, flags: int, then: int) -> int:
        icase = bool(flags & _FLAG_I)
        if op is _C.LITERAL:
            return self.add(_CHAR, _literal(arg, icase), then)
        if op is _C.NOT_LITERAL:
            same = _literal(arg, icase)
            return self.add(_CHAR, lambda c: not same(c), then)
        if op is _C.ANY:
            return self.add(_CHAR, (lambda c: True) if flags & _FLAG_S else (lambda c: c != "\n"), then)
        if op is _C.IN:
            return self.add(_CHAR, _set(arg, icase), then)
        if op is _C.BRANCH:
            branches = [self.sequence(sub, flags, then) for sub in arg[1]]
            start = branches[-1]
            for branch in reversed(branches[:-1]):
                start = self.add(_SPLIT, out=branch, alt=start)
            return start
        if op is _C.SUBPATTERN:
            _group, add, remove, sub = arg
            return self.sequence(sub, (flags | add) & ~remove, then)
        if op is _C.MAX_REPEAT or op is _C.MIN_REPEAT:
            return self.repeat(arg, flags, then)
        if op is _C.AT:
            return self.add(_ASSERT, self.anchor(arg, flags), then)
        raise self.refusal(op, arg)

    def repeat(self, arg: Any, flags: int, then: int) -> int:
        low, high, sub = arg
        for count in (low, high):
            if count != _C.MAXREPEAT and count > MAX_REPEAT:
                raise PatternError(f"the repetition count {count} is over {MAX_REPEAT}, the largest RE2 reads: "
                                   f"{RE2_SYNTAX}; write + or * for any number")
        start = then
        if high == _C.MAXREPEAT:  # a loop: split into one more of sub, or on
            loop = self.add(_SPLIT)
            self.out[loop] = self.sequence(sub, flags, loop)
            self.alt[loop] = then
            start = loop
        else:  # high - low optional copies, nested: (x(x)?)?
            for _ in range(high - low):
                start = self.add(_SPLIT, out=self.sequence(sub, flags, start), alt=then)
        for _ in range(low):
            start = self.sequence(sub, flags, start)
        return start

    def anchor(self, at: Any, flags: int) -> int:
        multiline = bool(flags & _FLAG_M)
        if at is _C.AT_BEGINNING_STRING or (at is _C.AT_BEGINNING and not multiline):
            return _BEGIN_TEXT
        if at is _C.AT_END_STRING or (at is _C.AT_END and not multiline):
            return _END_TEXT  # RE2: $ is the end of the text, not also before a final newline
        if at is _C.AT_BEGINNING or at is _C.AT_END:
            self.uses_line = True
            return _BEGIN_LINE if at is _C.AT_BEGINNING else _END_LINE
        if at is _C.AT_BOUNDARY or at is _C.AT_NON_BOUNDARY:
            self.uses_word = True
            return _WORD_EDGE if at is _C.AT_BOUNDARY else _NOT_WORD_EDGE
        raise PatternError(f"the anchor {at} is not supported")  # pragma: no cover - none other is parsed

    @staticmethod
    def refusal(op: Any, arg: Any) -> PatternError:
        if op is _C.GROUPREF:
            return _refused(f"a backreference (\\{arg})")
        if op is _C.GROUPREF_EXISTS:
            return _refused("a conditional group (?(...)...)")
        if op is _C.ASSERT or op is _C.ASSERT_NOT:
            ahead = arg[0] >= 0
            spelled = ("(?=...)" if ahead else "(?<=...)") if op is _C.ASSERT else ("(?!...)" if ahead else "(?<!...)")
            return _refused(f"a look{'ahead' if ahead else 'behind'} {spelled}", lookaround=True)
        if op is getattr(_C, "ATOMIC_GROUP", None):
            return _refused("an atomic group (?>...)")
        if op is getattr(_C, "POSSESSIVE_REPEAT", None):
            return _refused("a possessive quantifier (*+, ++, ?+)")
        return _refused(f"the construct {op}")


# ---------------------------------------------------------------- running it (a lazily built DFA)

class _State:
    """A DFA state: the NFA instructions waiting for the next character (not yet followed through splits and
    assertions, which depend on that character), and what the previous character was (``prev``: -1 at the
    start of the text). ``moves`` caches, per next character, the state after it and whether a match ended
    just before it."""

    __slots__ = ("final", "moves", "pcs", "prev")

    def __init__(self, pcs: frozenset[int], prev: int) -> None:
        self.pcs = pcs
        self.prev = prev
        self.moves: dict[str, tuple[_State, bool]] = {}
        self.final: bool | None = None


class Pattern:
    """A compiled user pattern. ``pattern`` is the text as written; :meth:`fullmatch`, :meth:`match` (a prefix)
    and :meth:`search` (anywhere) answer True or False in time linear in the pattern times the text."""

    def __init__(self, text: str, program: _Program, start: int) -> None:
        self.pattern = text
        self._program = program
        self._start = start
        self._states: dict[tuple[frozenset[int], int, bool], _State] = {}

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"

    def fullmatch(self, text: str) -> bool:
        """True when the pattern matches all of ``text``."""
        state = self._initial(False)
        for char in text:
            move = state.moves.get(char)
            if move is None:
                move = self._move(state, char, False)
            state = move[0]
            if not state.pcs:
                return False
        return self._final(state)

    def match(self, text: str) -> bool:
        """True when the pattern matches a prefix of ``text`` (possibly empty)."""
        return self._run(text, False)

    def search(self, text: str) -> bool:
        """True when the pattern matches somewhere in ``text``."""
        return self._run(text, True)

    def _run(self, text: str, anywhere: bool) -> bool:
        state = self._initial(anywhere)
        for char in text:
            move = state.moves.get(char)
            if move is None:
                move = self._move(state, char, anywhere)
            if move[1]:
                return True
            state = move[0]
            if not state.pcs:
                return False
        return self._final(state)

    # -- the DFA, built as characters arrive

    def _initial(self, anywhere: bool) -> _State:
        return self._intern(frozenset((self._start,)), -1, anywhere)

    def _intern(self, pcs: frozenset[int], prev: int, anywhere: bool) -> _State:
        key = (pcs, prev, anywhere)
        state = self._states.get(key)
        if state is None:
            if len(self._states) >= _MAX_STATES:
                self._states = {}  # bounded memory: rebuilt as needed, each step still linear
            state = self._states[key] = _State(pcs, prev)
        return state

    def _prev_code(self, char: str) -> int:
        program = self._program
        code = 0
        if program.uses_word and _is_word(char):
            code |= 1
        if program.uses_line and char == "\n":
            code |= 2
        return code

    def _move(self, state: _State, char: str, anywhere: bool) -> tuple[_State, bool]:
        waiting, matched = self._closure(state, char)
        program = self._program
        pcs = {program.out[pc] for pc in waiting if program.arg[pc](char)}
        if anywhere:
            pcs.add(self._start)
        move = (self._intern(frozenset(pcs), self._prev_code(char), anywhere), matched)
        state.moves[char] = move
        return move

    def _final(self, state: _State) -> bool:
        if state.final is None:
            state.final = self._closure(state, None)[1]
        return state.final

    def _closure(self, state: _State, following: str | None) -> tuple[list[int], bool]:
        """The character instructions reachable from ``state`` through splits and the assertions that hold
        between the previous character and ``following`` (None: the end of the text), and whether MATCH is."""
        program = self._program
        op, out, alt, arg = program.op, program.out, program.alt, program.arg
        seen: set[int] = set()
        stack = list(state.pcs)
        waiting: list[int] = []
        matched = False
        while stack:
            pc = stack.pop()
            if pc in seen:
                continue
            seen.add(pc)
            kind = op[pc]
            if kind == _CHAR:
                waiting.append(pc)
            elif kind == _SPLIT:
                stack.append(alt[pc])
                stack.append(out[pc])
            elif kind == _ASSERT:
                if _holds(arg[pc], state.prev, following):
                    stack.append(out[pc])
            else:
                matched = True
        return waiting, matched


def _holds(assertion: int, prev: int, following: str | None) -> bool:
    """Whether ``assertion`` holds between the previous character (``prev``: -1 at the start, else bit 1 a word
    character, bit 2 a newline) and ``following`` (None at the end)."""
    if assertion == _BEGIN_TEXT:
        return prev == -1
    if assertion == _END_TEXT:
        return following is None
    if assertion == _BEGIN_LINE:
        return prev == -1 or bool(prev & 2)
    if assertion == _END_LINE:
        return following is None or following == "\n"
    before = prev != -1 and bool(prev & 1)
    after = following is not None and _is_word(following)
    return (before != after) == (assertion == _WORD_EDGE)


@functools.lru_cache(maxsize=512)
def compile_pattern(text: str) -> Pattern:
    """``text`` (RE2 syntax) as a Pattern; PatternError saying what is wrong when it cannot be read or uses
    what RE2 refuses (backreferences, lookaround, atomic groups, possessive quantifiers, conditionals, counts
    over 1000). Cached: the same text gives the same Pattern."""
    source = _re2_spellings(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set": RE2 reads [[a] as Python does
            parsed = _parse(source)
    except re.error as exc:
        raise _unreadable(exc) from None
    except RecursionError:
        raise PatternError("the pattern nests too deeply: write it with fewer nested groups") from None
    program = _Program()
    try:
        start = program.sequence(parsed, parsed.state.flags, program.add(_MATCH))
    except RecursionError:
        raise PatternError("the pattern nests too deeply: write it with fewer nested groups") from None
    return Pattern(text, program, start)
