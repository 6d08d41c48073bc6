"""The same job as a Ray Data pipeline: `genre classify --ray ADDRESS`.

    paths -> decode + front end (CPU tasks) -> ONNX inference (an actor pool, one session per
    actor, on GPUs where the cluster has them) -> the writer (on the driver)

The rows are the local job's: the same `prepare_file` and `file_row`. ADDRESS is a cluster's
(`ray://head:10001`, `auto`), or `local` for a cluster in this process's machine, kept on
127.0.0.1. Needs the `ray` extra: pip install 'genre-service[ray]'.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from batch.job import Prepared, Summary, audio_files, file_row, prepare_file
from batch.output import Row, check_format, done_paths, open_writer
from model.card import card_path, load_card
from model.runtime import GenreModel

FILES_PER_BATCH = 8  # files whose windows one actor scores in one ONNX call


def connect(address: str) -> None:
    """Join the cluster at `address`, or start one here for `local`; reuse one already joined."""
    import ray

    if ray.is_initialized():
        return
    if address == "local":
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind to 127.0.0.1, not the LAN
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)


def prepare_row(row: dict[str, Any], model_path: str, max_duration_s: float) -> dict[str, Any]:
    """Ray task: one path -> its prepared inputs, as a row of plain values."""
    front_end = load_card(card_path(Path(model_path))).check_compatible()
    prepared = prepare_file(row["path"], front_end, max_duration_s)
    return {
        "path": prepared.path,
        "inputs": prepared.inputs,
        "weights": prepared.weights,
        "duration_s": prepared.duration_s,
        "error": prepared.error,
    }


class Scorer:
    """Ray actor: one ONNX Runtime session; scores the windows of a batch of files in one call."""

    def __init__(self, model_path: str, use_gpu: bool) -> None:
        self.model = GenreModel(Path(model_path), providers="auto" if use_gpu else "cpu", intra_op_threads=1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        prepared = [
            Prepared(path, inputs, weights, duration_s, error)
            for path, inputs, weights, duration_s, error in zip(
                batch["path"], batch["inputs"], batch["weights"], batch["duration_s"], batch["error"], strict=True
            )
        ]
        ready = [p for p in prepared if p.inputs is not None]
        scored: dict[str, np.ndarray] = {}
        if ready:
            inputs = [np.asarray(p.inputs, dtype=np.float32) for p in ready]
            # Windows of equal length (every full 30 s window) go in one call; a short file's own.
            for length in {x.shape[1] for x in inputs}:
                same = [i for i, x in enumerate(inputs) if x.shape[1] == length]
                probabilities = self.model.predict(np.concatenate([inputs[i] for i in same]))[0]
                splits = np.cumsum([len(inputs[i]) for i in same])[:-1]
                for i, part in zip(same, np.split(probabilities, splits), strict=True):
                    scored[ready[i].path] = part
        rows = [file_row(p, scored.get(p.path), self.model.labels) for p in prepared]
        return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}


def plain_row(row: dict[str, Any]) -> Row:
    """A row as Ray Data hands it back (numpy scalars, NaN for a missing number) as the local job's."""
    out: Row = {}
    for key, value in row.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = None if isinstance(value, float) and np.isnan(value) else value
    return out


def run_on_ray(
    paths: list[Path],
    out: Path,
    model_path: Path,
    address: str,
    resume: bool = False,
    max_duration_s: float = 3600.0,
    progress: bool = True,
    actors: int = 0,
) -> Summary:
    """Classify every audio file under `paths` into `out` on the Ray cluster at `address`."""
    import ray

    check_format(out)
    labels = load_card(card_path(model_path)).labels
    done = done_paths(out) if resume else set()
    files = [str(p) for p in audio_files(paths)]  # on a cluster, paths every node can read (shared storage)
    todo = [f for f in files if f not in done]
    writer = open_writer(out, labels, append=resume)
    errors = 0
    try:
        if todo:
            connect(address)
            ray.data.DataContext.get_current().enable_progress_bars = False
            resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
            gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
            pool = actors or max(gpus, max(1, cpus // 2))
            rows = (
                ray.data.from_items([{"path": f} for f in todo])
                .map(partial(prepare_row, model_path=str(model_path), max_duration_s=max_duration_s))
                .map_batches(
                    Scorer,
                    fn_constructor_kwargs={"model_path": str(model_path), "use_gpu": gpus > 0},
                    batch_size=FILES_PER_BATCH,
                    concurrency=pool,
                    num_gpus=1 if gpus else 0,
                    batch_format="numpy",
                )
            )
            for row in tqdm(rows.iter_rows(), total=len(todo), unit="file", disable=not progress, desc="classify"):
                clean = plain_row(row)
                writer.write(clean)
                errors += clean["error"] is not None
    finally:
        writer.close()
    return Summary(files=len(todo), errors=errors, skipped=len(files) - len(todo))
