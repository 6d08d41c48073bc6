"""Off-the-event-loop inference with micro-batching across concurrent requests.

Requests put their windows on a queue; one worker collects what arrives within
`batch_wait_ms` (up to `max_batch_windows` windows of the same length), runs it as one ONNX
call in a worker thread (ONNX Runtime releases the GIL) and hands each request its rows.
The event loop never blocks, so /health answers during inference.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from app import metrics
from model.runtime import Outputs, Predictor


@dataclass
class _Job:
    inputs: np.ndarray  # shape = (windows, frames, bands)
    future: asyncio.Future[Outputs] = field(repr=False)


class Engine(Protocol):
    """What the classifier runs its windows through: this module's engine, or another's batching
    (Ray Serve's @serve.batch in deploy/ray/serve_app.py)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def predict(self, inputs: np.ndarray) -> Outputs:
        """inputs: shape = (windows, frames, bands) -> those windows' outputs."""
        ...


class BatchingEngine:
    def __init__(self, model: Predictor, max_batch_windows: int, batch_wait_ms: float) -> None:
        self.model = model
        self.max_batch = max_batch_windows
        self.wait_s = batch_wait_ms / 1000
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx")
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def predict(self, inputs: np.ndarray) -> Outputs:
        """inputs: shape = (windows, frames, bands) -> those windows' outputs."""
        future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(inputs, future))
        return await future

    async def _serve(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            deadline = time.monotonic() + self.wait_s
            while sum(len(j.inputs) for j in jobs) < self.max_batch:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    jobs.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            await self._run(jobs)

    async def _run(self, jobs: list[_Job]) -> None:
        jobs = [j for j in jobs if not j.future.done()]  # a cancelled request needs no answer
        if not jobs:
            return
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, score_requests, self.model, [j.inputs for j in jobs], self.max_batch
            )
        except Exception as e:  # an inference failure fails these requests, not the worker
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)


def score_requests(model: Predictor, requests: list[np.ndarray], max_batch: int) -> list[Outputs]:
    """Several requests' windows as few ONNX calls: windows of the same length together, at most
    `max_batch` a call (a long upload's run in chunks); each request gets its own rows back."""
    results: list[Outputs | None] = [None] * len(requests)
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, inputs in enumerate(requests):
        by_length[inputs.shape[1]].append(i)
    for rows in by_length.values():
        batch = np.concatenate([requests[i] for i in rows])
        outputs = []
        for start in range(0, len(batch), max_batch):
            chunk = batch[start : start + max_batch]
            began = time.perf_counter()
            outputs.append(model.predict(chunk))
            metrics.INFERENCE_SECONDS.observe(time.perf_counter() - began)
            metrics.BATCH_WINDOWS.observe(len(chunk))
        scored = Outputs.concatenate(outputs)
        offset = 0
        for i in rows:
            n = len(requests[i])
            results[i] = scored.rows(offset, offset + n)
            offset += n
    return [r for r in results if r is not None]
