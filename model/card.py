"""The model card shipped beside the ONNX file: labels, front-end settings, members, metrics.

The labels are the model's own (GTZAN's ten genres, or whatever a user trained on); the
service, its page and its metrics take them from here.

Like a HuggingFace feature-extractor config, it carries every front-end setting the model was
trained with, and the runtime rebuilds the front end from it. A card written for another
version of the front-end code, or one that does not parse, is refused at load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from model.features import FRONT_END_VERSION, FrontEndSettings


class IncompatibleModelError(RuntimeError):
    """The card does not match this code, or the model file does not match its card."""


class MemberCard(BaseModel):
    """One trained network of the shipped model (an ensemble has several)."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    network: dict[str, int | float | str]
    best_epoch: int
    train_clips: int
    train_seconds: float
    valid_accuracy: float | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="training config, without machine paths")
    packages: dict[str, str] = Field(
        default_factory=dict, description="versions of Python and the packages that shaped the weights"
    )


class Calibration(BaseModel):
    """How the model's probabilities were calibrated (the ONNX file divides its logits by `temperature`)."""

    model_config = ConfigDict(extra="forbid")

    method: str
    temperature: float = Field(gt=0)
    ece_before: float = Field(description="expected calibration error, out of fold, before")
    ece_after: float = Field(description="the same after, with T fitted on the other folds (cross-fitted)")
    nll_before: float
    nll_after: float
    bins: int


class SummaryHeadCard(BaseModel):
    """The clip-summary branch fused into the file (training.clip_summary): its parts, the logistic
    regression's C, and the weight w of its log-probabilities added to the network's."""

    model_config = ConfigDict(extra="forbid")

    parts: list[str]
    c: float = Field(gt=0)
    weight: float = Field(ge=0)
    c_per_fold: list[float] = Field(description="each fold's C in the cross-validation, chosen by the other folds")
    weight_per_fold: list[float]


class MusicDetectorCard(BaseModel):
    """The music detector in the file (training.detector): a head on the fused vector that gives each
    window's probability of being music, and the threshold above which a window counts as music."""

    model_config = ConfigDict(extra="forbid")

    reads: str = Field(description="what the head reads")
    hidden: int = Field(gt=0)
    heads: int = Field(default=1, gt=0, description="heads of different seeds whose probabilities are averaged")
    threshold: float = Field(gt=0, lt=1, description="the default decision threshold (GENRE_MUSIC_THRESHOLD moves it)")
    threshold_rule: str
    sources: dict[str, list[str]] = Field(description="the corpus sources trained on and held out, by kind")
    metrics: dict[str, Any] = Field(default_factory=dict)


class EmbeddingCard(BaseModel):
    """The `embedding` output: each window's fused vector, the attention-weighted mean of the BiGRU's
    frame features that the classifier reads. A track's embedding is its windows' coverage-weighted
    mean, L2-normalised (model.pipeline); compare tracks by cosine similarity."""

    model_config = ConfigDict(extra="forbid")

    dimension: int = Field(gt=0)
    reads: str = Field(description="what the output is, in the network")


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    labels: list[str] = Field(description="the model's output units, in order: GTZAN's genres or a user's own")
    feature_settings: FrontEndSettings
    members: list[MemberCard] = Field(default_factory=list)
    data_sha256: str = ""
    onnx_sha256: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    baselines: dict[str, Any] = Field(default_factory=dict)
    calibration: Calibration | None = None
    summary_head: SummaryHeadCard | None = None
    music_detector: MusicDetectorCard | None = None
    embedding: EmbeddingCard | None = None
    export_packages: dict[str, str] = Field(
        default_factory=dict,
        description="versions of Python and the packages that wrote this file: the exporter, the summary head's solver",
    )

    @field_validator("labels")
    @classmethod
    def _labels_name_distinct_classes(cls, labels: list[str]) -> list[str]:
        if len(labels) < 2 or len(set(labels)) != len(labels) or not all(label.strip() for label in labels):
            raise ValueError(f"the labels must be at least two distinct non-empty names, not {labels}")
        return labels

    def music_threshold(self, override: float | None = None) -> float | None:
        """The threshold on a window's music probability: `override` (a user's setting), else the
        card's; None for a model without a detector. Raises ValueError for an override it cannot use."""
        if self.music_detector is None:
            if override is not None:
                raise ValueError(
                    f"a music threshold was set, but model {self.name} {self.version} has no music detector"
                )
            return None
        if override is not None and not 0 < override < 1:
            raise ValueError(f"the music threshold must be between 0 and 1, not {override}")
        return self.music_detector.threshold if override is None else override

    def check_compatible(self) -> FrontEndSettings:
        """The front end to rebuild for this model; raises if this code cannot serve it."""
        if self.feature_settings.version != FRONT_END_VERSION:
            raise IncompatibleModelError(
                f"the model card's feature settings are for front-end version {self.feature_settings.version}; "
                f"model/features.py implements version {FRONT_END_VERSION}"
            )
        return self.feature_settings


def card_path(onnx_path: Path) -> Path:
    """The card lives beside the model: genre_birnn.onnx -> genre_birnn.json."""
    return onnx_path.with_suffix(".json")


def load_card(path: Path) -> ModelCard:
    try:
        return ModelCard.model_validate(json.loads(path.read_text()))
    except ValidationError as e:
        raise IncompatibleModelError(f"{path} is not a model card this code can read: {e}") from e


def write_card(card: ModelCard, onnx_path: Path) -> None:
    card_path(onnx_path).write_text(card.model_dump_json(indent=2) + "\n")
