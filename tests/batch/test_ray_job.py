"""`genre classify --ray local`: the local job's rows, whatever a Ray Data batch holds, and under faults.

Every test here shares one local 2-CPU Ray (tests/conftest.py), on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batch.cli import main
from batch.output import Row, RowSchema, read_rows
from model.card import card_path, load_card, write_card
from model.library_index import LibraryIndex
from tests.batch.songs import SONG_KINDS, write_library
from tests.helpers import SHIPPED_CARD, SHIPPED_LABELS, copy_model

LABELS = list(SHIPPED_LABELS)
pytestmark = pytest.mark.usefixtures("ray_cluster")


def classify(library: Path, out: Path, *options: str) -> int:
    return main(["classify", str(library), "--out", str(out), "--quiet", *options])


def rows_by_path(out: Path) -> dict[str, Row]:
    rows = list(read_rows(out))
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows), "a file got two rows"
    return by_path


def assert_same_rows(got: dict[str, Row], expected: dict[str, Row]) -> None:
    """The same files, each with the same answer or error (probabilities to float precision)."""
    assert set(got) == set(expected)
    for path, row in got.items():
        want = expected[path]
        assert RowSchema.of(SHIPPED_CARD, embeddings="embedding" in want).problem(row) is None, (path, row)
        assert list(row) == list(want)
        assert (row["top_genre"], row["error"], row["duration_s"], row["is_music"]) == (
            want["top_genre"],
            want["error"],
            want["duration_s"],
            want["is_music"],
        ), path
        for column in (*LABELS, "music_probability", *(["embedding"] if "embedding" in want else [])):
            assert (row[column] is None) == (want[column] is None), (path, column)
            if row[column] is not None:
                assert row[column] == pytest.approx(want[column], abs=1e-5), (path, column)


def local_and_ray(library: Path, tmp: Path, *ray_options: str) -> tuple[dict[str, Row], dict[str, Row]]:
    local, on_ray = tmp / "local.jsonl", tmp / "ray.jsonl"
    assert classify(library, local, "--workers", "1") == 0
    assert classify(library, on_ray, "--ray", "local", *ray_options) == 0
    return rows_by_path(local), rows_by_path(on_ray)


def test_the_cluster_is_on_loopback_only() -> None:
    import ray

    assert ray.util.get_node_ip_address() == "127.0.0.1"  # type: ignore[no-untyped-call]


def test_two_good_songs_get_full_rows(tmp_path: Path) -> None:
    """The report: a 44.1 kHz FLAC and a 22.05 kHz WAV, a batch with no failure, came back empty."""
    library = write_library(tmp_path / "library", ["flac_44k", "wav_22k"])
    local, on_ray = local_and_ray(library, tmp_path)
    assert all(row["music_probability"] is not None and row["error"] is None for row in on_ray.values())
    assert_same_rows(on_ray, local)


def test_not_music_gets_its_verdict_and_no_genre_on_both_engines(tmp_path: Path) -> None:
    library = write_library(tmp_path / "library", ["real_music", "noise", "real_music"])
    local, on_ray = local_and_ray(library, tmp_path)
    assert_same_rows(on_ray, local)
    verdicts = {Path(p).name.split("-", 1)[1]: (r["is_music"], r["top_genre"]) for p, r in on_ray.items()}
    assert verdicts["noise.wav"] == (False, None)
    assert verdicts["real_music.wav"][0] is True and verdicts["real_music.wav"][1] in LABELS


def test_embeddings_on_ray_are_the_local_jobs_in_a_library_both_can_search(tmp_path: Path) -> None:
    library = write_library(tmp_path / "library", ["real_music", "two_windows", "corrupt", "short", "real_music"])
    local, on_ray = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    assert classify(library, local, "--workers", "1", "--embeddings") == 0
    assert classify(library, on_ray, "--ray", "local", "--embeddings") == 0
    assert_same_rows(rows_by_path(on_ray), rows_by_path(local))  # embeddings included, to 1e-5
    rows = rows_by_path(on_ray)
    assert sum(r["embedding"] is not None for r in rows.values()) == 4  # all but the corrupt file
    index = LibraryIndex.load(on_ray, SHIPPED_CARD)
    first = sorted(rows)[0]
    vector = index.vector_of(first)
    assert vector is not None and index.nearest(vector, 1)[0].path == first


def test_twelve_songs_and_a_corrupt_mp3_get_full_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The report: five of twelve songs came back empty and the summary said 0 with errors."""
    kinds = ["wav_22k", "flac_44k", "short", "m4a"] * 3 + ["corrupt"]
    library = write_library(tmp_path / "library", kinds)
    local, on_ray = local_and_ray(library, tmp_path)
    assert sum(row["error"] is None for row in on_ray.values()) == 12
    assert "13 file(s) classified" in capsys.readouterr().err.split("genre:")[-1]
    assert_same_rows(on_ray, local)


def test_the_summary_counts_the_rows_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    library = write_library(tmp_path / "library", ["wav_22k", "corrupt", "too_short"])
    assert classify(library, tmp_path / "ray.csv", "--ray", "local") == 0
    summary = capsys.readouterr().err.split("genre:")[-1]
    assert "3 file(s) classified into" in summary and "2 with errors" in summary


@pytest.mark.parametrize(
    "kinds",
    [
        ["short", "short", "short"],  # a batch of only short files
        ["corrupt", "too_short", "corrupt"],  # a batch of only failures
        ["m4a"],  # one file
        ["two_windows", "short", "wav_22k", "two_windows"],  # files of different window counts
    ],
    ids=["only-short", "only-failures", "one-file", "window-counts"],
)
def test_batches_of_one_kind_keep_their_rows(tmp_path: Path, kinds: list[str]) -> None:
    library = write_library(tmp_path / "library", kinds)
    assert_same_rows(*reversed(local_and_ray(library, tmp_path)))


@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(SONG_KINDS), min_size=1, max_size=9),
    batch_files=st.integers(1, 4),
    actors=st.integers(1, 2),
)
def test_any_library_gets_the_local_jobs_rows_on_ray(kinds: list[str], batch_files: int, actors: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        library = write_library(Path(tmp) / "library", kinds)
        options = ("--batch-files", str(batch_files), "--actors", str(actors))
        local, on_ray = local_and_ray(library, Path(tmp), *options)
        assert len(on_ray) == len(kinds)
        assert_same_rows(on_ray, local)


def test_a_model_with_other_labels_gets_its_own_columns(tmp_path: Path) -> None:
    own_model = copy_model(tmp_path)
    card = load_card(card_path(own_model))
    own_labels = [f"style {i}" for i in range(len(card.labels))]
    write_card(card.model_copy(update={"labels": own_labels}), own_model)
    library = write_library(tmp_path / "library", ["wav_22k", "corrupt", "short"])
    local, on_ray = tmp_path / "local.parquet", tmp_path / "ray.parquet"
    assert classify(library, local, "--workers", "1", "--model", str(own_model)) == 0
    assert classify(library, on_ray, "--ray", "local", "--model", str(own_model)) == 0
    got, expected = rows_by_path(on_ray), rows_by_path(local)
    assert list(next(iter(got.values())))[2 : 2 + len(own_labels)] == own_labels
    assert set(got) == set(expected)
    for path, row in got.items():
        assert (row["top_genre"], row["error"]) == (expected[path]["top_genre"], expected[path]["error"])


def scorer_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "MapWorker" in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def test_an_actor_killed_mid_job_costs_no_row(tmp_path: Path) -> None:
    library = write_library(tmp_path / "library", ["two_windows"] * 24)
    out = tmp_path / "ray.jsonl"
    killed: list[int] = []

    def kill_the_scorer_after_the_first_row() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if out.exists() and out.read_text().count("\n") >= 1:
                for process in scorer_processes():
                    os.kill(process.pid, signal.SIGKILL)
                    killed.append(process.pid)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_the_scorer_after_the_first_row)
    killer.start()
    code = classify(library, out, "--ray", "local", "--actors", "1", "--batch-files", "1")
    killer.join()
    assert killed, "the job ended before its actor could be killed"
    assert code == 0
    rows = rows_by_path(out)
    assert len(rows) == 24 and all(row["error"] is None for row in rows.values())


def test_ray_resume_skips_what_is_done(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "genres.csv"
    assert main(["classify", str(library / "a.wav"), "--out", str(out), "--quiet"]) == 0
    assert main(["classify", str(library), "--out", str(out), "--ray", "local", "--resume", "--quiet"]) == 0
    paths = [r["path"] for r in read_rows(out)]
    assert len(paths) == len(set(paths)) == 7
