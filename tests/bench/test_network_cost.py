"""bench.network_cost: each shape exported and timed, relative to the first, written out."""

from __future__ import annotations

import json
from pathlib import Path

from bench.network_cost import SHAPES, main
from training.network import NetworkConfig


def test_every_shape_is_timed_against_the_first(tmp_path: Path) -> None:
    small: dict[str, object] = {"hidden": 8, "conv_channels": 4, "frame_dim": 16, "attention_dim": 8, "co_variation": 8}
    shapes = {"small": small, "smaller, no co-variation": {**small, "co_variation": 0}}
    result = main(["--repeat", "2", "--out", str(tmp_path)], shapes=shapes)
    assert list(result.shapes) == list(shapes)
    assert result.shapes["small"].relative == 1.0
    assert all(s.ms > 0 for s in result.shapes.values())
    assert result.shapes["small"].weights > result.shapes["smaller, no co-variation"].weights
    written = json.loads((tmp_path / "network_cost.json").read_text())
    assert written["shapes"]["small"]["config"] == small
    assert "| small |" in (tmp_path / "network_cost.md").read_text()


def test_the_shapes_are_network_configs_today_first() -> None:
    assert next(iter(SHAPES.values())) == {}
    for changes in SHAPES.values():
        NetworkConfig(**changes)  # type: ignore[arg-type]
