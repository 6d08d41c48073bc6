"""Library benchmark: `genre classify` at scale, local processes against Ray Data.

    python -m bench.library [--short-files 20000] [--long-files 500] [--long-seconds 240]

Two generated libraries in a temporary folder: many short files (2 s, 16 kHz mono WAV) and
fewer long ones (CD-format WAV of `--long-seconds`). Each library holds `--distinct` different
clips, and the rest are hard links to them under other names: the job reads every file whole,
and the disk holds no more than the distinct clips. Each is classified into Parquet (streamed)
by the local job (one process per core) and by `--ray local` (a Ray started here with every
core), and the benchmark records from one run:

- files per second, and Ray's over the local job's;
- peak resident memory of the job's whole process tree (the driver, its worker processes, Ray's
  processes), sampled every 50 ms, and the peak of the run's second half over its first half:
  near 1 when memory does not grow with the number of files done.

Ray's time includes its pipeline's start (actors loading the model), not the cluster's.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from batch.job import run
from batch.output import Summary
from batch.ray_job import connect, run_on_ray
from bench.common import RESULTS, markdown_table, wav_clip, write
from model.runtime import DEFAULT_MODEL_PATH


@dataclass(frozen=True)
class Measured:
    files_per_s: float
    peak_mib: float
    second_half_over_first: float  # peak memory of the run's second half over its first half's


def tree_rss_bytes(root: psutil.Process) -> int:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # ended between the listing and the reading
            continue
    return total


def measure(classify: Callable[[], Summary], n_files: int) -> Measured:
    """Run one job, sampling the memory of this process and everything under it."""
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    me = psutil.Process()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter(), tree_rss_bytes(me)))
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    start = time.perf_counter()
    sampler.start()
    try:
        summary = classify()
    finally:
        done.set()
        sampler.join()
    elapsed = time.perf_counter() - start
    assert summary.files == n_files and summary.errors == 0, summary
    middle = start + elapsed / 2
    first = max((rss for t, rss in samples if t < middle), default=0)
    second = max((rss for t, rss in samples if t >= middle), default=first)
    peak = max(rss for _, rss in samples)
    return Measured(n_files / elapsed, peak / 2**20, second / first if first else 1.0)


def write_library(folder: Path, n_files: int, distinct: int, clip: Callable[[int], bytes]) -> None:
    folder.mkdir()
    for i in range(n_files):
        path = folder / f"{i:06d}.wav"
        if i < distinct:
            path.write_bytes(clip(i))
        else:
            os.link(folder / f"{i % distinct:06d}.wav", path)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short-files", type=int, default=20_000)
    parser.add_argument("--long-files", type=int, default=500)
    parser.add_argument("--long-seconds", type=float, default=240.0)
    parser.add_argument("--distinct", type=int, default=32, help="different clips in each library")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for library.json and library.md")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    libraries = {
        "short": (args.short_files, 2.0, lambda i: wav_clip(2.0, seed=i, rate=16000, channels=1)),
        "long": (args.long_files, args.long_seconds, lambda i: wav_clip(args.long_seconds, seed=i)),
    }
    result: dict[str, object] = {"cores": cores, "distinct_clips": args.distinct}
    measured: dict[tuple[str, str], Measured] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (n_files, _, clip) in libraries.items():
            write_library(Path(tmp) / name, n_files, min(args.distinct, n_files), clip)
        # The local job first: once Ray runs here, its idle processes would count in the tree.
        for name, (n_files, _, _) in libraries.items():
            out = Path(tmp) / f"{name}-local.parquet"
            job = functools.partial(run, [Path(tmp) / name], out, DEFAULT_MODEL_PATH, progress=False)
            measured[name, "local"] = measure(job, n_files)
        connect("local")
        for name, (n_files, _, _) in libraries.items():
            out = Path(tmp) / f"{name}-ray.parquet"
            job = functools.partial(run_on_ray, [Path(tmp) / name], out, DEFAULT_MODEL_PATH, "local", progress=False)
            measured[name, "ray"] = measure(job, n_files)
    rows: list[list[object]] = []
    for name, (n_files, seconds, _) in libraries.items():
        local, ray = measured[name, "local"], measured[name, "ray"]
        result[name] = {
            "files": n_files,
            "seconds_per_file": seconds,
            "local_files_per_s": round(local.files_per_s, 2),
            "ray_files_per_s": round(ray.files_per_s, 2),
            "ray_over_local": round(ray.files_per_s / local.files_per_s, 2),
            "local_peak_mib": round(local.peak_mib),
            "ray_peak_mib": round(ray.peak_mib),
            "local_memory_second_half_over_first": round(local.second_half_over_first, 2),
            "ray_memory_second_half_over_first": round(ray.second_half_over_first, 2),
        }
        for job_name, m in (("local", local), ("Ray Data", ray)):
            rate = f"{m.files_per_s:.1f}"
            relative = f"{m.files_per_s / local.files_per_s:.2f}"
            memory = [f"{m.peak_mib:.0f}", f"{m.second_half_over_first:.2f}"]
            rows.append([f"{n_files} x {seconds:g} s", job_name, rate, relative, *memory])
    table = markdown_table(["library", "job", "files/s", "relative", "peak MiB", "memory, 2nd half / 1st"], rows)
    intro = f"On {cores} cores, local processes against a local {cores}-CPU Ray, into Parquet, one run:\n\n"
    write("library", result, intro + table, args.out)
    return result


if __name__ == "__main__":
    main()
