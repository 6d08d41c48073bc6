"""Cross-validation: artist-disjoint folds, pooled out-of-fold figures, calibration, and export with them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from scipy.special import softmax

from model.card import card_path, load_card
from model.features import DEFAULT_SETTINGS, model_input
from model.runtime import DEFAULT_MODEL_PATH, GenreModel
from tests.helpers import SMALL_CV_FOLDS
from training.artifacts import Checkpoint, CvReport
from training.calibration import expected_calibration_error, fit_temperature, nll
from training.clip_summary import SummaryHead, fit_logistic, fit_summary_head, summary_views
from training.cv import bootstrap_interval, cross_validate, fold_recipe, out_of_fold
from training.data import load_arrays, load_audio_clips, read_labels
from training.degrade import DEGRADATIONS
from training.export import main as export_main
from training.folds import artist_folds, artist_groups
from training.network import NetworkConfig
from training.scoring import clip_logits
from training.train import TrainConfig, train

N_FOLDS = SMALL_CV_FOLDS


def test_folds_keep_each_artist_whole_and_are_near_equal(gtzan: Path) -> None:
    folds, groups = artist_folds(gtzan, 5), artist_groups(gtzan)
    assert set(folds) == {row["clip_id"] for row in read_labels(gtzan)}
    for artist in set(groups.values()):
        assert len({folds[c] for c, g in groups.items() if g == artist}) == 1, artist
    sizes = Counter(folds.values())
    assert set(sizes) == set(range(5)) and max(sizes.values()) < 1.3 * min(sizes.values())
    unknown = [c for c, g in groups.items() if g.startswith("unknown:")]
    assert len(unknown) == 44 and len({folds[c] for c in unknown}) > 1  # each its own group
    assert artist_folds(gtzan, 5) == folds  # deterministic


def test_temperature_undoes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    honest = 2.0 * rng.standard_normal((4000, 4))  # labels drawn from softmax(honest): calibrated by design
    truth = np.array([rng.choice(4, p=p) for p in softmax(honest, axis=1)])
    overconfident = 3.0 * honest
    t = fit_temperature(overconfident, truth)
    assert t == pytest.approx(3.0, rel=0.15)
    before = expected_calibration_error(softmax(overconfident, axis=1), truth)
    after = expected_calibration_error(softmax(overconfident / t, axis=1), truth)
    assert after < 0.03 < before and nll(overconfident, truth, t) < nll(overconfident, truth)


def test_the_bootstrap_interval_holds_the_accuracy_and_widens_when_artists_are_right_or_wrong_together() -> None:
    correct = np.repeat(np.random.default_rng(1).random(10) < 0.7, 60)  # ten artists of 60 clips
    many = bootstrap_interval(correct, [str(i) for i in range(600)])  # as if each clip stood alone
    few = bootstrap_interval(correct, [str(i // 60) for i in range(600)])
    assert many[0] < correct.mean() < many[1] and few[0] < correct.mean() < few[1]
    assert few[1] - few[0] > 3 * (many[1] - many[0])


def test_out_of_fold_figures_pool_every_clip_once(small_cv: tuple[Path, list[Path], CvReport]) -> None:
    data, runs, report = small_cv
    arrays = load_arrays(data)
    assert report.n == len(arrays) == 180 and report.folds == N_FOLDS
    # The pooled accuracies are the folds' out-of-fold predictions, recomputed here from the checkpoints
    # and each fold's summary head, fitted on the other folds' arrays and audio clips with the fold's C.
    folds = artist_folds(data, N_FOLDS)
    head = report.summary_head
    assert head is not None and len(head.c_per_fold) == len(head.weight_per_fold) == N_FOLDS
    audio = load_audio_clips(data)
    views = summary_views(arrays.grids + audio.grids, DEFAULT_SETTINGS)  # each clip and a band-limited copy
    # In the CV's row order (the folds' clips, then the audio clips): a float32 fit moves a little with it.
    order = np.concatenate([out_of_fold(data, runs).rows, len(arrays) + np.arange(len(audio))])
    views = views[order]
    view_labels = np.array(arrays.labels + audio.labels)[order]
    view_folds = np.array([folds[c] for c in arrays.ids + audio.ids])[order]
    network_correct = fused_correct = 0
    for fold, run in enumerate(runs):
        _, net = Checkpoint.load(run / "checkpoint.pt")
        rows = [i for i, c in enumerate(arrays.ids) if folds[c] == fold]
        inputs = [model_input(arrays.grids[i]) for i in rows]
        logits = clip_logits(net, inputs)
        rest = view_folds != fold
        fold_head = SummaryHead(fit_logistic(views[rest], view_labels[rest], head.c_per_fold[fold]), 10)
        with torch.no_grad():
            head_log_p = fold_head(torch.from_numpy(np.stack(inputs))).numpy()
        fused = np.log(softmax(logits, axis=1)) + head.weight_per_fold[fold] * head_log_p
        network_correct += int((logits.argmax(1) == np.array(arrays.labels)[rows]).sum())
        fused_correct += int((fused.argmax(1) == np.array(arrays.labels)[rows]).sum())
        assert report.fold_accuracies[fold] == pytest.approx(correct_in(fused, arrays, rows), abs=1e-4)
    assert report.network_accuracy == pytest.approx(network_correct / len(arrays), abs=1e-4)
    assert report.accuracy == pytest.approx(fused_correct / len(arrays), abs=1e-4)
    assert report.interval_95[0] <= report.accuracy <= report.interval_95[1]
    assert set(report.band_limited_accuracy) == {"network", "fused"}
    assert set(report.baselines) == {"majority", "logistic_band_stats"}
    assert all(b.n == 180 for b in report.baselines.values())
    assert report.audio.audio_n == 6 and set(report.audio.robustness) == {"clean", *DEGRADATIONS}
    assert report.calibration.temperature > 0 and report.calibration.bins == 15
    assert "cv_fold" not in report.config and "data" not in report.config


def correct_in(logits: np.ndarray, arrays: object, rows: list[int]) -> float:
    labels = np.array(arrays.labels)[rows]  # type: ignore[attr-defined]
    return float((logits.argmax(1) == labels).mean())


def test_cv_refuses_runs_that_do_not_make_up_the_folds(small_cv: tuple[Path, list[Path], CvReport]) -> None:
    data, runs, _ = small_cv
    with pytest.raises(SystemExit, match="one run per fold"):
        cross_validate(data, runs[:2])


def test_each_fold_may_have_its_own_soft_teacher_but_not_some_folds_none() -> None:
    def report(fold: int, teacher: str | None) -> dict[str, Any]:
        config = TrainConfig(cv_fold=fold, seed=fold, soft_targets_from=None if teacher is None else Path(teacher))
        return config.to_dict()

    taught = [fold_recipe(report(k, f"runs/teachers/fold{k}/checkpoint.pt")) for k in range(3)]
    assert taught[0] == taught[1] == taught[2]
    assert fold_recipe(report(0, None)) != taught[0]
    assert fold_recipe(report(0, None)) == fold_recipe(report(1, None))


def test_export_with_cv_ships_calibrated_probabilities(
    small_cv: tuple[Path, list[Path], CvReport], tmp_path: Path
) -> None:
    """An all-clips run exported with the CV report: the card carries the CV figures, the baselines of the
    same folds and the calibration; the ONNX file's probabilities are softmax((log p_network + w log p_head) / T)."""
    data, _, report = small_cv
    run = tmp_path / "final"
    train(
        TrainConfig(
            data=data, out=run, epochs=2, network=NetworkConfig(hidden=24, frame_dim=48), all_clips=True, threads=1
        )
    )
    cv_path = tmp_path / "cv.json"
    cv_path.write_text(report.model_dump_json())
    onnx = tmp_path / "m.onnx"
    flags = ["--cv", str(cv_path), "--version", "2.0.0", "--speed-reference", str(DEFAULT_MODEL_PATH)]
    export_main(["--run", str(run), "--out", str(onnx), *flags])
    card = load_card(card_path(onnx))
    assert card.calibration == report.calibration and card.summary_head == report.summary_head
    assert card.metrics["cv"]["accuracy"] == report.accuracy and "valid" not in card.metrics
    assert card.metrics["training_clips"]["n"] == 180
    assert card.baselines["logistic_band_stats"]["n"] == 180
    [member] = card.members
    assert member.valid_accuracy is None
    speed = card.metrics["speed"]  # this tiny network against the shipped model, timed in one run
    assert speed["reference"].startswith("genre-birnn-attention") and speed["reference_over_this"] > 1

    # The file's probabilities: the network's log p plus w times the head's (fitted on every array and
    # audio clip), over T.
    _, net = Checkpoint.load(run / "checkpoint.pt")
    arrays = load_arrays(data)
    assert report.summary_head is not None
    audio = load_audio_clips(data)
    grids, labels = arrays.grids + audio.grids, np.array(arrays.labels + audio.labels)
    head = fit_summary_head(grids, labels, report.summary_head.c, 10, DEFAULT_SETTINGS)
    x = np.stack([model_input(g) for g in arrays.grids[:4]])
    with torch.no_grad():
        head_log_p = head(torch.from_numpy(x)).numpy()
    fused = np.log(softmax(clip_logits(net, list(x)), axis=1)) + report.summary_head.weight * head_log_p
    expected = softmax(fused / report.calibration.temperature, axis=1)
    got = GenreModel(onnx, providers="cpu").predict(x).probabilities
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert ort.InferenceSession(str(onnx)).get_outputs()[0].shape[-1] == 10
