"""The HTTP contract through TestClient: response invariants and every bad-input case."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from model.card import IncompatibleModelError, card_path
from model.features import CLIP_FRAMES, DEFAULT_SETTINGS, FRAME_HOP_SECONDS, SAMPLE_RATE
from model.windows import coverage_weights, plan_windows
from tests.audio import FORMATS, encode, encoded, music_like, tone
from tests.helpers import SHIPPED_LABELS, copy_model, make_client, post, wav_header_claiming


def check_response(body: dict, duration_s: float, tolerance_s: float = 0.01) -> None:  # type: ignore[type-arg]
    probs = [g["probability"] for g in body["genres"]]
    assert [g["genre"] for g in body["genres"]] and set(g["genre"] for g in body["genres"]) <= set(SHIPPED_LABELS)
    assert probs == sorted(probs, reverse=True)
    # Generated audio may or may not sound like music to the detector (tests/app/test_music.py says which).
    if body["is_music"] is False:
        assert body["top_genre"] is None and body["no_genre_reason"] == "not_music"
    else:
        assert body["top_genre"] == body["genres"][0]["genre"] and body["no_genre_reason"] is None
    assert body["duration_s"] == pytest.approx(duration_s, abs=tolerance_s)
    for segment in body["segments"]:
        assert 0 <= segment["start_s"] < segment["end_s"] <= duration_s + tolerance_s
        seg_probs = [g["probability"] for g in segment["genres"]]
        assert seg_probs == sorted(seg_probs, reverse=True)
        assert segment["top_genre"] == (segment["genres"][0]["genre"] if segment["is_music"] is not False else None)
        assert segment["frame_hop_s"] == pytest.approx(FRAME_HOP_SECONDS)
        if segment["attention"] is not None:
            attention = np.array(segment["attention"])
            assert attention.min() >= 0 and attention.sum() == pytest.approx(1.0, abs=1e-4)
            last_frame_end = (
                segment["first_frame_s"] + (len(attention) - 1) * segment["frame_hop_s"] + 1024 / SAMPLE_RATE
            )
            assert last_frame_end == pytest.approx(segment["end_s"], abs=1e-3)


def test_classify_a_clip(client: TestClient) -> None:
    response = post(client, encode(music_like(30.0, 44100, channels=2), 44100))
    assert response.status_code == 200, response.text
    body = response.json()
    check_response(body, 30.0)
    assert len(body["genres"]) == len(SHIPPED_LABELS)
    assert sum(g["probability"] for g in body["genres"]) == pytest.approx(1.0, abs=1e-4)
    assert (body["sample_rate"], body["channels"]) == (44100, 2)
    assert body["model"]["provider"] == "CPUExecutionProvider"
    assert len(body["segments"]) == 1 and len(body["segments"][0]["attention"]) == CLIP_FRAMES
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_supported_format(client: TestClient, name: str) -> None:
    response = post(client, encoded(name, seconds=3.0), name=f"clip.{name}")
    assert response.status_code == 200, response.text
    check_response(response.json(), 3.0, tolerance_s=0.05)  # lossy codecs pad their last frame


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 8), (96000, 2), (192000, 1)])
def test_any_rate_and_channel_count(client: TestClient, rate: int, channels: int) -> None:
    response = post(client, encode(music_like(2.0, rate, channels=channels), rate))
    assert response.status_code == 200, response.text
    assert (response.json()["sample_rate"], response.json()["channels"]) == (rate, channels)


def test_long_audio_is_windowed_and_aggregated(client: TestClient) -> None:
    response = post(client, encode(music_like(95.0, 22050), 22050))
    assert response.status_code == 200, response.text
    body = response.json()
    check_response(body, 95.0)
    segments = body["segments"]
    # Six windows spread evenly from 0 to the last full one (frame 746), none a near-repeat.
    expected_starts = [k * 746 / 5 for k in range(6)]
    assert [s["start_s"] / FRAME_HOP_SECONDS for s in segments] == pytest.approx(expected_starts, abs=0.51)
    assert segments[-1]["end_s"] == pytest.approx(95.0, abs=0.1)
    windows = plan_windows(95 * 22050, DEFAULT_SETTINGS, 15.0)
    weights = coverage_weights(windows)
    by_genre = np.array(
        [[{x["genre"]: x["probability"] for x in s["genres"]}[g] for g in SHIPPED_LABELS] for s in segments]
    )
    overall = dict(zip(SHIPPED_LABELS, weights @ by_genre, strict=True))
    for g in body["genres"]:
        assert g["probability"] == pytest.approx(overall[g["genre"]], abs=1e-5)


def test_top_k_and_no_attention(client: TestClient) -> None:
    response = post(client, encode(tone(440.0, 5.0, 22050), 22050), top_k=3, attention="false")
    assert response.status_code == 200
    body = response.json()
    assert len(body["genres"]) == 3 and all(len(s["genres"]) == 3 for s in body["segments"])
    assert all(s["attention"] is None for s in body["segments"])


def test_non_finite_samples_and_silence_are_handled(client: TestClient) -> None:
    x = music_like(3.0, 22050)
    x[::100], x[1::100], x[2::100] = np.nan, np.inf, -np.inf
    for samples in (x, np.zeros(3 * 22050, np.float32)):
        response = post(client, encode(samples, 22050, "WAV", "FLOAT"))
        assert response.status_code == 200, response.text
        assert sum(g["probability"] for g in response.json()["genres"]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("data", "status", "reason"),
    [
        (b"", 422, "empty"),
        (b"\x00" * 1000, 415, "decode"),
        (np.random.default_rng(0).bytes(50_000), 415, "decode"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", 415, "decode"),
        (encode(tone(440.0, 0.5, 22050), 22050), 422, "minimum"),
        (encode(np.zeros(1, np.float32), 22050), 422, "minimum"),
    ],
    ids=["empty", "zeros", "random", "truncated-header", "too-short", "one-sample"],
)
def test_bad_audio_gets_a_clear_4xx(client: TestClient, data: bytes, status: int, reason: str) -> None:
    response = post(client, data)
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"]


def test_a_header_claiming_gigabytes_is_read_for_what_it_holds(client: TestClient) -> None:
    """libsndfile clamps the claimed length to the data present: the one real second is classified."""
    response = post(client, wav_header_claiming(4 * 2**30))
    assert response.status_code == 200, response.text
    assert response.json()["duration_s"] == pytest.approx(1.0, abs=1e-3)


def test_missing_file_field_is_422(client: TestClient) -> None:
    response = client.post("/classify", data={"other": "x"})
    assert response.status_code == 422
    assert "file" in response.json()["detail"]


@pytest.mark.parametrize("top_k", [0, 11, "x"])
def test_bad_query_is_422(client: TestClient, top_k: object) -> None:
    assert post(client, encoded("wav"), top_k=top_k).status_code == 422


def test_upload_over_the_byte_limit_is_413() -> None:
    with make_client(max_upload_bytes=100_000) as small:
        response = post(small, encode(music_like(10.0, 22050), 22050))
        assert response.status_code == 413
        assert "100000 bytes" in response.json()["detail"]
        assert post(small, encoded("flac")).status_code == 200
        assert 'route="/classify",status="413"' in small.get("/metrics").text


def test_audio_over_the_duration_limit_is_413() -> None:
    with make_client(max_duration_s=5.0) as short:
        for data in (encode(music_like(8.0, 22050), 22050), encoded("mp3", seconds=8.0)):
            response = post(short, data)
            assert response.status_code == 413
            assert "maximum of 5 s" in response.json()["detail"]


def test_health_ready_and_metrics(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"]["provider"] == "CPUExecutionProvider"
    assert client.get("/ready").json()["status"] == "ready"
    post(client, encoded("wav"))
    text = client.get("/metrics").text
    for name in (
        'genre_http_requests_total{method="POST",route="/classify",status="200"}',
        "genre_http_request_duration_seconds_bucket",
        "genre_inference_duration_seconds_count",
        "genre_audio_seconds_total",
        "genre_upload_bytes_count",
        "genre_http_requests_in_flight",
        "genre_model_info{",
    ):
        assert name in text


def test_not_ready_before_the_model_is_loaded() -> None:
    c = make_client()  # no `with`: the lifespan (model load + warm-up) has not run
    assert c.get("/ready").status_code == 503
    assert c.get("/health").status_code == 200
    assert post(c, encoded("wav")).status_code == 503


def test_the_service_refuses_to_start_on_a_mismatched_model_card(tmp_path: Path) -> None:
    path = copy_model(tmp_path)
    card = json.loads(card_path(path).read_text())
    card["feature_settings"]["version"] = 99
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(IncompatibleModelError, match="front-end version 99"), make_client(model_path=path):
        pass


def test_docs_work_offline(client: TestClient) -> None:
    """Swagger UI comes from the service itself (fastapi-offline's assets), not from a CDN."""
    page = client.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 1000, asset
    assert client.get("/redoc").status_code == 200
