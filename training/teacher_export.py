"""Export a musicnn tagger (the teacher of model 3.0) to ONNX, once, in the `teacher` environment.

musicnn 0.1.0 ships TensorFlow 1 checkpoints inside its package. This builds the model's graph in
inference mode, restores the checkpoint itself (musicnn's own loader hides a failed restore behind a
bare ``except``; here a failure raises), freezes it, converts it with tf2onnx and checks the ONNX file
against TensorFlow on a generated clip. Run it with the teacher's interpreter (`make teacher`):

    .venv-teacher/bin/python -m training.teacher_export --model MSD_musicnn --out runs/teacher

It writes ``<model>.onnx`` (input ``log_mel`` ``[batch, 187, 96]``; outputs ``embedding``
``[batch, 200]``, the penultimate layer, and ``tag_logits`` ``[batch, 50]``) and ``<model>.json``
(the tags, the versions that made it and the check). With ``--reference CLIP.wav`` it also writes
musicnn's own patches and TensorFlow's outputs for that clip (``<model>.reference.npz``), which the
tests compare with training.teacher's front end on ONNX Runtime. Only this module needs TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ("MSD_musicnn", "MTT_musicnn")
INPUT_NAME = "log_mel"
EMBEDDING_NAME = "embedding"
LOGITS_NAME = "tag_logits"
ONNX_OPSET = 17
CHECK_TOLERANCE = 1e-4  # ONNX Runtime against TensorFlow, largest absolute difference on any output


def _frozen_graph(model: str) -> tuple[Any, Any, int, list[str]]:
    """musicnn's graph in inference mode with its weights as constants: (graph_def, session, frames, tags)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    from musicnn import configuration, models

    tf.compat.v1.disable_eager_execution()
    tags = configuration.MSD_LABELS if model.startswith("MSD") else configuration.MTT_LABELS
    frames = patch_frames(configuration)
    graph = tf.Graph()
    with graph.as_default():
        log_mel = tf.compat.v1.placeholder(tf.float32, [None, frames, configuration.N_MELS], name=INPUT_NAME)
        with tf.name_scope("model"):
            # is_training as a Python False builds the inference path (no tf.cond around batch norm).
            logits, *_, penultimate = models.define_model(log_mel, False, model, len(tags))
        tf.identity(penultimate, name=EMBEDDING_NAME)
        tf.identity(logits, name=LOGITS_NAME)
        session = tf.compat.v1.Session(graph=graph)
        checkpoint = str(Path(models.__file__).parent / model) + "/"
        tf.compat.v1.train.Saver().restore(session, checkpoint)  # raises on a missing or partial checkpoint
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), [EMBEDDING_NAME, LOGITS_NAME]
        )
    return frozen, session, frames, list(tags)


def patch_frames(configuration: Any) -> int:
    """Frames in musicnn's 3 s patch, as its extractor counts them (187)."""
    import librosa

    frames = librosa.time_to_frames(
        3, sr=configuration.SR, n_fft=configuration.FFT_SIZE, hop_length=configuration.FFT_HOP
    )
    return int(frames) + 1


def _to_onnx(frozen: Any) -> Any:
    import tf2onnx

    model_proto, _ = tf2onnx.convert.from_graph_def(
        frozen,
        input_names=[f"{INPUT_NAME}:0"],
        output_names=[f"{EMBEDDING_NAME}:0", f"{LOGITS_NAME}:0"],
        opset=ONNX_OPSET,
    )
    # Plain names for the file's users: tf2onnx keeps TensorFlow's ":0" suffixes.
    renames = {f"{INPUT_NAME}:0": INPUT_NAME, f"{EMBEDDING_NAME}:0": EMBEDDING_NAME, f"{LOGITS_NAME}:0": LOGITS_NAME}
    for value in [*model_proto.graph.input, *model_proto.graph.output]:
        value.name = renames.get(value.name, value.name)
    for node in model_proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    return model_proto


def _tensorflow(session: Any, patches: np.ndarray) -> dict[str, np.ndarray]:
    graph = session.graph
    fetches = [graph.get_tensor_by_name(f"{EMBEDDING_NAME}:0"), graph.get_tensor_by_name(f"{LOGITS_NAME}:0")]
    embedding, logits = session.run(fetches, {graph.get_tensor_by_name(f"{INPUT_NAME}:0"): patches})
    return {EMBEDDING_NAME: embedding, LOGITS_NAME: logits}


def _onnx_runtime(path: Path, patches: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    embedding, logits = session.run([EMBEDDING_NAME, LOGITS_NAME], {INPUT_NAME: patches})
    return {EMBEDDING_NAME: embedding, LOGITS_NAME: logits}


def musicnn_patches(clip: Path, frames: int) -> np.ndarray:
    """musicnn's own front end on a clip (librosa at 16 kHz, non-overlapping patches): [patches, frames, 96]."""
    from musicnn import extractor

    patches, _ = extractor.batch_data(str(clip), frames, frames)
    return np.asarray(patches, dtype=np.float32)


def _check_patches(frames: int, n_mels: int) -> np.ndarray:
    """Log-mel-like patches from a fixed seed: the range musicnn's log10(10000 x + 1) produces."""
    rng = np.random.default_rng(0)
    return rng.uniform(0.0, 3.0, size=(4, frames, n_mels)).astype(np.float32)


def export(model: str, out: Path, reference_clip: Path | None = None) -> dict[str, Any]:
    """Write ``<out>/<model>.onnx`` and its JSON note; returns the note."""
    import onnx
    from musicnn import configuration

    frozen, session, frames, tags = _frozen_graph(model)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{model}.onnx"
    onnx.save(_to_onnx(frozen), str(path))

    patches = _check_patches(frames, configuration.N_MELS)
    expected, got = _tensorflow(session, patches), _onnx_runtime(path, patches)
    difference = max(float(np.max(np.abs(expected[name] - got[name]))) for name in expected)
    if not difference <= CHECK_TOLERANCE:
        path.unlink()
        raise SystemExit(f"{model}: ONNX Runtime differs from TensorFlow by {difference:.2e} (> {CHECK_TOLERANCE})")
    if reference_clip is not None:
        clip_patches = musicnn_patches(reference_clip, frames)
        outputs = _tensorflow(session, clip_patches)
        np.savez(
            out / f"{model}.reference.npz",
            patches=clip_patches,
            embedding=outputs[EMBEDDING_NAME],
            tag_logits=outputs[LOGITS_NAME],
        )

    note = {
        "model": model,
        "tags": tags,
        "input": {"name": INPUT_NAME, "frames": frames, "mel_bands": configuration.N_MELS},
        "outputs": {EMBEDDING_NAME: "penultimate layer (after batch norm)", LOGITS_NAME: "tag logits (pre-sigmoid)"},
        "front_end": {
            "sample_rate_hz": configuration.SR,
            "fft_size": configuration.FFT_SIZE,
            "hop_samples": configuration.FFT_HOP,
            "mel_bands": configuration.N_MELS,
        },
        "packages": {name: metadata.version(name) for name in ("musicnn", "tensorflow-cpu", "tf2onnx", "onnx")},
        "check": {"largest_difference": difference, "tolerance": CHECK_TOLERANCE},
    }
    (out / f"{model}.json").write_text(json.dumps(note, indent=2) + "\n")
    return note


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=MODELS, action="append", help="musicnn model(s) to export")
    parser.add_argument("--out", type=Path, required=True, help="folder for the ONNX files and their notes")
    parser.add_argument("--reference", type=Path, help="a clip to write musicnn's patches and outputs for")
    args = parser.parse_args(argv)
    for model in args.model or ["MSD_musicnn"]:
        note = export(model, args.out, args.reference)
        print(f"{model}: {args.out / (model + '.onnx')}, ONNX Runtime within {note['check']['largest_difference']:.1e}")


if __name__ == "__main__":
    main()
