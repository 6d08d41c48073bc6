"""Window policy and timing: where windows start, and when their frames are."""

from __future__ import annotations

import numpy as np
import pytest

from model.features import DEFAULT_SETTINGS, SAMPLE_RATE, n_frames
from model.windows import coverage_weights, plan_windows, window_starts


@pytest.mark.parametrize(
    ("total", "window", "hop", "starts"),
    [
        (100, 344, 172, [0]),
        (344, 344, 172, [0]),
        (380, 344, 172, [0]),  # 36 frames past one window: one longer window, not a near-repeat
        (420, 344, 172, [0, 76]),
        (688, 344, 172, [0, 172, 344]),  # exactly on the hop grid: unchanged
        (700, 344, 172, [0, 119, 237, 356]),
        (1378, 344, 172, [0, 148, 295, 443, 591, 739, 886, 1034]),  # 120 s
    ],
)
def test_window_starts(total: int, window: int, hop: int, starts: list[int]) -> None:
    assert window_starts(total, window, hop) == starts


@pytest.mark.parametrize("hop", [43, 172, 344])
def test_windows_reach_the_end_without_near_repeats(hop: int) -> None:
    for total in range(345, 3000, 7):
        starts = window_starts(total, 344, hop)
        gaps = np.diff(starts)
        assert starts[0] == 0 and (len(starts) == 1 or starts[-1] == total - 344)
        assert (gaps <= hop).all()
        assert (gaps >= (hop / 2 if len(starts) > 2 else hop / 3)).all(), (total, starts)
        if len(starts) == 1:
            assert total - 344 < hop / 3  # one window, at most a third of a hop longer


def test_coverage_weights_count_every_frame_once() -> None:
    s = DEFAULT_SETTINGS
    windows = plan_windows(int(100.0 * SAMPLE_RATE), s, hop_s=15.0)
    weights = coverage_weights(windows)
    assert weights.sum() == pytest.approx(1.0)
    # Brute force: the mean over frames of the mean over the windows covering each frame.
    total = windows[-1].start_frame + windows[-1].n_frames
    per_frame = np.zeros((total, len(windows)))
    for i, w in enumerate(windows):
        per_frame[w.start_frame : w.start_frame + w.n_frames, i] = 1
    per_frame /= per_frame.sum(1, keepdims=True)
    np.testing.assert_allclose(weights, per_frame.mean(0), rtol=1e-9)
    # The edge windows cover frames no other window does, so they weigh more than inner ones.
    assert weights[0] > weights[1] and weights[-1] > weights[-2]


def test_a_lone_window_spans_audio_slightly_longer_than_one_clip() -> None:
    [w] = plan_windows(int(31.0 * SAMPLE_RATE), DEFAULT_SETTINGS, hop_s=15.0)
    assert w.start_frame == 0 and w.n_frames == n_frames(int(31.0 * SAMPLE_RATE))
    assert w.end_s == pytest.approx(31.0, abs=0.1)


def test_window_timing_follows_the_front_end() -> None:
    s = DEFAULT_SETTINGS
    n_samples = int(61.3 * SAMPLE_RATE)
    windows = plan_windows(n_samples, s, hop_s=15.0)
    assert [w.start_frame for w in windows] == [0, 120, 239, 359]
    for w in windows:
        assert w.n_frames == s.clip_frames
        assert w.frame_hop_s == s.hop_length / s.sample_rate
        assert w.start_s == pytest.approx(w.start_frame * 1920 / 22050)
        assert w.first_frame_s == pytest.approx(w.start_s + 1024 / 22050)
        assert w.end_s == pytest.approx(min(((w.start_frame + 343) * 1920 + 2048) / 22050, 61.3), abs=1e-4)
    assert windows[-1].end_s <= n_samples / SAMPLE_RATE


def test_a_short_clip_is_one_shorter_window_ending_with_the_audio() -> None:
    [w] = plan_windows(int(2.5 * SAMPLE_RATE), DEFAULT_SETTINGS, 15.0)
    assert (w.start_frame, w.n_frames) == (0, 1 + (int(2.5 * SAMPLE_RATE) - 2048) // 1920)
    assert w.end_s <= 2.5
