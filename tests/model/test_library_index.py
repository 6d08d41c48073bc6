"""Search over a library's embeddings: exact and HNSW agree, filters hold, the saved graph is reused
only for the file it was built from, and every library it cannot search is refused with a reason."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.output import RowSchema, RowSink, open_writer
from bench.common import REFERENCE_MODEL
from model.card import ModelCard, card_path, load_card
from model.library_index import LibraryError, LibraryIndex, flat_index, index_files
from tests.helpers import SHIPPED_CARD

LABELS = SHIPPED_CARD.labels


def clustered(n: int, dimension: int, seed: int = 0, clusters: int = 10) -> tuple[np.ndarray, list[str]]:
    """Unit vectors around `clusters` centres, and each one's centre as its genre."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dimension))
    which = rng.integers(0, clusters, n)
    vectors = centres[which] + 0.6 * rng.standard_normal((n, dimension))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), [LABELS[c % len(LABELS)] for c in which]


def write_library(path: Path, vectors: np.ndarray, genres: list[str], card: ModelCard = SHIPPED_CARD) -> Path:
    """A Parquet library as `genre classify --embeddings` writes it (one error row too)."""
    schema = RowSchema.of(card, embeddings=True)
    paths = [f"track-{i}.flac" for i in range(len(vectors))]
    with RowSink(open_writer(path, schema, append=False), schema, [*paths, "broken.mp3"], 0) as sink:
        for p, vector, genre in zip(paths, vectors, genres, strict=True):
            probabilities = dict.fromkeys(LABELS, 0.5 / (len(LABELS) - 1)) | {genre: 0.5}
            row = {"path": p, "top_genre": genre, **probabilities, "music_probability": 0.9, "is_music": True}
            row |= {"embedding": vector.tolist(), "duration_s": 30.0, "error": None}
            sink.write({column: row[column] for column in schema.columns})
        sink.write(schema.error_row("broken.mp3", "not audio"))
    return path


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, list[str]]:
    vectors, genres = clustered(3000, SHIPPED_CARD.embedding.dimension if SHIPPED_CARD.embedding else 0)
    vectors[7] = vectors[3]  # the same audio under two names
    path = write_library(tmp_path_factory.mktemp("library") / "library.parquet", vectors, genres)
    return path, vectors, genres


def test_exact_search_ranks_by_cosine_similarity(library: tuple[Path, np.ndarray, list[str]]) -> None:
    path, vectors, _ = library
    index = LibraryIndex.load(path, SHIPPED_CARD)
    assert len(index) == len(vectors) and not index.approximate  # the error row is not a track
    found = index.nearest(vectors[42], 5)
    expected = np.argsort(-(vectors @ vectors[42]))[:5]
    assert [n.path for n in found] == [f"track-{i}.flac" for i in expected]
    assert found[0].path == "track-42.flac" and found[0].similarity == pytest.approx(1.0, abs=1e-6)
    assert [n.similarity for n in found] == sorted((n.similarity for n in found), reverse=True)


def test_a_duplicate_comes_first_and_the_query_track_is_left_out(library: tuple[Path, np.ndarray, list[str]]) -> None:
    path, _, _ = library
    index = LibraryIndex.load(path, SHIPPED_CARD)
    query = index.vector_of("track-3.flac")
    assert query is not None and index.vector_of("nowhere.flac") is None
    found = index.nearest(query, 3, exclude="track-3.flac")
    assert found[0].path == "track-7.flac" and found[0].similarity == pytest.approx(1.0, abs=1e-6)
    assert "track-3.flac" not in [n.path for n in found] and len(found) == 3


@pytest.mark.parametrize("exact_max", [10**9, 100], ids=["exact", "approximate"])
def test_a_genre_filter_gives_k_tracks_of_that_genre(
    library: tuple[Path, np.ndarray, list[str]], exact_max: int
) -> None:
    path, vectors, genres = library
    index = LibraryIndex.load(path, SHIPPED_CARD, exact_max=exact_max)
    other = next(g for g in LABELS if g != genres[0])  # a genre the query's cluster is not
    found = index.nearest(vectors[0], 10, genre=other)
    assert len(found) == 10 and all(n.top_genre == other for n in found)
    rows = [i for i, g in enumerate(genres) if g == other]
    best = sorted(rows, key=lambda i: -float(vectors[i] @ vectors[0]))[:10]
    assert {n.path for n in found} >= {f"track-{i}.flac" for i in best[:5]}
    assert index.nearest(vectors[0], 5, genre="polka") == []  # no track of it


def test_the_hnsw_graph_finds_what_exact_search_finds(library: tuple[Path, np.ndarray, list[str]]) -> None:
    path, vectors, _ = library
    exact = LibraryIndex.load(path, SHIPPED_CARD)
    approximate = LibraryIndex.load(path, SHIPPED_CARD, exact_max=100)
    assert approximate.approximate and len(approximate) == len(exact)
    queries = range(0, 3000, 97)
    recall = np.mean(
        [
            len({n.path for n in approximate.nearest(vectors[q], 10)} & {n.path for n in exact.nearest(vectors[q], 10)})
            / 10
            for q in queries
        ]
    )
    assert recall >= 0.95
    stored = approximate.vector_of("track-42.flac")
    assert stored is not None and np.allclose(stored, vectors[42], atol=1e-6)


def test_the_saved_graph_is_reused_for_its_file_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vectors, genres = clustered(400, 192, seed=1)
    path = write_library(tmp_path / "lib.parquet", vectors, genres)
    graph, note = index_files(path)
    with caplog.at_level(logging.INFO, logger="model.library_index"):
        LibraryIndex.load(path, SHIPPED_CARD, exact_max=100)
    assert graph.is_file() and note.is_file()
    assert "building the search index of" in caplog.text and "(400 tracks)" in caplog.text
    built = graph.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="model.library_index"):
        LibraryIndex.load(path, SHIPPED_CARD, exact_max=100)
    assert graph.stat().st_mtime_ns == built and not caplog.text  # restored, not rebuilt
    vectors2, genres2 = clustered(500, 192, seed=2)
    write_library(path, vectors2, genres2)  # the library changed: its graph is rebuilt
    index = LibraryIndex.load(path, SHIPPED_CARD, exact_max=100)
    assert len(index) == 500 and graph.stat().st_mtime_ns != built
    found = index.nearest(vectors2[9], 1)
    assert found[0].path == "track-9.flac"


def test_a_graph_that_cannot_be_saved_still_searches(tmp_path: Path) -> None:
    vectors, genres = clustered(300, 192, seed=3)
    path = write_library(tmp_path / "lib.parquet", vectors, genres)
    index_files(path)[0].mkdir()  # where the graph would go, a folder: saving fails
    index = LibraryIndex.load(path, SHIPPED_CARD, exact_max=100)
    assert index.nearest(vectors[5], 1)[0].path == "track-5.flac"


def test_libraries_it_cannot_search_are_refused_with_a_reason(tmp_path: Path) -> None:
    vectors, genres = clustered(20, 192)
    good = write_library(tmp_path / "good.parquet", vectors, genres)
    with pytest.raises(LibraryError, match="no such file"):
        LibraryIndex.load(tmp_path / "missing.parquet", SHIPPED_CARD)
    (tmp_path / "text.parquet").write_text("path,top_genre\n")
    with pytest.raises(LibraryError, match="not a Parquet file"):
        LibraryIndex.load(tmp_path / "text.parquet", SHIPPED_CARD)
    plain = RowSchema.of(SHIPPED_CARD)
    with RowSink(open_writer(tmp_path / "plain.parquet", plain, False), plain, ["x"], 0) as sink:
        sink.write(plain.error_row("x", "not audio"))
    with pytest.raises(LibraryError, match="no embedding column; write it with `genre classify --embeddings`"):
        LibraryIndex.load(tmp_path / "plain.parquet", SHIPPED_CARD)
    other = SHIPPED_CARD.model_copy(update={"version": "9.9.9"})
    with pytest.raises(LibraryError, match=r"embeddings of genre-birnn-attention \d.*, not of .* 9\.9\.9"):
        LibraryIndex.load(good, other)
    with pytest.raises(LibraryError, match="has no embedding output"):
        LibraryIndex.load(good, load_card(card_path(REFERENCE_MODEL)))
    table = pq.read_table(good)
    short = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(3 * table.num_rows, np.float32)), 3)
    pq.write_table(
        table.set_column(table.schema.get_field_index("embedding"), "embedding", short), tmp_path / "3.parquet"
    )
    with pytest.raises(LibraryError, match=r"embeddings of type fixed_size_list<.*>\[3\]; this model.s are 192"):
        LibraryIndex.load(tmp_path / "3.parquet", SHIPPED_CARD)
    pq.write_table(table.filter(table.column("error").is_valid()), tmp_path / "errors.parquet")
    with pytest.raises(LibraryError, match="no classified tracks"):
        LibraryIndex.load(tmp_path / "errors.parquet", SHIPPED_CARD)
    with pytest.raises(ValueError, match="values"):
        LibraryIndex.load(good, SHIPPED_CARD).nearest(np.zeros(3, np.float32), 1)


def test_tracks_are_grouped_by_genre_so_a_filter_is_a_range(library: tuple[Path, np.ndarray, list[str]]) -> None:
    path, vectors, genres = library
    index = LibraryIndex.load(path, SHIPPED_CARD)
    assert set(index.genre_rows) == set(genres)
    for genre, (start, stop) in index.genre_rows.items():
        assert set(index.top_genres[start:stop]) == {genre} and stop - start == genres.count(str(genre))
    row = int(np.flatnonzero(np.array(genres) == genres[0])[3])
    assert np.allclose(index.vector_of(f"track-{row}.flac"), vectors[row])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grouped by top genre: 'jazz' is split"):
        LibraryIndex(["a", "b", "c"], ["jazz", "rock", "jazz"], flat_index(vectors[:3]))
