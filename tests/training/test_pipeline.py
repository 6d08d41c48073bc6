"""Train a small model from scratch on the shared data, export it and evaluate it by the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.card import card_path, load_card
from model.features import DEFAULT_SETTINGS
from tests.helpers import ROOT, write_subset
from training.artifacts import EXPORT_PACKAGES, WEIGHT_PACKAGES, Checkpoint, RunReport, package_versions
from training.augment import AugmentConfig
from training.degrade import DEGRADATIONS
from training.export import main as export_main
from training.network import NetworkConfig
from training.train import TrainConfig, parse_args, train


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, small_gtzan: Path) -> tuple[Path, RunReport]:
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        data=small_gtzan, out=out, epochs=8, patience=8, network=NetworkConfig(hidden=48), seed=0, threads=1
    )
    return out, train(cfg)


def test_small_model_beats_the_majority_baseline_clearly(small_run: tuple[Path, RunReport]) -> None:
    out, report = small_run
    majority = report.baselines["majority"].accuracy
    assert majority is not None and report.valid_accuracy is not None and report.valid is not None
    assert report.valid_accuracy >= majority + 0.2
    assert (out / "confusion.png").stat().st_size > 10_000
    saved = RunReport.model_validate_json((out / "report.json").read_text())
    assert saved == report
    assert saved.valid is not None
    assert set(saved.valid.per_genre) == set(saved.baselines["logistic_band_stats"].per_genre)
    assert saved.network.hidden == 48 and saved.seed == 0


def test_the_checkpoint_keeps_its_config_and_front_end(small_run: tuple[Path, RunReport]) -> None:
    out, report = small_run
    checkpoint, net = Checkpoint.load(out / "checkpoint.pt")
    assert checkpoint.network == report.network == net.config
    assert checkpoint.front_end == DEFAULT_SETTINGS
    assert checkpoint.epoch == report.best_epoch and checkpoint.config["seed"] == 0


def test_export_and_evaluation_cli(
    small_run: tuple[Path, RunReport], small_gtzan: Path, gtzan: Path, tmp_path: Path
) -> None:
    out, _ = small_run
    onnx = tmp_path / "small.onnx"
    export_main(["--run", str(out), "--out", str(onnx), "--data", str(small_gtzan)])
    card = load_card(card_path(onnx))
    assert card.metrics["valid"]["n"] == 49 and card.data_sha256  # small_gtzan's valid clips
    [member] = card.members
    assert member.network["hidden"] == 48 and member.seed == 0
    assert member.packages == package_versions(WEIGHT_PACKAGES) and member.packages["torch"] == torch.__version__
    assert card.export_packages == package_versions(EXPORT_PACKAGES)
    assert card.export_packages["scikit-learn"] and card.export_packages["onnx"]
    assert "data" not in member.config and "out" not in member.config  # no machine paths
    assert str(out) not in card_path(onnx).read_text()

    ids = ["blues.00000", "classical.00001", "metal.00003", "rock.00005", "jazz.00010", "pop.00010"]
    audio_ids = [i for i in ids if any((gtzan / "audio").glob(f"*/{i}.*"))]
    assert audio_ids, "the subset should include clips that have audio"
    for with_audio in (True, False):
        folder = tmp_path / f"subset_{with_audio}"
        write_subset(gtzan, folder, ids, with_audio)
        result = subprocess.run(
            [sys.executable, "-m", "training.evaluate", "--data", str(folder), "--model", str(onnx)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        metrics = json.loads(result.stdout.strip().splitlines()[-1])
        assert metrics["n"] == len(ids) and 0 <= metrics["accuracy"] <= 1
        assert set(metrics["per_genre"]) >= {"blues", "rock"}
        if with_audio:
            assert metrics["audio_n"] == len(audio_ids) and 0 <= metrics["audio_agreement"] <= 1
            robustness = metrics["robustness"]
            assert set(robustness) == {"clean", *DEGRADATIONS}
            assert robustness["clean"] == pytest.approx(metrics["audio_accuracy"], abs=1e-4)
            assert all(0 <= v <= 1 for v in robustness.values())
        else:
            assert (metrics["audio_n"], metrics["audio_agreement"], metrics["audio_accuracy"]) == (0, None, None)
            assert metrics["robustness"] is None


def test_every_config_field_is_a_flag() -> None:
    cfg = parse_args(["--epochs", "3", "--network.hidden", "32", "--augment.blur-prob", "0", "--no-use-shared-audio"])
    assert (cfg.epochs, cfg.network.hidden, cfg.augment.blur_prob, cfg.use_shared_audio) == (3, 32, 0.0, False)
    assert cfg.augment == AugmentConfig(blur_prob=0.0)
