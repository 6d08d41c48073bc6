"""training.config_flags: a typed config from command-line flags, and back as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.config_flags import config_to_json, parse_config
from training.distill import DistillConfig
from training.train import TrainConfig


def test_every_kind_of_field_is_a_flag() -> None:
    config = parse_config(
        TrainConfig,
        [
            "--seed", "3",
            "--no-use-shared-audio",
            "--audio-folder", "more/audio",
            "--network.hidden", "8",
            "--network.encoder", "linear",
        ],
        None,
    )  # fmt: skip
    assert config.seed == 3
    assert config.use_shared_audio is False
    assert config.audio_folder == Path("more/audio")
    assert (config.network.hidden, config.network.encoder) == (8, "linear")
    assert config.network.frame_dim == TrainConfig().network.frame_dim  # untouched fields keep their defaults


def test_a_tuple_field_takes_one_or_more_values() -> None:
    config = parse_config(DistillConfig, ["--teachers", "a.onnx", "b.onnx", "--sources", "ufoai-music"], None)
    assert config.teachers == (Path("a.onnx"), Path("b.onnx"))
    assert config.sources == ("ufoai-music",)
    assert parse_config(DistillConfig, [], None).teachers == DistillConfig().teachers


def test_no_flags_give_the_defaults() -> None:
    assert parse_config(TrainConfig, [], None) == TrainConfig()


def test_a_config_check_across_flags_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_config(TrainConfig, ["--network.encoder", "lstm"], None)
    assert exited.value.code == 2
    assert "unknown frame encoder 'lstm'" in capsys.readouterr().err


def test_config_to_json_holds_json_types_only() -> None:
    config = TrainConfig(out=Path("runs/x"), audio_folder=Path("more/audio"))
    as_json = config_to_json(config)
    assert as_json["out"] == "runs/x"
    assert as_json["audio_folder"] == "more/audio"
    assert as_json["network"]["hidden"] == config.network.hidden
    assert json.loads(json.dumps(as_json)) == as_json
    assert "resume" in as_json and "resume" not in config.to_dict()  # how to run, not what
