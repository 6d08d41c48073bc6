"""The same job as a Ray Data pipeline: `genre classify --ray ADDRESS`.

    paths -> decode + front end (CPU tasks) -> ONNX inference (an actor pool, one session per
    actor, on GPUs where the cluster has them) -> the writer (on the driver)

The rows are the local job's: the same `prepare_file` and `file_row`. ADDRESS is a cluster's
(`ray://head:10001`, `auto`), or `local` for a cluster in this process's machine, kept on
127.0.0.1. Needs the `ray` extra: pip install 'genre-service[ray]'.

What crosses between the stages is typed so that Ray Data cannot coerce it: a path (a string)
and one opaque value (bytes) per file. Ray Data infers each block's column types from the values
it holds, so a column of optional values (an error that is None in every row of a batch, inputs
that are None for a batch of failures, arrays of different shapes) comes back as NaN, nulls or
another type depending on what else the batch held; a prepared file travels pickled, and a row
as its JSON line, exactly as the local job would write it.
"""

from __future__ import annotations

import json
import os
import pickle
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from batch.job import PreparedFile, file_row, prepare_file, todo_files
from batch.output import Row, RowSchema, RowSink, Summary, check_format, open_writer
from model.card import card_path, load_card
from model.pipeline import Limits, Pipeline
from model.runtime import GenreModel, Outputs

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


def prepare_row(row: dict[str, Any], pipeline: Pipeline) -> dict[str, Any]:
    """Ray task: one path -> the file through the front end, pickled (the pipeline travels with the task)."""
    return {"path": row["path"], "prepared": pickle.dumps(prepare_file(row["path"], pipeline))}


class Scorer:
    """Ray actor: one ONNX Runtime session; scores the windows of a batch of files in one call."""

    def __init__(self, model_path: str, use_gpu: bool, pipeline: Pipeline, schema: RowSchema) -> None:
        self.model = GenreModel(Path(model_path), providers="auto" if use_gpu else "cpu", intra_op_threads=1)
        self.pipeline, self.schema = pipeline, schema

    def __call__(self, batch: pa.Table) -> dict[str, list[str]]:
        prepared: list[PreparedFile] = [pickle.loads(blob) for blob in batch.column("prepared").to_pylist()]
        ready = {i: p.audio for i, p in enumerate(prepared) if p.audio is not None}
        outputs: dict[int, Outputs] = {}
        # Windows of equal length (every full 30 s window) go in one call; a short file's own.
        for length in {audio.inputs.shape[1] for audio in ready.values()}:
            same = [i for i, audio in ready.items() if audio.inputs.shape[1] == length]
            scored = self.model.predict(np.concatenate([ready[i].inputs for i in same]))
            ends = np.cumsum([len(ready[i].inputs) for i in same])
            for i, end, n in zip(same, ends, (len(ready[i].inputs) for i in same), strict=True):
                outputs[i] = scored.rows(int(end) - n, int(end))
        rows = [file_row(p, outputs.get(i), self.pipeline, self.schema) for i, p in enumerate(prepared)]
        return {"row": [json.dumps(row) for row in rows]}


def run_on_ray(
    paths: list[Path],
    out: Path,
    model_path: Path,
    address: str,
    resume: bool = False,
    limits: Limits | None = None,
    music_threshold: float | None = None,
    progress: bool = True,
    actors: int = 0,
    files_per_batch: int = FILES_PER_BATCH,
    embeddings: bool = False,
) -> Summary:
    """Classify every audio file under `paths` into `out` on the Ray cluster at `address`."""
    import ray

    check_format(out)
    card = load_card(card_path(model_path))
    pipeline = Pipeline.of(card, limits, music_threshold)  # refuses what the model cannot serve, before any work
    schema = RowSchema.of(card, embeddings)
    # On a cluster, paths every node can read (shared storage).
    todo, skipped = todo_files(paths, out, resume, schema)
    with RowSink(open_writer(out, schema, append=resume), schema, todo, skipped) as sink:
        if todo:
            connect(address)
            ray.data.DataContext.get_current().enable_progress_bars = False
            resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
            gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
            pool = actors or max(gpus, max(1, cpus // 2))
            rows = (
                ray.data.from_items([{"path": f} for f in todo])
                .map(partial(prepare_row, pipeline=pipeline))
                .map_batches(
                    Scorer,
                    fn_constructor_kwargs={
                        "model_path": str(model_path),
                        "use_gpu": gpus > 0,
                        "pipeline": pipeline,
                        "schema": schema,
                    },
                    batch_size=files_per_batch,
                    compute=ray.data.ActorPoolStrategy(size=pool),
                    num_gpus=1 if gpus else 0,
                    batch_format="pyarrow",
                )
            )
            for row in tqdm(rows.iter_rows(), total=len(todo), unit="file", disable=not progress, desc="classify"):
                decoded: Row = json.loads(row["row"])
                sink.write(decoded)
    return sink.summary()
