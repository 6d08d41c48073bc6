"""Distillation (training.train --teacher): the loss it teaches and the teachers it accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from model.features import N_FEATURES
from tests.helpers import SMALL_CV_FOLDS
from training.artifacts import CvReport, RunReport
from training.data import DataError
from training.network import GenreNet, NetworkConfig
from training.train import TrainConfig, batch_loss, parse_args, train

TINY = NetworkConfig(hidden=8, frame_dim=16, conv_channels=4, attention_dim=8, co_variation=8)


@pytest.mark.parametrize("mixup", [0.0, 0.4])
def test_the_teachers_mean_probability_on_the_same_inputs_is_the_distilled_share_of_the_loss(mixup: float) -> None:
    torch.manual_seed(0)
    student, *teachers = (GenreNet(TINY).eval() for _ in range(3))
    x = np.random.default_rng(0).normal(size=(6, 40, N_FEATURES)).astype(np.float32)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    labels_loss = nn.CrossEntropyLoss(label_smoothing=0.1)
    cfg = TrainConfig(mixup=mixup, teachers=[Path("a"), Path("b")], distill=0.3)

    loss = batch_loss(student, x, y, labels_loss, cfg, teachers, np.random.default_rng(1))

    rng = np.random.default_rng(1)  # the mixing batch_loss drew
    lam, perm = (float(rng.beta(mixup, mixup)), rng.permutation(6)) if mixup else (1.0, np.arange(6))
    inputs = torch.from_numpy(lam * x + (1 - lam) * x[perm])
    with torch.no_grad():
        logits = student(inputs)[0]
        taught = (torch.softmax(teachers[0](inputs)[0], 1) + torch.softmax(teachers[1](inputs)[0], 1)) / 2
        from_labels = lam * labels_loss(logits, y) + (1 - lam) * labels_loss(logits, y[perm])
        expected = 0.7 * from_labels + 0.3 * nn.functional.cross_entropy(logits, taught)
        undistilled = batch_loss(student, x, y, labels_loss, TrainConfig(mixup=mixup), [], np.random.default_rng(1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert undistilled.item() == pytest.approx(from_labels.item(), rel=1e-5)
    assert abs(loss.item() - undistilled.item()) > 1e-3


def test_the_command_line_takes_teachers_only_with_a_share() -> None:
    cfg = parse_args(["--teacher", "runs/a", "--teacher", "runs/b", "--distill", "0.5"])
    assert cfg.teachers == [Path("runs/a"), Path("runs/b")] and cfg.distill == 0.5
    assert parse_args([]).teachers == []
    for argv in (["--teacher", "runs/a"], ["--distill", "0.5"], ["--teacher", "runs/a", "--distill", "1"]):
        with pytest.raises(SystemExit):
            parse_args(argv)


def student(data: Path, out: Path, fold: int, teachers: list[Path]) -> RunReport:
    return train(
        TrainConfig(
            data=data,
            out=out,
            epochs=1,
            network=NetworkConfig(hidden=24, frame_dim=48),
            cv_fold=fold,
            cv_folds=SMALL_CV_FOLDS,
            teachers=teachers,
            distill=0.5,
        )
    )


def test_a_fold_learns_from_the_teachers_that_held_it_out_and_refuses_others(
    small_cv: tuple[Path, list[Path], CvReport], second_seed_cv: list[Path], tmp_path: Path
) -> None:
    data, runs, _ = small_cv
    report = student(data, tmp_path / "fold0", 0, [runs[0], second_seed_cv[0]])
    assert report.config["teachers"] == [str(runs[0]), str(second_seed_cv[0])]
    assert report.portable_config()["distill"] == 0.5 and "teachers" not in report.portable_config()
    assert report.valid_ids == RunReport.model_validate_json((runs[0] / "report.json").read_text()).valid_ids

    with pytest.raises(DataError, match="leak"):
        student(data, tmp_path / "fold1", 1, [runs[1], runs[0]])  # fold 0's network learnt from fold 1
    assert not (tmp_path / "fold1" / "checkpoint.pt").exists()
