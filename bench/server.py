"""A real service process on 127.0.0.1, for the load benchmark and the end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    """Resident memory of a process, KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextmanager
def running_server(
    settings: Mapping[str, str] | None = None, *, output: IO[bytes] | None = None, uvicorn_cli: bool = False
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`python -m app.main` (or `uvicorn app.main:app`) on a free port of 127.0.0.1 with GENRE_*
    settings ({"max_queue": "4"} is GENRE_MAX_QUEUE=4), yielded once /ready answers 200. Its stdout
    and stderr go to `output` (default: dropped)."""
    port = free_port()
    given = {f"GENRE_{k.upper()}": v for k, v in (settings or {}).items()}
    env = {**os.environ, "GENRE_PROVIDERS": "cpu", **given}
    env["GENRE_PORT"] = str(port)
    command = (
        ["-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        if uvicorn_cli
        else ["-m", "app.main"]
    )
    sink = output if output is not None else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, *command], cwd=ROOT, env=env, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server exited or did not become ready")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)
