"""ci_env.patterns: the same answers as Python's re on what both read, RE2's refusals with their messages, and
linear time on the patterns that make a backtracking matcher run for hours."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ci_env.patterns import MAX_REPEAT, RE2_SYNTAX, PatternError, compile_pattern

#: What users write in tag and branch patterns, and the corners of the syntax.
PATTERNS = (
    r"v\d+\.\d+\.\d+", r"main|release-.*", r"pr-\d+", r"[0-9a-f]{40}", r".*-rc[0-9]+", r"(?i)LATEST|stable",
    r"(a|ab)(c|bcd)(d*)", r"a{2,3}", r"a{2,}", r"a{,2}", r"a{3}", r"a{0}b", r"(ab)*?c", r"a+?b", r"a??b",
    r"[^a-c]+", r"[a-c\d_]+", r"[^\d\s]", r"\w+-\s?\d", r"\W\S\D", r"(?i)rel(ease)?-[A-Z]+", r"(?i:x)y",
    r"x(?i:y)", r".*", r".+", r"", r"a|", r"(|a)+", r"(a*)*b", r"(a+)+", r"(a|aa)+$", r"\bv\d", r"v\b", r"a\Bb",
    r"^v1$", r"\Av1\Z", r"^$", r"x(?:y|z)*", r"(?P<n>ab)+", r"[.]", r"\.", r"a.c", r"[-a]", r"[a-]", r"[]a]",
    r"[^]a]", r"é+", r"(?x) a b  # a comment", r"(?#a note)ab", r"[\]]", r"\\", r"\t", r"[\x41-\x43]+",
    r"(?s)a.b", r"(?m)^b", r"(?m)a$", r"((a)|b)+", r"(a|b)*abb", r"a{1,3}?b{2}",
)
STRINGS = (
    "", "a", "b", "ab", "abb", "abc", "abcd", "aaa", "aab", "aaaa", "ba", "v1", "v1.2.3", "v10.2.30", "v1.2",
    "main", "mainline", "release-x", "release-", "RELEASE-AB", "rel-q", "latest", "LaTeSt", "pr-12", "pr-",
    "a-1", "a- 1", "x", "xy", "xY", "Xy", "xyzzy", "ÉÉ", "éé", "A_b", ".", "-", "]", "\\", "\t", "ABC", "a\tb",
    "a b", "_-1", "x1.-", "1.0.0-rc2", "abababc", "[a[", "0123456789abcdef0123456789abcdef01234567", "a\nb",
)


def python_answers(pattern: str, text: str) -> tuple[bool, bool, bool]:
    python = re.compile(pattern, re.ASCII)
    return bool(python.fullmatch(text)), bool(python.match(text)), bool(python.search(text))


def our_answers(pattern: str, text: str) -> tuple[bool, bool, bool]:
    ours = compile_pattern(pattern)
    return ours.fullmatch(text), ours.match(text), ours.search(text)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_full_prefix_and_anywhere_matches_agree_with_pythons_re(pattern: str) -> None:
    for text in STRINGS:
        if "\n" in text and "$" in pattern:
            continue  # Python's $ also matches before a final newline, RE2's does not (see below)
        assert our_answers(pattern, text) == python_answers(pattern, text), (pattern, text)


def test_dollar_is_the_end_of_the_text_as_in_re2() -> None:
    """Python's ``$`` also matches before a final newline; RE2's (and ci-env's) only at the end."""
    assert not compile_pattern("main$").search("main\n")
    assert compile_pattern("(?m)main$").search("main\n")
    assert compile_pattern(r"main\z").fullmatch("main")  # RE2's spelling of the end of the text


def test_not_a_word_boundary_matches_an_empty_text_as_in_re2() -> None:
    assert compile_pattern(r"\B").fullmatch("") and not re.fullmatch(r"\B", "")


def test_classes_are_ascii_as_in_re2() -> None:
    assert compile_pattern(r"\d+").fullmatch("123") and not compile_pattern(r"\d").fullmatch("٣")
    assert not compile_pattern(r"\w").fullmatch("é") and compile_pattern(r"\W").fullmatch("é")
    assert compile_pattern(r"(?i)é").fullmatch("É")  # case folding is Unicode's, as in RE2


def test_posix_classes_are_read_as_re2_reads_them() -> None:
    assert compile_pattern("release-[[:digit:]]+").fullmatch("release-12")
    assert not compile_pattern("release-[[:digit:]]+").fullmatch("release-x")
    assert compile_pattern("[[:alpha:]_-]+").fullmatch("hot_fix-a")
    assert compile_pattern("[^[:space:]]+").fullmatch("a-b") and not compile_pattern("[^[:space:]]+").search(" ")


@pytest.mark.parametrize(("pattern", "construct"), [
    (r"(a)\1", "a backreference (\\1)"),
    (r"(?P<x>a)(?P=x)", "a backreference (\\1)"),
    (r"v(?=1)\d", "a lookahead (?=...)"),
    (r"v(?!1)\d", "a lookahead (?!...)"),
    (r"(?<=v)\d", "a lookbehind (?<=...)"),
    (r"(?<!v)\d", "a lookbehind (?<!...)"),
    (r"(a)?(?(1)b|c)", "a conditional group (?(...)...)"),
])
def test_what_re2_refuses_is_refused_naming_the_construct(pattern: str, construct: str) -> None:
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern)
    assert str(caught.value) == f"{construct} is not supported: {RE2_SYNTAX}"
    assert RE2_SYNTAX == "patterns use RE2 syntax, as werf and GitLab's cleanup policies do"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10's parser refuses these itself (checked below)")
@pytest.mark.parametrize(("pattern", "construct"), [
    (r"(?>a+)b", "an atomic group (?>...)"),
    (r"a*+b", "a possessive quantifier"),
    (r"a++b", "a possessive quantifier"),
])
def test_atomic_groups_and_possessive_quantifiers_are_refused(pattern: str, construct: str) -> None:
    with pytest.raises(PatternError, match=re.escape(construct) + ".* is not supported: patterns use RE2 syntax"):
        compile_pattern(pattern)


@pytest.mark.parametrize("pattern", [r"(?>a+)b", r"a*+b", r"[[:^digit:]]", r"[[:nope:]]", "(", "a{2,1}", "[z-a]"])
def test_every_refusal_is_a_pattern_error(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)


def test_counted_repetitions_are_capped_as_re2_caps_them() -> None:
    assert compile_pattern(f"a{{{MAX_REPEAT}}}").fullmatch("a" * MAX_REPEAT)
    for pattern in (f"a{{{MAX_REPEAT + 1}}}", f"a{{2,{MAX_REPEAT + 1}}}", f"a{{{MAX_REPEAT + 1},}}"):
        with pytest.raises(PatternError, match=f"the repetition count {MAX_REPEAT + 1} is over 1000"):
            compile_pattern(pattern)
    with pytest.raises(PatternError, match="too large once its counted repetitions are expanded"):
        compile_pattern("((a{0,100}){0,100}){0,100}")


@pytest.mark.parametrize(("pattern", "text"), [
    (r"(a+)+z", "a" * 126 + "-x"),  # 2^126 paths for a backtracking matcher
    (r"(a|aa)+z", "a" * 126 + "-x"),  # Fibonacci(126) paths
    (r"(a*)*z", "a" * 126 + "-x"),
    (r"(\w+\d*)+-z", "a1" * 63 + "-x"),
    (r"(.*a){20}", "a" * 19 + "b" * 107),  # polynomial of degree 20
])
def test_patterns_that_backtrack_for_ages_answer_at_once(pattern: str, text: str) -> None:
    """Each takes longer than the age of the universe with Python's re; here a few milliseconds (no timing
    assertion: pytest would hang instead, and the answers are checked)."""
    ours = compile_pattern(pattern)
    assert not ours.fullmatch(text) and not ours.match(text)
    assert not ours.search(text)
    long = compile_pattern(r"(a+)+z")
    assert long.fullmatch("a" * 100_000 + "z") and not long.fullmatch("a" * 100_000)


def test_the_same_text_gives_the_same_compiled_pattern_and_it_keeps_its_text() -> None:
    assert compile_pattern("v.*") is compile_pattern("v.*")
    assert compile_pattern("v.*").pattern == "v.*"


# ---------------------------------------------------------------- random small patterns against Python's re

_ATOMS = st.sampled_from(["a", "b", "1", "-", ".", "[ab]", "[^a]", r"\d", r"\w", "(?:)", "^", "$", r"\b", r"\B"])
_QUANTIFIERS = st.sampled_from(["*", "+", "?", "{2}", "{0,2}", "{1,}", "*?", "+?", "??", "{1,2}?"])


def _patterns() -> st.SearchStrategy[str]:
    return st.recursive(
        _ATOMS,
        lambda inner: st.one_of(
            st.tuples(inner, inner).map("".join),
            st.tuples(inner, inner).map(lambda p: f"(?:{p[0]}|{p[1]})"),
            inner.map(lambda p: f"({p})"),
            st.tuples(inner, _QUANTIFIERS).map(lambda p: f"(?:{p[0]}){p[1]}"),
        ),
        max_leaves=8,
    )


@settings(max_examples=400, deadline=None)
@given(_patterns(), st.text(alphabet="ab1- ", max_size=8))
def test_random_patterns_agree_with_pythons_re(pattern: str, text: str) -> None:
    assume(text or r"\B" not in pattern)  # Python's \B never matches an empty text; RE2's does (see above)
    assert our_answers(pattern, text) == python_answers(pattern, text), (pattern, text)
