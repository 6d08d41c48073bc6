"""Burst benchmark: many large uploads at once against a real server, for several admission settings.

    python -m bench.burst [--clients 40] [--seconds-of-audio 330]

Each run starts `python -m app.main` with one admission setting, sends `clients` uploads of the
same large CD-format WAV (330 s of stereo 44.1 kHz: 55 MiB) all at once, and records what was
served and what was shed (503), the latency percentiles of each, and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from pathlib import Path
from typing import TypedDict

import httpx
import numpy as np

from bench.common import RESULTS, chosen, markdown_table, wav_clip, write
from bench.server import rss_kib, running_server

SETTINGS = {  # name -> GENRE_* admission settings (defaults: app/config.py)
    "defaults (4 in flight, queue 16)": {},
    "2 in flight, queue 8": {"max_in_flight": "2", "max_queue": "8"},
    "8 in flight, queue 32": {"max_in_flight": "8", "max_queue": "32"},
}


class BurstResult(TypedDict):
    setting: str
    clients: int
    served: int
    shed: int
    other: dict[str, int]
    served_ms: dict[str, float]  # p50, p99
    shed_ms: dict[str, float]
    peak_rss_mib: float


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ms = np.array(values) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p99": round(float(np.percentile(ms, 99)), 1)}


def sample_peak_rss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib(pid) / 1024)
        time.sleep(0.05)


async def burst(url: str, data: bytes, clients: int) -> tuple[list[float], list[float], dict[str, int]]:
    served: list[float] = []
    shed: list[float] = []
    other: dict[str, int] = {}

    async def client(http: httpx.AsyncClient) -> None:
        start = time.perf_counter()
        try:
            response = await http.post(f"{url}/classify?attention=false", files={"file": ("long.wav", data)})
            kind = response.status_code
        except httpx.HTTPError as e:
            kind, response = 0, None
            other[type(e).__name__] = other.get(type(e).__name__, 0) + 1
        elapsed = time.perf_counter() - start
        if kind == 200:
            served.append(elapsed)
        elif kind == 503 and response is not None and response.headers.get("retry-after"):
            shed.append(elapsed)
        elif kind:
            other[str(kind)] = other.get(str(kind), 0) + 1

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return served, shed, other


def run(name: str, settings: dict[str, str], data: bytes, clients: int) -> BurstResult:
    with running_server({"log_level": "warning", **settings}) as (url, process):
        stop, peak = threading.Event(), [0.0]
        sampler = threading.Thread(target=sample_peak_rss, args=(process.pid, stop, peak), daemon=True)
        sampler.start()
        served, shed, other = asyncio.run(burst(url, data, clients))
        stop.set()
        sampler.join()
    return {
        "setting": name,
        "clients": clients,
        "served": len(served),
        "shed": len(shed),
        "other": other,
        "served_ms": percentiles(served),
        "shed_ms": percentiles(shed),
        "peak_rss_mib": round(peak[0], 1),
    }


def main(argv: list[str] | None = None) -> list[BurstResult]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds-of-audio", type=float, default=330.0)
    parser.add_argument("--name", default="burst")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only", help="run only the setting whose name starts with this")
    args = parser.parse_args(argv)
    data = wav_clip(args.seconds_of_audio, rate=44100, channels=2)
    results = [run(name, settings, data, args.clients) for name, settings in chosen(SETTINGS, args.only).items()]
    header = ["setting", "served", "shed (503)", "other", "served p50 / p99 ms", "shed p50 / p99 ms", "peak RSS MiB"]
    rows: list[list[object]] = [
        [
            r["setting"],
            r["served"],
            r["shed"],
            sum(r["other"].values()),
            f"{r['served_ms'].get('p50')} / {r['served_ms'].get('p99')}",
            f"{r['shed_ms'].get('p50')} / {r['shed_ms'].get('p99')}",
            r["peak_rss_mib"],
        ]
        for r in results
    ]
    table = (
        f"{args.clients} clients at once, each uploading {len(data) / 2**20:.0f} MiB "
        f"({args.seconds_of_audio:g} s of 44.1 kHz stereo WAV); server and clients on the same 2 cores.\n\n"
        + markdown_table(header, rows)
    )
    write(args.name, {"runs": results}, table, args.out)
    return results


if __name__ == "__main__":
    main()
