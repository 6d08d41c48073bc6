from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import ROOT


def make_client(**overrides: object) -> TestClient:
    settings = Settings(providers="cpu", intra_op_threads=1, **overrides)  # type: ignore[arg-type]
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with make_client(max_upload_bytes=20 * 1024 * 1024) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "GENRE_PROVIDERS": "cpu",
        "GENRE_MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
        "GENRE_PORT": str(port),
    }
    process = subprocess.Popen([sys.executable, "-m", "app.main"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the server exited"
            time.sleep(0.2)
        else:
            raise AssertionError("the server did not become ready")
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=20)
