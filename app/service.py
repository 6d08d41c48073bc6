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
from app.schemas import (
    NOT_MUSIC,
    ClassifyResponse,
    GenreScore,
    Library,
    ModelInfo,
    Segment,
    SimilarResponse,
    SimilarTrack,
)
from model.features import one_blas_thread
from model.library_index import LibraryIndex, one_search_thread
from model.pipeline import Analysis, Pipeline, PreparedAudio, top_label
from model.runtime import GenreModel, Predictor

EngineFactory = Callable[[Predictor, Settings], Engine]
MUSIC_VERDICTS = {True: "true", False: "false", None: "unknown"}  # Analysis.is_music -> the metric's label


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
        card = self.model.card
        self.pipeline = Pipeline.of(card, settings.limits(), settings.music_threshold)  # refuses what it can't serve
        self.info = ModelInfo(
            name=card.name,
            version=card.version,
            provider=self.model.provider,
            labels=card.labels,
            music_threshold=self.pipeline.music_threshold,
        )
        for label in card.labels:  # every series exists from the start, at 0
            metrics.PREDICTIONS.labels(label)
        for verdict in MUSIC_VERDICTS.values():
            metrics.MUSIC.labels(verdict)
        # A library that does not fit this model stops the start, with LibraryError's reason.
        self.library: LibraryIndex | None = None
        self.library_info: Library | None = None
        if settings.index_path is not None:
            self.library = LibraryIndex.load(settings.index_path, card)
            one_search_thread()  # the front-end threads run the searches
            search = "approximate" if self.library.approximate else "exact"
            self.library_info = Library(path=str(settings.index_path), tracks=len(self.library), search=search)
        self.engine = engine(self.model, settings)
        one_blas_thread()  # the front-end threads are its parallelism
        self._frontend = ThreadPoolExecutor(settings.frontend_workers, thread_name_prefix="frontend")

    async def start(self) -> None:
        """Start batching and run a warm-up inference (ready only after this)."""
        self.engine.start()
        await self.engine.predict(self.pipeline.silence())

    async def stop(self) -> None:
        await self.engine.stop()
        self._frontend.shutdown(wait=True)

    def ranked(self, probabilities: np.ndarray, top_k: int) -> list[GenreScore]:
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        return [GenreScore(genre=self.model.labels[i], probability=float(probabilities[i])) for i in order]

    async def analyse(self, data: bytes | BinaryIO) -> tuple[PreparedAudio, Analysis]:
        """An upload's audio and its windows' and overall probabilities (counted in the metrics)."""
        loop = asyncio.get_running_loop()
        audio = await loop.run_in_executor(self._frontend, self.pipeline.prepare, data)
        analysis = self.pipeline.answer(audio.windows, await self.engine.predict(audio.inputs))
        metrics.AUDIO_SECONDS.inc(audio.duration_s)
        metrics.MUSIC.labels(MUSIC_VERDICTS[analysis.is_music]).inc()
        if (label := top_label(analysis.probabilities, analysis.is_music, self.model.labels)) is not None:
            metrics.PREDICTIONS.labels(label).inc()
        return audio, analysis

    async def classify(
        self, data: bytes | BinaryIO, top_k: int, with_attention: bool, with_embedding: bool = False
    ) -> ClassifyResponse:
        audio, analysis = await self.analyse(data)
        segments = [
            Segment(
                start_s=round(w.window.start_s, 4),
                end_s=round(w.window.end_s, 4),
                music_probability=w.music_probability,
                is_music=w.is_music,
                top_genre=top_label(w.probabilities, w.is_music, self.model.labels),
                genres=self.ranked(w.probabilities, top_k),
                frame_hop_s=w.window.frame_hop_s,
                first_frame_s=round(w.window.first_frame_s, 6),
                attention=w.attention.tolist() if with_attention else None,
            )
            for w in analysis.windows
        ]
        return ClassifyResponse(
            music_probability=analysis.music_probability,
            is_music=analysis.is_music,
            top_genre=top_label(analysis.probabilities, analysis.is_music, self.model.labels),
            no_genre_reason=NOT_MUSIC if analysis.is_music is False else None,
            genres=self.ranked(analysis.probabilities, top_k),
            duration_s=round(audio.duration_s, 4),
            sample_rate=audio.sample_rate,
            channels=audio.channels,
            model=self.info,
            segments=segments,
            embedding=analysis.embedding.tolist() if with_embedding and analysis.embedding is not None else None,
        )

    async def similar(self, data: bytes | BinaryIO, k: int, genre: str | None) -> SimilarResponse:
        """The library's k tracks most like the upload (of top genre `genre`, if given)."""
        library, info = self.library, self.library_info
        assert library is not None and info is not None, "the route checks that a library is loaded"
        _, analysis = await self.analyse(data)
        assert analysis.embedding is not None  # a library loads only for a model with embeddings
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._frontend, library.nearest, analysis.embedding, k, genre)
        return SimilarResponse(
            tracks=[SimilarTrack(path=n.path, similarity=n.similarity, top_genre=n.top_genre) for n in found],
            music_probability=analysis.music_probability,
            is_music=analysis.is_music,
            library=info,
            model=self.info,
        )
