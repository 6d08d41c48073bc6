"""The typed files a training run writes: its checkpoint and its report.

Both are validated when read back, so export never trusts a dict of whatever a run wrote.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from model.card import Calibration, SummaryHeadCard
from model.features import FrontEndSettings
from training.network import GenreNet, NetworkConfig

CLASSIFIER = "classifier."  # the state-dict prefix of the layers that map the fused vector to labels


class Checkpoint(BaseModel):
    """What a run keeps of its best epoch, besides the weights."""

    model_config = ConfigDict(extra="forbid")

    network: NetworkConfig
    labels: list[str]  # the output units, in order
    front_end: FrontEndSettings
    config: dict[str, Any]  # the run's TrainConfig
    epoch: int

    def save(self, net: GenreNet, path: Path) -> None:
        torch.save({"meta": self.model_dump(mode="json"), "model": net.state_dict()}, path)

    @staticmethod
    def load(path: Path) -> tuple[Checkpoint, GenreNet]:
        """The checkpoint's metadata and its network, in eval mode."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        meta = Checkpoint.model_validate(state["meta"])
        net = GenreNet(meta.network)
        net.load_state_dict(state["model"])
        return meta, net.eval()


def load_starting_weights(net: GenreNet, path: Path) -> None:
    """A checkpoint's weights into net, all but its classifier: a distilled network
    (training.distill) as the start of a genre run, which learns its own classifier."""
    meta, start = Checkpoint.load(path)
    if dataclasses.replace(meta.network, n_classes=net.config.n_classes) != net.config:
        raise ValueError(f"{path} is a network of another shape: {meta.network}, not {net.config}")
    kept = {k: v for k, v in start.state_dict().items() if not k.startswith("classifier.")}
    net.load_state_dict(kept, strict=False)  # the classifier keeps its own initial weights


class TrainState(BaseModel):
    """train_state.pt of an unfinished run: where it stood after its last whole epoch, with its
    network, optimizer, schedule and random generators, so that resuming it gives the weights an
    uninterrupted run would have."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any]  # the run's TrainConfig: a resumed run must be the same run
    epoch: int  # the last epoch done
    best_accuracy: float
    best_epoch: int
    since_best: int
    seconds: float  # training time so far

    def save(
        self,
        path: Path,
        net: GenreNet,
        optimizer: torch.optim.Optimizer,
        schedule: torch.optim.lr_scheduler.LRScheduler,
        rng: np.random.Generator,
    ) -> None:
        """Written whole or not at all (a run killed while saving keeps the previous epoch's)."""
        state = {
            "meta": self.model_dump(mode="json"),
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }
        partial = path.with_suffix(".partial")
        torch.save(state, partial)
        os.replace(partial, path)

    @staticmethod
    def load(
        path: Path,
        net: GenreNet,
        optimizer: torch.optim.Optimizer,
        schedule: torch.optim.lr_scheduler.LRScheduler,
        rng: np.random.Generator,
    ) -> TrainState:
        """The state's figures; its weights, optimizer, schedule and generators restored in place."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        return TrainState.model_validate(state["meta"])


class AccuracySummary(BaseModel):
    accuracy: float | None
    n: int
    per_genre: dict[str, float | None]


# The packages whose versions can move a run's weights, if only in their last bits, and those that
# can move the exported file's bytes (the exporter, the summary head's solver): recorded in the run
# and the card, so a rebuild that differs can be told from a changed recipe, and pinned for `make
# train` by training/constraints.txt (torch by pyproject.toml), so a fresh install rebuilds the file.
WEIGHT_PACKAGES = ("torch", "numpy", "scipy", "soxr", "av")
EXPORT_PACKAGES = ("torch", "onnx", "scikit-learn", "numpy", "scipy")


def package_versions(packages: Sequence[str]) -> dict[str, str]:
    """Python's version and the packages', as this process has them."""
    return {"python": platform.python_version(), **{p: importlib.metadata.version(p) for p in packages}}


MACHINE_PATHS = ("data", "out", "audio_folder")  # TrainConfig's fields that are paths


class RunReport(BaseModel):
    """report.json of a run: its valid figures against the baselines, and how it was trained."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    labels: list[str]
    valid_accuracy: float | None  # None when the run watched nothing (all_clips)
    valid: AccuracySummary | None
    clip_agreement: float | None  # torch, first 30 s of each audio clip against its array
    baselines: dict[str, AccuracySummary]
    # The final network's logits on the watched clips, and on those that have audio by the audio
    # route: what cross-validation pools into out-of-fold figures and calibration.
    valid_logits: list[list[float]] = []
    valid_audio_logits: dict[str, list[float]] = {}
    train_clips: int
    valid_ids: list[str]  # the clips early stopping watched (a plain folder's: paths under it)
    skipped: list[str] = []  # files of the data that could not be read, with why
    best_epoch: int
    train_seconds: float
    data_sha256: str
    network: NetworkConfig
    config: dict[str, Any]  # the run's TrainConfig, paths included (a local file)
    packages: dict[str, str] = {}  # package_versions() of the run (none in reports before 2.1.3)

    def portable_config(self) -> dict[str, Any]:
        """The config without machine paths or the network (recorded on its own), for the card."""
        return {k: v for k, v in self.config.items() if k not in (*MACHINE_PATHS, "network")}


class AudioFigures(BaseModel):
    """The audio route's figures on clips that have audio (training.evaluate's audio_* fields)."""

    audio_n: int
    audio_accuracy: float
    audio_agreement: float
    robustness: dict[str, float]


class CvReport(BaseModel):
    """training.cv's report: a training recipe's out-of-fold figures and the calibration they fit."""

    model_config = ConfigDict(extra="forbid")

    protocol: str
    labels: list[str]
    folds: int
    n: int
    accuracy: float  # the shipped recipe's: the network fused with its summary head, if it has one
    interval_95: tuple[float, float]  # bootstrap over artists
    network_accuracy: float  # the network alone
    # The arrays band-limited at a random 3.5-11 kHz cut-off each, out of fold: "network" and "fused".
    band_limited_accuracy: dict[str, float] = {}
    fold_accuracies: list[float]
    per_genre: dict[str, float | None]
    baselines: dict[str, AccuracySummary]  # trained and scored on the same folds
    audio: AudioFigures  # each fold's ONNX export on its own clips, through the service's pipeline
    calibration: Calibration
    summary_head: SummaryHeadCard | None = None
    network: NetworkConfig
    config: dict[str, Any]  # the folds' training config, without paths or the fold

    def summary(self) -> dict[str, Any]:
        """What the model card carries (the calibration has its own place there)."""
        return self.model_dump(mode="json", exclude={"labels", "calibration", "summary_head", "network", "config"})
