"""Music or not: the detector's verdict in POST /classify, its threshold setting and its metric."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bench.common import REFERENCE_MODEL
from model.features import SAMPLE_RATE
from tests.audio import encode, tone
from tests.helpers import SHIPPED_LABELS, make_client, post, real_music
from training.synthetic import SYNTHETIC

RNG = np.random.default_rng(7)
# What users sent and got a confident genre for, and the generators the detector tells apart. Not
# the sweep: a sweep can still pass for music (MODEL_CARD.md, "Music or not": tones 95.1 %).
NOT_MUSIC = {
    "tone_440hz": tone(440.0, 10.0, SAMPLE_RATE),
    "white_noise": (0.2 * RNG.standard_normal(20 * SAMPLE_RATE)).astype(np.float32),
    "digital_silence": np.zeros(5 * SAMPLE_RATE, np.float32),
    **{
        name: generator(np.random.default_rng(1000 + i), 12.0, SAMPLE_RATE)
        for i, (name, generator) in enumerate(
            [(n, g) for kind in ("noise", "tones") for n, g in SYNTHETIC[kind].items() if n != "sweep"]
        )
    },
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with make_client() as c:
        yield c


def classify(client: TestClient, waveform: np.ndarray) -> dict:  # type: ignore[type-arg]
    response = post(client, encode(waveform, SAMPLE_RATE))
    assert response.status_code == 200, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    threshold = body["model"]["music_threshold"]
    assert 0 < threshold < 1
    assert body["is_music"] == (body["music_probability"] >= threshold)
    for segment in body["segments"]:
        assert segment["is_music"] == (segment["music_probability"] >= threshold)
        assert (segment["top_genre"] is None) == (not segment["is_music"])
    assert sum(g["probability"] for g in body["genres"]) == pytest.approx(1.0, abs=1e-4)  # they stay
    return body


def test_real_music_is_music_with_a_genre(client: TestClient) -> None:
    for clip in real_music(3):
        body = classify(client, clip)
        assert body["is_music"] is True and body["no_genre_reason"] is None
        assert body["top_genre"] == body["genres"][0]["genre"] in SHIPPED_LABELS


@pytest.mark.parametrize("name", sorted(NOT_MUSIC))
def test_what_is_not_music_gets_no_genre_and_says_why(client: TestClient, name: str) -> None:
    body = classify(client, NOT_MUSIC[name])
    assert body["is_music"] is False, f"{name}: music probability {body['music_probability']:.3f}"
    assert body["top_genre"] is None and body["no_genre_reason"] == "not_music"


def test_a_long_upload_shows_its_music_and_its_not_music_over_time(client: TestClient) -> None:
    """Music, then a minute of hiss: the first segment is music with its genre, the last is not."""
    [music] = real_music(1)
    hiss = (0.05 * np.random.default_rng(3).standard_normal(60 * SAMPLE_RATE)).astype(np.float32)
    body = classify(client, np.concatenate([music, hiss]))
    verdicts = [s["is_music"] for s in body["segments"]]
    assert verdicts[0] is True and verdicts[-1] is False, verdicts
    assert body["segments"][0]["top_genre"] in SHIPPED_LABELS


def test_the_threshold_setting_moves_the_verdict() -> None:
    tone_440 = NOT_MUSIC["tone_440hz"]
    with make_client() as c:
        p = classify(c, tone_440)["music_probability"]
    assert p > 0  # a threshold must be above 0: one below this tone's probability makes it music
    with make_client(music_threshold=p / 2) as c:
        body = classify(c, tone_440)
        assert body["model"]["music_threshold"] == pytest.approx(p / 2)
        assert body["is_music"] is True and body["top_genre"] in SHIPPED_LABELS


def test_the_metrics_count_uploads_by_music_or_not(client: TestClient) -> None:
    def count(verdict: str) -> float:
        text = client.get("/metrics").text
        [line] = [ln for ln in text.splitlines() if ln.startswith(f'genre_uploads_by_music_total{{music="{verdict}"}}')]
        return float(line.split()[-1])

    before = count("false"), count("true")
    classify(client, NOT_MUSIC["white_noise"])
    classify(client, real_music(1)[0])
    assert (count("false"), count("true")) == (before[0] + 1, before[1] + 1)


def test_a_model_without_a_detector_still_serves_genres(tmp_path: Path) -> None:
    """Model 1.2.0 has no music output: its answers carry no verdict, and a threshold for it is refused."""
    with make_client(model_path=REFERENCE_MODEL) as c:
        body = post(c, encode(real_music(1)[0], SAMPLE_RATE)).json()
        assert body["music_probability"] is None and body["is_music"] is None and body["no_genre_reason"] is None
        assert body["top_genre"] == body["genres"][0]["genre"] and body["model"]["music_threshold"] is None
    with (
        pytest.raises(ValueError, match="has no music detector"),
        make_client(model_path=REFERENCE_MODEL, music_threshold=0.5),
    ):
        pass
