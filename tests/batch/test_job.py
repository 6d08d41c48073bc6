"""The local job under faults: killed mid-write and resumed, files that vanish or change while it
runs; and what each worker process sets up before its first file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from batch import job
from batch.cli import main
from batch.output import part_files, read_rows
from model.features import DEFAULT_SETTINGS
from model.pipeline import Pipeline
from model.runtime import DEFAULT_MODEL_PATH
from tests.batch.songs import song, write_library
from tests.helpers import ROOT, SHIPPED_ROWS, blas_threads


def test_a_worker_runs_numpy_blas_on_one_thread() -> None:
    threadpool_limits(2, user_api="blas")  # as a spawned interpreter starts on a 2-core machine
    job._start_worker(str(DEFAULT_MODEL_PATH), Pipeline(DEFAULT_SETTINGS), SHIPPED_ROWS)
    threads = blas_threads()
    assert threads and all(n == 1 for n in threads)


def wait_for(condition: Callable[[], bool], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def rows_written(out: Path) -> int:
    if out.suffix == ".parquet":
        return len(part_files(out))
    return out.read_bytes().count(b"\n") if out.exists() else 0


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_a_job_killed_mid_write_and_resumed_has_every_file_once(tmp_path: Path, suffix: str) -> None:
    library = write_library(tmp_path / "library", ["wav_22k", "short", "corrupt", "two_windows"] * 5)
    out = tmp_path / f"genres{suffix}"
    # Parquet in parts of 2 rows, so that the kill finds some parts written (1024 rows otherwise).
    code = (
        "import sys, batch.output, batch.cli; batch.output.ROWS_PER_PART = 2; "
        f"sys.exit(batch.cli.main(['classify', {str(library)!r}, '--out', {str(out)!r}, '--workers', '1', '--quiet']))"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    try:
        wait_for(lambda: rows_written(out) >= 3)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the job and its worker processes, mid-run
        process.wait()
    assert main(["classify", str(library), "--out", str(out), "--resume", "--workers", "1", "--quiet"]) == 0
    rows = list(read_rows(out))
    paths = sorted(r["path"] for r in rows)
    assert paths == sorted(str(p) for p in library.iterdir())  # every file, once
    for row in rows:
        assert SHIPPED_ROWS.problem(row) is None, row
    if suffix != ".parquet":
        assert out.read_bytes().endswith(b"\n")


def test_files_that_vanish_or_change_during_the_job_get_error_rows(tmp_path: Path) -> None:
    library = write_library(tmp_path / "library", ["two_windows"] * 16)
    doomed, changed = sorted(library.iterdir())[-2:]
    out = tmp_path / "genres.jsonl"
    result: list[int] = []
    command = ["classify", str(library), "--out", str(out), "--workers", "1", "--quiet"]
    worker = threading.Thread(target=lambda: result.append(main(command)))
    worker.start()
    wait_for(lambda: rows_written(out) >= 1)
    doomed.unlink()
    changed.write_bytes(song("corrupt"))
    worker.join()
    assert result == [0]
    rows = {r["path"]: r for r in read_rows(out)}
    assert len(rows) == 16
    assert "could not read the file: No such file or directory" in rows[str(doomed)]["error"]
    assert "could not be decoded as audio" in rows[str(changed)]["error"]


def test_a_named_file_that_does_not_exist_gets_an_error_row(tmp_path: Path) -> None:
    out = tmp_path / "genres.jsonl"
    assert main(["classify", str(tmp_path / "gone.flac"), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    [row] = read_rows(out)
    assert row["error"] == "could not read the file: No such file or directory"
