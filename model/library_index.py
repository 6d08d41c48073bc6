"""A library's track embeddings and the nearest tracks to a query: `genre similar`, POST /similar.

    library = LibraryIndex.load(Path("library.parquet"), model.card)   # rows of genre classify --embeddings
    library.nearest(analysis.embedding, k=10, genre="jazz")             # most similar first

The library is the Parquet output of `genre classify --embeddings`: one unit-length embedding per
track (model.pipeline.track_embedding), so cosine similarity is an inner product. The search is
FAISS's: exact (a flat index) up to EXACT_MAX_TRACKS tracks, an HNSW graph beyond, built once
and saved beside the Parquet file as `<file>.faiss`, with `<file>.faiss.json` saying which
Parquet file it was built from (a changed file is rebuilt). A genre filter is exact: a pass over
that genre's tracks alone. `python -m bench.similarity speed` measures both
(bench/results/similarity_speed.md).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model.card import ModelCard

log = logging.getLogger(__name__)

# Exact search costs one pass over every vector; up to this many tracks it answers within a few
# milliseconds and needs no index file (bench/results/similarity_speed.md).
EXACT_MAX_TRACKS = 100_000
# The HNSW graph's settings (FAISS's M, efConstruction, efSearch), chosen by bench.similarity:
# recall@10 of at least 0.95 against exact search at 10^6 tracks.
CONNECTIVITY = 32
EXPANSION_ADD = 64
EXPANSION_SEARCH = 128
# Parquet schema metadata: which model made the embeddings (batch.output writes it).
MODEL_KEY = b"genre.model"


class LibraryError(ValueError):
    """A library file this model cannot search (missing, not ours, another model's embeddings)."""


@dataclass(frozen=True)
class Neighbour:
    path: str
    similarity: float  # cosine similarity of the two tracks' embeddings, at most 1
    top_genre: str | None


def model_id(card: ModelCard) -> str:
    """Who made an embedding: tracks compare only under the same model's embedding."""
    return f"{card.name} {card.version}"


def index_files(library: Path) -> tuple[Path, Path]:
    """The HNSW graph saved beside a library, and its note of the library it was built from."""
    graph = library.with_name(library.name + ".faiss")
    return graph, graph.with_name(graph.name + ".json")


def read_library(path: Path, card: ModelCard) -> tuple[list[str], list[str | None], np.ndarray]:
    """A `genre classify --embeddings` Parquet file -> (paths, top genres, embeddings of shape =
    (tracks, dimension)) of its rows with an answer. Raises LibraryError with a reason a person can act on."""
    if card.embedding is None:
        raise LibraryError(f"model {model_id(card)} has no embedding output, so it cannot search a library")
    try:
        parquet = pq.ParquetFile(path)
    except FileNotFoundError:
        raise LibraryError(f"{path}: no such file") from None
    except Exception:
        raise LibraryError(
            f"{path} is not a Parquet file; write one with `genre classify --embeddings --out FILE.parquet`"
        ) from None
    schema = parquet.schema_arrow
    if "embedding" not in schema.names:
        raise LibraryError(f"{path} has no embedding column; write it with `genre classify --embeddings`")
    made_by = (schema.metadata or {}).get(MODEL_KEY, b"").decode() or "an unknown model"
    if made_by != model_id(card):
        raise LibraryError(
            f"{path} holds embeddings of {made_by}, not of {model_id(card)}: embeddings compare only under one "
            "model; classify the library again with this one"
        )
    dimension = card.embedding.dimension
    kind = schema.field("embedding").type
    if not pa.types.is_fixed_size_list(kind) or kind.list_size != dimension:
        raise LibraryError(f"{path} has embeddings of type {kind}; this model's are {dimension} float32 values each")
    table = parquet.read(columns=["path", "top_genre", "embedding"])
    embeddings = table.column("embedding")
    answered = embeddings.is_valid()  # a row in error has no embedding
    if not pc.any(answered).as_py():
        raise LibraryError(f"{path} has no classified tracks")
    # One copy of the vectors: each chunk's values (its null rows dropped) viewed, then joined.
    vectors = np.concatenate([c.flatten().to_numpy().reshape(-1, dimension) for c in embeddings.chunks])
    paths, genres = (table.column(c).filter(answered).to_pylist() for c in ("path", "top_genre"))
    del table, embeddings
    pa.default_memory_pool().release_unused()  # Arrow keeps what it read otherwise (500 MB at 10^5 tracks)
    return grouped_by_genre(paths, genres, vectors.astype(np.float32, copy=False))


def grouped_by_genre(
    paths: list[str], genres: list[str | None], vectors: np.ndarray
) -> tuple[list[str], list[str | None], np.ndarray]:
    """The tracks reordered so that each top genre's are together (in their order): a genre filter is
    then a range of rows, which FAISS scans alone (5 ms at 10^5 of 10^6 tracks, 25 ms as a set)."""
    order = np.argsort(np.array([g or "" for g in genres]), kind="stable")
    return [paths[i] for i in order], [genres[i] for i in order], vectors[order]


class LibraryIndex:
    """A library's tracks, searchable by embedding: a FAISS index over them, keyed by row."""

    def __init__(self, paths: list[str], top_genres: list[str | None], index: Any) -> None:
        """index: a FAISS inner-product index (flat, or HNSW) holding the tracks' unit vectors in row order,
        each top genre's rows together (grouped_by_genre); raises ValueError where they are not."""
        self.paths, self.top_genres, self.index = paths, top_genres, index
        self.dimension: int = index.d
        self.row_of = {p: i for i, p in enumerate(paths)}
        self.approximate = isinstance(index, faiss.IndexHNSW)
        if self.approximate:
            index.hnsw.efSearch = EXPANSION_SEARCH  # a setting of the search, not saved with the graph
        self.genre_rows = genre_ranges(top_genres)

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def of(cls, paths: list[str], top_genres: list[str | None], vectors: np.ndarray, approximate: bool) -> LibraryIndex:
        """vectors: shape = (tracks, dimension), unit length, in any order."""
        paths, top_genres, vectors = grouped_by_genre(paths, top_genres, vectors)
        return cls(paths, top_genres, build_graph(vectors) if approximate else flat_index(vectors))

    @classmethod
    def load(cls, path: Path, card: ModelCard, exact_max: int = EXACT_MAX_TRACKS) -> LibraryIndex:
        """The library at `path`, with an HNSW graph when it has more than `exact_max` tracks: the one
        saved beside it if it was built from this very file, else built now and saved (when the folder
        is writable). Raises LibraryError."""
        paths, genres, vectors = read_library(path, card)
        if len(paths) <= exact_max:
            return cls(paths, genres, flat_index(vectors))
        graph_path, note_path = index_files(path)
        source = {"size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns, "tracks": len(paths)}
        graph = restore_graph(graph_path, note_path, source)
        if graph is None:
            log.info("building the search index of %s (%d tracks), once: it is saved beside it", path, len(paths))
            graph = build_graph(vectors)
            unfinished = graph_path.with_name(graph_path.name + ".unfinished")
            try:  # whole files or none: a stopped save must not pass for a graph of this library
                faiss.write_index(graph, str(unfinished))
                os.replace(unfinished, graph_path)
                note_path.write_text(json.dumps(source) + "\n")
            except (OSError, RuntimeError) as e:  # FAISS reports its I/O errors as RuntimeError
                unfinished.unlink(missing_ok=True)
                log.warning("could not save the library's index beside it (%s); it will be built again next time", e)
        return cls(paths, genres, graph)

    def vector_of(self, path: str) -> np.ndarray | None:
        """The embedding of a track of the library, or None for a path it does not hold."""
        row = self.row_of.get(path)
        return None if row is None else np.asarray(self.index.reconstruct(row), dtype=np.float32)

    def nearest(
        self, query: np.ndarray, k: int, genre: str | None = None, exclude: str | None = None
    ) -> list[Neighbour]:
        """The k tracks most similar to a unit-length query embedding, most similar first; only those of
        top genre `genre` if given, and never the track at path `exclude` (the query itself)."""
        if query.shape != (self.dimension,):
            raise ValueError(f"the query has {query.shape} values; this library's embeddings have {self.dimension}")
        if genre is not None and genre not in self.genre_rows:
            return []
        skip = self.row_of.get(exclude) if exclude is not None else None
        rows = self.genre_rows[genre] if genre is not None else None
        wanted = k + (skip is not None)
        found = [(r, s) for r, s in self._search(query, wanted, rows) if r != skip][:k]
        # float32 rounding can put the same audio a hair above 1
        return [Neighbour(self.paths[r], min(s, 1.0), self.top_genres[r]) for r, s in found]

    def _search(self, query: np.ndarray, k: int, rows: tuple[int, int] | None) -> list[tuple[int, float]]:
        """(row, similarity) of the k best rows (of the range [start, stop) `rows`, if given), most similar first.

        Unfiltered, the HNSW graph answers. Filtered, the flat storage under it does, visiting only
        the genre's rows: a graph walk from a query among other genres ends in its own neighbourhood
        and misses the genre's best (exact over the genre costs a pass over its rows, not the library's)."""
        index, params = self.index, None
        if rows is not None:
            index = faiss.downcast_index(self.index.storage) if self.approximate else self.index
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorRange(*rows)
        k = min(k, len(self) if rows is None else rows[1] - rows[0])
        similarities, found = index.search(query[None].astype(np.float32), k, params=params)
        return [(int(r), float(s)) for r, s in zip(found[0], similarities[0], strict=True) if r >= 0]


def genre_ranges(genres: list[str | None]) -> dict[str | None, tuple[int, int]]:
    """Each top genre's rows, [start, stop); raises ValueError unless each genre's rows are together."""
    ranges: dict[str | None, tuple[int, int]] = {}
    for row, genre in enumerate(genres):
        start, stop = ranges.get(genre, (row, row))
        if stop != row:
            raise ValueError(f"a library's tracks must be grouped by top genre: {genre!r} is split")
        ranges[genre] = (start, row + 1)
    return ranges


def one_search_thread() -> None:
    """FAISS on the calling thread alone from now on (it uses every core by default): one query gains
    nothing from an OpenMP team, whose idle threads spin, and a service's own threads are its
    parallelism. Call it once a library is loaded: building a graph does use the cores."""
    faiss.omp_set_num_threads(1)


def flat_index(vectors: np.ndarray) -> Any:
    """Exact inner-product search over unit vectors, keyed by row."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def build_graph(vectors: np.ndarray) -> Any:
    """An HNSW graph over unit vectors (inner product: their cosine similarity), keyed by row."""
    graph = faiss.IndexHNSWFlat(vectors.shape[1], CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EXPANSION_ADD
    graph.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return graph


def restore_graph(graph_path: Path, note_path: Path, source: dict[str, int]) -> Any:
    """The graph saved beside the library, if it was built from the file as it is now; else None."""
    try:
        if json.loads(note_path.read_text()) != source:
            return None
        graph = faiss.read_index(str(graph_path))
    except (OSError, ValueError, RuntimeError):
        return None
    ok = isinstance(graph, faiss.IndexHNSW) and graph.ntotal == source["tracks"]
    return graph if ok else None
