"""Matching user patterns against tags: ci-env's linear-time matcher (``ci_env.patterns``) against Python's ``re``.

For each pattern, 10,000 realistic tags (``v1.2.3``, ``pr-1234``, ``main``, ``release-2024.05``, 40-hex
signatures, ...), each matched in full (``fullmatch``, as cleanup matches tags), a few times over: ns per match
and the ratio to ``re``. The first pass (which builds the matcher's DFA states) is timed alone. Then the
adversarial pattern ``(a+)+z`` against ``a`` x N + ``-x``: ci-env on 128 characters (a tag's longest), ``re`` on
growing N until one match takes over a second (it doubles with each character).

The last line is the cost the brief asks about: a cleanup of 10,000 tags with 5 patterns.

Run by hand: ``python -m bench.patterns_bench [--tags 10000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import random
import re
import time

from ci_env.patterns import compile_pattern

PATTERNS = (r"v\d+\.\d+\.\d+", r"main|release-.*", r"pr-\d+", r"[0-9a-f]{40}", r".*-rc[0-9]+", r"(?i)LATEST|stable")


def make_tags(count: int, seed: int = 7) -> list[str]:
    """``count`` tags as CI pipelines push them (a fixed mix, seeded)."""
    rng = random.Random(seed)
    forms = (
        lambda: f"v{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 200)}",
        lambda: f"pr-{rng.randint(1, 9999)}",
        lambda: rng.choice(["main", "latest", "stable", "develop", "master"]),
        lambda: f"release-{rng.randint(2019, 2026)}.{rng.randint(1, 12):02d}",
        lambda: f"{rng.getrandbits(160):040x}",
        lambda: f"v{rng.randint(0, 9)}.{rng.randint(0, 9)}.0-rc{rng.randint(1, 9)}",
        lambda: f"feature-{rng.choice(['login', 'cache', 'api'])}-{rng.randint(1, 999)}",
    )
    return [rng.choice(forms)() for _ in range(count)]


def time_matches(match: object, tags: list[str], rounds: int) -> float:
    """ns per match over ``rounds`` passes of ``tags`` (``match``: a fullmatch function)."""
    start = time.perf_counter_ns()
    for _ in range(rounds):
        for tag in tags:
            match(tag)  # type: ignore[operator]
    return (time.perf_counter_ns() - start) / (rounds * len(tags))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tags = make_tags(args.tags)

    print(f"{args.tags} tags, fullmatch, ns per match (first pass: the matcher builds its DFA states)")
    print(f"{'pattern':<22} {'re':>8} {'ci-env':>8} {'ratio':>6} {'first pass':>11} {'matched':>8}")
    total_re = total_ours = 0.0
    for text in PATTERNS:
        python = re.compile(text, re.ASCII)
        ours = compile_pattern(text)
        answers = [bool(python.fullmatch(tag)) for tag in tags]
        first = time_matches(ours.fullmatch, tags, 1)
        assert [ours.fullmatch(tag) for tag in tags] == answers, text
        per_re = time_matches(python.fullmatch, tags, args.rounds)
        per_ours = time_matches(ours.fullmatch, tags, args.rounds)
        total_re += per_re
        total_ours += per_ours
        print(f"{text:<22} {per_re:>8.0f} {per_ours:>8.0f} {per_ours / per_re:>6.1f} {first:>11.0f} "
              f"{sum(answers):>8}")

    evil = r"(a+)+z"
    ours = compile_pattern(evil)
    tag = "a" * 126 + "-x"
    start = time.perf_counter_ns()
    assert not ours.fullmatch(tag)
    cold = time.perf_counter_ns() - start
    start = time.perf_counter_ns()
    for _ in range(1000):
        ours.fullmatch(tag)
    warm = (time.perf_counter_ns() - start) / 1000
    print(f"\n{evil} against a 128-character tag: ci-env {cold / 1000:.0f} us the first time, "
          f"{warm / 1000:.1f} us after")
    python = re.compile(evil)
    for length in range(16, 40):
        start = time.perf_counter_ns()
        python.fullmatch("a" * length + "-x")
        spent = (time.perf_counter_ns() - start) / 1e9
        print(f"  re, {length + 2} characters: {spent:.3f} s")
        if spent > 1:
            print(f"  re doubles with each character: 128 characters would take about "
                  f"{spent * 2 ** (126 - length):.1e} s")
            break

    five = 5 * args.tags
    print(f"\n10,000 tags x 5 patterns ({five} matches): re {total_re / len(PATTERNS) * five / 1e6:.1f} ms, "
          f"ci-env {total_ours / len(PATTERNS) * five / 1e6:.1f} ms (mean pattern of the table)")


if __name__ == "__main__":
    main()
