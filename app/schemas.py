"""Typed request/response models (they make the OpenAPI docs)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GenreScore(BaseModel):
    genre: str
    probability: float = Field(ge=0, le=1)


class ModelInfo(BaseModel):
    name: str
    version: str
    provider: str = Field(description="ONNX Runtime execution provider in use")
    labels: list[str] = Field(description="what the model tells apart, from its card")


class Segment(BaseModel):
    """One analysis window of 30 s (a lone window spans the whole clip)."""

    start_s: float = Field(description="start of the window in the upload, seconds")
    end_s: float = Field(description="end of the last sample the window's frames cover, seconds")
    top_genre: str
    genres: list[GenreScore] = Field(description="this window's probabilities, sorted descending")
    frame_hop_s: float = Field(description="seconds between attention frames")
    first_frame_s: float = Field(description="time of attention frame 0 (its centre), seconds")
    attention: list[float] | None = Field(
        None,
        description="per-frame attention weights (sum to 1); frame k is centred at "
        "first_frame_s + k * frame_hop_s; null when attention=false",
    )


class ClassifyResponse(BaseModel):
    top_genre: str
    genres: list[GenreScore] = Field(
        description="overall probabilities, sorted descending: every stretch of audio counts once "
        "(each frame's probabilities are the mean over the segments covering it, and these are averaged "
        "over frames); all of them sum to 1, top_k may return fewer"
    )
    duration_s: float = Field(description="duration of the upload, seconds")
    sample_rate: int = Field(description="sample rate of the upload, Hz")
    channels: int
    model: ModelInfo
    segments: list[Segment]


class Health(BaseModel):
    status: str
    model: ModelInfo | None = None


class ErrorResponse(BaseModel):
    detail: str
