"""A genre model's ONNX file in an ONNX Runtime session (numpy + onnxruntime; no torch).

The session, checked against its card; model.pipeline turns audio into its inputs and its
outputs into answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
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
MUSIC_OUTPUT = "music_probability"  # (batch,): the music detector's, in models that have one
EMBEDDING_OUTPUT = "embedding"  # (batch, dimension): the fused vector, in models that have it

ProviderChoice = Literal["auto", "cpu", "cuda"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


@dataclass(frozen=True)
class Outputs:
    """A batch of windows' model outputs."""

    probabilities: np.ndarray  # shape = (batch, labels)
    attention: np.ndarray  # shape = (batch, frames), each row sums to 1
    music: np.ndarray | None = None  # shape = (batch,): P(the window is music); None: no detector
    embedding: np.ndarray | None = None  # shape = (batch, dimension); None: no embedding output

    def __len__(self) -> int:
        return len(self.probabilities)

    def rows(self, start: int, stop: int) -> Outputs:
        return Outputs(*(None if a is None else a[start:stop] for a in self._arrays()))  # type: ignore[arg-type]

    def _arrays(self) -> tuple[np.ndarray | None, ...]:
        return self.probabilities, self.attention, self.music, self.embedding

    @staticmethod
    def concatenate(parts: list[Outputs]) -> Outputs:
        """Batches of windows of one length, end to end."""
        columns = zip(*(p._arrays() for p in parts), strict=True)
        return Outputs(*(None if any(a is None for a in c) else np.concatenate(c) for c in columns))  # type: ignore[arg-type]


class Predictor(Protocol):
    """Anything that maps a batch of model inputs to their outputs."""

    def predict(self, inputs: np.ndarray) -> Outputs:
        """inputs: shape = (batch, frames, features)."""
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

        # Older models have neither: they still serve genres, with these fields null.
        found = {o.name for o in self.session.get_outputs()}

        def optional_output(name: str, in_card: bool, what: str) -> bool:
            if (name in found) != in_card:
                raise IncompatibleModelError(f"the ONNX model and its card disagree on whether it has {what}")
            return in_card

        self.has_music_detector = optional_output(
            MUSIC_OUTPUT, self.card.music_detector is not None, "a music detector"
        )
        self.has_embedding = optional_output(EMBEDDING_OUTPUT, self.card.embedding is not None, "an embedding output")
        self.output_names = [
            *OUTPUT_NAMES,
            *([MUSIC_OUTPUT] if self.has_music_detector else []),
            *([EMBEDDING_OUTPUT] if self.has_embedding else []),
        ]

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    def predict(self, inputs: np.ndarray) -> Outputs:
        """inputs: shape = (batch, frames, features)."""
        arrays = self.session.run(self.output_names, {INPUT_NAME: inputs.astype(np.float32)})
        found = dict(zip(self.output_names, arrays, strict=True))
        return Outputs(
            found[OUTPUT_NAMES[0]], found[OUTPUT_NAMES[1]], found.get(MUSIC_OUTPUT), found.get(EMBEDDING_OUTPUT)
        )
