"""Result rows and the files they go to: JSON lines, CSV or Parquet, chosen by the file's extension.

One row per audio file: `path`, `top_genre`, one probability column per label, `duration_s` and
`error` (None, or a human message; then the other values are empty). JSON lines and CSV are
written row by row as results arrive, so an interrupted run keeps what it finished and
`--resume` carries on from there; Parquet is written once, at the end.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

Row = dict[str, Any]
FORMATS = (".jsonl", ".csv", ".parquet")


def columns(labels: list[str]) -> list[str]:
    return ["path", "top_genre", *labels, "duration_s", "error"]


def check_format(path: Path) -> None:
    if path.suffix not in FORMATS:
        raise ValueError(f"the output must end in {', '.join(FORMATS)}, not {path.name!r}")
    if path.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError("Parquet output needs pyarrow: pip install 'genre-service[parquet]'") from None


def done_paths(path: Path) -> set[str]:
    """The files an earlier run already wrote a row for (for --resume)."""
    if not path.exists():
        return set()
    if path.suffix == ".jsonl":
        with open(path) as f:
            return {json.loads(line)["path"] for line in f if line.strip()}
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            return {row["path"] for row in csv.DictReader(f)}
    import pyarrow.parquet as pq

    return set(pq.read_table(path, columns=["path"]).column("path").to_pylist())


class Writer(Protocol):
    def write(self, row: Row) -> None: ...
    def close(self) -> None: ...


class JsonLinesWriter:
    def __init__(self, path: Path, labels: list[str], append: bool) -> None:
        self.file = open(path, "a" if append else "w")  # noqa: SIM115  (closed by close())

    def write(self, row: Row) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class CsvWriter:
    def __init__(self, path: Path, labels: list[str], append: bool) -> None:
        fresh = not (append and path.exists() and path.stat().st_size)
        self.file = open(path, "a" if append else "w", newline="")  # noqa: SIM115  (closed by close())
        self.writer = csv.DictWriter(self.file, fieldnames=columns(labels))
        if fresh:
            self.writer.writeheader()

    def write(self, row: Row) -> None:
        self.writer.writerow(row)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class ParquetWriter:
    """Keeps the rows, and writes them (after an earlier run's, with --resume) when closed."""

    def __init__(self, path: Path, labels: list[str], append: bool) -> None:
        self.path, self.labels = path, labels
        self.rows: list[Row] = []
        self.previous = path if append and path.exists() else None

    def write(self, row: Row) -> None:
        self.rows.append(row)

    def close(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema(
            [("path", pa.string()), ("top_genre", pa.string())]
            + [(label, pa.float64()) for label in self.labels]
            + [("duration_s", pa.float64()), ("error", pa.string())]
        )
        table = pa.Table.from_pylist(self.rows, schema=schema)
        if self.previous is not None:
            table = pa.concat_tables([pq.read_table(self.previous).cast(schema), table])
        pq.write_table(table, self.path)


def open_writer(path: Path, labels: list[str], append: bool) -> Writer:
    kinds: dict[str, type[JsonLinesWriter] | type[CsvWriter] | type[ParquetWriter]] = {
        ".jsonl": JsonLinesWriter,
        ".csv": CsvWriter,
        ".parquet": ParquetWriter,
    }
    return kinds[path.suffix](path, labels, append)


def read_rows(path: Path) -> Iterable[Row]:
    """The rows of an output file (for tests and for users' scripts)."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    import pyarrow.parquet as pq

    rows: list[Row] = pq.read_table(path).to_pylist()
    return rows
