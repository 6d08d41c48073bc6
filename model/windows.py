"""Where the analysis windows of long audio go, and when each window's frames are.

Audio is analysed in windows of the training clip length (30 s), `hop_s` apart. Everything a
caller needs to place a window, or one of its attention frames, on the upload's time line is a
property of `Window`, derived from the front-end settings the model was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.features import FrontEndSettings, n_frames

DEFAULT_HOP_S = 15.0  # hop between the analysis windows of long audio


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

    Windows are window_frames long and hop_frames apart; when the last one leaves a tail
    uncovered, one more window is aligned to the end, so every window is full length.
    Audio shorter than one window is a single (shorter) window starting at 0.
    """
    if total_frames <= window_frames:
        return [0]
    last = total_frames - window_frames
    starts = list(range(0, last + 1, hop_frames))
    if starts[-1] != last:
        starts.append(last)
    return starts


def plan_windows(n_samples: int, settings: FrontEndSettings, hop_s: float = DEFAULT_HOP_S) -> list[Window]:
    """The windows over a mono waveform of n_samples at settings.sample_rate (at least one frame)."""
    total = n_frames(n_samples, settings)
    window = settings.clip_frames
    hop_frames = max(1, round(hop_s / settings.frame_hop_s))
    audio_s = n_samples / settings.sample_rate
    return [
        Window(start, min(window, total - start), settings, audio_s)
        for start in window_starts(total, window, hop_frames)
    ]
