"""HTTP routes: POST /classify, the probes, the metrics and the web page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import metrics
from app.schemas import ClassifyResponse, ErrorResponse, Health
from app.service import Classifier
from model.audio import FORMATS_FOR_HUMANS, AudioError

STATIC = Path(__file__).parent / "static"

router = APIRouter()


def loaded_classifier(request: Request) -> Classifier | None:
    classifier: Classifier | None = getattr(request.app.state, "classifier", None)
    return classifier


def ready_classifier(request: Request) -> Classifier:
    classifier = loaded_classifier(request)
    if classifier is None or not request.app.state.ready:
        raise HTTPException(503, "the model is not loaded yet")
    return classifier


ReadyClassifier = Annotated[Classifier, Depends(ready_classifier)]
LoadedClassifier = Annotated[Classifier | None, Depends(loaded_classifier)]


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    responses={
        413: {"model": ErrorResponse, "description": "upload or audio longer than the limits"},
        415: {"model": ErrorResponse, "description": "not audio in a supported format"},
        422: {"model": ErrorResponse, "description": "missing file, empty file, audio too short or top_k too large"},
        503: {"model": ErrorResponse, "description": "the model is not loaded yet"},
    },
    summary="Classify the genre of an audio file",
)
async def classify(
    classifier: ReadyClassifier,
    file: Annotated[UploadFile, File(description=f"{FORMATS_FOR_HUMANS}; any sample rate and channel count")],
    top_k: Annotated[
        int | None, Query(ge=1, description="how many genres to return, at most the model's labels (default: all)")
    ] = None,
    attention: Annotated[bool, Query(description="include per-frame attention weights")] = True,
) -> ClassifyResponse:
    """Audio longer than 30 s is analysed in 30 s windows, at most `GENRE_WINDOW_HOP_S` apart and spread
    evenly to the end; the overall probabilities count every stretch of audio once."""
    # The upload as Starlette spooled it (memory, then a temporary file): decoded in place, not copied.
    metrics.PAYLOAD_BYTES.observe(file.size or 0)
    n_labels = len(classifier.model.labels)
    if top_k is not None and top_k > n_labels:
        raise HTTPException(422, f"top_k must be at most {n_labels}, the number of labels of this model")
    try:
        return await classifier.classify(file.file, top_k or n_labels, attention)
    except AudioError as e:
        raise HTTPException(e.status, str(e)) from e


@router.get("/health", response_model=Health, summary="Liveness")
async def health(classifier: LoadedClassifier) -> Health:
    return Health(status="ok", model=classifier.info if classifier else None)


@router.get(
    "/ready", response_model=Health, responses={503: {"model": Health}}, summary="Readiness: model loaded and warm"
)
async def ready(request: Request, response: Response, classifier: LoadedClassifier) -> Health:
    if classifier is None or not request.app.state.ready:
        response.status_code = 503
        return Health(status="loading", model=classifier.info if classifier else None)
    return Health(status="ready", model=classifier.info)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")
