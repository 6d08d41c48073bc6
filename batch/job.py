"""The job: audio files -> one row each, through the service's own pipeline, on every core.

Each worker process holds one ONNX Runtime session (one thread), decodes with model.audio and
analyses with model.runtime, as the service does. A file that cannot be classified gets a row
with its reason in `error`; the run goes on.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from batch.output import Row, check_format, done_paths, open_writer
from model.audio import AUDIO_SUFFIXES, AudioError, decode_file
from model.card import card_path, load_card
from model.features import FrontEndSettings, one_blas_thread
from model.runtime import GenreModel, window_inputs
from model.windows import coverage_weights

_model: GenreModel | None = None  # one per worker process


def audio_files(paths: list[Path]) -> Iterator[Path]:
    """The files named, and the audio files under the folders named (recursively, in name order)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            yield path


def _start_worker(model_path: str) -> None:
    global _model
    one_blas_thread()  # the worker processes are the parallelism
    _model = GenreModel(Path(model_path), providers="cpu", intra_op_threads=1, inter_op_threads=1)


def error_row(path: str, labels: list[str], reason: str) -> Row:
    return {"path": path, "top_genre": None, **dict.fromkeys(labels), "duration_s": None, "error": reason}


@dataclass(frozen=True)
class Prepared:
    """One file, decoded and through the front end: what inference needs, or why there is nothing."""

    path: str
    inputs: np.ndarray | None  # shape = (windows, frames, features)
    weights: np.ndarray | None  # shape = (windows,): model.windows.coverage_weights
    duration_s: float | None
    error: str | None


def prepare_file(path: str, front_end: FrontEndSettings, max_duration_s: float) -> Prepared:
    """Decode and front end (CPU work, no model). Any failure of this one file becomes its error."""
    try:
        audio = decode_file(Path(path), front_end.sample_rate, max_duration_s=max_duration_s)
        if len(audio.waveform) < front_end.n_fft:
            raise AudioError(f"audio is {audio.duration_s:.3f} s long; shorter than one analysis frame")
        windows, inputs = window_inputs(audio.waveform, front_end)
    except AudioError as e:
        return Prepared(path, None, None, None, str(e))
    except OSError as e:
        return Prepared(path, None, None, None, f"could not read the file: {e.strerror or e}")
    except Exception as e:  # anything else about this one file: reported in its row, never fatal
        return Prepared(path, None, None, None, f"could not classify the file ({type(e).__name__})")
    return Prepared(path, inputs, coverage_weights(windows), round(audio.duration_s, 4), None)


def file_row(prepared: Prepared, probabilities: np.ndarray | None, labels: list[str]) -> Row:
    """The row of a prepared file, given its windows' probabilities (None for a file in error)."""
    if prepared.error is not None or probabilities is None or prepared.weights is None:
        return error_row(prepared.path, labels, prepared.error or "could not classify the file")
    overall = prepared.weights @ probabilities
    return {
        "path": prepared.path,
        "top_genre": labels[int(overall.argmax())],
        **{label: float(p) for label, p in zip(labels, overall, strict=True)},
        "duration_s": prepared.duration_s,
        "error": None,
    }


def classify_file(path: str, max_duration_s: float) -> Row:
    """One file's row (in a worker process)."""
    assert _model is not None, "the worker was not started"
    prepared = prepare_file(path, _model.front_end, max_duration_s)
    probabilities = _model.predict(prepared.inputs)[0] if prepared.inputs is not None else None
    return file_row(prepared, probabilities, _model.labels)


@dataclass(frozen=True)
class Summary:
    files: int
    errors: int
    skipped: int  # already in the output (--resume)


def run(
    paths: list[Path],
    out: Path,
    model_path: Path,
    workers: int = 0,
    resume: bool = False,
    max_duration_s: float = 3600.0,
    progress: bool = True,
) -> Summary:
    """Classify every audio file under `paths` into `out` with `workers` processes (0: one per core)."""
    check_format(out)
    labels = load_card(card_path(model_path)).labels
    done = done_paths(out) if resume else set()
    files = [str(p) for p in audio_files(paths)]
    todo = [f for f in files if f not in done]
    writer = open_writer(out, labels, append=resume)
    errors = 0
    workers = workers or os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no threads forked mid-flight
    try:
        with ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(str(model_path),)) as pool:
            rows = pool.map(classify_file, todo, [max_duration_s] * len(todo), chunksize=4)
            for row in tqdm(rows, total=len(todo), unit="file", disable=not progress, desc="classify"):
                writer.write(row)
                errors += row["error"] is not None
    finally:
        writer.close()
    return Summary(files=len(todo), errors=errors, skipped=len(files) - len(todo))
