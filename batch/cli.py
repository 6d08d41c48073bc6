"""The `genre` command line.

    genre classify PATH... [--out FILE] [--resume] [--workers N] [--model PATH] [--ray ADDRESS]

PATHs are audio files or folders (walked recursively for audio files). One row per file goes to
FILE, whose extension picks the format: .jsonl, .csv or .parquet (pip install
'genre-service[parquet]'). A file that cannot be classified gets a row with its reason in `error`.
With --ray the same job runs as a Ray Data pipeline on a cluster (`local` starts one here; pip
install 'genre-service[ray]').
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batch.job import Summary, run
from model.runtime import DEFAULT_MODEL_PATH


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
    classify.add_argument("--max-duration-s", type=float, default=3600.0, help="longer files get an error row")
    classify.add_argument("--quiet", action="store_true", help="no progress bar")
    classify.add_argument(
        "--ray", metavar="ADDRESS", help="run on the Ray cluster at ADDRESS (`local`: one started here)"
    )
    classify.add_argument("--actors", type=int, default=0, help="--ray: inference actors (default: GPUs, or CPUs / 2)")
    return parser.parse_args(argv)


def ray_job(args: argparse.Namespace) -> Summary:
    try:
        from batch.ray_job import run_on_ray
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'genre-service[ray]'") from None
    return run_on_ray(
        args.paths, args.out, args.model, args.ray, args.resume, args.max_duration_s, not args.quiet, args.actors
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.ray:
            summary = ray_job(args)
        else:
            summary = run(
                args.paths, args.out, args.model, args.workers, args.resume, args.max_duration_s, not args.quiet
            )
    except (ValueError, OSError) as e:
        print(f"genre: {e}", file=sys.stderr)
        return 2
    skipped = f", {summary.skipped} already there" if summary.skipped else ""
    print(
        f"genre: {summary.files} file(s) classified into {args.out}, {summary.errors} with errors{skipped}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
