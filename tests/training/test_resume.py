"""An interrupted training run resumed (training.train --resume) ends where an uninterrupted one does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import training.train
from tests.helpers import write_label_folder, write_subset
from training.artifacts import RunReport
from training.data import DataError, read_labels
from training.network import NetworkConfig
from training.train import TrainConfig, train

EPOCHS = 4


def config(data: Path, out: Path) -> TrainConfig:
    """A tiny run that learns from at most 32 clips: one batch an epoch. On a GTZAN-layout folder it
    learns from every clip and keeps its last epoch; on a label folder it keeps its best."""
    small = NetworkConfig(hidden=16, frame_dim=32)
    all_clips = (data / "labels.csv").is_file()
    return TrainConfig(
        data=data, out=out, epochs=EPOCHS, patience=EPOCHS, network=small, all_clips=all_clips, resume=True, threads=1
    )


@pytest.fixture(params=["keeps its best epoch", "keeps its last epoch"])
def data(request: pytest.FixtureRequest, tmp_path: Path, gtzan: Path) -> Path:
    if request.param == "keeps its best epoch":
        return write_label_folder(tmp_path / "music", per_label=6)
    ids = sorted(r["clip_id"] for r in read_labels(gtzan))[::32]
    write_subset(gtzan, tmp_path / "gtzan", ids, with_audio=False)
    return tmp_path / "gtzan"


def count_batches(monkeypatch: pytest.MonkeyPatch, interrupt_at: int = 0) -> list[int]:
    """Count the batches training runs draw from now on; and stop the run as a killed one would at
    batch `interrupt_at` (0: never)."""
    real, calls = training.train.get_batch, [0]

    def counting(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == interrupt_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(training.train, "get_batch", counting)
    return calls


def weights(run: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    return state


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = train(config(data, tmp_path / "whole"))
    assert whole.train_clips <= 32
    assert not (tmp_path / "whole" / "train_state.pt").exists()

    run = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        count_batches(patch, interrupt_at=3)  # one batch an epoch: killed in epoch 2
        with pytest.raises(KeyboardInterrupt):
            train(config(data, run))
    assert (run / "train_state.pt").exists()
    with pytest.raises(DataError, match="another config"):
        train(dataclasses.replace(config(data, run), lr=1e-3))
    batches = count_batches(monkeypatch)
    resumed = train(config(data, run))
    assert batches == [EPOCHS - 2], "it should have started again at epoch 2"

    assert weights(run).keys() == weights(tmp_path / "whole").keys()
    for name, tensor in weights(tmp_path / "whole").items():
        assert torch.equal(weights(run)[name], tensor), name
    assert (resumed.best_epoch, resumed.valid_accuracy) == (whole.best_epoch, whole.valid_accuracy)
    np.testing.assert_array_equal(resumed.valid_logits, whole.valid_logits)
    assert "resume" not in RunReport.model_validate_json((run / "report.json").read_text()).config
    assert not (run / "train_state.pt").exists()
