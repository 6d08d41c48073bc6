"""The Open Inference Protocol (KServe V2) over REST, beside POST /classify.

    GET  /v2                                   server metadata and extensions
    GET  /v2/health/live, /v2/health/ready
    GET  /v2/models/{name}[/versions/{v}]      model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer

The model's name and version are its card's. It takes one of two inputs:
- `audio`: BYTES, shape [1], an audio file's bytes (binary tensor data extension) -> `probabilities`
  [1, labels], `music_probability` [1] and `embedding` [1, dimension] (the track's, unit length),
  through the same pipeline as POST /classify;
- `spectrogram`: FP32 [batch, frames, features], the raw model's input -> `probabilities`
  [batch, labels], `attention` [batch, frames], `music_probability` [batch] and `embedding`
  [batch, dimension] (each window's fused vector, as the model gives it), one per window.
`music_probability` and `embedding` are there when the model has them (its metadata lists them).
An output requested with `"parameters": {"classification": k}` answers with the classification
extension: BYTES [rows, k] of "score:index:label". Every error is `{"error": ...}`.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from app.open_inference_codec import (
    HEADER_LENGTH,
    InferRequest,
    OutputTensor,
    ProtocolError,
    RequestedOutput,
    Tensor,
    classification_strings,
    encode_response,
    parse_request,
)
from app.routes import loaded_classifier
from app.schemas import (
    V2Error,
    V2InferResponse,
    V2Live,
    V2ModelMetadata,
    V2ModelReady,
    V2Ready,
    V2ServerMetadata,
)
from app.service import Classifier
from model.audio import AudioError
from model.runtime import EMBEDDING_OUTPUT, MUSIC_OUTPUT, OUTPUT_NAMES

SERVER_NAME = "genre-classifier"
EXTENSIONS = ["binary_tensor_data", "classification"]
AUDIO, SPECTROGRAM = "audio", "spectrogram"
PROBABILITIES, ATTENTION = OUTPUT_NAMES
MAX_SPECTROGRAM_VALUES = 64 * 10_000 * 128  # 64 windows of about 14 minutes' frames: past this, 400

router = APIRouter(prefix="/v2", tags=["Open Inference Protocol (KServe V2)"])
Responses = dict[int | str, dict[str, Any]]
NOT_READY: Responses = {503: {"model": V2Error, "description": "the model is not loaded yet"}}
MODEL_ERRORS: Responses = {404: {"model": V2Error, "description": "no such model or version"}, **NOT_READY}
INFER_ERRORS: Responses = {
    400: {"model": V2Error, "description": "a request the protocol or this model cannot take"},
    413: {"model": V2Error, "description": "the request is larger than the upload limit"},
    **MODEL_ERRORS,
}
INFER_DOCS: dict[str, Any] = {  # the body is read raw (it may carry binary data), so its schema is given here
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "datatype", "shape"],
                                "properties": {
                                    "name": {"type": "string", "enum": [AUDIO, SPECTROGRAM]},
                                    "datatype": {"type": "string", "enum": ["BYTES", "FP32"]},
                                    "shape": {"type": "array", "items": {"type": "integer"}},
                                    "parameters": {"type": "object"},
                                    "data": {"type": "array"},
                                },
                            },
                        },
                        "outputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                            },
                        },
                    },
                }
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "the JSON header, then binary tensor data (Inference-Header-Content-Length)",
            },
        },
    }
}
INFER_RESPONSES: Responses = {
    200: {"model": V2InferResponse, "content": {"application/octet-stream": {}}},
    **INFER_ERRORS,
}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def protocol_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProtocolError)
    return error(exc.status, str(exc))


def ready_classifier(request: Request) -> Classifier:
    classifier = loaded_classifier(request)
    if classifier is None or not request.app.state.ready:
        raise ProtocolError("the model is not loaded yet", 503)
    return classifier


def named_model(name: str, classifier: Annotated[Classifier, Depends(ready_classifier)]) -> Classifier:
    if name != classifier.model.card.name:
        raise ProtocolError(f"no model named {name!r}; this server serves {classifier.model.card.name!r}", 404)
    return classifier


def versioned_model(version: str, classifier: Annotated[Classifier, Depends(named_model)]) -> Classifier:
    if version != classifier.model.card.version:
        raise ProtocolError(f"no version {version!r}; this server serves {classifier.model.card.version!r}", 404)
    return classifier


Model = Annotated[Classifier, Depends(named_model)]
VersionedModel = Annotated[Classifier, Depends(versioned_model)]


@router.get("", summary="Server metadata", response_model=V2ServerMetadata)
async def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": request.app.version, "extensions": EXTENSIONS}


@router.get("/health/live", summary="Server liveness", response_model=V2Live)
async def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/health/ready", summary="Server readiness", response_model=V2Ready, responses={503: {"model": V2Ready}})
async def server_ready(request: Request, response: Response) -> dict[str, bool]:
    ready = loaded_classifier(request) is not None and bool(request.app.state.ready)
    response.status_code = 200 if ready else 503
    return {"ready": ready}


def metadata(classifier: Classifier) -> dict[str, Any]:
    card, front_end = classifier.model.card, classifier.model.front_end
    n_labels = len(card.labels)
    return {
        "name": card.name,
        "versions": [card.version],
        "platform": "onnxruntime_onnx",
        "inputs": [
            {"name": AUDIO, "datatype": "BYTES", "shape": [1]},
            {"name": SPECTROGRAM, "datatype": "FP32", "shape": [-1, -1, front_end.n_features]},
        ],
        "outputs": [
            {"name": PROBABILITIES, "datatype": "FP32", "shape": [-1, n_labels]},
            {"name": ATTENTION, "datatype": "FP32", "shape": [-1, -1]},
            *(
                [{"name": MUSIC_OUTPUT, "datatype": "FP32", "shape": [-1]}]
                if classifier.model.has_music_detector
                else []
            ),
            *(
                [{"name": EMBEDDING_OUTPUT, "datatype": "FP32", "shape": [-1, card.embedding.dimension]}]
                if card.embedding is not None
                else []
            ),
        ],
        "parameters": {"labels": card.labels},
    }


@router.get("/models/{name}", summary="Model metadata", response_model=V2ModelMetadata, responses=MODEL_ERRORS)
async def model_metadata(classifier: Model) -> dict[str, Any]:
    return metadata(classifier)


@router.get(
    "/models/{name}/versions/{version}",
    summary="Model metadata, of one version",
    response_model=V2ModelMetadata,
    responses=MODEL_ERRORS,
)
async def model_version_metadata(classifier: VersionedModel) -> dict[str, Any]:
    return metadata(classifier)


@router.get("/models/{name}/ready", summary="Model readiness", response_model=V2ModelReady, responses=MODEL_ERRORS)
async def model_ready(classifier: Model) -> dict[str, Any]:
    return {"name": classifier.model.card.name, "ready": True}


@router.get(
    "/models/{name}/versions/{version}/ready",
    summary="Model readiness, of one version",
    response_model=V2ModelReady,
    responses=MODEL_ERRORS,
)
async def model_version_ready(classifier: VersionedModel) -> dict[str, Any]:
    return {"name": classifier.model.card.name, "ready": True}


def requested(request: InferRequest, available: tuple[str, ...]) -> list[RequestedOutput]:
    if request.outputs is None:
        return [RequestedOutput(name, request.binary_outputs) for name in available]
    for out in request.outputs:
        if out.name not in available:
            raise ProtocolError(f"output {out.name!r} is not one this input gives ({', '.join(available)})")
        if out.classification and out.name != PROBABILITIES:
            raise ProtocolError(f"classification applies to {PROBABILITIES!r}, not {out.name!r}")
    return request.outputs


def output_tensors(
    outputs: list[RequestedOutput], values: dict[str, np.ndarray], labels: list[str]
) -> list[OutputTensor]:
    tensors = []
    for out in outputs:
        array = values[out.name]
        if out.classification:
            if out.classification > len(labels):
                raise ProtocolError(
                    f"classification asks for {out.classification} classes; the model has {len(labels)}"
                )
            strings = classification_strings(array, out.classification, labels)
            tensors.append(OutputTensor(out.name, "BYTES", (array.shape[0], out.classification), strings, out.binary))
        else:
            tensors.append(OutputTensor(out.name, "FP32", array.shape, array, out.binary))
    return tensors


async def audio_outputs(classifier: Classifier, tensor: Tensor) -> dict[str, np.ndarray]:
    if tensor.datatype != "BYTES" or tensor.shape != (1,):
        raise ProtocolError(f"input {AUDIO!r} must be BYTES of shape [1]: one audio file")
    assert isinstance(tensor.data, list)
    try:
        _, analysis = await classifier.analyse(tensor.data[0])
    except AudioError as e:
        raise ProtocolError(str(e)) from e
    values = {PROBABILITIES: analysis.probabilities[None, :].astype(np.float32)}
    if analysis.music_probability is not None:
        values[MUSIC_OUTPUT] = np.array([analysis.music_probability], np.float32)
    if analysis.embedding is not None:
        values[EMBEDDING_OUTPUT] = analysis.embedding[None, :]
    return values


async def spectrogram_outputs(classifier: Classifier, tensor: Tensor) -> dict[str, np.ndarray]:
    width = classifier.model.front_end.n_features
    if tensor.datatype != "FP32" or len(tensor.shape) != 3 or tensor.shape[2] != width:
        raise ProtocolError(f"input {SPECTROGRAM!r} must be FP32 of shape [batch, frames, {width}]")
    assert isinstance(tensor.data, np.ndarray)
    if 0 in tensor.shape or tensor.data.size > MAX_SPECTROGRAM_VALUES:
        raise ProtocolError(
            f"input {SPECTROGRAM!r} must hold at least one frame and at most {MAX_SPECTROGRAM_VALUES} values"
        )
    if not np.isfinite(tensor.data).all():
        raise ProtocolError(f"input {SPECTROGRAM!r} holds values that are not finite numbers")
    outputs = await classifier.engine.predict(tensor.data)
    values = {PROBABILITIES: outputs.probabilities, ATTENTION: outputs.attention}
    if outputs.music is not None:
        values[MUSIC_OUTPUT] = outputs.music
    if outputs.embedding is not None:
        values[EMBEDDING_OUTPUT] = outputs.embedding
    return values


async def infer(request: Request, classifier: Classifier) -> Response:
    parsed = parse_request(await request.body(), request.headers.get(HEADER_LENGTH))
    if len(parsed.inputs) != 1 or parsed.inputs[0].name not in (AUDIO, SPECTROGRAM):
        raise ProtocolError(f"give exactly one input: {AUDIO!r} (an audio file) or {SPECTROGRAM!r} (model input)")
    [tensor] = parsed.inputs
    if tensor.name == AUDIO:
        values = await audio_outputs(classifier, tensor)
    else:
        values = await spectrogram_outputs(classifier, tensor)
    outputs = output_tensors(requested(parsed, tuple(values)), values, classifier.model.labels)
    card = classifier.model.card
    body, headers = encode_response(card.name, card.version, parsed.id, outputs)
    return Response(body, headers=headers)


@router.post("/models/{name}/infer", summary="Inference", responses=INFER_RESPONSES, openapi_extra=INFER_DOCS)
async def model_infer(request: Request, classifier: Model) -> Response:
    return await infer(request, classifier)


@router.post(
    "/models/{name}/versions/{version}/infer",
    summary="Inference, on one version",
    responses=INFER_RESPONSES,
    openapi_extra=INFER_DOCS,
)
async def model_version_infer(request: Request, classifier: VersionedModel) -> Response:
    return await infer(request, classifier)
