"""Fixtures shared by the training tests: tiny cross-validations of a tiny recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SMALL_CV_FOLDS, write_subset
from training.artifacts import CvReport
from training.cv import cross_validate
from training.data import read_labels
from training.network import NetworkConfig
from training.train import TrainConfig, train


def train_small_cv(data: Path, out: Path, first_seed: int) -> list[Path]:
    """A SMALL_CV_FOLDS-fold cross-validation of a tiny recipe: fold k's run in out/fold{k}, seed first_seed + k."""
    small = NetworkConfig(hidden=24, frame_dim=48)
    runs = []
    for fold in range(SMALL_CV_FOLDS):
        run = out / f"fold{fold}"
        train(
            TrainConfig(
                data=data,
                out=run,
                epochs=2,
                threads=1,  # the tests run on two workers of two cores
                network=small,
                cv_fold=fold,
                cv_folds=SMALL_CV_FOLDS,
                seed=first_seed + fold,
            )
        )
        runs.append(run)
    return runs


@pytest.fixture(scope="package")
def small_gtzan(tmp_path_factory: pytest.TempPathFactory, gtzan: Path) -> Path:
    """A GTZAN-layout folder of 180 clips of both splits (49 of them valid), 6 with audio: what the
    training tests learn from, in seconds rather than minutes."""
    rows = read_labels(gtzan)
    has_audio = {r["clip_id"] for r in rows if any((gtzan / "audio").glob(f"*/{r['clip_id']}.*"))}
    ids = sorted(has_audio)[::15][:6] + [r["clip_id"] for r in rows if r["clip_id"] not in has_audio][::3][:174]
    data = tmp_path_factory.mktemp("small") / "gtzan"
    write_subset(gtzan, data, ids, with_audio=True)
    return data


@pytest.fixture(scope="package")
def small_cv(tmp_path_factory: pytest.TempPathFactory, small_gtzan: Path) -> tuple[Path, list[Path], CvReport]:
    """A cross-validation of the tiny recipe on small_gtzan, its runs in one folder."""
    runs = train_small_cv(small_gtzan, tmp_path_factory.mktemp("cv") / "seed0", first_seed=0)
    return small_gtzan, runs, cross_validate(small_gtzan, runs)
