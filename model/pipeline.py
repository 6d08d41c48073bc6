"""Audio -> prepared windows -> the answer: the one pipeline behind every interface.

    pipeline = Pipeline.of(model.card)                    # limits checked against the model's card
    prepared = pipeline.prepare(upload)                   # decode, resample, windows, front end
    analysis = pipeline.answer(prepared.windows, model.predict(prepared.inputs))

The service, the Open Inference route, Ray Serve, the `genre` job on both engines, evaluation
and the benchmarks all go through it; only where the model's outputs come from differs (a
batching engine, an actor pool, a plain session). The defaults below are everyone's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from model.audio import AudioError, decode, decode_file
from model.card import ModelCard
from model.features import FrontEndSettings, model_input, power_db_bands
from model.runtime import Outputs, Predictor
from model.windows import Window, coverage_weights, plan_windows

WINDOW_HOP_S = 15.0  # the longest hop between the 30 s analysis windows of long audio
MIN_DURATION_S = 1.0  # shorter audio is refused
MAX_DURATION_S = 20 * 60.0  # longer audio is refused (it is decoded whole into memory)
MIN_MUSIC_WEIGHT = 1e-3  # below this total music probability, windows weigh only by coverage


@dataclass(frozen=True)
class Limits:
    """What audio a pipeline accepts, and how it spaces its windows."""

    hop_s: float = WINDOW_HOP_S
    min_duration_s: float = MIN_DURATION_S
    max_duration_s: float = MAX_DURATION_S

    def __post_init__(self) -> None:
        """The rules of any model (Pipeline adds its front end's); raises ValueError."""
        if not 0 < self.min_duration_s <= self.max_duration_s:
            raise ValueError("the minimum duration must be above 0 and not exceed the maximum")
        if self.hop_s <= 0:
            raise ValueError("the window hop must be above 0")


@dataclass(frozen=True)
class PreparedAudio:
    """An upload, decoded and through the front end: everything inference needs."""

    windows: list[Window]
    inputs: np.ndarray  # shape = (windows, frames, features), float32
    duration_s: float  # of the source
    sample_rate: int  # of the source
    channels: int  # of the source


@dataclass(frozen=True)
class ScoredWindow:
    window: Window
    probabilities: np.ndarray  # shape = (labels,)
    attention: np.ndarray  # shape = (window.n_frames,), sums to 1
    music_probability: float | None  # None: the model has no music detector
    is_music: bool | None  # music_probability at the pipeline's threshold


@dataclass(frozen=True)
class Analysis:
    """The whole upload. Its genre probabilities weigh each window by its coverage and, with a
    detector, by its music probability, so the talk of a talk show does not vote on its music's
    genre; its music probability is the coverage-weighted mean of the windows'."""

    probabilities: np.ndarray  # shape = (labels,)
    windows: list[ScoredWindow]
    music_probability: float | None
    is_music: bool | None
    embedding: np.ndarray | None  # shape = (dimension,), unit length; None: the model has no embedding output


def track_embedding(coverage: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Windows' embeddings (windows, dimension) -> the track's: their coverage-weighted mean, L2-normalised,
    so that tracks compare by a dot product (cosine similarity)."""
    mean: np.ndarray = coverage @ embeddings
    norm = float(np.linalg.norm(mean))
    return (mean / norm if norm > 0 else mean).astype(np.float32)


def top_label(probabilities: np.ndarray, is_music: bool | None, labels: list[str]) -> str | None:
    """The most probable label, or None where the detector says the audio is not music."""
    return None if is_music is False else labels[int(probabilities.argmax())]


class Pipeline:
    """The front end of one model (rebuilt from its card) with the limits it serves under."""

    def __init__(
        self, front_end: FrontEndSettings, limits: Limits | None = None, music_threshold: float | None = None
    ) -> None:
        """music_threshold: where a window's music probability makes it music (ModelCard.music_threshold);
        None for a model without a detector. Raises ValueError where the limits do not fit this
        model's front end."""
        limits = limits or Limits()
        frame_s = front_end.n_fft / front_end.sample_rate
        if limits.min_duration_s < frame_s:
            raise ValueError(f"the minimum duration must cover one STFT frame of the model ({frame_s:.3f} s)")
        if limits.hop_s > front_end.clip_seconds:
            raise ValueError(f"the window hop must not exceed the model's {front_end.clip_seconds:g} s window")
        self.front_end = front_end
        self.limits = limits
        self.music_threshold = music_threshold

    @classmethod
    def of(cls, card: ModelCard, limits: Limits | None = None, music_threshold: float | None = None) -> Pipeline:
        """A model's pipeline: its front end, these limits, and `music_threshold` (a user's setting)
        or its card's. Raises ValueError for limits or a threshold the model cannot serve with, and
        model.card.IncompatibleModelError for a card this code cannot serve."""
        return cls(card.check_compatible(), limits, card.music_threshold(music_threshold))

    def prepare(self, source: bytes | BinaryIO | Path) -> PreparedAudio:
        """An audio file (bytes, an open binary file, or a path) -> its windows' model inputs.

        Raises model.audio.AudioError (with its HTTP status) for audio this pipeline refuses, and
        OSError for a path that cannot be read.
        """
        limits = self.limits
        if isinstance(source, Path):
            audio = decode_file(source, self.front_end.sample_rate, limits.max_duration_s)
        else:
            audio = decode(source, self.front_end.sample_rate, max_duration_s=limits.max_duration_s)
        # The one-frame rule, in samples at the model's rate: what the front end really needs.
        if audio.duration_s < limits.min_duration_s or len(audio.waveform) < self.front_end.n_fft:
            raise AudioError(f"audio is {audio.duration_s:.3f} s long; the minimum is {limits.min_duration_s:g} s")
        windows, inputs = self.windows(audio.waveform)
        return PreparedAudio(windows, inputs, audio.duration_s, audio.sample_rate, audio.channels)

    def windows(self, waveform: np.ndarray) -> tuple[list[Window], np.ndarray]:
        """Mono waveform at the model's rate, at least one frame -> (windows, inputs of shape =
        (windows, frames, features))."""
        grid = power_db_bands(waveform, self.front_end)
        windows = plan_windows(waveform.shape[0], self.front_end, self.limits.hop_s)
        inputs = [model_input(grid[w.start_frame : w.start_frame + w.n_frames], self.front_end) for w in windows]
        return windows, np.stack(inputs).astype(np.float32, copy=False)

    def silence(self) -> np.ndarray:
        """The inputs of the shortest audio accepted, silent: a warm-up batch."""
        n = math.ceil(self.limits.min_duration_s * self.front_end.sample_rate)
        return self.windows(np.zeros(n, dtype=np.float32))[1]

    def classify(self, model: Predictor, source: bytes | BinaryIO | Path) -> tuple[PreparedAudio, Analysis]:
        """prepare, predict and answer in one call, with the model's own session."""
        prepared = self.prepare(source)
        return prepared, self.answer(prepared.windows, model.predict(prepared.inputs))

    def answer(self, windows: list[Window], outputs: Outputs) -> Analysis:
        """The windows' outputs -> per window and overall."""
        if len(outputs) != len(windows) or len(outputs.attention) != len(windows):
            raise ValueError(f"{len(windows)} windows, but outputs for {len(outputs)}")
        coverage = coverage_weights(windows)
        embedding = None if outputs.embedding is None else track_embedding(coverage, outputs.embedding)
        music, threshold = outputs.music, self.music_threshold
        if music is None or threshold is None:
            verdicts: list[tuple[float | None, bool | None]] = [(None, None)] * len(windows)
            weights, overall, is_music = coverage, None, None
        else:
            verdicts = [(float(p), bool(p >= threshold)) for p in music]
            weights = coverage * music
            # With no music anywhere the genres are meaningless anyway; every window then counts by coverage.
            weights = weights / weights.sum() if weights.sum() > MIN_MUSIC_WEIGHT else coverage
            overall = float(coverage @ music)
            is_music = overall >= threshold
        scored = [
            ScoredWindow(w, outputs.probabilities[i], outputs.attention[i], *verdicts[i]) for i, w in enumerate(windows)
        ]
        return Analysis(weights @ outputs.probabilities, scored, overall, is_music, embedding)
