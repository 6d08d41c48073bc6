"""The service under Ray Serve: `serve run deploy/ray/serve.yaml` (pip install 'genre-service[ray]').

The same FastAPI app (POST /classify, the probes, /metrics, the page, the Open Inference
Protocol), in replicas that Serve scales on their ongoing requests. Serve's `@serve.batch`
batches windows across a replica's concurrent requests, in place of the in-process engine.
Each replica's concurrency and queue come from the service's own settings (GENRE_MAX_IN_FLIGHT,
GENRE_MAX_QUEUE), so a replica admits what one process would.
"""

from __future__ import annotations

import asyncio

import numpy as np
from ray import serve

from app.batching import Engine, score_requests
from app.config import Settings
from app.main import create_app
from model.runtime import Outputs, Predictor

settings = Settings()


class ServeBatchingEngine:
    """Engine whose cross-request batches are Ray Serve's: concurrent predict() calls of a replica
    within batch_wait_ms (at most max_in_flight of them) become one call of score_requests."""

    def __init__(self, model: Predictor, max_batch_windows: int) -> None:
        self.model = model
        self.max_batch_windows = max_batch_windows

    def start(self) -> None:
        """Nothing to start: Serve runs the batches."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def predict(self, inputs: np.ndarray) -> Outputs:
        result: Outputs = await self._batched(inputs)
        return result

    @serve.batch(max_batch_size=settings.max_in_flight, batch_wait_timeout_s=settings.batch_wait_ms / 1000)
    async def _batched(self, requests: list[np.ndarray]) -> list[Outputs]:
        # ONNX Runtime releases the GIL: the replica's event loop keeps serving while it runs.
        return await asyncio.to_thread(score_requests, self.model, requests, self.max_batch_windows)


def serve_batching(model: Predictor, settings: Settings) -> Engine:
    return ServeBatchingEngine(model, settings.max_batch_windows)


fastapi_app = create_app(settings, engine=serve_batching)


@serve.deployment(max_ongoing_requests=settings.max_in_flight, max_queued_requests=settings.max_queue)
@serve.ingress(fastapi_app)
class GenreService:
    """One replica: the app, its model and its batches."""


app = GenreService.bind()  # type: ignore[attr-defined]  # serve.deployment made it a Deployment
