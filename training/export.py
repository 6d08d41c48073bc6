"""Export a training checkpoint to ONNX, check parity with torch, and write the model card.

python -m training.export --run runs/main --out model/genre_birnn.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from model.card import ModelCard, card_path
from model.features import N_FEATURES, feature_settings
from model.labels import GENRES
from model.network import ExportWrapper, GenreNet, NetworkConfig

OPSET = 17
PARITY_TOLERANCE = 1e-4
PARITY_SHAPES = ((1, 11), (1, 344), (4, 344), (4, 100), (1, 1000))  # (batch, frames)


def load_network(checkpoint: Path) -> GenreNet:
    state = torch.load(checkpoint, map_location="cpu")
    net = GenreNet(NetworkConfig(**state["network"]))
    net.load_state_dict(state["model"])
    return net.eval()


def export_onnx(net: GenreNet, path: Path) -> None:
    """ONNX with dynamic batch and frame axes: spectrogram -> probabilities, attention."""
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 344, N_FEATURES)
    torch.onnx.export(
        ExportWrapper(net).eval(),
        (example,),
        str(path),
        input_names=["spectrogram"],
        output_names=["probabilities", "attention"],
        dynamic_axes={
            "spectrogram": {0: "batch", 1: "frames"},
            "probabilities": {0: "batch"},
            "attention": {0: "batch", 1: "frames"},
        },
        opset_version=OPSET,
        dynamo=False,
    )


def parity(net: GenreNet, path: Path, seed: int = 0) -> float:
    """Largest absolute difference between torch and ONNX Runtime over PARITY_SHAPES."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wrapper = ExportWrapper(net).eval()
    rng = np.random.default_rng(seed)
    worst = 0.0
    for batch, frames in PARITY_SHAPES:
        x = rng.standard_normal((batch, frames, N_FEATURES)).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in wrapper(torch.from_numpy(x))]
        got = session.run(None, {"spectrogram": x})
        worst = max(worst, *(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True)))
    return worst


def write_card(run: Path, onnx_path: Path, name: str, version: str) -> ModelCard:
    report = json.loads((run / "report.json").read_text())
    state = torch.load(run / "checkpoint.pt", map_location="cpu")
    card = ModelCard(
        name=name,
        version=version,
        labels=list(GENRES),
        feature_settings=feature_settings(),
        network=state["network"],
        data_sha256=report["data_sha256"],
        onnx_sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        metrics={
            "protocol": "fault-filtered GTZAN valid split (artist-disjoint), full 30 s clips, array route",
            "valid": report["valid"],
            "valid_audio_agreement": report["audio_agreement"],
        },
        baselines=report["baselines"],
        training={k: report[k] for k in ("train_clips", "best_epoch", "train_seconds", "config")},
    )
    card_path(onnx_path).write_text(card.model_dump_json(indent=2) + "\n")
    return card


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/main"), help="training output folder")
    parser.add_argument("--out", type=Path, default=Path("model/genre_birnn.onnx"))
    parser.add_argument("--name", default="genre-birnn-attention")
    parser.add_argument("--version", default="1.0.0")
    args = parser.parse_args(argv)

    net = load_network(args.run / "checkpoint.pt")
    export_onnx(net, args.out)
    worst = parity(net, args.out)
    if worst > PARITY_TOLERANCE:
        raise SystemExit(f"ONNX and torch differ by {worst:.2e} > {PARITY_TOLERANCE}")
    card = write_card(args.run, args.out, args.name, args.version)
    print(json.dumps({"onnx": str(args.out), "parity_max_abs": worst, "valid": card.metrics["valid"]["accuracy"]}))


if __name__ == "__main__":
    main()
