"""The model card shipped beside the ONNX file: labels, feature settings, metrics, data hash.

Like a HuggingFace feature-extractor config, it is checked at load time: a model trained
with other front-end settings or labels than this code's is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from model.features import feature_settings
from model.labels import GENRES


class IncompatibleModelError(RuntimeError):
    """The card does not match this front end or label set."""


class ModelCard(BaseModel):
    name: str
    version: str
    labels: list[str]
    feature_settings: dict[str, int | str]
    network: dict[str, int | float | str] = Field(default_factory=dict)
    data_sha256: str = ""
    onnx_sha256: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    baselines: dict[str, Any] = Field(default_factory=dict)
    training: list[dict[str, Any]] = Field(default_factory=list)

    def check_compatible(self) -> None:
        if self.feature_settings != feature_settings():
            raise IncompatibleModelError(
                f"model card feature settings {self.feature_settings} differ from "
                f"model/features.py {feature_settings()}"
            )
        if tuple(self.labels) != GENRES:
            raise IncompatibleModelError(f"model card labels {self.labels} differ from {list(GENRES)}")


def card_path(onnx_path: Path) -> Path:
    """The card lives beside the model: genre_birnn.onnx -> genre_birnn.json."""
    return onnx_path.with_suffix(".json")


def load_card(path: Path) -> ModelCard:
    return ModelCard.model_validate(json.loads(path.read_text()))
