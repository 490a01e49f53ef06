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
