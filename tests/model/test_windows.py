"""Window policy and timing: where windows start, and when their frames are."""

from __future__ import annotations

import pytest

from model.features import DEFAULT_SETTINGS, SAMPLE_RATE
from model.windows import plan_windows, window_starts


@pytest.mark.parametrize(
    ("total", "window", "hop", "starts"),
    [
        (100, 344, 172, [0]),
        (344, 344, 172, [0]),
        (700, 344, 172, [0, 172, 344, 356]),
        (860, 344, 172, [0, 172, 344, 516]),
    ],
)
def test_window_starts(total: int, window: int, hop: int, starts: list[int]) -> None:
    assert window_starts(total, window, hop) == starts


def test_window_timing_follows_the_front_end() -> None:
    s = DEFAULT_SETTINGS
    n_samples = int(61.3 * SAMPLE_RATE)
    windows = plan_windows(n_samples, s, hop_s=15.0)
    assert [w.start_frame for w in windows] == [0, 172, 344, 359]
    for w in windows:
        assert w.n_frames == s.clip_frames
        assert w.frame_hop_s == s.hop_length / s.sample_rate
        assert w.start_s == pytest.approx(w.start_frame * 1920 / 22050)
        assert w.first_frame_s == pytest.approx(w.start_s + 1024 / 22050)
        assert w.end_s == pytest.approx(min(((w.start_frame + 343) * 1920 + 2048) / 22050, 61.3), abs=1e-4)
    assert windows[-1].end_s <= n_samples / SAMPLE_RATE


def test_a_short_clip_is_one_shorter_window_ending_with_the_audio() -> None:
    [w] = plan_windows(int(2.5 * SAMPLE_RATE), DEFAULT_SETTINGS)
    assert (w.start_frame, w.n_frames) == (0, 1 + (int(2.5 * SAMPLE_RATE) - 2048) // 1920)
    assert w.end_s <= 2.5
