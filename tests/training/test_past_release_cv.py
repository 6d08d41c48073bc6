from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from training.artifacts import CvReport
from training.folds import artist_folds
from training.past_release_cv import KEEP_BEST, KEEP_LAST, N_FOLDS, PastReleaseCv, checkout, fold_folder, main

RELEASE_1_2_0 = "4c1052a"  # "Ship model 1.2.0"


def test_the_old_loop_keeps_its_last_epoch(tmp_path: Path) -> None:
    loop = (checkout(RELEASE_1_2_0, tmp_path / "code") / "training" / "train.py").read_text()
    assert KEEP_LAST in loop and KEEP_BEST not in loop
    assert (tmp_path / "code" / "model" / "genre_birnn.onnx").is_file()


def test_a_loop_it_cannot_change_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="does not save the way"):
        checkout("HEAD", tmp_path / "code")  # today's loop keeps its best epoch another way


def test_another_release_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    checkout(RELEASE_1_2_0, tmp_path / "code")
    with pytest.raises(SystemExit, match="use another --work"):
        checkout("HEAD", tmp_path / "code")


def test_a_fold_folder_holds_out_that_fold_and_learns_from_the_rest(gtzan: Path, tmp_path: Path) -> None:
    fold_of = artist_folds(gtzan, N_FOLDS)
    folder = fold_folder(gtzan, fold_of, 3, tmp_path / "fold3")
    with open(folder / "labels.csv", newline="") as f:
        split = {row["clip_id"]: row["split"] for row in csv.DictReader(f)}
    assert split == {clip_id: "valid" if fold == 3 else "train" for clip_id, fold in fold_of.items()}
    assert (folder / "spectrograms.npz").samefile(gtzan / "spectrograms.npz")
    assert (folder / "audio").samefile(gtzan / "audio")


def cross_validate_1_2_0(data: Path, work: Path, out: Path, seeds: tuple[int, ...] = (0, 3)) -> None:
    """1.2.0's recipe on DATA, two epochs a run, with SEEDS."""
    command = ["--data", str(data), "--commit", RELEASE_1_2_0, "--version", "1.2.0"]
    command += [arg for seed in seeds for arg in ("--seed", str(seed))]
    main([*command, "--work", str(work), "--out", str(out), "--epochs", "2"])


@pytest.fixture(scope="module")
def past_cv(small_cv: tuple[Path, list[Path], CvReport], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.2.0's recipe cross-validated on small_cv's 90 clips."""
    work = tmp_path_factory.mktemp("past")
    cross_validate_1_2_0(small_cv[0], work, work / "report.json")
    return work


def test_the_release_is_scored_out_of_fold(small_cv: tuple[Path, list[Path], CvReport], past_cv: Path) -> None:
    _, _, cv = small_cv
    report = PastReleaseCv.model_validate_json((past_cv / "report.json").read_text())
    assert report.n == cv.n == 90 and report.audio_n == 15 and report.seeds == [0, 3]
    assert report.labels == cv.labels
    fold_sizes = []
    for k in range(N_FOLDS):
        card = json.loads((past_cv / f"fold{k}" / "seeds0-3.json").read_text())
        assert [(run["config"]["seed"], run["best_epoch"]) for run in card["training"]] == [(0, 1), (3, 1)]
        # The release's own evaluation (batches of 32) and this harness's scoring (one clip at a time)
        # of the same file agree on the fold.
        assert report.fold_accuracies[k] == pytest.approx(card["metrics"]["valid"]["accuracy"], abs=1e-4)
        fold_sizes.append(card["metrics"]["valid"]["n"])
        for seed in (0, 3):
            run = past_cv / f"fold{k}" / f"seed{seed}"
            assert torch.load(run / "checkpoint.pt")["epoch"] == 1  # the last of two
    assert sum(fold_sizes) == report.n
    pooled = sum(a * n for a, n in zip(report.fold_accuracies, fold_sizes, strict=True)) / report.n
    assert report.accuracy == pytest.approx(pooled, abs=1e-3)
    assert report.interval_95[0] <= report.accuracy <= report.interval_95[1]


def test_finished_runs_are_kept(small_cv: tuple[Path, list[Path], CvReport], past_cv: Path) -> None:
    checkpoint = past_cv / "fold0" / "seed0" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    cross_validate_1_2_0(small_cv[0], past_cv, past_cv / "again.json")
    assert checkpoint.stat().st_mtime_ns == before
    assert (past_cv / "again.json").read_text() == (past_cv / "report.json").read_text()


def test_another_set_of_seeds_reuses_the_runs_and_exports_beside(
    small_cv: tuple[Path, list[Path], CvReport], past_cv: Path
) -> None:
    """As `make cv-1.2.0` grew from two seeds to four: each seed's runs are its own, whatever set
    they are exported in, and every set gets its own ensemble file."""
    first = PastReleaseCv.model_validate_json((past_cv / "report.json").read_text())
    checkpoints = sorted(past_cv.glob("fold*/seed*/checkpoint.pt"))
    before = [checkpoint.stat().st_mtime_ns for checkpoint in checkpoints]
    cross_validate_1_2_0(small_cv[0], past_cv, past_cv / "seed3.json", seeds=(3,))
    assert sorted(past_cv.glob("fold*/seed*/checkpoint.pt")) == checkpoints  # nothing trained,
    assert [checkpoint.stat().st_mtime_ns for checkpoint in checkpoints] == before  # nothing retrained
    for k in range(N_FOLDS):
        assert (past_cv / f"fold{k}" / "seeds0-3.onnx").is_file()
        card = json.loads((past_cv / f"fold{k}" / "seeds3.json").read_text())
        assert [run["config"]["seed"] for run in card["training"]] == [3]
    alone = PastReleaseCv.model_validate_json((past_cv / "seed3.json").read_text())
    assert alone.seeds == [3] and alone.seed_accuracies == first.seed_accuracies[1:]
    # Its one network through ONNX scores what its runs scored through torch, but for a close call.
    assert alone.accuracy == pytest.approx(alone.seed_accuracies[0], abs=1.5 / alone.n)
