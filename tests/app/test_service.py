"""The classifier behind the routes: what it sets up for the process, its warm-up, and how it
turns an upload into the response through model.pipeline and its engine."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from app import metrics
from app.config import Settings
from app.service import Classifier
from model.audio import AudioTooLong
from model.pipeline import Pipeline
from model.runtime import Outputs, Predictor
from tests.audio import encode, music_like
from tests.helpers import blas_threads


class RecordingEngine:
    """The model called directly, each call's batch shape kept."""

    def __init__(self, model: Predictor, settings: Settings) -> None:
        self.model = model
        self.calls: list[tuple[int, ...]] = []

    def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def predict(self, inputs: np.ndarray) -> Outputs:
        self.calls.append(inputs.shape)
        return self.model.predict(inputs)


def classifier(**settings: object) -> tuple[Classifier, RecordingEngine]:
    made = Classifier(Settings.model_validate({"providers": "cpu", "intra_op_threads": 1, **settings}), RecordingEngine)
    assert isinstance(made.engine, RecordingEngine)
    return made, made.engine


def test_numpy_blas_runs_on_one_thread_beside_the_front_end_workers() -> None:
    threadpool_limits(2, user_api="blas")  # as a 2-core machine starts, whatever ran before
    Classifier(Settings(frontend_workers=2))
    threads = blas_threads()
    assert threads and all(n == 1 for n in threads)


def test_start_warms_the_model_up_on_the_shortest_audio_accepted() -> None:
    service, engine = classifier(min_duration_s=2.0)
    asyncio.run(service.start())
    frames = 1 + (2 * 22050 - 2048) // 1920
    assert engine.calls == [(1, frames, service.model.front_end.n_features)]
    asyncio.run(service.stop())


def test_a_long_upload_is_answered_window_by_window_and_counted() -> None:
    service, engine = classifier(window_hop_s=10.0)
    data = encode(music_like(70.0, 44100, seed=4), 44100)
    seconds_before = metrics.AUDIO_SECONDS._value.get()
    response = asyncio.run(service.classify(data, top_k=2, with_attention=True))
    expected_windows = Pipeline(service.model.front_end, service.settings.limits()).prepare(data).windows
    assert engine.calls == [(len(expected_windows), 344, service.model.front_end.n_features)]  # one engine call
    assert [s.start_s for s in response.segments] == [round(w.start_s, 4) for w in expected_windows]
    assert all(len(s.genres) == 2 and s.attention is not None for s in response.segments)
    assert response.duration_s == pytest.approx(70.0, abs=0.01) and (response.sample_rate, response.channels) == (
        44100,
        1,
    )
    assert metrics.AUDIO_SECONDS._value.get() - seconds_before == pytest.approx(70.0, abs=0.01)
    asyncio.run(service.stop())


def test_the_settings_limits_apply_to_uploads() -> None:
    service, engine = classifier(max_duration_s=5.0)
    with pytest.raises(AudioTooLong, match="maximum of 5 s"):
        asyncio.run(service.classify(encode(music_like(8.0, 22050), 22050), top_k=1, with_attention=False))
    assert engine.calls == []
    asyncio.run(service.stop())
