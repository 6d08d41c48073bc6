"""`genre classify` on a generated library: every file gets a row, bad ones an error, in each format."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from batch.cli import main
from batch.output import read_rows
from bench.common import REFERENCE_MODEL
from model.features import SAMPLE_RATE
from model.pipeline import Pipeline
from model.runtime import GenreModel
from tests.audio import encode
from tests.helpers import ROOT, SHIPPED_CARD, SHIPPED_ROWS, embedding_library, real_music


def classify(*args: str) -> int:
    return main(["classify", *args, "--workers", "2", "--quiet"])


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_every_file_gets_a_row(library: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"genres{suffix}"
    assert classify(str(library), "--out", str(out)) == 0
    rows = {Path(r["path"]).name: r for r in read_rows(out)}
    assert set(rows) == {"a.wav", "b.flac", "c.m4a", "d.webm", "broken.mp3", "tiny.wav", "hiss.wav"}
    model = GenreModel(providers="cpu")
    assert list(next(iter(rows.values()))) == SHIPPED_ROWS.columns
    for name in ("a.wav", "b.flac", "c.m4a", "d.webm", "hiss.wav"):
        row = rows[name]
        probabilities = np.array([float(row[label]) for label in model.labels])
        assert row["error"] in (None, "") and probabilities.sum() == pytest.approx(1.0, abs=1e-4)
        assert 0 <= float(row["music_probability"]) <= 1 and str(row["is_music"]) in ("True", "False", "true", "false")
        music = str(row["is_music"]).lower() == "true"
        assert row["top_genre"] in ((model.labels[int(probabilities.argmax())],) if music else (None, ""))
    assert str(rows["hiss.wav"]["is_music"]).lower() == "false"  # white noise: not music, no genre
    assert "could not be decoded as audio" in rows["broken.mp3"]["error"]
    assert "the minimum is 1 s" in rows["tiny.wav"]["error"]  # the service's own limit
    assert float(rows["b.flac"]["duration_s"]) == pytest.approx(35.0, abs=0.01)


def test_rows_are_the_services_answers(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "genres.jsonl"
    classify(str(library / "album" / "b.flac"), "--out", str(out))
    [row] = read_rows(out)
    model = GenreModel(providers="cpu")
    _, analysis = Pipeline.of(model.card).classify(model, library / "album" / "b.flac")
    expected = analysis.probabilities
    np.testing.assert_allclose([row[label] for label in model.labels], expected, atol=1e-5)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_resume_skips_the_files_already_done(library: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"genres{suffix}"
    first = library / "a.wav"
    assert classify(str(first), "--out", str(out)) == 0
    assert classify(str(library), "--out", str(out), "--resume") == 0
    paths = [r["path"] for r in read_rows(out)]
    assert len(paths) == len(set(paths)) == 7 and paths[0] == str(first)


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
    assert next(iter(read_rows(out)))["music_probability"] != ""  # the detector's columns are filled
    bad = subprocess.run(
        [sys.executable, "-m", "batch.cli", "classify", str(library), "--out", str(tmp_path / "x.xlsx")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "must end in .jsonl, .csv, .parquet" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_limits_are_the_services_and_can_be_moved(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "genres.jsonl"
    assert classify(str(library), "--out", str(out), "--max-duration-s", "20", "--min-duration-s", "0.1") == 0
    rows = {Path(r["path"]).name: r for r in read_rows(out)}
    assert rows["b.flac"]["error"].startswith("audio is longer than the maximum of 20 s")
    assert "the minimum is 0.1 s" in rows["tiny.wav"]["error"]
    hop = tmp_path / "hop.jsonl"
    assert classify(str(library / "album" / "b.flac"), "--out", str(hop), "--hop-s", "4") == 0
    assert [r["error"] for r in read_rows(hop)] == [None]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--min-duration-s", "0.01"], "one STFT frame"),
        (["--hop-s", "45"], "30 s window"),
        (["--min-duration-s", "5", "--max-duration-s", "2"], "not exceed the maximum"),
        (["--actors", "-1"], "must not be negative"),
    ],
)
def test_limits_the_model_cannot_serve_are_refused_before_any_work(
    library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    out = tmp_path / "genres.jsonl"
    assert classify(str(library), "--out", str(out), *option) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_a_broken_row_stops_the_job_with_status_1(
    library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def empty_rows(path: str) -> dict[str, object]:  # what Ray Data's NaN errors used to make
        return {key: None for key in SHIPPED_ROWS.columns} | {"path": path}

    monkeypatch.setattr("batch.job.classify_file", empty_rows)
    monkeypatch.setattr("batch.job._start_worker", lambda *_: None)
    monkeypatch.setattr("batch.job.ProcessPoolExecutor", ThreadPoolExecutor)  # patched code runs here
    out = tmp_path / "genres.jsonl"
    assert classify(str(library), "--out", str(out)) == 1
    assert "neither an error nor a top genre" in capsys.readouterr().err
    assert out.read_text() == ""


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return embedding_library(tmp_path_factory.mktemp("embedded"))


def similar(*args: str) -> int:
    return main(["similar", *args])


def test_embeddings_go_into_every_row_with_an_answer(embedded: Path) -> None:
    rows = {Path(r["path"]).name: r for r in read_rows(embedded)}
    assert len(rows["song-0.wav"]["embedding"]) == SHIPPED_CARD.embedding.dimension  # type: ignore[union-attr]
    assert np.linalg.norm(rows["song-1.wav"]["embedding"]) == pytest.approx(1.0, abs=1e-5)
    assert rows["broken.mp3"]["embedding"] is None and rows["broken.mp3"]["error"]
    assert rows["copy-of-song-0.wav"]["embedding"] == rows["song-0.wav"]["embedding"]


def test_similar_to_a_track_of_the_library_puts_its_duplicate_first(
    embedded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = str(embedded.parent / "song-0.wav")
    assert similar(query, "--index", str(embedded), "-k", "3", "--json") == 0
    found = json.loads(capsys.readouterr().out)
    assert [list(n) for n in found] == [["path", "similarity", "top_genre"]] * 3
    assert found[0]["path"].endswith("copy-of-song-0.wav") and found[0]["similarity"] == pytest.approx(1.0, abs=1e-5)
    assert query not in [n["path"] for n in found]  # the query itself is not its own neighbour
    assert [n["similarity"] for n in found] == sorted((n["similarity"] for n in found), reverse=True)


def test_similar_to_an_audio_file_finds_the_same_music_in_another_codec(
    embedded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "the same song.flac"
    other.write_bytes(encode(real_music(2, seconds=12.0)[1], SAMPLE_RATE, "FLAC", "PCM_16"))
    assert similar(str(other), "--index", str(embedded), "-k", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith("song-1.wav")
    similarity, genre, _ = lines[0].split(maxsplit=2)
    assert float(similarity) > 0.99 and genre in SHIPPED_CARD.labels


def test_similar_with_a_genre_lists_only_that_genre(embedded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [r for r in read_rows(embedded) if r["top_genre"]]
    genre = rows[-1]["top_genre"]
    assert similar(str(embedded.parent / "song-0.wav"), "--index", str(embedded), "--genre", genre, "--json") == 0
    found = json.loads(capsys.readouterr().out)
    assert found and all(n["top_genre"] == genre for n in found)
    assert len(found) == sum(r["top_genre"] == genre and not r["path"].endswith("/song-0.wav") for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere.wav"], "neither an audio file nor a track of"),
        (["song-0.wav", "--genre", "polka"], "--genre must be one of"),
        (["song-0.wav", "-k", "0"], "-k must be at least 1"),
        (["song-0.wav", "--model", str(REFERENCE_MODEL)], "has no embedding output"),
    ],
)
def test_similar_refuses_clearly(
    embedded: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    query, *rest = args
    path = str(embedded.parent / query) if query == "song-0.wav" else query
    assert similar(path, "--index", str(embedded), *rest) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_similar_needs_a_library_of_embeddings(
    library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.parquet"
    assert classify(str(library / "a.wav"), "--out", str(plain)) == 0
    assert similar(str(library / "a.wav"), "--index", str(plain)) == 2
    assert "no embedding column; write it with `genre classify --embeddings`" in capsys.readouterr().err
    assert (
        classify(
            str(library / "a.wav"),
            "--out",
            str(tmp_path / "old.jsonl"),
            "--embeddings",
            "--model",
            str(REFERENCE_MODEL),
        )
        == 2
    )
    assert "has no embedding output" in capsys.readouterr().err
