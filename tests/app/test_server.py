"""The real thing: a uvicorn process on 127.0.0.1, called over HTTP."""

from __future__ import annotations

import select
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from bench.server import rss_kib, running_server
from model.audio import decode
from model.features import to_mono
from model.runtime import GenreModel
from tests.audio import encode, encoded, music_like
from tests.helpers import SHIPPED_LABELS, analyse
from training.data import audio_path, read_labels
from training.evaluate import audio_prediction


def test_classify_over_http(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = server
    response = httpx.post(f"{url}/classify", files={"file": ("a.ogg", encoded("ogg", 5.0, channels=2))}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["genres"][0]["genre"] in SHIPPED_LABELS and body["channels"] == 2
    assert httpx.get(f"{url}/health").json()["model"]["provider"] == "CPUExecutionProvider"


def test_huge_upload_is_refused_while_streaming(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    """A 1 GiB chunked upload (no Content-Length) is answered 413 while it is still being sent."""
    url, process = server
    host, port = url.removeprefix("http://").split(":")
    before = rss_kib(process.pid)
    chunk = b"\0" * (1 << 20)
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
    sent, reply = 0, b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /classify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
        try:
            for data in (head, *([chunk] * 1024)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                sent += len(data)
                if select.select([sock], [], [], 0)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: a refusal too, and its answer is waiting
        reply = read_response(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"larger than the limit" in reply
    assert sent < 64 * (1 << 20), f"{sent} bytes were sent before the refusal"
    assert rss_kib(process.pid) - before < 100 * 1024
    assert httpx.get(f"{url}/health").status_code == 200


def test_declared_content_length_over_the_limit_is_413(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = server
    data = encode(music_like(200.0, 22050), 22050)  # 8.8 MB > 8 MiB
    response = httpx.post(f"{url}/classify", files={"file": ("big.wav", data)}, timeout=60)
    assert response.status_code == 413
    assert "bytes" in response.json()["detail"]


def test_shared_clips_over_http_match_the_evaluation_cli(
    server: tuple[str, subprocess.Popen[bytes]], gtzan: Path
) -> None:
    url, _ = server
    model = GenreModel(providers="cpu")
    compared = music = 0
    with httpx.Client(timeout=60) as http:
        for row in read_labels(gtzan):
            path = audio_path(gtzan, row["genre"], row["clip_id"])
            if path is None:
                continue
            response = http.post(f"{url}/classify", files={"file": (path.name, path.read_bytes())})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["genres"][0]["genre"] == SHIPPED_LABELS[audio_prediction(model, path)], row["clip_id"]
            assert body["top_genre"] in (body["genres"][0]["genre"], None)
            compared += 1
            music += body["is_music"]
    assert compared == 89 and music >= 87  # the detector calls at most 2 % of music not music


def test_file_route_equals_array_route() -> None:
    """What the service computes from bytes equals the front end applied to the decoded array."""
    x = music_like(40.0, 48000, channels=2)
    data = encode(x, 48000, "WAV", "FLOAT")
    model = GenreModel(providers="cpu")
    decoded = decode(data, max_duration_s=600.0)
    np.testing.assert_array_equal(decoded.waveform, to_mono(x, 48000))
    a, b = analyse(model, decoded.waveform), analyse(model, to_mono(x, 48000))
    assert abs(a.probabilities - b.probabilities).max() < 1e-5


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def raw_upload_start(url: str, declared: int) -> socket.socket:
    """A multipart POST /classify whose headers promise `declared` bytes, with the first 1000 sent."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        + b"Content-Length: %d\r\n\r\n" % declared
        + b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        + b"\0" * 1000
    )
    return sock


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response: the head, then as many body bytes as its Content-Length says.
    (A single recv may return only the head: the body can come in a later segment.)"""
    reply = b""
    while b"\r\n\r\n" not in reply:
        reply += recv_some(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        body += recv_some(sock)
    return head + b"\r\n\r\n" + body


def recv_some(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    assert data, "the server closed the connection mid-response"
    return data


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_slow_and_vanishing_clients_free_their_places() -> None:
    """Against a real uvicorn: a trickler gets 408 after the upload timeout; one that hangs up while
    uploading or while queued frees its place; and the service serves on."""
    with running_server(
        {"max_in_flight": "1", "max_queue": "2", "upload_timeout_s": "1.5", "queue_timeout_s": "20"}
    ) as (url, _):
        trickler = raw_upload_start(url, 1_000_000)
        wait_until(lambda: metric(url, "genre_admission_in_flight") == 1)
        queued = raw_upload_start(url, 1_000_000)
        wait_until(lambda: metric(url, "genre_admission_queue_depth") == 1)
        queued.close()  # hangs up while queued
        wait_until(lambda: metric(url, "genre_admission_queue_depth") == 0)
        reply = read_response(trickler)  # the trickler never sends the rest
        assert reply.startswith(b"HTTP/1.1 408"), reply[:100]
        trickler.close()
        wait_until(lambda: metric(url, "genre_admission_in_flight") == 0)

        leaver = raw_upload_start(url, 1_000_000)
        wait_until(lambda: metric(url, "genre_admission_in_flight") == 1)
        leaver.close()  # hangs up while uploading
        wait_until(lambda: metric(url, "genre_admission_in_flight") == 0)
        assert metric(url, "genre_upload_bytes_held") == 0
        response = httpx.post(f"{url}/classify", files={"file": ("a.wav", encoded("wav"))}, timeout=30)
        assert response.status_code == 200


def test_a_burst_past_the_queue_is_shed_with_retry_after() -> None:
    with running_server({"max_in_flight": "1", "max_queue": "1", "upload_timeout_s": "5"}) as (url, _):
        holders = [raw_upload_start(url, 1_000_000) for _ in range(2)]  # one served, one queued
        wait_until(lambda: metric(url, "genre_admission_queue_depth") == 1)
        response = httpx.post(f"{url}/classify", files={"file": ("a.wav", encoded("wav"))}, timeout=30)
        assert response.status_code == 503 and response.headers["retry-after"]
        assert "capacity" in response.json()["detail"]
        assert metric(url, 'genre_requests_shed_total{reason="queue_full"}') >= 1
        for sock in holders:
            sock.close()
