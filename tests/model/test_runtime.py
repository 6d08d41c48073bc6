"""The ONNX runtime wrapper with the shipped model (no torch needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model.card import IncompatibleModelError, card_path, load_card
from model.features import CLIP_FRAMES, SAMPLE_RATE
from model.labels import GENRES
from model.runtime import CPU, CUDA, DEFAULT_MODEL_PATH, GenreModel, choose_providers
from tests.audio import music_like


def test_provider_choice_falls_back_to_cpu() -> None:
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert choose_providers("cpu", [CUDA, CPU]) == [CPU]
    with pytest.raises(RuntimeError, match="CUDA"):
        choose_providers("cuda", [CPU])


def test_auto_on_this_machine_runs_on_a_real_provider() -> None:
    model = GenreModel(providers="auto")
    assert model.provider in (CUDA, CPU)


def test_shipped_card_matches_this_front_end_and_model_file() -> None:
    card = load_card(card_path(DEFAULT_MODEL_PATH))
    card.check_compatible()
    assert card.labels == list(GENRES)
    assert card.metrics["valid"]["accuracy"] > card.baselines["logistic_band_stats"]["accuracy"]


def copy_model(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    shutil.copy(DEFAULT_MODEL_PATH, path)
    shutil.copy(card_path(DEFAULT_MODEL_PATH), card_path(path))
    return path


def test_a_card_with_other_feature_settings_is_refused(tmp_path: Path) -> None:
    path = copy_model(tmp_path)
    card = json.loads(card_path(path).read_text())
    card["feature_settings"]["hop_length"] = 512
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(IncompatibleModelError, match="feature settings"):
        GenreModel(path, providers="cpu")


def test_a_model_file_that_does_not_match_its_card_is_refused(tmp_path: Path) -> None:
    path = copy_model(tmp_path)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(RuntimeError, match="sha256"):
        GenreModel(path, providers="cpu")


@pytest.mark.parametrize(("seconds", "n_windows"), [(1.0, 1), (30.0, 1), (60.0, 3), (75.0, 5)])
def test_analyse_windows_and_aggregates(seconds: float, n_windows: int) -> None:
    model = GenreModel(providers="cpu")
    analysis = model.analyse(music_like(seconds, SAMPLE_RATE), hop_seconds=15.0)
    assert len(analysis.windows) == n_windows
    np.testing.assert_allclose(analysis.probabilities.sum(), 1.0, rtol=1e-5)
    probs = np.stack([w.probabilities for w in analysis.windows])
    np.testing.assert_allclose(analysis.probabilities, probs.mean(0), rtol=1e-6)
    for w in analysis.windows:
        np.testing.assert_allclose(w.attention.sum(), 1.0, rtol=1e-4)
        assert w.n_frames == min(CLIP_FRAMES, w.attention.shape[0])
        assert 0 <= w.start_s < w.end_s <= seconds + 1e-6
