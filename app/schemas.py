"""Typed request/response models (they make the OpenAPI docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

NOT_MUSIC = "not_music"


class GenreScore(BaseModel):
    genre: str
    probability: float = Field(ge=0, le=1)


class ModelInfo(BaseModel):
    name: str
    version: str
    provider: str = Field(description="ONNX Runtime execution provider in use")
    labels: list[str] = Field(description="what the model tells apart, from its card")
    music_threshold: float | None = Field(
        description="a window or upload is music when its music_probability is at least this "
        "(GENRE_MUSIC_THRESHOLD, or the card's); null: this model has no music detector"
    )


class Library(BaseModel):
    """The library POST /similar searches (GENRE_INDEX_PATH)."""

    path: str
    tracks: int = Field(description="tracks with an embedding")
    search: Literal["exact", "approximate"] = Field(description="approximate: an HNSW index, for large libraries")


class Segment(BaseModel):
    """One analysis window of 30 s (a lone window spans the whole clip)."""

    start_s: float = Field(description="start of the window in the upload, seconds")
    end_s: float = Field(description="end of the last sample the window's frames cover, seconds")
    music_probability: float | None = Field(
        ge=0, le=1, description="probability that this window is music; null: the model has no music detector"
    )
    is_music: bool | None = Field(description="music_probability is at least model.music_threshold")
    top_genre: str | None = Field(description="null when this window is not music")
    genres: list[GenreScore] = Field(
        description="this window's probabilities, sorted descending; meaningful only where it is music"
    )
    frame_hop_s: float = Field(description="seconds between attention frames")
    first_frame_s: float = Field(description="time of attention frame 0 (its centre), seconds")
    attention: list[float] | None = Field(
        None,
        description="per-frame attention weights (sum to 1); frame k is centred at "
        "first_frame_s + k * frame_hop_s; null when attention=false",
    )


class ClassifyResponse(BaseModel):
    music_probability: float | None = Field(
        ge=0,
        le=1,
        description="probability that the upload is music: its segments' music probabilities, every stretch "
        "of audio counted once; null: the model has no music detector",
    )
    is_music: bool | None = Field(description="music_probability is at least model.music_threshold")
    top_genre: str | None = Field(description="the most probable genre; null when the upload is not music")
    no_genre_reason: Literal["not_music"] | None = Field(
        description="why top_genre is null: not_music when the upload does not sound like music"
    )
    genres: list[GenreScore] = Field(
        description="overall probabilities, sorted descending, meaningful only for music: every stretch of "
        "audio counts once, weighted by how likely it is music (each frame's probabilities are the mean over "
        "the segments covering it); all of them sum to 1, top_k may return fewer"
    )
    duration_s: float = Field(description="duration of the upload, seconds")
    sample_rate: int = Field(description="sample rate of the upload, Hz")
    channels: int
    model: ModelInfo
    segments: list[Segment]
    embedding: list[float] | None = Field(
        None,
        description="with embedding=true: the upload's embedding (unit length; compare by dot product, the cosine "
        "similarity), its windows' fused vectors weighted by coverage",
    )


class SimilarTrack(BaseModel):
    path: str = Field(description="the track's path, as the library holds it")
    similarity: float = Field(ge=-1, le=1, description="cosine similarity of the two embeddings (1: the same audio)")
    top_genre: str | None


class SimilarResponse(BaseModel):
    tracks: list[SimilarTrack] = Field(description="the library's tracks most like the upload, most similar first")
    music_probability: float | None = Field(ge=0, le=1, description="the upload's, as in POST /classify")
    is_music: bool | None
    library: Library
    model: ModelInfo


class Health(BaseModel):
    status: str
    model: ModelInfo | None = None
    library: Library | None = Field(None, description="the library POST /similar searches; null: none loaded")


class ErrorResponse(BaseModel):
    detail: str


# The Open Inference Protocol's (KServe V2) shapes, for its routes' documentation (app/open_inference.py).


class V2Error(BaseModel):
    error: str


class V2ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class V2Live(BaseModel):
    live: bool


class V2Ready(BaseModel):
    ready: bool


class V2ModelReady(BaseModel):
    name: str
    ready: bool


class V2TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1: any size")


class V2ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[V2TensorMetadata]
    outputs: list[V2TensorMetadata]
    parameters: dict[str, list[str]] = Field(description="labels: the model's output units, in order")


class V2OutputTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    data: list[float | str] | None = Field(None, description="row-major; absent when sent as binary")
    parameters: dict[str, int] | None = Field(None, description="binary_data_size, when sent as binary")


class V2InferResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[V2OutputTensor]
