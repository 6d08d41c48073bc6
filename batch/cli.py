"""The `genre` command line.

    genre classify PATH... [--out FILE] [--resume] [--workers N] [--model PATH] [--ray ADDRESS]
                           [--hop-s S] [--min-duration-s S] [--max-duration-s S] [--music-threshold P]
                           [--embeddings]
    genre similar QUERY --index LIBRARY.parquet [-k K] [--genre G] [--json] [--model PATH]

PATHs are audio files or folders (walked recursively for audio files). One row per file goes to
FILE, whose extension picks the format: .jsonl, .csv or .parquet. A file that cannot be
classified gets a row with its reason in `error`; with --embeddings every row has its track's
embedding too, and a Parquet file of them is a library that `genre similar` searches: QUERY (an
audio file, or a path already in the library) -> the K most similar tracks, with their cosine
similarity and top genre.
With --ray the same job runs as a Ray Data pipeline on a cluster (`local` starts one here; pip
install 'genre-service[ray]'). The window hop and the duration limits default to the service's
(model.pipeline); the music threshold to the model card's (a file that is not music gets
`is_music` false and no top genre). Exit status: 0 when every file has its row (errors included), 1 when the job
stopped without one for each, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from batch.job import run
from batch.output import JobError, Summary
from model.card import card_path, load_card
from model.library_index import LibraryIndex
from model.pipeline import MAX_DURATION_S, MIN_DURATION_S, WINDOW_HOP_S, Limits, Pipeline
from model.runtime import DEFAULT_MODEL_PATH, GenreModel


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="genre", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    classify = commands.add_parser("classify", help="classify audio files and folders into a table")
    classify.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    classify.add_argument("--out", type=Path, default=Path("genres.jsonl"), help="default: genres.jsonl")
    classify.add_argument("--resume", action="store_true", help="skip the files already in --out, and append")
    classify.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    classify.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="an ONNX model with its card")
    classify.add_argument(
        "--hop-s", type=float, default=WINDOW_HOP_S, help=f"longest hop between 30 s windows (default {WINDOW_HOP_S:g})"
    )
    classify.add_argument(
        "--min-duration-s", type=float, default=MIN_DURATION_S, help="shorter files get an error row (default 1)"
    )
    classify.add_argument(
        "--max-duration-s", type=float, default=MAX_DURATION_S, help="longer files get an error row (default 1200)"
    )
    classify.add_argument(
        "--music-threshold",
        type=float,
        help="a file is music when its music probability is at least this (default: the model card's)",
    )
    classify.add_argument("--quiet", action="store_true", help="no progress bar")
    classify.add_argument(
        "--ray", metavar="ADDRESS", help="run on the Ray cluster at ADDRESS (`local`: one started here)"
    )
    classify.add_argument("--actors", type=int, default=0, help="--ray: inference actors (default: GPUs, or CPUs / 2)")
    classify.add_argument("--batch-files", type=int, default=0, help="--ray: files per ONNX call (default 8)")
    classify.add_argument("--embeddings", action="store_true", help="add each track's embedding (for genre similar)")

    similar = commands.add_parser("similar", help="the tracks of a library most like a query")
    similar.add_argument("query", metavar="QUERY", help="an audio file, or a path in the library")
    similar.add_argument(
        "--index", type=Path, required=True, metavar="LIBRARY", help="a Parquet file of genre classify --embeddings"
    )
    similar.add_argument("-k", type=int, default=10, help="how many tracks (default 10)")
    similar.add_argument("--genre", help="only tracks of this top genre")
    similar.add_argument("--json", action="store_true", help="a JSON list of {path, similarity, top_genre}")
    similar.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="the model that made the library")
    return parser.parse_args(argv)


def ray_job(args: argparse.Namespace, limits: Limits) -> Summary:
    try:
        from batch.ray_job import FILES_PER_BATCH, run_on_ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'genre-service[ray]'") from None
    return run_on_ray(
        args.paths,
        args.out,
        args.model,
        args.ray,
        args.resume,
        limits,
        args.music_threshold,
        not args.quiet,
        args.actors,
        args.batch_files or FILES_PER_BATCH,
        args.embeddings,
    )


def classify(args: argparse.Namespace) -> None:
    if args.workers < 0 or args.actors < 0 or args.batch_files < 0:
        raise ValueError("--workers, --actors and --batch-files must not be negative")
    limits = Limits(args.hop_s, args.min_duration_s, args.max_duration_s)
    if args.ray:
        summary = ray_job(args, limits)
    else:
        summary = run(
            args.paths,
            args.out,
            args.model,
            args.workers,
            args.resume,
            limits,
            args.music_threshold,
            not args.quiet,
            args.embeddings,
        )
    skipped = f", {summary.skipped} already there" if summary.skipped else ""
    print(
        f"genre: {summary.files} file(s) classified into {args.out}, {summary.errors} with errors{skipped}",
        file=sys.stderr,
    )


def similar(args: argparse.Namespace) -> None:
    card = load_card(card_path(args.model))
    if args.k < 1:
        raise ValueError("-k must be at least 1")
    if args.genre is not None and args.genre not in card.labels:
        raise ValueError(f"--genre must be one of {', '.join(card.labels)}, not {args.genre!r}")
    # A large library's index is built on first use (minutes at 10^6 tracks): say so, and any trouble saving it.
    messages = logging.getLogger("model.library_index")
    if not messages.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("genre: %(message)s"))
        messages.addHandler(handler)
        messages.setLevel(logging.INFO)
    library = LibraryIndex.load(args.index, card)
    query = library.vector_of(args.query)
    if query is None:
        if not Path(args.query).is_file():
            raise ValueError(f"{args.query} is neither an audio file nor a track of {args.index}")
        analysis = Pipeline.of(card).classify(GenreModel(args.model, providers="cpu"), Path(args.query))[1]
        assert analysis.embedding is not None  # the library's check: this model has the output
        if analysis.is_music is False:
            print(f"genre: {args.query} does not sound like music; its neighbours may mean little", file=sys.stderr)
        query = analysis.embedding
    found = library.nearest(query, args.k, args.genre, exclude=args.query)
    if args.json:
        print(json.dumps([asdict(n) for n in found]))
        return
    for n in found:
        print(f"{n.similarity:.4f}  {n.top_genre or '-':<10}  {n.path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        classify(args) if args.command == "classify" else similar(args)
    except JobError as e:
        print(f"genre: {e}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as e:  # the library's and the audio's errors are ValueErrors
        print(f"genre: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
