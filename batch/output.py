"""Result rows and the files they go to: JSON lines, CSV or Parquet, chosen by the file's extension.

One row per audio file: `path`, `top_genre`, one probability column per label,
`music_probability`, `is_music`, with --embeddings `embedding` (the track's, unit length),
`duration_s` and `error`. A row holds an answer (probabilities, a duration, and a top genre
unless the file is not music) or an error (a human message, and nothing else), never both and
never neither: RowSink checks every row before it is written and stops the job on one that
breaks the rule. `music_probability` and `is_music` are null for a
model without a music detector.

Every format is written as results arrive, so a run that is interrupted, even killed, keeps
what it finished and `--resume` carries on from there:
- JSON lines and CSV are appended and flushed row by row; a last line cut off by a kill is
  dropped when the run is resumed (and that file classified again).
- Parquet goes into complete part files in `<out>.parts/` as rows arrive, merged into `<out>`
  (replaced atomically, so it is always a readable file) when the run ends.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from model.card import ModelCard
from model.library_index import MODEL_KEY, model_id

Row = dict[str, Any]
FORMATS = (".jsonl", ".csv", ".parquet")
ROWS_PER_PART = 1024  # Parquet rows held in memory before they go to a part file


class JobError(RuntimeError):
    """The job broke its promise of one full row per file; it stops, keeping the rows written."""


MUSIC_COLUMNS = ("music_probability", "is_music")


@dataclass(frozen=True)
class RowSchema:
    """What a job's rows hold: a probability per label of its model, and with --embeddings the
    track's embedding of `embedding_dim` values; `model` (model.library_index.model_id) goes into a
    Parquet file's metadata, so a library is searched only under the model that made it."""

    labels: list[str]
    embedding_dim: int = 0  # 0: no embedding column
    model: str = ""

    @classmethod
    def of(cls, card: ModelCard, embeddings: bool = False) -> RowSchema:
        """Raises ValueError when embeddings are asked of a model without them."""
        if embeddings and card.embedding is None:
            raise ValueError(f"model {model_id(card)} has no embedding output; --embeddings needs model 2.3 or later")
        return cls(card.labels, card.embedding.dimension if embeddings and card.embedding else 0, model_id(card))

    @property
    def columns(self) -> list[str]:
        embedding = ["embedding"] if self.embedding_dim else []
        return ["path", "top_genre", *self.labels, *MUSIC_COLUMNS, *embedding, "duration_s", "error"]

    def error_row(self, path: str, reason: str) -> Row:
        return {**dict.fromkeys(self.columns), "path": path, "error": reason}

    def problem(self, row: Row) -> str | None:
        """Why a row breaks the rule (an answer or an error, never both, never neither), or None."""
        if list(row) != self.columns:
            return f"its columns are {list(row)}, not {self.columns}"
        labels = self.labels
        values = [row[label] for label in labels]
        if row["error"] is not None:
            if not isinstance(row["error"], str) or not row["error"].strip():
                return f"its error is {row['error']!r}, not a message"
            if any(row[c] is not None for c in self.columns if c not in ("path", "error")):
                return "it has both an error and an answer"
            return None
        if (row["music_probability"] is None) != (row["is_music"] is None):
            return "it has a music probability without a verdict, or a verdict without one"
        if row["music_probability"] is not None and not 0.0 <= row["music_probability"] <= 1.0:
            return f"its music probability is {row['music_probability']!r}"
        if row["is_music"] is False:
            if row["top_genre"] is not None:
                return "it is not music, yet has a top genre"
        elif row["top_genre"] not in labels:
            return f"it has neither an error nor a top genre (top_genre is {row['top_genre']!r})"
        if not all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values) or not math.isclose(
            sum(values), 1.0, abs_tol=1e-3
        ):
            return "its probabilities are not a distribution over the labels"
        if row["top_genre"] is not None and labels[max(range(len(labels)), key=values.__getitem__)] != row["top_genre"]:
            return "its top genre is not its most probable label"
        if not isinstance(row["duration_s"], float) or not math.isfinite(row["duration_s"]) or row["duration_s"] < 0:
            return f"its duration is {row['duration_s']!r}"
        if self.embedding_dim:
            embedding = row["embedding"]
            if not isinstance(embedding, list) or len(embedding) != self.embedding_dim:
                return f"its embedding is not a list of {self.embedding_dim} values"
            if not all(isinstance(v, float) and math.isfinite(v) for v in embedding) or not math.isclose(
                math.fsum(v * v for v in embedding), 1.0, abs_tol=1e-3
            ):
                return "its embedding is not a unit vector"
        return None


def check_format(path: Path) -> None:
    if path.suffix not in FORMATS:
        raise ValueError(f"the output must end in {', '.join(FORMATS)}, not {path.name!r}")


def parts_folder(path: Path) -> Path:
    """Where a Parquet output's rows wait until the run ends."""
    return path.with_name(path.name + ".parts")


def part_files(path: Path) -> list[Path]:
    folder = parts_folder(path)
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def drop_torn_tail(path: Path) -> None:
    """Cut a last line that a killed run left unfinished (JSON lines, CSV), so the file is whole."""
    with open(path, "rb+") as f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return
        position = end
        while position > 0:
            start = max(0, position - (1 << 16))
            f.seek(start)
            newline = f.read(position - start).rfind(b"\n")
            if newline >= 0:
                f.truncate(start + newline + 1)
                return
            position = start
        f.truncate(0)


def written_columns(path: Path) -> list[str] | None:
    """The columns of an earlier run's output, or None when it has no row yet."""
    if path.suffix == ".parquet":
        sources = ([path] if path.exists() else []) + part_files(path)
        return list(pq.read_schema(sources[0]).names) if sources else None
    if not path.exists() or not path.stat().st_size:
        return None
    with open(path, newline="") as f:
        first = f.readline()
    if path.suffix == ".csv":
        return next(csv.reader([first]))
    try:
        return list(json.loads(first))
    except ValueError:
        return None  # a torn first line: drop_torn_tail cuts it


def done_paths(path: Path, schema: RowSchema) -> set[str]:
    """The files an earlier run already wrote a row for (for --resume); a torn last line is cut.
    Raises ValueError for an output of other columns (another model's labels, an older version's, or
    one with or without embeddings)."""
    found = written_columns(path)
    if found is not None and found != schema.columns:
        raise ValueError(
            f"{path} has the columns {', '.join(found)}; this job writes {', '.join(schema.columns)}. "
            "Resume into the file of the same model, version and options, or write a new file"
        )
    if path.suffix == ".parquet":
        sources = ([path] if path.exists() else []) + part_files(path)
        made_by = {(pq.read_schema(s).metadata or {}).get(MODEL_KEY, b"").decode() for s in sources}
        if made_by - {schema.model}:
            raise ValueError(
                f"{path} holds rows of {', '.join(sorted(m or 'an unknown model' for m in made_by))}; this job runs "
                f"{schema.model}. Resume into a file of the same model, or write a new file"
            )
        return {p for source in sources for p in pq.read_table(source, columns=["path"]).column("path").to_pylist()}
    if not path.exists():
        return set()
    drop_torn_tail(path)
    if path.suffix == ".jsonl":
        with open(path) as f:
            return {json.loads(line)["path"] for line in f if line.strip()}
    with open(path, newline="") as f:
        return {row["path"] for row in csv.DictReader(f)}


class Writer(Protocol):
    def write(self, row: Row) -> None: ...
    def close(self) -> None: ...


class JsonLinesWriter:
    def __init__(self, path: Path, schema: RowSchema, append: bool) -> None:
        self.file = open(path, "a" if append else "w")  # noqa: SIM115  (closed by close())

    def write(self, row: Row) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class CsvWriter:
    """An embedding goes into its cell as a JSON list."""

    def __init__(self, path: Path, schema: RowSchema, append: bool) -> None:
        fresh = not (append and path.exists() and path.stat().st_size)
        self.file = open(path, "a" if append else "w", newline="")  # noqa: SIM115  (closed by close())
        self.writer = csv.DictWriter(self.file, fieldnames=schema.columns, lineterminator="\n")
        if fresh:
            self.writer.writeheader()

    def write(self, row: Row) -> None:
        embedding = row.get("embedding")
        self.writer.writerow(row if embedding is None else {**row, "embedding": json.dumps(embedding)})
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class ParquetWriter:
    """Rows into part files as they come; on close, the earlier output (with --resume), the parts
    and the last rows merged into the output, each file once."""

    def __init__(self, path: Path, schema: RowSchema, append: bool) -> None:
        self.path, self.append = path, append
        embedding = [("embedding", pa.list_(pa.float32(), schema.embedding_dim))] if schema.embedding_dim else []
        self.schema = pa.schema(
            [("path", pa.string()), ("top_genre", pa.string())]
            + [(label, pa.float64()) for label in schema.labels]
            + [("music_probability", pa.float64()), ("is_music", pa.bool_())]
            + embedding
            + [("duration_s", pa.float64()), ("error", pa.string())],
            metadata={MODEL_KEY: schema.model.encode()},
        )
        self.parts = parts_folder(path)
        if not append:  # a fresh run: an earlier run's parts are not this one's rows
            shutil.rmtree(self.parts, ignore_errors=True)
        self.parts.mkdir(exist_ok=True)
        self.next_part = len(part_files(path))
        self.rows: list[Row] = []

    def write(self, row: Row) -> None:
        self.rows.append(row)
        if len(self.rows) >= ROWS_PER_PART:
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        part = self.parts / f"part-{self.next_part:06d}.parquet"
        unfinished = part.with_suffix(".unfinished")
        pq.write_table(pa.Table.from_pylist(self.rows, schema=self.schema), unfinished)
        os.replace(unfinished, part)  # a part file is whole or absent
        self.next_part += 1
        self.rows = []

    def close(self) -> None:
        self._flush()
        sources = ([self.path] if self.append and self.path.exists() else []) + part_files(self.path)
        merged = self.path.with_name(self.path.name + ".unfinished")
        seen: set[str] = set()  # a kill between the replace and the clean-up below leaves rows twice
        with pq.ParquetWriter(merged, self.schema) as out:
            for source in sources:
                for batch in pq.ParquetFile(source).iter_batches():
                    table = pa.Table.from_batches([batch]).cast(self.schema)
                    keep = [p not in seen for p in table.column("path").to_pylist()]
                    seen.update(table.column("path").to_pylist())
                    out.write_table(table.filter(pa.array(keep)))
        os.replace(merged, self.path)
        shutil.rmtree(self.parts)


def open_writer(path: Path, schema: RowSchema, append: bool) -> Writer:
    kinds: dict[str, type[JsonLinesWriter] | type[CsvWriter] | type[ParquetWriter]] = {
        ".jsonl": JsonLinesWriter,
        ".csv": CsvWriter,
        ".parquet": ParquetWriter,
    }
    return kinds[path.suffix](path, schema, append)


@dataclass(frozen=True)
class Summary:
    files: int  # rows written by this run
    errors: int  # of them, rows with an error
    skipped: int  # already in the output (--resume)


class RowSink:
    """The one way rows reach a writer: each is checked (an answer or an error, for a file of this
    job not yet written) and counted; on leaving, every file must have had its row."""

    def __init__(self, writer: Writer, schema: RowSchema, todo: list[str], skipped: int) -> None:
        self.writer, self.schema, self.skipped = writer, schema, skipped
        self.waiting = set(todo)
        self.files = self.errors = 0

    def write(self, row: Row) -> None:
        problem = self.schema.problem(row)
        path = row.get("path")
        if problem is None and path not in self.waiting:
            problem = "it is not a file of this job, or its second row"
        if problem is not None:
            raise JobError(
                f"the row for {path!r} is broken: {problem}. The job stopped after {self.files} good row(s), "
                "which are kept; this is a bug, please report it"
            )
        self.writer.write(row)
        self.waiting.discard(path)
        self.files += 1
        self.errors += row["error"] is not None

    def summary(self) -> Summary:
        return Summary(self.files, self.errors, self.skipped)

    def __enter__(self) -> RowSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.writer.close()  # what was written stays readable, whatever stopped the job
        if kind is None and self.waiting:
            example = sorted(self.waiting)[0]
            raise JobError(
                f"{len(self.waiting)} file(s) got no row (for example {example!r}); "
                "the rows written are kept: run again with --resume"
            )


def typed_csv_row(row: dict[str, str]) -> Row:
    """A CSV row with the types it was written with: text, None for an empty cell, a verdict, an
    embedding, numbers."""
    text = {"path", "top_genre", "error"}
    verdicts = {"True": True, "False": False}

    def typed(column: str, cell: str) -> Any:
        if cell == "" or column in text:
            return cell or None
        return verdicts[cell] if column == "is_music" else json.loads(cell) if column == "embedding" else float(cell)

    return {k: typed(k, v) for k, v in row.items()}


def read_rows(path: Path) -> Iterable[Row]:
    """The rows of an output file (for tests and for users' scripts)."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            return [typed_csv_row(row) for row in csv.DictReader(f)]
    rows: list[Row] = pq.read_table(path).to_pylist()
    return rows
