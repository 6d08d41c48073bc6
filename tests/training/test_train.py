"""Training's loss with a soft teacher: a trained network whose outputs a (smaller) one learns too."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.helpers import fold_run
from training.artifacts import Checkpoint
from training.data import DataError
from training.network import GenreNet, NetworkConfig
from training.train import TrainConfig, batch_loss, train

TINY = NetworkConfig(frame_dim=16, conv_channels=4, hidden=8, attention_dim=8, co_variation=8, dropout=0.0)


def batch(seed: int = 0) -> tuple[np.ndarray, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((6, 40, TINY.n_features)).astype(np.float32), torch.tensor([0, 1, 2, 3, 4, 5])


def loss_of(net: GenreNet, teacher: GenreNet | None, weight: float) -> torch.Tensor:
    x, y = batch()
    cfg = TrainConfig(mixup=0.0, soft_target_weight=weight, soft_target_temperature=2.0)
    with torch.no_grad():
        return batch_loss(net, x, y, nn.CrossEntropyLoss(), cfg, np.random.default_rng(0), teacher)


def test_the_soft_targets_blend_with_the_labels() -> None:
    torch.manual_seed(0)
    student, teacher = GenreNet(TINY).eval(), GenreNet(TINY).eval()
    labels_only = loss_of(student, None, 0.5)
    assert loss_of(student, teacher, 0.0) == labels_only
    assert loss_of(student, student, 1.0) == pytest.approx(0.0, abs=1e-6)  # its own outputs: nothing to learn
    x, _ = batch()
    with torch.no_grad():
        p, q = (torch.softmax(net(torch.from_numpy(x))[0] / 2.0, dim=1) for net in (teacher, student))
    by_hand = 4.0 * (p * (p / q).log()).sum(1).mean()
    torch.testing.assert_close(loss_of(student, teacher, 1.0), by_hand)
    torch.testing.assert_close(loss_of(student, teacher, 0.25), 0.75 * labels_only + 0.25 * by_hand)


def test_a_smaller_network_learns_from_its_folds_teacher(small_gtzan: Path, tmp_path: Path) -> None:
    def run(
        out: str, network: NetworkConfig, fold: int, teacher: Path | None = None, data: Path = small_gtzan
    ) -> TrainConfig:
        return fold_run(data, tmp_path / out, fold, network=network, soft_targets_from=teacher)

    teacher = run("teacher", NetworkConfig(hidden=24, frame_dim=48), fold=0)
    train(teacher)
    teacher_path = teacher.out / "checkpoint.pt"
    # The same folder, named another way, is the same clips.
    student = run("student", TINY, fold=0, teacher=teacher_path, data=small_gtzan / ".." / small_gtzan.name)
    assert train(student).config["soft_targets_from"] == str(teacher_path)
    student_meta, _ = Checkpoint.load(student.out / "checkpoint.pt")
    assert student_meta.network == dataclasses.replace(TINY, n_classes=len(student_meta.labels))
    # A network that learnt from another fold's clips (here, fold 1's scored ones) must not teach it.
    with pytest.raises(DataError, match="may have seen"):
        train(run("leaky", TINY, fold=1, teacher=teacher_path))
