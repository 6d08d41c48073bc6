"""Fixtures shared by the training tests: tiny cross-validations of a tiny recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import small_gtzan_subset, train_small_cv
from training.artifacts import CvReport
from training.cv import cross_validate


@pytest.fixture(scope="package")
def small_gtzan(tmp_path_factory: pytest.TempPathFactory, gtzan: Path) -> Path:
    return small_gtzan_subset(gtzan, tmp_path_factory.mktemp("small") / "gtzan")


@pytest.fixture(scope="package")
def small_cv(tmp_path_factory: pytest.TempPathFactory, small_gtzan: Path) -> tuple[Path, list[Path], CvReport]:
    """A cross-validation of the tiny recipe on small_gtzan, its runs in one folder."""
    runs = train_small_cv(small_gtzan, tmp_path_factory.mktemp("cv") / "seed0", first_seed=0)
    return small_gtzan, runs, cross_validate(small_gtzan, runs)
