"""The job: audio files -> one row each, through the service's own pipeline, on every core.

Each worker process holds one ONNX Runtime session (one thread) and runs model.pipeline on its
files, as the service does; with one worker, the job runs in the calling process. A file that
cannot be classified gets a row with its reason in `error`; the run goes on. The rows go through
batch.output.RowSink, which holds the job to one full row per file.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from batch.output import Row, RowSchema, RowSink, Summary, check_format, done_paths, open_writer
from model.audio import AUDIO_SUFFIXES, AudioError
from model.card import card_path, load_card
from model.features import one_blas_thread
from model.pipeline import Analysis, Limits, Pipeline, PreparedAudio, top_label
from model.runtime import GenreModel, Outputs

T = TypeVar("T")
R = TypeVar("R")
_worker: tuple[GenreModel, Pipeline, RowSchema] | None = None  # one per worker process


def audio_files(paths: list[Path]) -> Iterator[Path]:
    """The files named, and the audio files under the folders named (recursively, in name order)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            yield path


@dataclass(frozen=True)
class PreparedFile:
    """One file through the front end (`audio`), or the reason it has no answer (`error`)."""

    path: str
    audio: PreparedAudio | None
    error: str | None


def prepare_file(path: str, pipeline: Pipeline) -> PreparedFile:
    """Decode and front end (CPU work, no model). Any failure of this one file becomes its error."""
    try:
        return PreparedFile(path, pipeline.prepare(Path(path)), None)
    except AudioError as e:
        return PreparedFile(path, None, str(e))
    except OSError as e:  # gone, unreadable, or changed under us
        return PreparedFile(path, None, f"could not read the file: {e.strerror or e}")
    except Exception as e:  # anything else about this one file: reported in its row, never fatal
        return PreparedFile(path, None, f"could not classify the file ({type(e).__name__})")


def answer_row(path: str, duration_s: float, analysis: Analysis, schema: RowSchema) -> Row:
    """The row of a classified file: no top genre when it is not music."""
    overall = analysis.probabilities
    embedding = (
        {"embedding": analysis.embedding.tolist()} if schema.embedding_dim and analysis.embedding is not None else {}
    )
    return {
        "path": path,
        "top_genre": top_label(overall, analysis.is_music, schema.labels),
        **{label: float(p) for label, p in zip(schema.labels, overall, strict=True)},
        "music_probability": analysis.music_probability,
        "is_music": analysis.is_music,
        **embedding,
        "duration_s": round(duration_s, 4),
        "error": None,
    }


def file_row(prepared: PreparedFile, outputs: Outputs | None, pipeline: Pipeline, schema: RowSchema) -> Row:
    """The row of a prepared file, given its windows' outputs (None for a file in error)."""
    if prepared.audio is None or outputs is None:
        return schema.error_row(prepared.path, prepared.error or "could not classify the file")
    analysis = pipeline.answer(prepared.audio.windows, outputs)
    return answer_row(prepared.path, prepared.audio.duration_s, analysis, schema)


def _start_worker(model_path: str, pipeline: Pipeline, schema: RowSchema) -> None:
    global _worker
    one_blas_thread()  # the worker processes are the parallelism
    model = GenreModel(Path(model_path), providers="cpu", intra_op_threads=1, inter_op_threads=1)
    _worker = (model, pipeline, schema)


def classify_file(path: str) -> Row:
    """One file's row (in a worker process)."""
    assert _worker is not None, "the worker was not started"
    model, pipeline, schema = _worker
    prepared = prepare_file(path, pipeline)
    outputs = model.predict(prepared.audio.inputs) if prepared.audio is not None else None
    return file_row(prepared, outputs, pipeline, schema)


def bounded_map(pool: ProcessPoolExecutor, fn: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    """pool.map, in order, with at most `ahead` items submitted and not yet consumed: memory stays
    flat however many files there are (Executor.map submits them all at once)."""
    pending: deque[Future[R]] = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def todo_files(paths: list[Path], out: Path, resume: bool, schema: RowSchema) -> tuple[list[str], int]:
    """The files to classify, and how many the output already has (--resume)."""
    done = done_paths(out, schema) if resume else set()
    files = [str(p) for p in audio_files(paths)]
    todo = [f for f in files if f not in done]
    return todo, len(files) - len(todo)


def run(
    paths: list[Path],
    out: Path,
    model_path: Path,
    workers: int = 0,
    resume: bool = False,
    limits: Limits | None = None,
    music_threshold: float | None = None,
    progress: bool = True,
    embeddings: bool = False,
) -> Summary:
    """Classify every audio file under `paths` into `out` with `workers` processes (0: one per core);
    `embeddings`: each row gets its track's embedding too."""
    check_format(out)
    card = load_card(card_path(model_path))
    pipeline = Pipeline.of(card, limits, music_threshold)  # refuses what the model cannot serve, before any work
    schema = RowSchema.of(card, embeddings)
    todo, skipped = todo_files(paths, out, resume, schema)
    workers = workers or os.cpu_count() or 1
    with RowSink(open_writer(out, schema, append=resume), schema, todo, skipped) as sink, ExitStack() as stack:
        if workers == 1:  # in this process: nothing to spawn, so a small job starts at once
            _start_worker(str(model_path), pipeline, schema)
            rows: Iterator[Row] = map(classify_file, todo)
        else:
            context = multiprocessing.get_context("spawn")  # fresh interpreters: no threads forked mid-flight
            initargs = (str(model_path), pipeline, schema)
            pool = stack.enter_context(ProcessPoolExecutor(workers, context, _start_worker, initargs))
            rows = bounded_map(pool, classify_file, todo, ahead=8 * workers)
        for row in tqdm(rows, total=len(todo), unit="file", disable=not progress, desc="classify"):
            sink.write(row)
    return sink.summary()
