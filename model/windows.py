"""Where the analysis windows of long audio go, when each window's frames are, and how much
each window weighs in the whole track's answer.

Audio is analysed in windows of the training clip length (30 s), at most `hop_s` apart, spread
evenly from the start to the end so the tail is covered without a window that nearly repeats
another. Everything a caller needs to place a window, or one of its attention frames, on the
upload's time line is a property of `Window`, derived from the front-end settings the model
was trained with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model.features import FrontEndSettings, n_frames


@dataclass(frozen=True)
class Window:
    """One analysis window: frames [start_frame, start_frame + n_frames) of the upload's grid."""

    start_frame: int
    n_frames: int
    settings: FrontEndSettings
    audio_s: float  # duration of the audio it lies in

    @property
    def frame_hop_s(self) -> float:
        """Seconds between consecutive frames (and attention weights)."""
        return self.settings.frame_hop_s

    @property
    def start_s(self) -> float:
        return self.start_frame * self.frame_hop_s

    @property
    def first_frame_s(self) -> float:
        """Centre of the window's first frame; frame k is centred k * frame_hop_s later."""
        return self.start_s + self.settings.first_frame_center_s

    @property
    def end_s(self) -> float:
        """End of the last sample the window's frames cover, clamped to the audio."""
        s = self.settings
        end = ((self.start_frame + self.n_frames - 1) * s.hop_length + s.n_fft) / s.sample_rate
        return min(end, self.audio_s)


def window_starts(total_frames: int, window_frames: int, hop_frames: int) -> list[int]:
    """Start frames of the analysis windows over a grid of total_frames.

    The fewest windows of window_frames that are at most hop_frames apart and reach the end,
    spread evenly from frame 0 to the last full window. Neighbours are then at least half a hop
    apart, except with two windows, which stand at least a third of a hop apart: audio that is
    less than that longer than one window is one longer window ([0]; see plan_windows).
    Audio of one window or less is a single (shorter) window starting at 0.
    """
    last = total_frames - window_frames
    if last <= 0 or 3 * last < hop_frames:
        return [0]
    n = math.ceil(last / hop_frames) + 1
    return [round(k * last / (n - 1)) for k in range(n)]


def plan_windows(n_samples: int, settings: FrontEndSettings, hop_s: float) -> list[Window]:
    """The windows over a mono waveform of n_samples at settings.sample_rate (at least one frame).

    Every window is the training clip length, except a lone window, which spans the whole audio
    (shorter for a short clip; up to a third of a hop longer where a second window would nearly
    repeat the first).
    """
    total = n_frames(n_samples, settings)
    hop_frames = max(1, round(hop_s / settings.frame_hop_s))
    starts = window_starts(total, settings.clip_frames, hop_frames)
    audio_s = n_samples / settings.sample_rate
    if len(starts) == 1:
        return [Window(0, total, settings, audio_s)]
    return [Window(start, settings.clip_frames, settings, audio_s) for start in starts]


def coverage_weights(windows: list[Window]) -> np.ndarray:
    """How much each window weighs so that every frame of the audio counts once, shape = (windows,).

    A frame covered by c windows gives each of them 1/c; the weights are normalised to sum to 1.
    The whole track's probabilities are then the mean over frames of the mean over the windows
    that cover each frame: overlaps and the edges, which fewer windows cover, count as much as
    any other stretch of the same length.
    """
    end = max(w.start_frame + w.n_frames for w in windows)
    coverage = np.zeros(end)
    for w in windows:
        coverage[w.start_frame : w.start_frame + w.n_frames] += 1
    weights = np.array([(1 / coverage[w.start_frame : w.start_frame + w.n_frames]).sum() for w in windows])
    normalised: np.ndarray = weights / weights.sum()
    return normalised
