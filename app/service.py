"""The classification pipeline behind POST /classify: decode, front end, batched inference."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np

from app import metrics
from app.batching import BatchingEngine, Engine
from app.config import Settings
from app.schemas import ClassifyResponse, GenreScore, ModelInfo, Segment
from model.audio import DecodedAudio, decode
from model.features import one_blas_thread
from model.runtime import Analysis, GenreModel, Predictor, aggregate, window_inputs
from model.windows import Window

EngineFactory = Callable[[Predictor, Settings], Engine]


def batching_engine(model: Predictor, settings: Settings) -> Engine:
    return BatchingEngine(model, settings.max_batch_windows, settings.batch_wait_ms)


class Classifier:
    """Owns the model, the front-end threads and the batching engine for the app's lifetime."""

    def __init__(self, settings: Settings, engine: EngineFactory = batching_engine) -> None:
        self.settings = settings
        self.model = GenreModel(
            settings.model_path,
            settings.providers,
            settings.intra_op_threads,
            settings.inter_op_threads,
            memory_arena=settings.ort_memory_arena,
        )
        front_end = self.model.front_end
        if settings.min_duration_s * front_end.sample_rate < front_end.n_fft:
            raise ValueError(f"min_duration_s must cover one STFT frame of the model ({front_end.n_fft} samples)")
        card = self.model.card
        self.info = ModelInfo(name=card.name, version=card.version, provider=self.model.provider, labels=card.labels)
        for label in card.labels:  # every label's series exists from the start, at 0
            metrics.PREDICTIONS.labels(label)
        self.engine = engine(self.model, settings)
        one_blas_thread()  # the front-end threads are its parallelism
        self._frontend = ThreadPoolExecutor(settings.frontend_workers, thread_name_prefix="frontend")

    async def start(self) -> None:
        """Start batching and run a warm-up inference (ready only after this)."""
        self.engine.start()
        silence = np.zeros(int(self.settings.min_duration_s * self.model.front_end.sample_rate), dtype=np.float32)
        _, inputs = window_inputs(silence, self.model.front_end, self.settings.window_hop_s)
        await self.engine.predict(inputs)

    async def stop(self) -> None:
        await self.engine.stop()
        self._frontend.shutdown(wait=True)

    def _prepare(self, data: bytes | BinaryIO) -> tuple[DecodedAudio, list[Window], np.ndarray]:
        front_end = self.model.front_end
        audio = decode(data, front_end.sample_rate, self.settings.min_duration_s, self.settings.max_duration_s)
        windows, inputs = window_inputs(audio.waveform, front_end, self.settings.window_hop_s)
        return audio, windows, inputs

    def ranked(self, probabilities: np.ndarray, top_k: int) -> list[GenreScore]:
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        return [GenreScore(genre=self.model.labels[i], probability=float(probabilities[i])) for i in order]

    async def analyse(self, data: bytes | BinaryIO) -> tuple[DecodedAudio, Analysis]:
        """An upload's audio and its windows' and overall probabilities (counted in the metrics)."""
        loop = asyncio.get_running_loop()
        audio, windows, inputs = await loop.run_in_executor(self._frontend, self._prepare, data)
        analysis = aggregate(windows, *await self.engine.predict(inputs))
        metrics.AUDIO_SECONDS.inc(audio.duration_s)
        metrics.PREDICTIONS.labels(self.model.labels[int(analysis.probabilities.argmax())]).inc()
        return audio, analysis

    async def classify(self, data: bytes | BinaryIO, top_k: int, with_attention: bool) -> ClassifyResponse:
        audio, analysis = await self.analyse(data)
        segments = [
            Segment(
                start_s=round(w.window.start_s, 4),
                end_s=round(w.window.end_s, 4),
                top_genre=self.model.labels[int(w.probabilities.argmax())],
                genres=self.ranked(w.probabilities, top_k),
                frame_hop_s=w.window.frame_hop_s,
                first_frame_s=round(w.window.first_frame_s, 6),
                attention=w.attention.tolist() if with_attention else None,
            )
            for w in analysis.windows
        ]
        return ClassifyResponse(
            top_genre=self.model.labels[int(analysis.probabilities.argmax())],
            genres=self.ranked(analysis.probabilities, top_k),
            duration_s=round(audio.duration_s, 4),
            sample_rate=audio.sample_rate,
            channels=audio.channels,
            model=self.info,
            segments=segments,
        )
