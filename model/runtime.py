"""Running the shipped ONNX model on audio (numpy + onnxruntime; no torch).

One implementation of windowing and aggregation, used by the service and the evaluation CLI.
Long audio is analysed in CLIP_SECONDS windows; the overall genre probabilities are the mean
of the windows' probabilities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from model.card import ModelCard, card_path, load_card
from model.features import (
    CLIP_FRAMES,
    FRAME_HOP_SECONDS,
    HOP_LENGTH,
    N_FFT,
    SAMPLE_RATE,
    model_input,
    power_db_bands,
    window_starts,
)

DEFAULT_MODEL_PATH = Path(__file__).parent / "genre_birnn.onnx"
DEFAULT_HOP_SECONDS = 15.0  # hop between 30 s analysis windows of long audio
ProviderChoice = Literal["auto", "cpu", "cuda"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def choose_providers(choice: ProviderChoice, available: list[str] | None = None) -> list[str]:
    """Execution providers to ask for, best first; CPU is always the fallback.

    `auto` takes CUDA when this onnxruntime build has it (onnxruntime-gpu); whether a GPU is
    really there shows in `GenreModel.provider` once the session is made.
    """
    available = ort.get_available_providers() if available is None else available
    if choice == "cuda" and CUDA not in available:
        raise RuntimeError(f"CUDA was asked for but this onnxruntime has only {available}")
    if choice in ("auto", "cuda") and CUDA in available:
        return [CUDA, CPU]
    return [CPU]


@dataclass(frozen=True)
class Window:
    """One analysis window: its place in the waveform and what the model said of it."""

    start_frame: int
    n_frames: int
    probabilities: np.ndarray  # shape = (n_genres,)
    attention: np.ndarray  # shape = (n_frames,), sums to 1

    @property
    def start_s(self) -> float:
        return self.start_frame * HOP_LENGTH / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        """End of the last sample the window's frames cover."""
        return ((self.start_frame + self.n_frames - 1) * HOP_LENGTH + N_FFT) / SAMPLE_RATE


@dataclass(frozen=True)
class Analysis:
    probabilities: np.ndarray  # shape = (n_genres,): mean of the windows'
    windows: list[Window]


def window_inputs(waveform: np.ndarray, hop_seconds: float) -> tuple[list[int], np.ndarray]:
    """Mono 22050 Hz waveform -> (window start frames, inputs of shape = (windows, frames, bands))."""
    grid = power_db_bands(waveform)
    hop_frames = max(1, round(hop_seconds / FRAME_HOP_SECONDS))
    starts = window_starts(grid.shape[0], CLIP_FRAMES, hop_frames)
    return starts, np.stack([model_input(grid[s : s + CLIP_FRAMES]) for s in starts])


def aggregate(starts: list[int], probabilities: np.ndarray, attention: np.ndarray) -> Analysis:
    windows = [Window(s, attention.shape[1], probabilities[i], attention[i]) for i, s in enumerate(starts)]
    return Analysis(probabilities.mean(axis=0), windows)


class GenreModel:
    """An ONNX Runtime session of the genre model, with its verified card."""

    def __init__(
        self,
        path: Path = DEFAULT_MODEL_PATH,
        providers: ProviderChoice = "auto",
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
    ) -> None:
        self.card: ModelCard = load_card(card_path(path))
        self.card.check_compatible()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if self.card.onnx_sha256 and digest != self.card.onnx_sha256:
            raise RuntimeError(f"{path} does not match the sha256 in its model card")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        self.session = ort.InferenceSession(str(path), options, providers=choose_providers(providers))
        self.provider: str = self.session.get_providers()[0]

    def predict(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """inputs: shape = (batch, frames, bands) -> (probabilities (batch, genres), attention (batch, frames))."""
        probabilities, attention = self.session.run(None, {"spectrogram": inputs.astype(np.float32)})
        return probabilities, attention

    def analyse(self, waveform: np.ndarray, hop_seconds: float = DEFAULT_HOP_SECONDS) -> Analysis:
        """A mono 22050 Hz waveform of at least one STFT frame -> windows and overall probabilities."""
        starts, inputs = window_inputs(waveform, hop_seconds)
        return aggregate(starts, *self.predict(inputs))
