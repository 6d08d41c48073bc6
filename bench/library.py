"""Library benchmark: files per second of `genre classify`, local processes against Ray Data.

    python -m bench.library [--files 64] [--seconds 60]

Writes a library of generated CD-format WAVs (`files` of `seconds` each) to a temporary folder,
classifies it with the local job (one process per core) and with `--ray local` (a Ray started
here with every core), and records each one's files per second and their ratio, from one run.
Ray's time includes its pipeline's start (actors loading the model), not the cluster's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from batch.job import run
from batch.output import Summary
from batch.ray_job import connect, run_on_ray
from bench.common import RESULTS, markdown_table, wav_clip, write
from model.runtime import DEFAULT_MODEL_PATH


def files_per_second(classify: Callable[[], Summary], n_files: int) -> float:
    start = time.perf_counter()
    summary = classify()
    elapsed = time.perf_counter() - start
    assert summary.files == n_files and summary.errors == 0, summary
    return n_files / elapsed


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for library.json and library.md")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "library"
        library.mkdir()
        for i in range(args.files):
            (library / f"{i:04d}.wav").write_bytes(wav_clip(args.seconds, seed=i))
        local = files_per_second(
            lambda: run([library], Path(tmp) / "local.jsonl", DEFAULT_MODEL_PATH, progress=False), args.files
        )
        connect("local")
        on_ray = files_per_second(
            lambda: run_on_ray([library], Path(tmp) / "ray.jsonl", DEFAULT_MODEL_PATH, "local", progress=False),
            args.files,
        )
    result: dict[str, object] = {
        "files": args.files,
        "seconds_per_file": args.seconds,
        "cores": cores,
        "local_files_per_s": round(local, 2),
        "ray_files_per_s": round(on_ray, 2),
        "ray_over_local": round(on_ray / local, 2),
    }
    table = markdown_table(
        ["job", "files/s", "relative"],
        [
            [f"local, {cores} processes", f"{local:.2f}", "1.00"],
            [f"Ray Data on a local {cores}-CPU Ray", f"{on_ray:.2f}", f"{on_ray / local:.2f}"],
        ],
    )
    intro = f"{args.files} generated {args.seconds:g} s CD-format WAVs, one run:\n\n"
    write("library", result, intro + table, args.out)
    return result


if __name__ == "__main__":
    main()
