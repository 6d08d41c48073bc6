"""A corpus of hostile uploads: each gets its documented 4xx (or a correct result), never a 5xx,
and the service keeps serving."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.audio import FORMATS, encode, encoded, music_like
from tests.helpers import post, wav_header_claiming


def truncated(name: str, fraction: float) -> bytes:
    data = encoded(name, seconds=4.0)
    return data[: int(len(data) * fraction)]


def corrupted(name: str, seed: int) -> bytes:
    data = bytearray(encoded(name, seconds=4.0))
    rng = np.random.default_rng(seed)
    start = len(data) // 3
    data[start : start + 512] = rng.bytes(512)
    return bytes(data)


CORPUS: list[tuple[str, bytes, str, set[int]]] = [
    *((f"truncated-{n}-{f}", truncated(n, f), f"x.{n}", {200, 415, 422}) for n in FORMATS for f in (0.1, 0.5, 0.9)),
    *((f"corrupted-{n}", corrupted(n, 1), f"x.{n}", {200, 415, 422}) for n in FORMATS),
    *((f"random-bytes-.{ext}", np.random.default_rng(2).bytes(30_000), f"x.{ext}", {415}) for ext in ("wav", "mp3")),
    ("header-claims-gigabytes", wav_header_claiming(2**31), "x.wav", {200}),
    ("zero-length", b"", "x.wav", {422}),
    ("one-sample", encode(np.zeros(1, np.float32), 44100), "x.wav", {422}),
    ("float-nan-inf", encode(np.full(44100 * 2, np.nan, np.float32), 44100, "WAV", "FLOAT"), "x.wav", {200}),
    ("eight-channels", encode(music_like(2.0, 48000, channels=8), 48000), "x.wav", {200}),
    ("8-khz", encode(music_like(2.0, 8000), 8000), "x.wav", {200}),
    ("192-khz", encode(music_like(2.0, 192000), 192000), "x.wav", {200}),
    ("path-characters-in-name", encoded("flac"), "../../etc/passwd\\..\\x.flac", {200}),
    ("nul-in-name", encoded("wav"), "a\x00b.wav", {200}),
]


@pytest.mark.parametrize(("data", "filename", "allowed"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_hostile_upload(client: TestClient, data: bytes, filename: str, allowed: set[int]) -> None:
    response = post(client, data, name=filename)
    assert response.status_code in allowed, response.text
    if response.status_code != 200:
        assert response.json()["detail"]
    else:
        assert abs(sum(g["probability"] for g in response.json()["genres"]) - 1) < 1e-4


def test_wrong_content_types(client: TestClient) -> None:
    """The part's declared type is not trusted either way: the bytes decide."""
    files = {"file": ("clip.txt", encoded("wav"), "text/plain")}
    assert client.post("/classify", files=files).status_code == 200
    response = client.post("/classify", content=b'{"file": "x"}', headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_twenty_minutes_is_classified_and_a_second_more_is_413(client: TestClient) -> None:
    long = encode(music_like(1200.0, 8000), 8000)
    response = post(client, long)
    assert response.status_code == 200, response.text
    assert len(response.json()["segments"]) == 80  # at most 15 s apart, evenly from the start to the end
    too_long = encode(music_like(1201.0, 8000), 8000)
    assert post(client, too_long).status_code == 413


def test_service_keeps_serving_after_the_corpus(client: TestClient) -> None:
    for _, data, name, _ in CORPUS:
        post(client, data, name=name)
    assert client.get("/health").status_code == 200
    assert post(client, encoded("ogg")).status_code == 200
