"""The `embedding` output: the genre network's fused vector, exposed for similarity search.

    python -m training.embedding --model runs/detector/genre_birnn.onnx --out model/genre_birnn.onnx \
        --version 2.3.0

The fused vector (the attention-weighted mean of the BiGRU's frame features, averaged over an
ensemble's members) is what the classifier reads, so the model already computes it: this step
adds it as an output of the same graph and writes the card's `embedding` section. Nothing is
trained; the other outputs stay bit for bit (checked when the file is written). How well it finds
tracks of the same genre is measured by `python -m bench.similarity quality` (MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from model.card import EmbeddingCard, ModelCard, card_path, load_card, write_card
from model.runtime import EMBEDDING_OUTPUT, INPUT_NAME
from training.detector import fused_width, members_fused


def with_embedding(path: Path, card: ModelCard) -> onnx.ModelProto:
    """The model file's graph with EMBEDDING_OUTPUT (batch, fused_width): its members' mean fused vector."""
    model = onnx.load(str(path))
    if any(o.name == EMBEDDING_OUTPUT for o in model.graph.output):
        raise SystemExit(f"{path} has an {EMBEDDING_OUTPUT!r} output already")
    fused, _ = members_fused(path, model, card)
    model.graph.node.append(onnx.helper.make_node("Mean", fused, [EMBEDDING_OUTPUT], name="embedding/Mean"))
    model.graph.output.append(
        onnx.helper.make_tensor_value_info(EMBEDDING_OUTPUT, onnx.TensorProto.FLOAT, ["batch", fused_width(card)])
    )
    onnx.checker.check_model(model)
    return model


def check_unchanged(before: Path, after: Path, seed: int = 0) -> None:
    """The new file gives the old one's outputs bit for bit, and an embedding of the right shape."""
    old = ort.InferenceSession(str(before), providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(str(after), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed).standard_normal((3, 200, old.get_inputs()[0].shape[-1])).astype(np.float32)
    names = [o.name for o in old.get_outputs()]
    *outputs, embedding = new.run([*names, EMBEDDING_OUTPUT], {INPUT_NAME: x})
    if not all(np.array_equal(a, b) for a, b in zip(old.run(names, {INPUT_NAME: x}), outputs, strict=True)):
        raise SystemExit(f"{after}: adding the embedding changed the model's other outputs")
    if embedding.shape[0] != len(x) or not np.isfinite(embedding).all():
        raise SystemExit(f"{after}: its embedding has shape {embedding.shape}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a model file (with its card) without the output")
    parser.add_argument("--out", type=Path, required=True, help="the model with its embedding output")
    parser.add_argument("--version", required=True, help="the version of the model written")
    args = parser.parse_args(argv)
    if not card_path(args.model).is_file():
        raise SystemExit(f"{args.model} or its card is missing: build it first (make detector)")
    card = load_card(card_path(args.model))
    width = fused_width(card)
    model = with_embedding(args.model, card)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.out))
    check_unchanged(args.model, args.out)
    card.version = args.version
    card.embedding = EmbeddingCard(
        dimension=width,
        reads=f"each window's fused vector: the attention-weighted mean of the BiGRU's frame features "
        f"({width} values, both directions), averaged over the model's {len(card.members)} member(s); "
        "the classifier reads it. A track's embedding is its windows' coverage-weighted mean, L2-normalised",
    )
    card.onnx_sha256 = hashlib.sha256(args.out.read_bytes()).hexdigest()
    write_card(card, args.out)
    print(json.dumps({"onnx": str(args.out), "embedding_dimension": width}))


if __name__ == "__main__":
    main()
