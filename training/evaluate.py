"""Evaluate an ONNX model (the shipped one by default) on labelled data.

    python -m training.evaluate --data DIR [--model PATH]

DIR is a GTZAN-layout folder (`spectrograms.npz`, `labels.csv`, optionally
`audio/<genre>/<clip_id>.<ext>`) or a plain folder `DIR/<label>/<audio files>`. Every row of
labels.csv is scored through the array route; audio files through the audio route, which is the
service's own pipeline (decode, resample, windows, ONNX). `audio_agreement` is the share of
the clips with both whose top genre is the same by both routes.
`robustness` is the audio clips' accuracy clean and under each of `training.degrade.DEGRADATIONS`
(low sample rates, lossy codecs, a low-pass, noise), each degraded clip going through the
service's audio route as an upload would; `called_music`, for a model with a music detector, the
share of them it calls music at its card's threshold under the same conditions. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from model.audio import AudioError, decode_file
from model.features import model_input
from model.pipeline import Pipeline
from model.runtime import DEFAULT_MODEL_PATH, GenreModel
from training.accuracy import summary
from training.data import (
    DataError,
    audio_path,
    is_gtzan_layout,
    label_index,
    load_arrays,
    read_labels,
    scan_label_folder,
)
from training.degrade import DEGRADATIONS

BATCH = 32


def array_predictions(model: GenreModel, grids: list[np.ndarray]) -> np.ndarray:
    top = [
        model.predict(np.stack([model_input(g, model.front_end) for g in grids[i : i + BATCH]])).probabilities.argmax(1)
        for i in range(0, len(grids), BATCH)
    ]
    return np.concatenate(top) if top else np.zeros(0, dtype=np.int64)


def upload_answer(model: GenreModel, data: bytes) -> tuple[int, bool | None]:
    """The top label of an audio file's bytes through the service's pipeline (decode, windows, ONNX),
    and whether it is music (None for a model without a detector)."""
    _, analysis = Pipeline.of(model.card).classify(model, data)
    return int(analysis.probabilities.argmax()), analysis.is_music


def audio_prediction(model: GenreModel, path: Path) -> int:
    return upload_answer(model, path.read_bytes())[0]


def degraded_answers(model: GenreModel, path: Path) -> dict[str, tuple[int, bool | None]]:
    """One audio file's answer under each degradation."""
    source = decode_file(path, target_rate=None)  # the music as the file holds it, at its own rate
    return {
        name: upload_answer(model, degrade(source.waveform, source.sample_rate))
        for name, degrade in DEGRADATIONS.items()
    }


def robustness(
    model: GenreModel, paths: list[Path], labels: np.ndarray, clean: list[tuple[int, bool | None]]
) -> tuple[dict[str, float], dict[str, float]]:
    """The audio files' accuracy clean (clean: their answers) and under each degradation, and the
    share called music.

    The files go through threads, one per core: the codecs (FFmpeg), the resampler, the FFTs and
    ONNX Runtime release the GIL, and the encoders are most of the time."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        degraded = list(pool.map(functools.partial(degraded_answers, model), paths))
    answers = [{"clean": c, **d} for c, d in zip(clean, degraded, strict=True)]
    conditions = ["clean", *DEGRADATIONS]
    accuracy = {c: round(float(np.mean(np.array([a[c][0] for a in answers]) == labels)), 4) for c in conditions}
    music = {c: round(float(np.mean([bool(a[c][1]) for a in answers])), 4) for c in conditions}
    return accuracy, music


def evaluate(
    data: Path, model_path: Path = DEFAULT_MODEL_PATH, split: str | None = None, only: list[str] | None = None
) -> dict[str, object]:
    """Metrics of the data by both routes: of a GTZAN layout, every clip of labels.csv (of one
    split, if given; or `only` these clip ids); of a plain folder, every audio file (or `only`
    these paths under it)."""
    # One ONNX thread: the audio files run in threads of their own (robustness), and idle ONNX threads spin.
    model = GenreModel(model_path, providers="cpu", intra_op_threads=1, inter_op_threads=1)
    if not is_gtzan_layout(data):
        return evaluate_folder(model, data, only)
    clips = load_arrays(data, split, model.labels)
    if only is not None:
        clips = clips.subset([i for i, clip_id in enumerate(clips.ids) if clip_id in only])
    labels = np.array(clips.labels)
    array_top = array_predictions(model, clips.grids)
    result = summary(labels, array_top, model.labels)

    genres = {row["clip_id"]: row["genre"] for row in read_labels(data)}
    audio_rows, audio_paths, audio_answers = [], [], []
    for i, clip_id in enumerate(clips.ids):
        path = audio_path(data, genres[clip_id], clip_id)
        if path is not None:
            audio_rows.append(i)
            audio_paths.append(path)
            audio_answers.append(upload_answer(model, path.read_bytes()))
    audio_top = [top for top, _ in audio_answers]
    has_audio = bool(audio_rows)
    accuracy, music = robustness(model, audio_paths, labels[audio_rows], audio_answers) if has_audio else (None, None)
    result.update(
        audio_n=len(audio_rows),
        audio_accuracy=float((labels[audio_rows] == audio_top).mean()) if has_audio else None,
        audio_agreement=float((array_top[audio_rows] == audio_top).mean()) if has_audio else None,
        robustness=accuracy,
        called_music=music if model.has_music_detector else None,
        model=f"{model.card.name} {model.card.version}",
    )
    return result


def evaluate_folder(model: GenreModel, data: Path, only: list[str] | None = None) -> dict[str, object]:
    """Metrics of a plain folder's audio files through the audio route; unreadable files are
    listed under `skipped`, not scored."""
    found = scan_label_folder(data)
    paths, truth, answers, skipped = [], [], [], []
    for path, label in found.files:
        name = path.relative_to(data).as_posix()
        if only is not None and name not in only:
            continue
        index = label_index(model.labels, label, data)
        try:
            answers.append(upload_answer(model, path.read_bytes()))
        except AudioError as e:
            skipped.append(f"{name}: {e}")
            continue
        paths.append(path)
        truth.append(index)
    labels = np.array(truth, dtype=np.int64)
    result = summary(labels, np.array([top for top, _ in answers], dtype=np.int64), model.labels)
    accuracy, music = robustness(model, paths, labels, answers) if paths else (None, None)
    result.update(
        audio_n=len(paths),
        robustness=accuracy,
        called_music=music if model.has_music_detector else None,
        skipped=skipped,
        model=f"{model.card.name} {model.card.version}",
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--split", help="only the rows of this split (default: every row)")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(evaluate(args.data, args.model, args.split)))
    except DataError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
