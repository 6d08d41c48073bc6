"""`genre classify` on a generated library: every file gets a row, bad ones an error, in each format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from batch.cli import main
from batch.output import columns, read_rows
from model.audio import decode_file
from model.runtime import GenreModel
from tests.helpers import ROOT


def classify(*args: str) -> int:
    return main(["classify", *args, "--workers", "2", "--quiet"])


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_every_file_gets_a_row(library: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"genres{suffix}"
    assert classify(str(library), "--out", str(out)) == 0
    rows = {Path(r["path"]).name: r for r in read_rows(out)}
    assert set(rows) == {"a.wav", "b.flac", "c.m4a", "d.webm", "broken.mp3", "tiny.wav"}
    model = GenreModel(providers="cpu")
    assert list(next(iter(rows.values()))) == columns(model.labels)
    for name in ("a.wav", "b.flac", "c.m4a", "d.webm"):
        row = rows[name]
        probabilities = np.array([float(row[label]) for label in model.labels])
        assert row["error"] in (None, "") and probabilities.sum() == pytest.approx(1.0, abs=1e-4)
        assert row["top_genre"] == model.labels[int(probabilities.argmax())]
    assert "could not be decoded as audio" in rows["broken.mp3"]["error"]
    assert "shorter than one analysis frame" in rows["tiny.wav"]["error"]
    assert float(rows["b.flac"]["duration_s"]) == pytest.approx(35.0, abs=0.01)


def test_rows_are_the_services_answers(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "genres.jsonl"
    classify(str(library / "album" / "b.flac"), "--out", str(out))
    [row] = read_rows(out)
    model = GenreModel(providers="cpu")
    expected = model.analyse(decode_file(library / "album" / "b.flac").waveform).probabilities
    np.testing.assert_allclose([row[label] for label in model.labels], expected, atol=1e-5)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_resume_skips_the_files_already_done(library: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"genres{suffix}"
    first = library / "a.wav"
    assert classify(str(first), "--out", str(out)) == 0
    assert classify(str(library), "--out", str(out), "--resume") == 0
    paths = [r["path"] for r in read_rows(out)]
    assert len(paths) == len(set(paths)) == 6 and paths[0] == str(first)


def test_the_command_line_reports_and_refuses_clearly(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "genres.csv"
    result = subprocess.run(
        [sys.executable, "-m", "batch.cli", "classify", str(library / "album"), "--out", str(out), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "4 file(s) classified" in result.stderr and "1 with errors" in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "batch.cli", "classify", str(library), "--out", str(tmp_path / "x.xlsx")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "must end in .jsonl, .csv, .parquet" in bad.stderr
    assert "Traceback" not in bad.stderr
