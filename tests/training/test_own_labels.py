"""A user's own genres: a plain `<label>/<audio files>` folder through training, export, evaluation
and the real service, which answers with those labels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from bench.server import running_server
from model.card import card_path, load_card
from tests.audio import SYNTHETIC_GENRES, encode, synthetic_genre
from tests.helpers import ROOT, write_label_folder
from training.artifacts import Checkpoint, RunReport
from training.data import DataError, Split, scan_label_folder, stratified_holdout
from training.train import main as train_main

LABELS = sorted(SYNTHETIC_GENRES)
PER_LABEL = 8
SMALL = ["--epochs", "10", "--patience", "10", "--network.hidden", "24", "--network.frame-dim", "48", "--threads", "1"]


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=True)


@pytest.fixture(scope="module")
def own_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, str]:
    """(data folder, run folder, exported ONNX path, the training command's stdout)."""
    tmp = tmp_path_factory.mktemp("own")
    data = write_label_folder(tmp / "music", PER_LABEL)
    (data / "drone" / "broken.mp3").write_bytes(b"ID3" + bytes(500))  # unreadable: skipped, reported
    (data / "beat" / "blip.wav").write_bytes(encode(synthetic_genre("beat", 1.0, 22050, 9), 22050))  # too short
    run = tmp / "run"
    trained = run_module("training.train", "--data", str(data), "--out", str(run), *SMALL)
    onnx = tmp / "own.onnx"
    run_module("training.export", "--run", str(run), "--out", str(onnx), "--name", "my-genres", "--version", "0.1.0")
    return data, run, onnx, trained.stdout


def test_training_learns_the_folders_labels_and_reports_the_skipped_files(
    own_model: tuple[Path, Path, Path, str],
) -> None:
    _, run, _, stdout = own_model
    report = RunReport.model_validate_json((run / "report.json").read_text())
    checkpoint, net = Checkpoint.load(run / "checkpoint.pt")
    assert report.labels == checkpoint.labels == LABELS and net.config.n_classes == 3
    assert len(report.skipped) == 2 and "broken.mp3" in stdout and "blip.wav" in stdout
    assert any("drone/broken.mp3" in s for s in report.skipped) and any("beat/blip.wav" in s for s in report.skipped)
    # The stratified holdout: 20 % of each label's 8 readable files, at least one, nested files included.
    assert len(report.valid_ids) == 3 * 2 and report.train_clips == 3 * (PER_LABEL - 2)
    assert {i.split("/")[0] for i in report.valid_ids} == set(LABELS)
    assert report.valid_accuracy is not None and report.valid is not None
    assert report.valid_accuracy >= 2 / 3, "three very different sounds should be told apart"
    assert set(report.valid.per_genre) == set(LABELS) == set(report.baselines["majority"].per_genre)


def test_export_writes_the_labels_into_the_card(own_model: tuple[Path, Path, Path, str]) -> None:
    data, run, onnx, _ = own_model
    card = load_card(card_path(onnx))
    assert (card.name, card.version, card.labels) == ("my-genres", "0.1.0", LABELS)
    assert card.metrics["valid"]["n"] == 6 and card.metrics["valid"]["audio_n"] == 6
    assert str(data) not in card_path(onnx).read_text() and str(run) not in card_path(onnx).read_text()


def test_evaluate_scores_a_plain_folder(own_model: tuple[Path, Path, Path, str]) -> None:
    data, _, onnx, _ = own_model
    result = run_module("training.evaluate", "--data", str(data), "--model", str(onnx))
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    # Every file the service could classify is scored, the 1 s one too; the undecodable one is not.
    assert metrics["n"] == metrics["audio_n"] == 3 * PER_LABEL + 1
    assert set(metrics["per_genre"]) == set(LABELS) and metrics["accuracy"] >= 2 / 3
    assert [s.split(":")[0] for s in metrics["skipped"]] == ["drone/broken.mp3"]


def test_the_service_answers_with_the_cards_labels(own_model: tuple[Path, Path, Path, str]) -> None:
    _, _, onnx, _ = own_model
    with running_server({"model_path": str(onnx)}) as (url, _):
        health = httpx.get(f"{url}/health").json()
        assert health["model"]["labels"] == LABELS and health["model"]["version"] == "0.1.0"
        clip = encode(synthetic_genre("chime", 12.0, 44100, seed=7), 44100)
        response = httpx.post(f"{url}/classify", files={"file": ("c.wav", clip)}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert sorted(g["genre"] for g in body["genres"]) == LABELS
        assert body["top_genre"] == "chime"
        too_many = httpx.post(f"{url}/classify", params={"top_k": 4}, files={"file": ("c.wav", clip)}, timeout=60)
        assert too_many.status_code == 422 and "at most 3" in too_many.json()["detail"]
        two = httpx.post(f"{url}/classify", params={"top_k": 2}, files={"file": ("c.wav", clip)}, timeout=60)
        assert len(two.json()["genres"]) == 2
        text = httpx.get(f"{url}/metrics").text
        series = {label: f'genre_predictions_total{{label="{label}"}}' for label in LABELS}
        assert all(s in text for s in series.values()), text
        assert f"{series['chime']} 2.0" in text and f"{series['drone']} 0.0" in text


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({}, "0 label folder(s)"),
        ({"rock": 3}, "1 label folder(s) (rock)"),
        ({"rock": 3, "jazz": 0}, "no audio files"),
        ({"rock": 3, "jazz": 1}, "'jazz' has 1"),
    ],
)
def test_a_bad_folder_gets_a_clear_error(tmp_path: Path, layout: dict[str, int], message: str) -> None:
    data = tmp_path / "music"
    data.mkdir()
    for label, n in layout.items():
        (data / label).mkdir()
        for k in range(n):
            (data / label / f"{k}.wav").write_bytes(encode(synthetic_genre("drone", 4.0, 22050, k), 22050))
    with pytest.raises(SystemExit) as exit_:
        train_main(["--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1"])
    assert str(exit_.value).startswith("error: ") and message in str(exit_.value)
    assert not (tmp_path / "run").exists()


def test_a_missing_folder_is_named() -> None:
    with pytest.raises(DataError, match="is not a folder"):
        scan_label_folder(Path("/nonexistent/music"))


def test_the_holdout_is_stratified_and_keeps_every_label_learnable() -> None:
    split = Split()
    for label, n in ((0, 10), (1, 2), (2, 5)):
        for k in range(n):
            split.add(f"{label}/{k}", np.zeros((1, 1)), label)
    train, holdout = stratified_holdout(split, ["a", "b", "c"], 0.2, np.random.default_rng(0))
    assert sorted(holdout.labels) == [0, 0, 1, 2]
    assert sorted(train.labels) == [0] * 8 + [1] + [2] * 4
    assert not set(train.ids) & set(holdout.ids)
