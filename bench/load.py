"""Load test: a real server, concurrent clients on 127.0.0.1, bounded in time.

    python -m bench.load [--clients 32] [--seconds 60]

Starts `python -m app.main` on a free port, drives it from this process with concurrent
clients posting 30 s WAV clips, probes /health all along, samples the server's RSS, and
reports throughput, latency percentiles, errors, /health latency and whether memory stayed flat.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import TypedDict

import httpx
import numpy as np

from bench.common import RESULTS, wav_clip, write
from bench.server import rss_kib, running_server


class LoadResult(TypedDict):
    clients: int
    seconds: float
    requests: int
    throughput_rps: float
    audio_s_per_s: float
    latency_ms: dict[str, float]  # p50, p95, p99 (empty when nothing succeeded)
    errors: int
    error_kinds: dict[str, int]
    health_ms: dict[str, float]  # p50, max (inf when a probe failed)
    health_probes: int
    rss_mib: dict[str, float]  # first_quarter_peak, last_quarter_peak, peak
    rss_series_mib: list[float]  # sampled every SAMPLE_S


SAMPLE_S = 0.25  # how often /health is probed and the server's RSS sampled


def gtzan_clips() -> list[tuple[bytes, float]]:
    """Eight 30 s WAVs in GTZAN's format (22.05 kHz mono), as (bytes, seconds)."""
    return [(wav_clip(30.0, seed, rate=22050, channels=1), 30.0) for seed in range(8)]


async def run_load(
    url: str, pid: int, clients: int, seconds: float, clips: list[tuple[bytes, float]] | None = None
) -> LoadResult:
    """`clients` concurrent clients posting `clips` (bytes, audio seconds) in turn for `seconds`."""
    clips = clips or gtzan_clips()
    audio_s = 0.0
    latencies: list[float] = []
    health: list[float] = []
    rss: list[float] = []
    errors: dict[str, int] = {}
    stop = time.monotonic() + seconds

    async def client(i: int, http: httpx.AsyncClient) -> None:
        nonlocal audio_s
        n = i
        while time.monotonic() < stop:
            start = time.perf_counter()
            data, clip_s = clips[n % len(clips)]
            try:
                response = await http.post(f"{url}/classify", files={"file": ("c.wav", data)})
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                    audio_s += clip_s
                else:
                    errors[str(response.status_code)] = errors.get(str(response.status_code), 0) + 1
            except httpx.HTTPError as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            n += clients

    async def monitor(http: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                ok = (await http.get(f"{url}/health", timeout=5)).status_code == 200
                health.append(time.perf_counter() - start if ok else float("inf"))
            except httpx.HTTPError:
                health.append(float("inf"))
            rss.append(rss_kib(pid) / 1024)
            await asyncio.sleep(SAMPLE_S)

    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(monitor(http), *(client(i, http) for i in range(clients)))
        elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    quarter = max(1, len(rss) // 4)
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "audio_s_per_s": round(audio_s / elapsed, 1),
        "latency_ms": {p: round(float(np.percentile(lat, q)), 1) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))}
        if len(lat)
        else {},
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "health_ms": {"p50": round(1000 * float(np.median(health)), 1), "max": round(1000 * max(health), 1)},
        "health_probes": len(health),
        "rss_mib": {
            "first_quarter_peak": round(max(rss[:quarter]), 1),
            "last_quarter_peak": round(max(rss[-quarter:]), 1),
            "peak": round(max(rss), 1),
        },
        "rss_series_mib": [round(r, 1) for r in rss],
    }


def main(argv: list[str] | None = None) -> LoadResult:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--name", default="load")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and Markdown results")
    args = parser.parse_args(argv)
    # A queue place for every client: this measures throughput and latency; bench.burst measures shedding.
    with running_server({"log_level": "warning", "max_queue": str(args.clients)}) as (url, process):
        result = asyncio.run(run_load(url, process.pid, args.clients, args.seconds))
    lat, rss = result["latency_ms"], result["rss_mib"]
    table = (
        "| clients | requests | req/s | audio s/s | p50 ms | p95 ms | p99 ms | errors | /health p50/max ms "
        "| RSS MiB first/last quarter |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"| {result['clients']} | {result['requests']} | {result['throughput_rps']} | {result['audio_s_per_s']} "
        f"| {lat.get('p50')} | {lat.get('p95')} | {lat.get('p99')} | {result['errors']} "
        f"| {result['health_ms']['p50']}/{result['health_ms']['max']} "
        f"| {rss['first_quarter_peak']}/{rss['last_quarter_peak']} |\n"
    )
    write(args.name, dict(result), table, args.out)
    return result


if __name__ == "__main__":
    main()
