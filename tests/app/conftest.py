from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bench.server import running_server
from tests.helpers import make_client


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with make_client(max_upload_bytes=20 * 1024 * 1024) as c:
        yield c


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with running_server({"max_upload_bytes": str(8 * 1024 * 1024)}) as running:
        yield running
