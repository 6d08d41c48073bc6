"""HTTP routes: POST /classify, POST /similar, the probes, the metrics and the web page."""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import metrics
from app.schemas import ClassifyResponse, ErrorResponse, Health, SimilarResponse
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
AudioUpload = Annotated[UploadFile, File(description=f"{FORMATS_FOR_HUMANS}; any sample rate and channel count")]
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "upload or audio longer than the limits"},
    415: {"model": ErrorResponse, "description": "not audio in a supported format"},
    503: {"model": ErrorResponse, "description": "the model is not loaded yet"},
}
T = TypeVar("T")


async def answered(answer: Awaitable[T]) -> T:
    """The answer to an upload, or the HTTP error its audio calls for."""
    try:
        return await answer
    except AudioError as e:
        raise HTTPException(e.status, str(e)) from e


@router.post(
    "/classify",
    response_model=ClassifyResponse,
    responses={
        **UPLOAD_ERRORS,
        422: {"model": ErrorResponse, "description": "missing file, empty file, audio too short or a bad query"},
    },
    summary="Classify the genre of an audio file",
)
async def classify(
    classifier: ReadyClassifier,
    file: AudioUpload,
    top_k: Annotated[
        int | None, Query(ge=1, description="how many genres to return, at most the model's labels (default: all)")
    ] = None,
    attention: Annotated[bool, Query(description="include per-frame attention weights")] = True,
    embedding: Annotated[bool, Query(description="include the upload's embedding (for similarity search)")] = False,
) -> ClassifyResponse:
    """Audio longer than 30 s is analysed in 30 s windows, at most `GENRE_WINDOW_HOP_S` apart and spread
    evenly to the end; the overall probabilities count every stretch of audio once."""
    # The upload as Starlette spooled it (memory, then a temporary file): decoded in place, not copied.
    metrics.PAYLOAD_BYTES.observe(file.size or 0)
    n_labels = len(classifier.model.labels)
    if top_k is not None and top_k > n_labels:
        raise HTTPException(422, f"top_k must be at most {n_labels}, the number of labels of this model")
    if embedding and not classifier.model.has_embedding:
        info = classifier.info
        raise HTTPException(
            422, f"model {info.name} {info.version} gives no embedding; embedding=true needs 2.3 or later"
        )
    return await answered(classifier.classify(file.file, top_k or n_labels, attention, embedding))


MAX_SIMILAR = 100  # tracks one /similar answer lists at most


@router.post(
    "/similar",
    response_model=SimilarResponse,
    responses={
        **UPLOAD_ERRORS,
        404: {"model": ErrorResponse, "description": "no library is loaded (GENRE_INDEX_PATH is unset)"},
        422: {"model": ErrorResponse, "description": "missing or bad file, k out of range, or a genre not the model's"},
    },
    summary="The library's tracks most like an audio file",
)
async def similar(
    classifier: ReadyClassifier,
    file: AudioUpload,
    k: Annotated[int, Query(ge=1, le=MAX_SIMILAR, description="how many tracks")] = 10,
    genre: Annotated[str | None, Query(description="only tracks of this top genre")] = None,
) -> SimilarResponse:
    """The upload's embedding (as POST /classify?embedding=true gives it) against the library's, by cosine
    similarity: duplicates of the upload come first, at a similarity near 1."""
    metrics.PAYLOAD_BYTES.observe(file.size or 0)
    if classifier.library is None:
        raise HTTPException(
            404,
            "no library is loaded: start the service with GENRE_INDEX_PATH set to a Parquet "
            "file of `genre classify --embeddings`",
        )
    if genre is not None and genre not in classifier.model.labels:
        raise HTTPException(422, f"genre must be one of {', '.join(classifier.model.labels)}, not {genre!r}")
    return await answered(classifier.similar(file.file, k, genre))


@router.get("/health", response_model=Health, summary="Liveness")
async def health(classifier: LoadedClassifier) -> Health:
    if classifier is None:
        return Health(status="ok")
    return Health(status="ok", model=classifier.info, library=classifier.library_info)


@router.get(
    "/ready", response_model=Health, responses={503: {"model": Health}}, summary="Readiness: model loaded and warm"
)
async def ready(request: Request, response: Response, classifier: LoadedClassifier) -> Health:
    if classifier is None or not request.app.state.ready:
        response.status_code = 503
        return Health(status="loading", model=classifier.info if classifier else None)
    return Health(status="ready", model=classifier.info, library=classifier.library_info)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")
