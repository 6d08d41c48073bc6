"""What a network shape costs at inference, for model 3.0's smaller student (issue 38).

    python -m bench.network_cost [--repeat 200] [--out bench/results]

Untrained networks of candidate shapes (seed 0: weights do not change the cost) are exported as
`training.export` exports a trained one and run by ONNX Runtime on one thread, batch 1, one 30 s
window; each shape's CPU ms is the best of `repeat`, and its cost is its ms over today's shape's
(NetworkConfig's defaults), both measured in the same run. A shipped file adds the summary head
and the music detector to these figures. Writes bench/results/network_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from pydantic import BaseModel

from bench.common import RESULTS, markdown_table, write
from model.features import CLIP_FRAMES, N_FEATURES
from model.runtime import INPUT_NAME
from training.export import export_onnx, thread_ms
from training.network import ExportWrapper, GenreNet, NetworkConfig

SHAPES: dict[str, dict[str, object]] = {  # name -> NetworkConfig's fields that differ from today's
    "today: hidden 96, 16 channels, frame 128, co-variation 32": {},
    "hidden 64": {"hidden": 64},
    "hidden 64, 8 channels": {"hidden": 64, "conv_channels": 8},
    "hidden 64, 8 channels, no co-variation": {"hidden": 64, "conv_channels": 8, "co_variation": 0},
    "hidden 48, 8 channels, frame 64": {"hidden": 48, "conv_channels": 8, "frame_dim": 64},
    "hidden 48, 8 channels, frame 64, no co-variation": {
        "hidden": 48,
        "conv_channels": 8,
        "frame_dim": 64,
        "co_variation": 0,
    },
    "hidden 64, linear frame encoder": {"hidden": 64, "encoder": "linear"},
}


class ShapeCost(BaseModel):
    config: dict[str, object]
    weights: int
    ms: float
    relative: float  # ms over the first shape's, in the same run


class NetworkCost(BaseModel):
    protocol: str
    shapes: dict[str, ShapeCost]


def shape_ms(net: GenreNet, folder: Path, repeat: int) -> float:
    """CPU ms of one 30 s window through the network's ONNX export (one thread, batch 1)."""
    path = folder / "net.onnx"
    export_onnx(ExportWrapper(net), path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.zeros((1, CLIP_FRAMES, N_FEATURES), np.float32)
    return thread_ms(lambda: session.run(None, {INPUT_NAME: x}), repeat)


def measure(shapes: dict[str, dict[str, object]], repeat: int) -> NetworkCost:
    """Every shape in one run; the first is the one the others are relative to."""
    found: dict[str, tuple[dict[str, object], int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, changes in shapes.items():
            torch.manual_seed(0)
            net = GenreNet(NetworkConfig(**changes)).eval()  # type: ignore[arg-type]
            weights = sum(p.numel() for p in net.parameters())
            found[name] = (changes, weights, shape_ms(net, Path(tmp), repeat))
    first = next(iter(found.values()))[2]
    return NetworkCost(
        protocol=f"untrained networks (seed 0) exported by training.export; ONNX Runtime, one thread, batch 1, "
        f"one 30 s window ({CLIP_FRAMES} frames), CPU ms best of {repeat}; relative: over the first shape's, "
        "same run; no summary head or music detector",
        shapes={
            name: ShapeCost(config=changes, weights=weights, ms=round(ms, 3), relative=round(ms / first, 2))
            for name, (changes, weights, ms) in found.items()
        },
    )


def table(result: NetworkCost) -> str:
    rows: list[list[object]] = [[name, f"{s.weights:,}", s.ms, s.relative] for name, s in result.shapes.items()]
    return markdown_table(["shape", "weights", "CPU ms a window", "relative"], rows)


def main(argv: list[str] | None = None, shapes: dict[str, dict[str, object]] = SHAPES) -> NetworkCost:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200, help="timed calls a shape; the best counts")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args(argv)
    result = measure(shapes, args.repeat)
    write("network_cost", result.model_dump(), table(result), args.out)
    return result


if __name__ == "__main__":
    main()
