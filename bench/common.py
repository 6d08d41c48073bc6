"""Shared helpers of the benchmarks: test clips, timing, writing results."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile as sf

T = TypeVar("T")
RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
# The speed reference: model 1.2.0 (four networks, git a42b2a1) with its card in today's format,
# kept as a file so that a shallow clone can time against it (make export, bench.pipeline).
REFERENCE_MODEL = Path(__file__).parent / "reference" / "genre_birnn_1.2.0.onnx"
# Model 3.0's speed bar is half of 2.1.3's inference (one network and the summary head, before
# the music detector; git 560ff92), timed in the same bench.pipeline run.
SPEED_BAR_MODEL = Path(__file__).parent / "reference" / "genre_birnn_2.1.3.onnx"


def wav_clip(seconds: float, seed: int = 0, rate: int = 44100, channels: int = 2) -> bytes:
    """A CD-format WAV of music-like noise: a chord, a beat and a noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 600, 3))
    x = x + (np.mod(t, 0.5) < 0.05) * rng.standard_normal(t.size) * 0.3 + 0.01 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, np.repeat(x[:, None], channels, axis=1).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per call, best of `repeat` after a warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def timed_in_turns(fns: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, float]:
    """CPU seconds of this process per call of each fn, for ratios between them: `rounds` turns of
    `calls` calls each, the fns taking turns so that the machine's drift touches all of them alike;
    each one's median turn, after a warm-up call."""
    for fn in fns.values():
        fn()
    turns: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            cpu = time.process_time()
            for _ in range(calls):
                fn()
            turns[name].append((time.process_time() - cpu) / calls)
    return {name: float(np.median(t)) for name, t in turns.items()}


def chosen(options: dict[str, T], prefix: str | None) -> dict[str, T]:
    """The options whose name starts with prefix (all of them without one)."""
    return {name: value for name, value in options.items() if prefix is None or name.startswith(prefix)}


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = [header, ["---"] * len(header), *([str(cell) for cell in row] for row in rows)]
    return "".join(f"| {' | '.join(line)} |\n" for line in lines)


def write(name: str, result: dict[str, object], table: str, folder: Path = RESULTS) -> None:
    """`name`.json and `name`.md (a Markdown table) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / f"{name}.md").write_text(table)
    print(table)
