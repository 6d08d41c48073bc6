"""Soak benchmark: the server's memory over time under long uploads, for each memory option.

    python -m bench.soak [--clients 8] [--seconds 150]

For each option, starts `python -m app.main`, has `clients` clients post WAVs of 10 to 130 s
(22.05 kHz mono) in turn for `seconds`, and samples the server's RSS every 0.25 s. Reports the
peak, the peak after warm-up (the first quarter) against the last quarter's, so growth shows, and
throughput. The RSS series are kept in the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TypedDict

import numpy as np

from bench.common import RESULTS, chosen, markdown_table, wav_clip, write
from bench.load import LoadResult, run_load
from bench.server import running_server

OPTIONS = {  # name -> GENRE_* settings
    "ORT arena on, batches of at most 32 windows": {
        "ort_memory_arena": "true",
        "max_batch_windows": "32",
    },
    "ORT arena off, batches of at most 32 windows": {"ort_memory_arena": "false", "max_batch_windows": "32"},
    "ORT arena off, batches of at most 8 windows (the defaults)": {
        "ort_memory_arena": "false",
        "max_batch_windows": "8",
    },
}


class SoakResult(TypedDict):
    option: str
    load: LoadResult
    warm_peak_mib: float  # peak over the second quarter
    last_quarter_peak_mib: float
    growth_mib: float  # last quarter's peak minus the second quarter's


def lengths_s(n: int = 8) -> list[float]:
    return [float(s) for s in np.linspace(10, 130, n).round()]


def soak(
    name: str, settings: dict[str, str], clips: list[tuple[bytes, float]], clients: int, seconds: float
) -> SoakResult:
    with running_server({"log_level": "warning", **settings}) as (url, process):
        load = asyncio.run(run_load(url, process.pid, clients, seconds, clips))
    series = load["rss_series_mib"]
    quarter = max(1, len(series) // 4)
    warm = max(series[quarter : 2 * quarter] or series)
    last = max(series[-quarter:])
    return {
        "option": name,
        "load": load,
        "warm_peak_mib": warm,
        "last_quarter_peak_mib": last,
        "growth_mib": round(last - warm, 1),
    }


def main(argv: list[str] | None = None) -> list[SoakResult]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--name", default="soak")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", help="run only the options whose name starts with this")
    args = parser.parse_args(argv)
    clips = [(wav_clip(s, seed, rate=22050, channels=1), s) for seed, s in enumerate(lengths_s())]
    results = [
        soak(name, settings, clips, args.clients, args.seconds) for name, settings in chosen(OPTIONS, args.only).items()
    ]
    header = ["option", "peak RSS MiB", "2nd-quarter peak", "last-quarter peak", "growth MiB", "req/s", "audio s/s"]
    rows: list[list[object]] = [
        [
            r["option"],
            r["load"]["rss_mib"]["peak"],
            r["warm_peak_mib"],
            r["last_quarter_peak_mib"],
            r["growth_mib"],
            r["load"]["throughput_rps"],
            r["load"]["audio_s_per_s"],
        ]
        for r in results
    ]
    table = (
        f"{args.clients} clients posting 10-130 s WAVs (22.05 kHz mono) for {args.seconds:g} s; "
        "server and clients on the same 2 cores.\n\n" + markdown_table(header, rows)
    )
    write(args.name, {"runs": results}, table, args.out)
    return results


if __name__ == "__main__":
    main()
