"""Similarity search: how well the embedding finds a track's genre-mates, and how fast a library answers.

    python -m bench.similarity quality --run runs/cv/fold0 ... --run runs/cv/fold4   (make cv's runs)
    python -m bench.similarity speed [--sizes 10000 100000 1000000] [--queries 1000]

quality: every labelled clip is embedded by the cross-validation network that did not learn from
it (artist-disjoint folds, training.cv), and searched among the other clips of its fold, which
that same network embedded (one network's vectors compare with each other, not with another
network's). For each clip, the share of its 5 nearest neighbours (cosine) of its own genre, by
genre; then the same with the neighbours by the same artist left out (GTZAN holds several clips
of one song or artist, which flatter any embedding). The baseline embedding is the band statistics
the summary head reads (training.clip_summary), standardised over the fold's clips; chance is the
share a random neighbour would give.

speed: synthetic libraries drawn from a Gaussian mixture fitted to the shipped model's embeddings
of the labelled clips (one component per genre, their pooled covariance), through the service's
own model.library_index: index build time, query latency (p50, p99; one query at a time, as a
request makes it, with and without a genre filter), the HNSW graph's recall@10 against exact
search, and each index's memory once loaded from its Parquet file (a fresh process), per 10^5
tracks. Results: bench/results/similarity_{quality,speed}.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from bench.common import RESULTS, ROOT, markdown_table, write
from model.card import ModelCard, card_path, load_card
from model.features import model_input
from model.library_index import (
    CONNECTIVITY,
    EXACT_MAX_TRACKS,
    EXPANSION_ADD,
    EXPANSION_SEARCH,
    MODEL_KEY,
    LibraryIndex,
    build_graph,
    flat_index,
    grouped_by_genre,
    index_files,
    model_id,
    one_search_thread,
)
from model.runtime import DEFAULT_MODEL_PATH, GenreModel
from training.clip_summary import clip_summaries
from training.cv import out_of_fold
from training.data import load_arrays
from training.folds import artist_groups

NEIGHBOURS = 5
RECALL_AT = 10


def unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    return out


def neighbour_shares(vectors: np.ndarray, labels: np.ndarray, artists: np.ndarray, same_artist: bool) -> np.ndarray:
    """Per clip, the share of its NEIGHBOURS nearest others (cosine) with its label; with same_artist
    False, clips by its own artist are not neighbours."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    if not same_artist:
        similarity[artists[:, None] == artists[None, :]] = -np.inf
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :NEIGHBOURS]
    shares: np.ndarray = (labels[nearest] == labels[:, None]).mean(1)
    return shares


def chance(labels: np.ndarray) -> np.ndarray:
    """Per clip, the share of its own label among the other clips: what random neighbours give."""
    counts = np.bincount(labels, minlength=labels.max() + 1)
    out: np.ndarray = (counts[labels] - 1) / (len(labels) - 1)
    return out


@torch.no_grad()
def quality(data: Path, runs: list[Path]) -> dict[str, Any]:
    oof = out_of_fold(data, runs)
    artist_of = artist_groups(data)
    methods = ("embedding", "band_statistics", "chance")
    shares: dict[str, dict[str, list[np.ndarray]]] = {m: {"all": [], "other_artists": []} for m in methods}
    truth_parts = []
    for k, (_, net) in enumerate(oof.checkpoints):
        rows = np.flatnonzero(oof.fold == k)
        inputs = [model_input(oof.arrays.grids[oof.rows[i]], oof.front_end) for i in rows]
        net.eval()
        fused = np.concatenate(
            [net.pool(torch.from_numpy(np.stack(inputs[j : j + 64])))[0].numpy() for j in range(0, len(inputs), 64)]
        )
        stats = clip_summaries(inputs)
        stats = (stats - stats.mean(0)) / np.maximum(stats.std(0), 1e-6)
        labels, artists = oof.truth[rows], np.array([artist_of[oof.ids[i]] for i in rows])
        truth_parts.append(labels)
        for name, vectors in (("embedding", unit(fused)), ("band_statistics", unit(stats))):
            shares[name]["all"].append(neighbour_shares(vectors, labels, artists, same_artist=True))
            shares[name]["other_artists"].append(neighbour_shares(vectors, labels, artists, same_artist=False))
        shares["chance"]["all"].append(chance(labels))
        shares["chance"]["other_artists"].append(chance(labels))  # near enough: an artist is a few clips
    truth = np.concatenate(truth_parts)
    result: dict[str, Any] = {
        "protocol": f"share of each clip's {NEIGHBOURS} nearest neighbours (cosine) of its genre, among the other "
        "clips of its cross-validation fold, all embedded by the fold's network that learnt from none of them",
        "clips": len(truth),
        "folds": len(oof.checkpoints),
    }
    for view in ("all", "other_artists"):
        result[view] = {}
        for name in methods:
            per_clip = np.concatenate(shares[name][view])
            per_genre = {label: round(float(per_clip[truth == i].mean()), 3) for i, label in enumerate(oof.labels)}
            result[view][name] = {"overall": round(float(per_clip.mean()), 3), "per_genre": per_genre}
    return result


def quality_table(result: dict[str, Any], labels: list[str]) -> str:
    rows = []
    for view, title in (("all", "any neighbour"), ("other_artists", "other artists only")):
        for name in ("embedding", "band_statistics", "chance"):
            figures = result[view][name]
            rows.append([title, name, figures["overall"], *(figures["per_genre"][g] for g in labels)])
    return markdown_table(["neighbours", "embedding", "all", *labels], rows)


def synthetic_source(model: GenreModel, data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(genre means, the Cholesky factor of their pooled covariance, genre shares): a Gaussian mixture
    fitted to the shipped model's embeddings of the labelled clips."""
    arrays = load_arrays(data, labels=model.labels)
    inputs = np.stack([model_input(g, model.front_end) for g in arrays.grids])
    parts = [model.predict(inputs[i : i + 64]).embedding for i in range(0, len(inputs), 64)]
    if any(p is None for p in parts):
        raise SystemExit(f"{DEFAULT_MODEL_PATH} has no embedding output")
    embedding = unit(np.concatenate(parts))  # type: ignore[arg-type]  # none is None
    labels = np.array(arrays.labels)
    means = np.stack([embedding[labels == g].mean(0) for g in range(len(model.labels))])
    within = embedding - means[labels]
    covariance = within.T @ within / (len(within) - len(means)) + 1e-6 * np.eye(embedding.shape[1])
    return means, np.linalg.cholesky(covariance), np.bincount(labels) / len(labels)


def synthetic(n: int, source: tuple[np.ndarray, np.ndarray, np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    means, factor, shares = source
    rng = np.random.default_rng(seed)
    genre = rng.choice(len(means), size=n, p=shares)
    vectors = np.empty((n, means.shape[1]), np.float32)
    for start in range(0, n, 100_000):  # in chunks: float64 intermediates of 10^6 x 192 are 1.5 GB
        stop = min(n, start + 100_000)
        noise = rng.standard_normal((stop - start, means.shape[1])) @ factor.T
        vectors[start:stop] = unit(means[genre[start:stop]] + noise)
    return vectors, genre


def write_library(path: Path, vectors: np.ndarray, genres: list[str], card: ModelCard) -> None:
    """The columns model.library_index reads, as `genre classify --embeddings` writes them (track i at
    library/track-i.flac)."""
    n, dimension = vectors.shape
    table = pa.table(
        {
            "path": pa.array([f"library/track-{i:07d}.flac" for i in range(n)]),
            "top_genre": pa.array(genres),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dimension),
            "error": pa.nulls(n, pa.string()),
        }
    ).replace_schema_metadata({MODEL_KEY: model_id(card).encode()})
    pq.write_table(table, path)


def latencies_ms(library: LibraryIndex, queries: np.ndarray, genre: str | None = None) -> tuple[float, float]:
    times = []
    for q in queries:
        start = time.perf_counter()
        library.nearest(q, RECALL_AT, genre)
        times.append(time.perf_counter() - start)
    p50, p99 = np.percentile(np.array(times) * 1000, [50, 99])
    return round(float(p50), 3), round(float(p99), 3)


def recall(graph: Any, queries: np.ndarray, truth: np.ndarray, expansion: int) -> float:
    """The HNSW graph's recall@10 at efSearch = expansion, against exact search's rows `truth`."""
    graph.hnsw.efSearch = expansion
    found = graph.search(queries, RECALL_AT)[1]
    graph.hnsw.efSearch = EXPANSION_SEARCH
    shares = [len(set(f) & set(t)) / RECALL_AT for f, t in zip(found, truth, strict=True)]
    return round(float(np.mean(shares)), 4)


LOAD_CODE = """
import json, os, sys
from pathlib import Path
from bench.server import rss_kib
from model.card import card_path, load_card
from model.library_index import LibraryIndex
from model.runtime import DEFAULT_MODEL_PATH
card = load_card(card_path(DEFAULT_MODEL_PATH))
before = rss_kib(os.getpid())
library = LibraryIndex.load(Path(sys.argv[1]), card, exact_max=int(sys.argv[2]))
print(json.dumps({"mib": (rss_kib(os.getpid()) - before) / 1024, "approximate": library.approximate}))
"""


def loaded_mib(path: Path, exact: bool) -> float:
    """Memory a fresh process takes on to load the library (its graph saved beside it, for HNSW)."""
    exact_max = 10**12 if exact else 0
    done = subprocess.run(
        [sys.executable, "-c", LOAD_CODE, str(path), str(exact_max)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["approximate"] is not exact
    return float(answer["mib"])


def speed(sizes: list[int], n_queries: int, data: Path, work: Path) -> dict[str, Any]:
    model = GenreModel(DEFAULT_MODEL_PATH, providers="cpu")
    card = model.card
    source = synthetic_source(model, data)
    queries, _ = synthetic(n_queries, source, seed=1)
    filter_genre = card.labels[0]
    result: dict[str, Any] = {
        "protocol": "synthetic unit vectors from a Gaussian mixture fitted to the shipped model's embeddings of the "
        f"labelled clips; {n_queries} queries drawn the same way, one at a time (LibraryIndex.nearest, k = "
        f"{RECALL_AT}); memory: a fresh process loading the Parquet file (and the graph saved beside it)",
        "hnsw": {"M": CONNECTIVITY, "efConstruction": EXPANSION_ADD, "efSearch": EXPANSION_SEARCH},
        "exact_max_tracks": EXACT_MAX_TRACKS,
        "build_threads": faiss.omp_get_max_threads(),
        "query_threads": 1,
        "sizes": {},
    }
    for n in sizes:
        vectors, genre = synthetic(n, source, seed=2)
        paths = [f"library/track-{i:07d}.flac" for i in range(n)]
        path = work / f"library-{n}.parquet"
        write_library(path, vectors, [card.labels[g] for g in genre], card)
        paths, genres, vectors = grouped_by_genre(paths, [card.labels[g] for g in genre], vectors)  # as loaded

        start = time.perf_counter()
        exact = LibraryIndex(paths, genres, flat_index(vectors))
        exact_build = time.perf_counter() - start
        truth = faiss.downcast_index(exact.index).search(queries, RECALL_AT)[1]

        start = time.perf_counter()
        graph = build_graph(vectors)
        hnsw_build = time.perf_counter() - start
        graph_path, note = index_files(path)
        faiss.write_index(graph, str(graph_path))
        note.write_text(json.dumps({"size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns, "tracks": n}))
        approximate = LibraryIndex(paths, genres, graph)
        threads = faiss.omp_get_max_threads()
        one_search_thread()  # queries as the service makes them, one thread each

        per_1e5 = 1e5 / n
        result["sizes"][str(n)] = {
            "exact": {
                "build_s": round(exact_build, 3),
                "query_ms_p50_p99": latencies_ms(exact, queries),
                "genre_filtered_query_ms_p50_p99": latencies_ms(exact, queries, filter_genre),
                "memory_mib_per_1e5_tracks": round(loaded_mib(path, exact=True) * per_1e5, 1),
            },
            "hnsw": {
                "build_s": round(hnsw_build, 1),
                "query_ms_p50_p99": latencies_ms(approximate, queries),
                "genre_filtered_query_ms_p50_p99": latencies_ms(approximate, queries, filter_genre),
                "recall_at_10": recall(graph, queries, truth, EXPANSION_SEARCH),
                "recall_at_10_by_efSearch": {e: recall(graph, queries, truth, e) for e in (32, 64, 128, 256)},
                "memory_mib_per_1e5_tracks": round(loaded_mib(path, exact=False) * per_1e5, 1),
            },
        }
        faiss.omp_set_num_threads(threads)  # the next size's builds use every core again
        print(n, json.dumps(result["sizes"][str(n)]), flush=True)
        del exact, approximate, graph
    return result


def speed_table(result: dict[str, Any]) -> str:
    rows = []
    for n, figures in result["sizes"].items():
        for kind in ("exact", "hnsw"):
            f = figures[kind]
            rows.append(
                [
                    f"{int(n):,}",
                    kind,
                    f["build_s"],
                    *f["query_ms_p50_p99"],
                    f["genre_filtered_query_ms_p50_p99"][1],
                    f.get("recall_at_10", 1.0),
                    f["memory_mib_per_1e5_tracks"],
                ]
            )
    header = ["tracks", "search", "build s", "query p50 ms", "p99 ms", "filtered p99 ms", "recall@10", "MiB per 10^5"]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    common.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    commands = parser.add_subparsers(dest="command", required=True)
    q = commands.add_parser(
        "quality", parents=[common], help="out-of-fold same-genre neighbours, against the band statistics"
    )
    q.add_argument("--run", type=Path, action="append", required=True, help="a cross-validation fold's run")
    s = commands.add_parser("speed", parents=[common], help="build time, latency, recall and memory by library size")
    s.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    s.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.command == "quality":
        result = quality(args.data, args.run)
        labels = load_card(card_path(DEFAULT_MODEL_PATH)).labels
        write("similarity_quality", result, quality_table(result, labels), args.out)
    else:
        with tempfile.TemporaryDirectory() as work:
            result = speed(args.sizes, args.queries, args.data, Path(work))
        write("similarity_speed", result, speed_table(result), args.out)
    return result


if __name__ == "__main__":
    main()
