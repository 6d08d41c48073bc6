"""Every line the service writes is JSON: its own, uvicorn's (start-up, access) and the audio route's."""

from __future__ import annotations

import json
import tempfile

import httpx
import pytest

from bench.server import running_server
from tests.audio import encoded


@pytest.mark.parametrize("uvicorn_cli", [False, True], ids=["python -m app.main", "uvicorn app.main:app"])
def test_every_line_of_output_is_json(uvicorn_cli: bool) -> None:
    with tempfile.TemporaryFile() as output:
        with running_server(output=output, uvicorn_cli=uvicorn_cli) as (url, _):
            files = {"file": ("a.mp3", encoded("mp3", 2.0))}
            assert httpx.post(f"{url}/classify", files=files, timeout=30).status_code == 200
            assert httpx.post(f"{url}/classify", files={"file": ("x.wav", b"junk")}, timeout=30).status_code == 415
            httpx.get(f"{url}/health")
        output.seek(0)
        lines = output.read().decode().splitlines()
    entries = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    loggers = {e["logger"] for e in entries}
    assert {"app", "uvicorn.error"} <= loggers, loggers  # uvicorn's start-up lines are JSON too
    assert any("startup complete" in e["message"] for e in entries)
    statuses = [e.get("status") for e in entries if e["message"] == "request"]
    assert 200 in statuses and 415 in statuses
    if uvicorn_cli:  # uvicorn's own access lines, as JSON with their fields
        assert any(e["logger"] == "uvicorn.access" and e["path"] == "/health" for e in entries)


def test_api_keys_never_reach_the_logs() -> None:
    with tempfile.TemporaryFile() as output:
        with running_server({"api_keys": "s3cret-key-one,s3cret-key-two"}, output=output) as (url, _):
            files = {"file": ("a.wav", encoded("wav", 2.0))}
            for token in ("s3cret-key-two", "s3cret-wrong-guess"):
                httpx.post(f"{url}/classify", files=files, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        output.seek(0)
        text = output.read().decode()
    assert '"status": 200' in text and '"status": 401' in text
    assert "s3cret" not in text
