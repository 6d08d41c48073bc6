"""Rows and their files: the one-row rule is enforced where rows are written, and every format
survives an interrupted run (a torn last line, Parquet parts left by a kill)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.output import JobError, RowSchema, RowSink, done_paths, open_writer, part_files, read_rows

LABELS = ["a", "b", "c"]
SCHEMA = RowSchema(LABELS, model="test-model 1.0")


def answer(path: str, probabilities: tuple[float, float, float] = (0.2, 0.7, 0.1)) -> dict[str, object]:
    top = LABELS[max(range(3), key=probabilities.__getitem__)]
    return {
        "path": path,
        "top_genre": top,
        **dict(zip(LABELS, probabilities, strict=True)),
        "music_probability": 0.9,
        "is_music": True,
        "duration_s": 3.5,
        "error": None,
    }


def test_a_full_answer_and_a_full_error_keep_the_rule() -> None:
    assert SCHEMA.problem(answer("x")) is None
    assert SCHEMA.problem(SCHEMA.error_row("x", "not audio")) is None
    not_music = {**answer("x"), "top_genre": None, "music_probability": 0.1, "is_music": False}
    assert SCHEMA.problem(not_music) is None  # not music: the genres stay, no top genre
    no_detector = {**answer("x"), "music_probability": None, "is_music": None}
    assert SCHEMA.problem(no_detector) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"top_genre": None}, "neither an error nor a top genre"),  # the empty row Ray Data used to give
        ({"error": "late"}, "both an error and an answer"),
        ({"error": float("nan")}, "not a message"),  # a NaN that crossed Ray Data for None
        ({"a": None}, "not a distribution"),
        ({"a": 0.5}, "not a distribution"),
        ({"top_genre": "a"}, "not its most probable label"),
        ({"duration_s": float("nan")}, "its duration"),
        ({"duration_s": None}, "its duration"),
        ({"is_music": False}, "not music, yet has a top genre"),
        ({"is_music": None}, "without a verdict"),
        ({"music_probability": None}, "without a verdict"),
        ({"music_probability": 1.5}, "its music probability"),
        ({"error": "late", "top_genre": None, "a": None, "b": None, "c": None, "duration_s": None}, "both"),
    ],
)
def test_a_row_that_breaks_the_rule_is_named(change: dict[str, object], problem: str) -> None:
    assert problem in (SCHEMA.problem({**answer("x"), **change}) or "")


def test_an_empty_row_and_a_row_of_other_columns_are_named() -> None:
    empty = {key: None for key in SCHEMA.columns}
    assert "neither" in (SCHEMA.problem(empty) or "")
    assert "columns" in (SCHEMA.problem({**answer("x"), "extra": 1}) or "")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_the_sink_stops_at_a_broken_row_and_keeps_the_good_ones(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"rows{suffix}"
    with pytest.raises(JobError, match=r"'y'.*neither an error nor a top genre.*after 1 good row"):  # noqa: SIM117
        with RowSink(open_writer(out, SCHEMA, append=False), SCHEMA, ["x", "y"], 0) as sink:
            sink.write(answer("x"))
            sink.write({**answer("y"), "top_genre": None})
    assert [r["path"] for r in read_rows(out)] == ["x"]


def test_the_sink_refuses_a_second_row_for_a_file_and_a_stranger(tmp_path: Path) -> None:
    with RowSink(open_writer(tmp_path / "r.jsonl", SCHEMA, append=False), SCHEMA, ["x", "y"], 0) as sink:
        sink.write(answer("x"))
        with pytest.raises(JobError, match="second row"):
            sink.write(answer("x"))
        with pytest.raises(JobError, match="not a file of this job"):
            sink.write(answer("z"))
        sink.write(SCHEMA.error_row("y", "not audio"))
    assert sink.summary().files == 2 and sink.summary().errors == 1


def test_the_sink_fails_loudly_when_a_file_got_no_row(tmp_path: Path) -> None:
    with pytest.raises(JobError, match=r"1 file\(s\) got no row \(for example 'y'\).*--resume"):  # noqa: SIM117
        with RowSink(open_writer(tmp_path / "r.csv", SCHEMA, append=False), SCHEMA, ["x", "y"], 0) as sink:
            sink.write(answer("x"))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_torn_last_line_is_dropped_on_resume(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"rows{suffix}"
    with RowSink(open_writer(out, SCHEMA, append=False), SCHEMA, ["x", "y"], 0) as sink:
        sink.write(answer("x"))
        sink.write(answer("y"))
    whole = out.read_bytes()
    out.write_bytes(whole[: len(whole) - 9])  # a kill in the middle of y's line
    assert done_paths(out, SCHEMA) == {"x"}
    assert out.read_bytes() == whole[: whole.index(b"\n", whole.index(b"x")) + 1]
    with RowSink(open_writer(out, SCHEMA, append=True), SCHEMA, ["y"], 1) as sink:
        sink.write(answer("y", (0.1, 0.1, 0.8)))
    rows = list(read_rows(out))
    assert [r["path"] for r in rows] == ["x", "y"] and float(rows[1]["c"]) == pytest.approx(0.8)


def test_parquet_parts_left_by_a_kill_are_resumed_into_one_readable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("batch.output.ROWS_PER_PART", 2)
    out = tmp_path / "rows.parquet"
    killed = open_writer(out, SCHEMA, append=False)
    for path in "pqrst":
        killed.write(answer(path))
    # Killed here: never closed. Two whole parts of two rows; 't' was only in memory.
    (out.parent / "rows.parquet.parts" / "part-000002.unfinished").write_bytes(b"PAR1 torn")
    assert not out.exists() and len(part_files(out)) == 2
    assert done_paths(out, SCHEMA) == {"p", "q", "r", "s"}
    with RowSink(open_writer(out, SCHEMA, append=True), SCHEMA, ["t", "u"], 4) as sink:
        sink.write(answer("t"))
        sink.write(SCHEMA.error_row("u", "not audio"))
    assert [r["path"] for r in read_rows(out)] == ["p", "q", "r", "s", "t", "u"]
    assert not (out.parent / "rows.parquet.parts").exists()


def test_a_parquet_merge_interrupted_after_the_replace_keeps_each_file_once(tmp_path: Path) -> None:
    out = tmp_path / "rows.parquet"
    with RowSink(open_writer(out, SCHEMA, append=False), SCHEMA, ["p", "q"], 0) as sink:
        sink.write(answer("p"))
        sink.write(answer("q"))
    # As if killed between replacing the output and removing the parts: q is in both.
    parts = open_writer(tmp_path / "other.parquet", SCHEMA, append=False)
    parts.write(answer("q"))
    parts._flush()  # type: ignore[attr-defined]
    (tmp_path / "other.parquet.parts").rename(tmp_path / "rows.parquet.parts")
    assert done_paths(out, SCHEMA) == {"p", "q"}
    with RowSink(open_writer(out, SCHEMA, append=True), SCHEMA, ["r"], 2) as sink:
        sink.write(answer("r"))
    assert [r["path"] for r in read_rows(out)] == ["p", "q", "r"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_resuming_into_an_output_of_other_columns_is_refused(tmp_path: Path, suffix: str) -> None:
    """An output of model 2.1 (no music columns), or of another model's labels, is not appended to."""
    out = tmp_path / f"rows{suffix}"
    with RowSink(open_writer(out, SCHEMA, append=False), SCHEMA, ["x"], 0) as sink:
        sink.write(answer("x"))
    assert done_paths(out, SCHEMA) == {"x"}
    with pytest.raises(ValueError, match=r"has the columns .* write a new file"):
        done_paths(out, RowSchema(["a", "b", "d"], model=SCHEMA.model))


EMBEDDED = RowSchema(LABELS, embedding_dim=4, model=SCHEMA.model)


def embedded(path: str, embedding: list[float] | None = None) -> dict[str, object]:
    row = {**answer(path), "embedding": embedding if embedding is not None else [0.5, -0.5, 0.5, 0.5]}
    return {column: row[column] for column in EMBEDDED.columns}


def test_an_embedding_row_keeps_the_rule_and_a_bad_embedding_is_named() -> None:
    assert EMBEDDED.columns[-3:] == ["embedding", "duration_s", "error"]
    assert EMBEDDED.problem(embedded("x")) is None
    assert EMBEDDED.problem(EMBEDDED.error_row("x", "not audio")) is None
    assert "unit vector" in (EMBEDDED.problem(embedded("x", [1.0, 1.0, 0.0, 0.0])) or "")
    assert "list of 4" in (EMBEDDED.problem(embedded("x", [1.0])) or "")
    assert "list of 4" in (EMBEDDED.problem({**embedded("x"), "embedding": None}) or "")
    assert "both" in (EMBEDDED.problem({**EMBEDDED.error_row("x", "late"), "embedding": [1.0, 0.0, 0.0, 0.0]}) or "")
    assert "columns" in (SCHEMA.problem(embedded("x")) or "")  # a row with an embedding the job did not ask for


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_embeddings_read_back_as_written_in_every_format(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"rows{suffix}"
    with RowSink(open_writer(out, EMBEDDED, append=False), EMBEDDED, ["x", "y"], 0) as sink:
        sink.write(embedded("x", [0.6, 0.0, 0.0, 0.8]))
        sink.write(EMBEDDED.error_row("y", "not audio"))
    rows = list(read_rows(out))
    assert [EMBEDDED.problem(r) for r in rows] == [None, None]
    assert rows[0]["embedding"] == pytest.approx([0.6, 0.0, 0.0, 0.8], abs=1e-7)  # float32 in Parquet
    assert rows[1]["embedding"] is None
    with pytest.raises(ValueError, match="has the columns"):  # resuming without --embeddings
        done_paths(out, SCHEMA)


def test_a_parquet_output_names_its_model_and_refuses_another_models_resume(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "rows.parquet"
    with RowSink(open_writer(out, EMBEDDED, append=False), EMBEDDED, ["x"], 0) as sink:
        sink.write(embedded("x"))
    assert pq.read_schema(out).metadata[b"genre.model"] == b"test-model 1.0"
    assert pq.read_schema(out).field("embedding").type.list_size == 4
    with pytest.raises(ValueError, match=r"rows of test-model 1\.0; this job runs test-model 2\.0"):
        done_paths(out, RowSchema(LABELS, embedding_dim=4, model="test-model 2.0"))
