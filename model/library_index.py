"""A library's track embeddings and the nearest tracks to a query: `genre similar`, POST /similar.

    library = LibraryIndex.load(Path("library.parquet"), model.card)   # rows of genre classify --embeddings
    library.nearest(analysis.embedding, k=10, genre="jazz")             # most similar first

The library is the Parquet output of `genre classify --embeddings`: one unit-length embedding per
track (model.pipeline.track_embedding), so cosine similarity is a dot product. Up to
EXACT_MAX_TRACKS tracks are searched exactly (one matrix product); a larger library is searched
with an HNSW graph (usearch), built once and saved beside the Parquet file as
`<file>.usearch`, with `<file>.usearch.json` saying which Parquet file it was built from (a
changed file is rebuilt). `python -m bench.similarity speed` measures both (docs/similarity.md).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.card import ModelCard

log = logging.getLogger(__name__)

# Exact search costs one pass over every vector: about 2 ms a query at 10^5 tracks of 192 values
# on one core, where the HNSW graph answers in well under 1 ms (docs/similarity.md). Below this
# size exact search is fast enough and needs no index file.
EXACT_MAX_TRACKS = 100_000
# The HNSW graph's settings, chosen by bench.similarity: recall@10 above 0.95 at 10^6 tracks.
CONNECTIVITY = 32
EXPANSION_ADD = 128
EXPANSION_SEARCH = 96
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
    graph = library.with_name(library.name + ".usearch")
    return graph, graph.with_name(graph.name + ".json")


def read_library(path: Path, card: ModelCard) -> tuple[list[str], list[str | None], np.ndarray]:
    """A `genre classify --embeddings` Parquet file -> (paths, top genres, embeddings of shape =
    (tracks, dimension)) of its rows with an answer. Raises LibraryError with a reason a person can act on."""
    import pyarrow.parquet as pq

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
    table = parquet.read(columns=["path", "top_genre", "embedding", "error"])
    table = table.filter(table.column("error").is_null())
    if not table.num_rows:
        raise LibraryError(f"{path} has no classified tracks")
    vectors = np.asarray(table.column("embedding").combine_chunks().flatten(), dtype=np.float32)
    vectors = vectors.reshape(table.num_rows, -1)
    if vectors.shape[1] != card.embedding.dimension:
        raise LibraryError(
            f"{path} has embeddings of {vectors.shape[1]} values; this model's have {card.embedding.dimension}"
        )
    return table.column("path").to_pylist(), table.column("top_genre").to_pylist(), vectors


class LibraryIndex:
    """A library's tracks, searchable by embedding; exact up to EXACT_MAX_TRACKS, HNSW beyond."""

    def __init__(self, paths: list[str], top_genres: list[str | None], vectors: np.ndarray, graph: Any = None) -> None:
        """vectors: shape = (tracks, dimension), unit length; graph: a usearch Index over them keyed by
        row, or None for exact search."""
        self.paths, self.top_genres, self.graph = paths, top_genres, graph
        self.vectors = vectors if graph is None else None  # the graph holds them otherwise
        self.dimension = vectors.shape[1]
        self.row_of = {p: i for i, p in enumerate(paths)}

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def approximate(self) -> bool:
        return self.graph is not None

    @classmethod
    def load(cls, path: Path, card: ModelCard, exact_max: int = EXACT_MAX_TRACKS) -> LibraryIndex:
        """The library at `path`, with its HNSW graph when it has more than `exact_max` tracks: the one
        saved beside it if it was built from this very file, else built now and saved (when the folder
        is writable). Raises LibraryError."""
        paths, genres, vectors = read_library(path, card)
        if len(paths) <= exact_max:
            return cls(paths, genres, vectors)
        graph_path, note_path = index_files(path)
        source = {"size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns, "tracks": len(paths)}
        graph = restore_graph(graph_path, note_path, source)
        if graph is None:
            graph = build_graph(vectors)
            unfinished = graph_path.with_name(graph_path.name + ".unfinished")
            try:  # whole files or none: a stopped save must not pass for a graph of this library
                graph.save(str(unfinished))
                os.replace(unfinished, graph_path)
                note_path.write_text(json.dumps(source) + "\n")
            except (OSError, RuntimeError) as e:  # usearch reports its I/O errors as RuntimeError
                unfinished.unlink(missing_ok=True)
                log.warning("could not save the library's index beside it (%s); it will be built again next time", e)
        return cls(paths, genres, vectors, graph)

    def vector_of(self, path: str) -> np.ndarray | None:
        """The embedding of a track of the library, or None for a path it does not hold."""
        row = self.row_of.get(path)
        if row is None:
            return None
        vector: np.ndarray = self.vectors[row] if self.vectors is not None else np.asarray(self.graph.get(row))
        return vector.astype(np.float32, copy=False)

    def nearest(
        self, query: np.ndarray, k: int, genre: str | None = None, exclude: str | None = None
    ) -> list[Neighbour]:
        """The k tracks most similar to a unit-length query embedding, most similar first; only those of
        top genre `genre` if given, and never the track at path `exclude` (the query itself)."""
        if query.shape != (self.dimension,):
            raise ValueError(f"the query has {query.shape} values; this library's embeddings have {self.dimension}")
        skip = self.row_of.get(exclude) if exclude is not None else None

        def keep(row: int) -> bool:
            return row != skip and (genre is None or self.top_genres[row] == genre)

        found = [(r, s) for r, s in self._search(query.astype(np.float32), k + (skip is not None), genre) if keep(r)]
        # float32 rounding can put the same audio a hair above 1
        return [Neighbour(self.paths[r], min(s, 1.0), self.top_genres[r]) for r, s in found[:k]]

    def _search(self, query: np.ndarray, k: int, genre: str | None) -> list[tuple[int, float]]:
        """(row, similarity) of at least k rows of top genre `genre` (any, for None) where the library has
        them, most similar first."""
        if self.vectors is not None:
            similarities = self.vectors @ query
            if genre is not None:
                similarities[np.asarray(self.top_genres, dtype=object) != genre] = -np.inf
            k = min(k, int(np.isfinite(similarities).sum()))
            if k == 0:
                return []
            top = np.argpartition(-similarities, k - 1)[:k]
            top = top[np.argsort(-similarities[top], kind="stable")]
            return list(zip(top.tolist(), similarities[top].astype(float).tolist(), strict=True))
        # The graph cannot filter: it is asked for more neighbours until k of the genre are among them.
        asked = min(len(self), max(k, 10))
        while True:
            matches = self.graph.search(query, asked)
            similarities = 1.0 - matches.distances.astype(float)  # usearch's cosine distance
            found = list(zip(matches.keys.astype(int).tolist(), similarities.tolist(), strict=True))
            if asked >= len(self) or sum(genre is None or self.top_genres[r] == genre for r, _ in found) >= k:
                return found
            asked = min(len(self), asked * 4)


def build_graph(vectors: np.ndarray) -> Any:
    """An HNSW graph over unit-length vectors, keyed by row."""
    from usearch.index import Index

    graph = Index(
        ndim=vectors.shape[1],
        metric="cos",
        dtype="f32",
        connectivity=CONNECTIVITY,
        expansion_add=EXPANSION_ADD,
        expansion_search=EXPANSION_SEARCH,
    )
    graph.add(np.arange(len(vectors), dtype=np.uint64), vectors)
    return graph


def restore_graph(graph_path: Path, note_path: Path, source: dict[str, int]) -> Any:
    """The graph saved beside the library, if it was built from the file as it is now; else None."""
    from usearch.index import Index

    try:
        if json.loads(note_path.read_text()) != source:
            return None
        graph = Index.restore(str(graph_path), connectivity=CONNECTIVITY, expansion_search=EXPANSION_SEARCH)
    except (OSError, ValueError, RuntimeError):
        return None
    return None if graph is None or len(graph) != source["tracks"] else graph
