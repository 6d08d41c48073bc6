"""The FastAPI application: `uvicorn app.main:app` (or `python -m app.main`)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app import logs, metrics, open_inference
from app.admission import AdmissionControl
from app.auth import ApiKeyAuth
from app.config import Settings, get_settings
from app.limits import UploadLimitMiddleware
from app.open_inference_codec import ProtocolError
from app.responses import error_body
from app.routes import router
from app.service import Classifier, EngineFactory, batching_engine

log = logging.getLogger("app")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load the model and warm it up before the app is ready; stop its threads on shutdown."""
    app.state.ready = False
    app.state.classifier = classifier = Classifier(app.state.settings, app.state.engine)
    info = classifier.info
    metrics.MODEL_INFO.labels(info.name, info.version, info.provider).set(1)
    await classifier.start()
    app.state.ready = True
    log.info("ready", extra={"fields": {"model": info.name, "version": info.version, "provider": info.provider}})
    try:
        yield
    finally:
        app.state.ready = False
        await classifier.stop()


def route_of(request: Request) -> str:
    """The route template (not the raw path), so metrics labels stay few."""
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] == Match.FULL:
            return str(getattr(route, "path", request.url.path))
    return "unmatched"


async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Request id, metrics and one log line for every request."""
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
    token = logs.request_id.set(rid)
    route, start = route_of(request), time.perf_counter()
    metrics.IN_FLIGHT.inc()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        response.headers["x-request-id"] = rid
        return response
    finally:
        elapsed = time.perf_counter() - start
        metrics.IN_FLIGHT.dec()
        metrics.REQUESTS.labels(request.method, route, str(status)).inc()
        metrics.REQUEST_SECONDS.labels(request.method, route).observe(elapsed)
        fields = {"method": request.method, "route": route, "status": status, "seconds": round(elapsed, 4)}
        log.info("request", extra={"fields": fields})
        logs.request_id.reset(token)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(error_body(request.url.path, exc.detail), status_code=exc.status_code, headers=exc.headers)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's list of errors, as one human sentence."""
    assert isinstance(exc, RequestValidationError)
    reason = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return JSONResponse(error_body(request.url.path, reason or "invalid request"), status_code=422)


def is_inference_path(path: str) -> bool:
    """The paths that carry uploads (POST /classify and /similar, the Open Inference Protocol's infer):
    they are size-limited, admitted and, with API keys set, authenticated."""
    return path in ("/classify", "/similar") or (path.startswith("/v2/models/") and path.endswith("/infer"))


def create_app(settings: Settings | None = None, engine: EngineFactory = batching_engine) -> FastAPI:
    """The service; `engine` batches its inferences (Ray Serve brings its own)."""
    settings = settings or get_settings()
    logs.configure(settings.log_level)
    # Swagger UI and ReDoc from fastapi-offline's packaged assets: /docs works without internet.
    app = FastAPIOffline(
        title="Music genre classifier",
        description="BiGRU + parallel attention over STFT spectrograms, served with ONNX Runtime.",
        version="1.0.0",
        lifespan=lifespan,
        static_url="/docs-assets",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.ready = False
    app.include_router(router)
    app.include_router(open_inference.router)
    # Each added layer wraps the ones before: observe -> API key -> admission -> upload limit -> routes,
    # so metrics and logs see every refusal, and a request is refused before its body is read.
    app.add_middleware(UploadLimitMiddleware, max_bytes=settings.max_upload_bytes, applies=is_inference_path)
    app.add_middleware(
        AdmissionControl,
        applies=is_inference_path,
        max_in_flight=settings.max_in_flight,
        max_queue=settings.max_queue,
        queue_timeout_s=settings.queue_timeout_s,
        upload_timeout_s=settings.upload_timeout_s,
    )
    if keys := settings.keys():
        metrics_need_key = settings.metrics_need_key

        def protected(path: str) -> bool:
            return is_inference_path(path) or (metrics_need_key and path == "/metrics")

        app.add_middleware(ApiKeyAuth, keys=keys, applies=protected)
    app.middleware("http")(observe)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ProtocolError, open_inference.protocol_error)
    return app


app = create_app()


def main() -> None:
    settings = get_settings()
    # log_config=None: keep the JSON handlers; the request middleware logs each request, so no access log.
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
