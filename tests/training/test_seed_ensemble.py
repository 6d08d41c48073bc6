from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

from model.features import model_input
from training.artifacts import Checkpoint, CvReport, RunReport
from training.cv import out_of_fold
from training.data import load_arrays
from training.folds import artist_folds
from training.scoring import clip_logits
from training.seed_ensemble import SeedEnsembleReport, main, seed_ensemble


@pytest.fixture(scope="module")
def report(
    small_cv: tuple[Path, list[Path], CvReport],
    second_seed_cv: list[Path],
    distilled_cv: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> SeedEnsembleReport:
    data, runs, _ = small_cv
    out = tmp_path_factory.mktemp("seeds") / "seed_ensemble.json"
    cvs = ["--cv", str(runs[0].parent), "--cv", str(second_seed_cv[0].parent), "--versus", str(distilled_cv[0].parent)]
    main(["--data", str(data), *cvs, "--out", str(out)])
    return SeedEnsembleReport.model_validate_json(out.read_text())


def test_each_member_is_its_cross_validation_and_the_first_one_fused_is_the_shipped_figure(
    small_cv: tuple[Path, list[Path], CvReport], report: SeedEnsembleReport
) -> None:
    _, _, cv = small_cv
    assert list(report.members) == ["seed0", "seed1"] and report.n == cv.n == 90 and report.audio_n == 15
    first = report.members["seed0"]
    assert first.accuracy == pytest.approx(cv.network_accuracy, abs=1e-4)
    assert first.fused_accuracy == pytest.approx(cv.accuracy, abs=1e-4)
    sizes = np.bincount(list(artist_folds(small_cv[0], cv.folds).values()))
    assert np.dot(first.fold_accuracies, sizes) / sizes.sum() == pytest.approx(first.accuracy, abs=1e-3)
    assert first.interval_95[0] <= first.accuracy <= first.interval_95[1]


def test_the_ensemble_averages_the_probabilities_of_the_networks_that_did_not_learn_each_clip(
    small_cv: tuple[Path, list[Path], CvReport], second_seed_cv: list[Path], report: SeedEnsembleReport
) -> None:
    data, runs, cv = small_cv
    arrays = load_arrays(data)
    folds = artist_folds(data, cv.folds)
    right = []
    for fold, pair in enumerate(zip(runs, second_seed_cv, strict=True)):
        rows = [i for i, c in enumerate(arrays.ids) if folds[c] == fold]
        inputs = [model_input(arrays.grids[i]) for i in rows]
        probabilities = np.mean(
            [softmax(clip_logits(Checkpoint.load(run / "checkpoint.pt")[1], inputs), axis=1) for run in pair], axis=0
        )
        right.extend(probabilities.argmax(1) == np.array(arrays.labels)[rows])
    assert report.ensemble.accuracy == pytest.approx(np.mean(right), abs=1e-4)
    for name, member in report.members.items():
        lo, hi = report.ensemble.gain_95[name]
        assert lo <= report.ensemble.accuracy - member.accuracy <= hi
        lo, hi = report.ensemble.fused_gain_95[name]
        assert lo <= report.ensemble.fused_accuracy - member.fused_accuracy <= hi


def test_it_refuses_fewer_than_two_seeds_the_same_seeds_twice_or_two_folders_of_one_name(
    small_cv: tuple[Path, list[Path], CvReport], tmp_path: Path
) -> None:
    data, runs, _ = small_cv
    cv = runs[0].parent
    with pytest.raises(SystemExit, match="two or more"):
        seed_ensemble(data, [cv])
    copy = tmp_path / "copy"
    shutil.copytree(cv, copy)
    with pytest.raises(SystemExit, match="same seeds"):
        seed_ensemble(data, [cv, copy])
    for cvs, versus in [([cv, cv], []), ([cv, copy], [tmp_path / "ensemble"]), ([cv, copy], [tmp_path / "x" / "copy"])]:
        with pytest.raises(SystemExit, match="folder's name"):  # the report's keys would collide
            seed_ensemble(data, cvs, versus)


def test_another_recipe_on_the_same_folds_is_set_against_each_seed_and_the_ensemble_clip_by_clip(
    small_cv: tuple[Path, list[Path], CvReport], distilled_cv: list[Path], report: SeedEnsembleReport
) -> None:
    data, _, _ = small_cv
    assert list(report.versus) == ["distilled"]
    student = report.versus["distilled"]
    oof = out_of_fold(data, distilled_cv)
    assert student.accuracy == pytest.approx(np.mean(oof.logits.argmax(1) == oof.truth), abs=1e-4)
    assert set(student.gain_95) == set(student.fused_gain_95) == {"seed0", "seed1", "ensemble"}
    rivals = {**report.members, "ensemble": report.ensemble}
    for name, rival in rivals.items():
        lo, hi = student.gain_95[name]
        assert lo <= student.accuracy - rival.accuracy <= hi
        lo, hi = student.fused_gain_95[name]
        assert lo <= student.fused_accuracy - rival.fused_accuracy <= hi


def test_it_refuses_another_recipe_on_other_folds(
    small_cv: tuple[Path, list[Path], CvReport], second_seed_cv: list[Path], distilled_cv: list[Path], tmp_path: Path
) -> None:
    data, runs, _ = small_cv
    shuffled = tmp_path / "shuffled"
    shutil.copytree(distilled_cv[0].parent, shuffled)
    for a, b in [(0, 1), (1, 0)]:  # fold 0's clips said to be fold 1's, and the reverse
        path = shuffled / f"fold{a}" / "report.json"
        run = RunReport.model_validate_json(path.read_text())
        run.config["cv_fold"] = b
        path.write_text(run.model_dump_json())
    with pytest.raises(SystemExit, match="not on the seeds' folds"):
        seed_ensemble(data, [runs[0].parent, second_seed_cv[0].parent], [shuffled])
