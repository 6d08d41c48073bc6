"""deploy/ray/serve.yaml through `serve run`, on the tests' shared local Ray, called over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from bench.server import free_port
from model.audio import decode
from model.runtime import GenreModel
from tests.audio import encoded
from tests.helpers import ROOT, SHIPPED_LABELS, analyse

SERVE_YAML = ROOT / "deploy" / "ray" / "serve.yaml"


def test_the_config_serves_on_loopback_and_autoscales() -> None:
    config = yaml.safe_load(SERVE_YAML.read_text())
    assert config["http_options"] == {"host": "127.0.0.1", "port": 8000}
    [application] = config["applications"]
    [deployment] = application["deployments"]
    assert deployment["autoscaling_config"]["max_replicas"] > deployment["autoscaling_config"]["min_replicas"]


@pytest.fixture(scope="module")
def served(ray_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`serve run` of the shipped serve.yaml (on a free port instead of 8000) against the shared Ray."""
    import ray

    config = yaml.safe_load(SERVE_YAML.read_text())
    port = free_port()
    config["http_options"]["port"] = port
    config["applications"][0]["runtime_env"]["env_vars"]["GENRE_PROVIDERS"] = "cpu"
    path = tmp_path_factory.mktemp("serve") / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    address = ray.get_runtime_context().gcs_address
    process = subprocess.Popen(
        [sys.executable, "-m", "ray.serve.scripts", "run", str(path), "--address", address],
        cwd=ROOT,
        env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, "serve run exited"
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the Serve application did not get ready"
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGINT)  # serve run tears its application down on Ctrl-C
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        from ray import serve

        # serve.shutdown() waits for Serve's controller without end when `serve run` never brought
        # it up (a setup that failed above): give it a minute, and let that failure be the report.
        shutdown = threading.Thread(target=serve.shutdown, daemon=True)
        shutdown.start()
        shutdown.join(60)


def test_serve_answers_the_services_api(served: str) -> None:
    url = served
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["model"]["labels"] == list(SHIPPED_LABELS)
    assert "genre_http_requests_total" in httpx.get(f"{url}/metrics").text
    assert "<title>Music genre classifier</title>" in httpx.get(f"{url}/").text
    response = httpx.post(f"{url}/classify", files={"file": ("a.ogg", encoded("ogg", 40.0))}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["genres"][0]["genre"] in SHIPPED_LABELS and len(body["segments"]) == 2  # 40 s: two windows
    assert body["music_probability"] is not None and body["top_genre"] in (*SHIPPED_LABELS, None)
    bad = httpx.post(f"{url}/classify", files={"file": ("a.wav", b"RIFF nonsense")}, timeout=60)
    assert bad.status_code == 415 and "detail" in bad.json()
    name = health["model"]["name"]
    assert httpx.get(f"{url}/v2/models/{name}/ready").status_code == 200


def test_concurrent_requests_are_batched_by_serve_and_get_their_own_answers(served: str) -> None:
    """Eight uploads at once: each answer is what the model gives that upload alone."""
    clips = [encoded("flac", 5.0 + i) for i in range(8)]

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(
                *(client.post(f"{served}/classify", files={"file": (f"{i}.flac", c)}) for i, c in enumerate(clips))
            )

    responses = asyncio.run(post_all())
    model = GenreModel(providers="cpu")
    for clip, response in zip(clips, responses, strict=True):
        assert response.status_code == 200, response.text
        expected = analyse(model, decode(clip).waveform).probabilities
        got = {g["genre"]: g["probability"] for g in response.json()["genres"]}
        np.testing.assert_allclose([got[label] for label in model.labels], expected, atol=1e-5)
    batches = [
        line
        for line in httpx.get(f"{served}/metrics").text.splitlines()
        if line.startswith("genre_inference_batch_windows_count")
    ]
    assert batches, "the replica's metrics should count its ONNX calls"


def test_replica_logs_are_json_lines(served: str) -> None:
    """The app's lines on each replica's stdout, and Serve's own in its replica log, are JSON."""
    import ray

    httpx.post(f"{served}/classify", files={"file": ("a.wav", encoded("wav"))}, timeout=60)
    node = ray._private.worker._global_node  # Ray has no public way to its logs folder
    assert node is not None
    logs = Path(node.get_logs_dir_path())
    replica_out = [f for f in logs.glob("worker-*.out") if ":actor_name:ServeReplica:genre:" in f.read_text()]
    assert replica_out, "no replica stdout found"
    app_lines = [
        json.loads(line)  # Ray's own ":job_id:" and ":actor_name:" markers aside, every line is JSON
        for f in replica_out
        for line in f.read_text().splitlines()
        if line and not line.startswith(":")
    ]
    assert any(r["message"] == "request" and r["route"] == "/classify" for r in app_lines)
    serve_lines = [line for f in (logs / "serve").glob("replica_genre_*.log") for line in f.read_text().splitlines()]
    assert serve_lines and all(json.loads(line) for line in serve_lines)
