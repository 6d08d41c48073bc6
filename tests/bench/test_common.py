"""bench.common's timing: functions timed in turns."""

from __future__ import annotations

import time

from bench.common import timed_in_turns


def test_functions_are_timed_in_turns_per_call() -> None:
    order: list[str] = []

    def busy(name: str, seconds: float) -> None:
        order.append(name)
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    got = timed_in_turns({"a": lambda: busy("a", 0.002), "b": lambda: busy("b", 0.0)}, rounds=3, calls=4)
    assert order == ["a", "b"] + (["a"] * 4 + ["b"] * 4) * 3  # a warm-up call each, then turns
    assert set(got) == {"a", "b"}
    assert got["a"] >= 0.002 > got["b"] >= 0.0  # CPU seconds per call, not per turn
