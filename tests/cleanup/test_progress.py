"""Progress lines are rate-limited: the first and last of a phase, at most one every few seconds between."""

from __future__ import annotations

from ci_env.cleanup.progress import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_long_phase_prints_its_start_one_line_per_interval_and_its_end() -> None:
    lines: list[str] = []
    clock = Clock()
    throttle = Throttle(lines.append, every=2.0, clock=clock)
    for done in range(1, 1501):  # 1,500 updates, one every 1/256 s (exact in binary), about 6 seconds
        clock.now = 100.0 + done / 256
        throttle("resolving", done, 1500)
    assert lines == ["resolving: 1/1500", "resolving: 513/1500", "resolving: 1025/1500", "resolving: 1500/1500"]


def test_a_new_phase_prints_at_once_and_a_phase_without_count_prints_its_name() -> None:
    lines: list[str] = []
    clock = Clock()
    throttle = Throttle(lines.append, every=2.0, clock=clock)
    throttle("reading records", 0, 0)
    throttle("resolving", 1, 1)
    throttle("resolving", 1, 1)
    assert lines == ["reading records", "resolving: 1/1"]


def test_on_a_terminal_a_bar_is_redrawn_in_place_with_count_rate_and_time_left() -> None:
    import io

    from ci_env.cleanup.progress import Bar

    stream, clock = io.StringIO(), Clock()
    bar = Bar(stream, every=0.1, clock=clock, columns=100)
    bar("reading the publication records", 0, 0)
    for done in range(0, 1001, 10):  # 1,000 tags in 12.5 s (steps of 1/8 s, exact in binary): 80/s
        clock.now = 100.0 + done / 80
        bar("resolving the tags of r", done, 1000)
    bar("resolving the tags of r", 1000, 1000)  # the end again: nothing more
    bar.close()
    text = stream.getvalue()
    assert text.startswith("ci-env: reading the publication records\n")
    frames = text.split("\n")[1].split("\r\x1b[2K")[1:]
    assert len(frames) == 101 and text.endswith("1000/1000 80/s\n")
    assert frames[50] == "ci-env: resolving the tags of r [" + "#" * 10 + "." * 10 + "] 500/1000 80/s 6s left"


def test_a_bar_ends_its_line_when_another_phase_starts_and_shortens_long_names() -> None:
    import io

    from ci_env.cleanup.progress import Bar

    stream, clock = io.StringIO(), Clock()
    bar = Bar(stream, clock=clock, columns=60)
    bar("resolving the tags of registry.example.com/a/very/long/repository/name/api", 1, 10)
    clock.now += 1
    bar("removing", 2, 10, "0 failed")
    bar.close()
    first, second, end = stream.getvalue().split("\n")
    assert end == "" and all(len(line.split("\x1b[2K")[-1]) < 60 for line in (first, second))
    assert "\u2026" in first and first.endswith("1/10 0/s")
    assert second.endswith("removing [" + "#" * 2 + "." * 10 + "] 2/10 0/s (0 failed)")


def test_a_terminal_gets_a_bar_and_anything_else_the_throttled_lines() -> None:
    import io

    from ci_env.cleanup.progress import Bar, Throttle, for_stream

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert isinstance(for_stream(Terminal(), print, {"TERM": "xterm"}), Bar)
    assert isinstance(for_stream(Terminal(), print, {"TERM": "dumb"}), Throttle)
    assert isinstance(for_stream(io.StringIO(), print, {"TERM": "xterm"}), Throttle)
