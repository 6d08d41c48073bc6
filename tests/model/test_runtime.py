"""The ONNX runtime wrapper with the shipped model (no torch needed)."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest

from bench.common import REFERENCE_MODEL
from model.card import IncompatibleModelError, card_path, load_card
from model.features import SAMPLE_RATE, FrontEndSettings, model_input, to_mono
from model.runtime import CPU, CUDA, DEFAULT_MODEL_PATH, GenreModel, choose_providers
from model.windows import coverage_weights
from tests.audio import music_like
from tests.helpers import ROOT, analyse, copy_model
from training.artifacts import CvReport
from training.data import gtzan_labels
from training.evaluate import evaluate

CV_REPORT = ROOT / "training" / "inputs" / "cv.json"


def test_provider_choice_falls_back_to_cpu() -> None:
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("cpu", [CUDA, CPU]) == [CPU]
    with pytest.raises(RuntimeError, match="CUDA"):
        choose_providers("cuda", [CPU])


def test_auto_on_this_machine_runs_on_a_real_provider() -> None:
    model = GenreModel(providers="auto")
    assert model.provider in (CUDA, CPU)


def test_shipped_card_matches_this_front_end_and_model_file(gtzan: Path) -> None:
    card = load_card(card_path(DEFAULT_MODEL_PATH))
    card.check_compatible()
    assert card.labels == gtzan_labels(gtzan) and len(card.labels) == 10
    cv = card.metrics["cv"]  # model 2.x: the recipe's out-of-fold figures, the baselines on the same folds
    assert cv["interval_95"][0] < cv["accuracy"] < cv["interval_95"][1]
    assert cv["accuracy"] > card.baselines["logistic_band_stats"]["accuracy"] > card.baselines["majority"]["accuracy"]
    report = CvReport.model_validate_json(CV_REPORT.read_text())
    assert card.calibration == report.calibration
    assert report.summary_head is not None and card.summary_head == report.summary_head
    assert cv["accuracy"] > cv["network_accuracy"]  # the summary head earns its place
    assert card.metrics["speed"]["reference"] == "genre-birnn-attention 1.2.0"
    assert len(card.members) == 1 and card.members[0].network
    text = card_path(DEFAULT_MODEL_PATH).read_text()
    assert "/tmp/" not in text and "/work/" not in text and "/home/" not in text  # no machine paths


def test_model_1_2_0_still_gives_the_outputs_it_gave_when_shipped() -> None:
    """Model 1.2.0 (the speed reference file), whose card predates the floor and log-band statistics: its card
    rebuilds the front end it was trained with, so it still answers as it did when shipped (recorded
    then, on a 25 s stereo 44.1 kHz clip: one window, through resampling, front end and ONNX)."""
    old = GenreModel(REFERENCE_MODEL, providers="cpu", intra_op_threads=1)
    assert old.card.version == "1.2.0" and old.front_end == FrontEndSettings()  # the original front end
    analysis = analyse(old, to_mono(music_like(25.0, 44100, seed=3, channels=2), 44100))
    expected = [0.135292, 0.006695, 0.016897, 0.004155, 0.000805, 0.029961, 0.003847, 0.015993, 0.757188, 0.029166]
    np.testing.assert_allclose(analysis.probabilities, expected, atol=2e-5)
    [window] = analysis.windows
    np.testing.assert_allclose(window.attention[[0, 100, 200]], [0.000652028, 0.000254458, 0.000348645], rtol=1e-3)


def test_the_shipped_model_gives_the_outputs_it_gave_when_shipped(model: GenreModel) -> None:
    """Recorded with model 2.1.3 when it shipped (2.2.0 added the detector and left the genres bit for
    bit): a 25 s stereo 44.1 kHz clip (one window), through resampling, today's front end and ONNX. A
    change to any of them that moves the answer fails here."""
    assert model.card.version == importlib.metadata.version("genre-service")  # one version
    analysis = analyse(model, to_mono(music_like(25.0, 44100, seed=3, channels=2), 44100))
    expected = [0.162431, 0.000152, 0.002220, 0.686261, 0.000138, 0.023850, 0.000832, 0.024887, 0.097312, 0.001916]
    np.testing.assert_allclose(analysis.probabilities, expected, atol=2e-5)
    [window] = analysis.windows
    np.testing.assert_allclose(window.attention[[0, 100, 200]], [1.904733e-07, 7.617947e-05, 1.053455e-04], rtol=1e-3)
    # Recorded with 2.4.0 (its detector; 2.2.0 gave 1.35e-4): noise bursts over a chord are not music.
    assert window.music_probability == pytest.approx(1.837611e-04, rel=1e-2) and analysis.is_music is False
    # Recorded with 2.3.0: the track's embedding (the fused vector, at unit length).
    assert analysis.embedding is not None
    np.testing.assert_allclose(
        analysis.embedding[[0, 50, 100, 191]], [0.009589, 0.104237, 0.071474, 0.057180], atol=2e-5
    )


def test_rescoring_the_shipped_model_matches_its_card(model: GenreModel, gtzan: Path) -> None:
    """The card's figures on every labelled clip (the ones model 2.x learnt from), measured again now
    on the shared data through today's code."""
    in_card = model.card.metrics["training_clips"]
    again = evaluate(gtzan, DEFAULT_MODEL_PATH)
    for key in ("n", "accuracy", "per_genre", "audio_n", "audio_accuracy", "audio_agreement", "robustness"):
        assert again[key] == in_card[key], key


def edit_card(path: Path, **changes: object) -> None:
    card = json.loads(card_path(path).read_text())
    card["feature_settings"].update(changes)
    card_path(path).write_text(json.dumps(card))


def test_the_front_end_is_rebuilt_from_the_card(tmp_path: Path, model: GenreModel) -> None:
    """A setting saved in the card is the one used, not the code's default."""
    path = copy_model(tmp_path)
    edit_card(path, std_floor=1e3)  # larger than any window's std: inputs shrink, outputs change
    rebuilt = GenreModel(path, providers="cpu")
    assert rebuilt.front_end.std_floor == 1e3
    grid = np.random.default_rng(0).normal(-40, 12, (344, 256)).astype(np.float32)
    assert not np.allclose(model_input(grid, rebuilt.front_end), model_input(grid, model.front_end))
    wave = music_like(5.0, SAMPLE_RATE)
    assert not np.allclose(analyse(rebuilt, wave).probabilities, analyse(model, wave).probabilities, atol=1e-3)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"version": 99}, "front-end version 99"),
        ({"deltas": False}, "makes 64"),  # the ONNX file wants 128 features
        ({"log_band_edges": [0, 10, 5, 256]}, "log_band_edges"),
        ({"hop_length": "long"}, "hop_length"),
        ({"mystery": 1}, "mystery"),
    ],
)
def test_a_card_this_code_cannot_serve_is_refused(tmp_path: Path, changes: dict[str, object], reason: str) -> None:
    path = copy_model(tmp_path)
    edit_card(path, **changes)
    with pytest.raises(IncompatibleModelError, match=reason):
        GenreModel(path, providers="cpu")


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (["rock"], "at least two distinct"),
        (["rock", "rock", "jazz"], "at least two distinct"),
        (["rock", " "], "at least two distinct"),
        (["a", "b", "c"], "10 outputs, its card 3 labels"),
    ],
)
def test_a_card_whose_labels_cannot_name_the_outputs_is_refused(tmp_path: Path, labels: list[str], reason: str) -> None:
    path = copy_model(tmp_path)
    card = json.loads(card_path(path).read_text())
    card_path(path).write_text(json.dumps({**card, "labels": labels}))
    with pytest.raises(IncompatibleModelError, match=reason):
        GenreModel(path, providers="cpu")


def test_a_model_file_that_does_not_match_its_card_is_refused(tmp_path: Path) -> None:
    path = copy_model(tmp_path)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(IncompatibleModelError, match="sha256"):
        GenreModel(path, providers="cpu")


@pytest.mark.parametrize(("seconds", "n_windows"), [(1.0, 1), (30.0, 1), (60.0, 3), (75.0, 5)])
def test_analyse_windows_and_aggregates(model: GenreModel, seconds: float, n_windows: int) -> None:
    analysis = analyse(model, music_like(seconds, SAMPLE_RATE), hop_s=15.0)
    assert len(analysis.windows) == n_windows
    np.testing.assert_allclose(analysis.probabilities.sum(), 1.0, rtol=1e-5)
    probs = np.stack([w.probabilities for w in analysis.windows])
    weights = coverage_weights([w.window for w in analysis.windows])
    np.testing.assert_allclose(analysis.probabilities, weights @ probs, rtol=1e-6)
    for w in analysis.windows:
        np.testing.assert_allclose(w.attention.sum(), 1.0, rtol=1e-4)
        assert w.window.n_frames == w.attention.shape[0]
        assert 0 <= w.window.start_s < w.window.end_s <= seconds + 1e-6


@pytest.mark.parametrize(("part", "message"), [("music_detector", "music detector"), ("embedding", "embedding output")])
def test_a_card_and_a_file_that_disagree_on_an_output_are_refused(tmp_path: Path, part: str, message: str) -> None:
    path = copy_model(tmp_path)
    card = json.loads(card_path(path).read_text())
    card_path(path).write_text(json.dumps({**card, part: None}))
    with pytest.raises(IncompatibleModelError, match=message):
        GenreModel(path, providers="cpu")


def test_the_shipped_model_gives_an_embedding_per_window_and_an_older_one_none(model: GenreModel) -> None:
    assert model.has_embedding and model.card.embedding is not None
    outputs = model.predict(np.random.default_rng(0).standard_normal((3, 344, model.front_end.n_features)))
    assert outputs.embedding is not None and outputs.embedding.shape == (3, model.card.embedding.dimension)
    analysis = analyse(model, music_like(45.0, SAMPLE_RATE))
    assert analysis.embedding is not None and np.linalg.norm(analysis.embedding) == pytest.approx(1.0, abs=1e-5)
    older = GenreModel(REFERENCE_MODEL, providers="cpu")  # model 1.2.0: genres only, as before
    assert not older.has_embedding and older.predict(np.zeros((1, 344, older.front_end.n_features))).embedding is None


def test_the_music_threshold_is_the_cards_unless_set(model: GenreModel) -> None:
    card = model.card
    assert card.music_detector is not None and card.music_threshold() == card.music_detector.threshold
    assert card.music_threshold(0.3) == 0.3
    with pytest.raises(ValueError, match="between 0 and 1"):
        card.music_threshold(1.5)
    with pytest.raises(ValueError, match="has no music detector"):
        load_card(card_path(REFERENCE_MODEL)).music_threshold(0.5)
    assert load_card(card_path(REFERENCE_MODEL)).music_threshold() is None
