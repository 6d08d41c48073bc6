"""Export training checkpoints to ONNX, check parity with torch, and write the model card.

    python -m training.export --run runs/seed0 [--run runs/seed1 ...] --out model/genre_birnn.onnx

Several runs make a seed ensemble (their probabilities and attention averaged). The card's
labels are the runs'. Its metrics are measured on the exported ONNX file itself: on the `valid`
split of GTZAN-layout data, or on the files a plain folder's run held out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from model.card import MemberCard, ModelCard, SummaryHeadCard, card_path, load_card, write_card
from model.features import N_FEATURES, FrontEndSettings
from model.runtime import INPUT_NAME, OUTPUT_NAMES, GenreModel
from training.artifacts import EXPORT_PACKAGES, Checkpoint, CvReport, RunReport, package_versions
from training.clip_summary import SummaryHead, fit_summary_head
from training.data import is_gtzan_layout, load_arrays, load_audio_clips
from training.evaluate import evaluate
from training.network import ExportWrapper, GenreNet

OPSET = 17
PARITY_TOLERANCE = 1e-4
PARITY_SHAPES = ((1, 11), (1, 344), (4, 344), (4, 100), (1, 1000))  # (batch, frames)


def load_run(run: Path) -> tuple[GenreNet, FrontEndSettings, RunReport]:
    """A training run's best network, the front end it was trained with, and its report."""
    checkpoint, net = Checkpoint.load(run / "checkpoint.pt")
    report = RunReport.model_validate_json((run / "report.json").read_text())
    if checkpoint.labels != report.labels:
        raise SystemExit(f"{run}: its checkpoint and its report name different labels")
    return net, checkpoint.front_end, report


def export_onnx(model: ExportWrapper, path: Path) -> None:
    """ONNX with dynamic batch and frame axes: spectrogram -> probabilities, attention."""
    path.parent.mkdir(parents=True, exist_ok=True)
    probabilities, attention = OUTPUT_NAMES
    torch.onnx.export(
        model.eval(),
        (torch.zeros(2, 344, N_FEATURES),),
        str(path),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_axes={
            INPUT_NAME: {0: "batch", 1: "frames"},
            probabilities: {0: "batch"},
            attention: {0: "batch", 1: "frames"},
        },
        opset_version=OPSET,
        dynamo=False,
    )


def parity(model: ExportWrapper, path: Path, seed: int = 0) -> float:
    """Largest absolute difference between torch and ONNX Runtime over PARITY_SHAPES."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    rng = np.random.default_rng(seed)
    worst = 0.0
    for batch, frames in PARITY_SHAPES:
        x = rng.standard_normal((batch, frames, N_FEATURES)).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in model(torch.from_numpy(x))]
        got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        worst = max(worst, *(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True)))
    return worst


def member_card(report: RunReport) -> MemberCard:
    return MemberCard(
        seed=report.seed,
        network=report.network.to_dict(),
        best_epoch=report.best_epoch,
        train_clips=report.train_clips,
        train_seconds=report.train_seconds,
        valid_accuracy=report.valid_accuracy,
        config=report.portable_config(),
        packages=report.packages,
    )


def write_model(
    nets: list[GenreNet],
    front_end: FrontEndSettings,
    labels: list[str],
    onnx_path: Path,
    temperature: float = 1.0,
    head: tuple[SummaryHead, SummaryHeadCard] | None = None,
) -> ModelCard:
    """The ONNX file of one network or an ensemble (with its summary head, if any), checked
    against torch, and a bare card beside it."""
    head_module, head_card = head if head else (None, None)
    weight = head_card.weight if head_card else 0.0
    model = ExportWrapper(*nets, temperature=temperature, head=head_module, head_weight=weight)
    export_onnx(model, onnx_path)
    worst = parity(model, onnx_path)
    if worst > PARITY_TOLERANCE:
        raise SystemExit(f"ONNX and torch differ by {worst:.2e} > {PARITY_TOLERANCE}")
    card = ModelCard(
        name=onnx_path.stem,
        version="0",
        labels=labels,
        feature_settings=front_end,
        onnx_sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        summary_head=head_card,
        export_packages=package_versions(EXPORT_PACKAGES),
    )
    write_card(card, onnx_path)
    return card


def inference_ms(path: Path, repeat: int = 20) -> float:
    """CPU ms of one 30 s window through an ONNX model file (one thread, batch 1), best of `repeat`."""
    model = GenreModel(path, providers="cpu", intra_op_threads=1, inter_op_threads=1)
    x = np.zeros((1, model.front_end.clip_frames, model.front_end.n_features), np.float32)
    return thread_ms(lambda: model.predict(x), repeat)


def thread_ms(run: Callable[[], object], repeat: int) -> float:
    """CPU ms of the calling thread per call of `run`, best of `repeat` after a warm-up. For ONNX
    Runtime on one thread, the caller's: its CPU time is the inference's alone, whatever other
    threads the process has left running (process_time would count them too)."""
    run()
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        run()
        times.append(time.thread_time() - start)
    return 1000 * min(times)


def speed(onnx_path: Path, reference: Path) -> dict[str, object]:
    """The exported file's inference cost against a reference model's, measured in the same run."""
    ours, theirs = inference_ms(onnx_path), inference_ms(reference)
    return {
        "protocol": "CPU ms per 30 s window, one thread, batch 1, best of 20, both files in one run",
        "inference_ms": round(ours, 3),
        "reference": f"{load_card(card_path(reference)).name} {load_card(card_path(reference)).version}",
        "reference_inference_ms": round(theirs, 3),
        "reference_over_this": round(theirs / ours, 2),
    }


def build_card(
    card: ModelCard, reports: list[RunReport], onnx_path: Path, data: Path, cv: CvReport | None
) -> ModelCard:
    """The card of an exported model: its runs, and its figures measured on the file itself."""
    card.members = [member_card(r) for r in reports]
    card.data_sha256 = reports[0].data_sha256
    card.baselines = {k: v.model_dump() for k, v in (cv.baselines if cv else reports[0].baselines).items()}
    card.calibration = cv.calibration if cv else None
    write_card(card, onnx_path)
    # Measured through the card just written, so the file evaluated is the file shipped.
    if cv is not None and reports[0].valid_accuracy is None:
        card.metrics = {
            "protocol": "cv: out-of-fold, artist-disjoint cross-validation of this recipe over train + valid "
            "(training/cv.py); training_clips: this file on the clips it learnt from (how well it fits, and a "
            "golden figure to re-score), not an estimate of accuracy",
            "cv": cv.summary(),
            "training_clips": evaluate(data, onnx_path),
        }
    elif is_gtzan_layout(data):
        card.metrics = {
            "protocol": "fault-filtered GTZAN valid split (artist-disjoint, 197 clips), full 30 s clips; "
            "audio_* on its clips that have real audio, through the service's pipeline",
            "valid": evaluate(data, onnx_path, split="valid"),
            **({"cv": cv.summary()} if cv else {}),
        }
    else:
        card.metrics = {
            "protocol": "the audio files the (first) run held out for early stopping, through the service's pipeline",
            "valid": evaluate(data, onnx_path, only=reports[0].valid_ids),
        }
    write_card(card, onnx_path)
    return card


def shipped_head(
    cv: CvReport, data: Path, labels: list[str], front_end: FrontEndSettings
) -> tuple[SummaryHead, SummaryHeadCard] | None:
    """The recipe's summary head, if it has one: fitted on every array and audio clip of the data
    (as the network learnt from them) with the C the cross-validation chose, fused with its weight."""
    if cv.summary_head is None:
        return None
    if not is_gtzan_layout(data):
        raise SystemExit(f"the CV report's recipe has a summary head, fitted on arrays; {data} has none")
    arrays, audio = load_arrays(data, labels=labels), load_audio_clips(data, labels=labels)
    grids, y = arrays.grids + audio.grids, np.array(arrays.labels + audio.labels)
    return fit_summary_head(grids, y, cv.summary_head.c, len(labels), front_end), cv.summary_head


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, action="append", required=True, help="training output folder; repeat")
    parser.add_argument("--out", type=Path, default=Path("model/genre_birnn.onnx"))
    parser.add_argument("--data", type=Path, help="the data the runs learnt from (default: the first run's)")
    parser.add_argument("--name", default="genre-birnn-attention")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--cv", type=Path, help="training.cv's report of this recipe: figures and calibration")
    parser.add_argument(
        "--speed-reference", type=Path, help="another model's ONNX file (with its card) to time against"
    )
    args = parser.parse_args(argv)

    nets, front_ends, reports = zip(*(load_run(run) for run in args.run), strict=True)
    if len(set(front_ends)) != 1:
        raise SystemExit("the runs were trained with different front-end settings; they cannot share one card")
    if any(r.labels != reports[0].labels for r in reports):
        raise SystemExit("the runs were trained on different labels; they cannot share one card")
    cv = CvReport.model_validate_json(args.cv.read_text()) if args.cv else None
    if cv is not None and cv.labels != reports[0].labels:
        raise SystemExit(f"{args.cv} is about other labels than the runs'")
    temperature = cv.calibration.temperature if cv else 1.0
    data = args.data or Path(reports[0].config["data"])
    head = shipped_head(cv, data, reports[0].labels, front_ends[0]) if cv else None
    card = write_model(list(nets), front_ends[0], reports[0].labels, args.out, temperature, head)
    card.name, card.version = args.name, args.version
    card = build_card(card, list(reports), args.out, data, cv)
    if args.speed_reference:
        card.metrics["speed"] = speed(args.out, args.speed_reference)
        write_card(card, args.out)
    print(json.dumps({"onnx": str(args.out), **card.metrics}))


if __name__ == "__main__":
    main()
