"""The batching engine: concurrent requests share ONNX calls, and each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from app.batching import BatchingEngine
from model.features import N_FEATURES
from model.runtime import Outputs


class RecordingModel:
    """Stands in for GenreModel.predict: records batch shapes, answers from the inputs themselves."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[tuple[int, ...]] = []
        self.fail = fail
        self.threads: set[str] = set()

    def predict(self, inputs: np.ndarray) -> Outputs:
        self.batches.append(inputs.shape)
        self.threads.add(threading.current_thread().name)
        if self.fail:
            raise RuntimeError("inference failed")
        ids = inputs[:, 0, 0]  # each window carries its request's id
        return Outputs(np.repeat(ids[:, None], 10, axis=1), np.repeat(ids[:, None], inputs.shape[1], axis=1), ids)


def windows(request_id: float, n: int, frames: int = 344) -> np.ndarray:
    return np.full((n, frames, N_FEATURES), request_id, dtype=np.float32)


async def run(engine: BatchingEngine, jobs: list[np.ndarray]) -> list[Outputs]:
    engine.start()
    try:
        return await asyncio.gather(*(engine.predict(j) for j in jobs))
    finally:
        await engine.stop()


def test_concurrent_requests_are_batched_and_split_back() -> None:
    model = RecordingModel()
    engine = BatchingEngine(model, max_batch_windows=32, batch_wait_ms=50)
    jobs = [windows(1, 1), windows(2, 3), windows(3, 2), windows(4, 1, frames=100)]
    results = asyncio.run(run(engine, jobs))
    for job, result in zip(jobs, results, strict=True):
        assert result.probabilities.shape == (len(job), 10) and result.attention.shape == job.shape[:2]
        assert result.music is not None and result.music.shape == (len(job),)
        assert (result.probabilities == job[0, 0, 0]).all() and (result.music == job[0, 0, 0]).all()
    # Same-length windows share one call; the 100-frame request runs on its own.
    assert sorted(model.batches) == [(1, 100, N_FEATURES), (6, 344, N_FEATURES)]
    assert model.threads == {"onnx_0"}  # off the event loop


def test_long_requests_are_run_in_chunks_of_the_batch_limit() -> None:
    model = RecordingModel()
    engine = BatchingEngine(model, max_batch_windows=4, batch_wait_ms=0)
    [result] = asyncio.run(run(engine, [windows(7, 10)]))
    assert [shape[0] for shape in model.batches] == [4, 4, 2]
    assert result.probabilities.shape == (10, 10) and len(result) == 10


def test_a_failed_inference_fails_its_requests_not_the_engine() -> None:
    model = RecordingModel(fail=True)
    engine = BatchingEngine(model, max_batch_windows=8, batch_wait_ms=0)

    async def scenario() -> None:
        engine.start()
        with pytest.raises(RuntimeError, match="inference failed"):
            await engine.predict(windows(1, 1))
        model.fail = False
        assert (await engine.predict(windows(2, 1))).probabilities[0, 0] == 2
        await engine.stop()

    asyncio.run(scenario())


def test_a_cancelled_request_does_not_stop_the_others() -> None:
    model = RecordingModel()
    engine = BatchingEngine(model, max_batch_windows=8, batch_wait_ms=20)

    async def scenario() -> None:
        engine.start()
        doomed = asyncio.ensure_future(engine.predict(windows(1, 1)))
        kept = asyncio.ensure_future(engine.predict(windows(2, 1)))
        await asyncio.sleep(0)
        doomed.cancel()
        assert (await kept).probabilities[0, 0] == 2
        await engine.stop()

    asyncio.run(scenario())
