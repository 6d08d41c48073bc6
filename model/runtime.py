"""A genre model's ONNX file in an ONNX Runtime session (numpy + onnxruntime; no torch).

The session, checked against its card; model.pipeline turns audio into its inputs and its
outputs into answers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import onnxruntime as ort

from model.card import IncompatibleModelError, ModelCard, card_path, load_card
from model.features import FrontEndSettings

DEFAULT_MODEL_PATH = Path(__file__).parent / "genre_birnn.onnx"
# The ONNX file's interface, shared by export, runtime and benchmarks.
INPUT_NAME = "spectrogram"  # float32, shape = (batch, frames, features)
OUTPUT_NAMES = ("probabilities", "attention")  # (batch, labels), (batch, frames)

ProviderChoice = Literal["auto", "cpu", "cuda"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class Predictor(Protocol):
    """Anything that maps a batch of model inputs to probabilities and attention."""

    def predict(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """inputs: shape = (batch, frames, features) -> ((batch, labels), (batch, frames))."""
        ...


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


class GenreModel:
    """An ONNX Runtime session of a genre model, with its verified card and its front end."""

    def __init__(
        self,
        path: Path = DEFAULT_MODEL_PATH,
        providers: ProviderChoice = "auto",
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        memory_arena: bool = True,
    ) -> None:
        """memory_arena: ONNX Runtime's CPU arena, which keeps what it allocated for every batch shape
        it has seen; off, each call's buffers go back to the allocator."""
        self.card: ModelCard = load_card(card_path(path))
        self.front_end: FrontEndSettings = self.card.check_compatible()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if self.card.onnx_sha256 and digest != self.card.onnx_sha256:
            raise IncompatibleModelError(f"{path} does not match the sha256 in its model card")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.enable_cpu_mem_arena = memory_arena
        self.session = ort.InferenceSession(str(path), options, providers=choose_providers(providers))
        self.provider: str = self.session.get_providers()[0]
        width = self.session.get_inputs()[0].shape[-1]
        if width != self.front_end.n_features:
            raise IncompatibleModelError(
                f"the ONNX input has {width} features, its card's front end makes {self.front_end.n_features}"
            )
        n_outputs = self.session.get_outputs()[0].shape[-1]
        if n_outputs != len(self.labels):
            raise IncompatibleModelError(f"the ONNX model has {n_outputs} outputs, its card {len(self.labels)} labels")

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    def predict(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """inputs: shape = (batch, frames, features) -> (probabilities (batch, labels), attention (batch, frames))."""
        probabilities, attention = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: inputs.astype(np.float32)})
        return probabilities, attention
