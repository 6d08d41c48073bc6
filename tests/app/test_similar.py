"""Embeddings and "more like this": POST /classify?embedding=true, POST /similar over a library
loaded from GENRE_INDEX_PATH, and every way it can be refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import faiss
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from batch.output import read_rows
from bench.common import REFERENCE_MODEL
from bench.server import ROOT, running_server
from tests.helpers import SHIPPED_CARD, embedding_library, make_client, post


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return embedding_library(tmp_path_factory.mktemp("similar"))


@pytest.fixture(scope="module")
def client(library: Path) -> Iterator[TestClient]:
    with make_client(index_path=library) as c:
        yield c


def similar(client: TestClient, data: bytes, **params: object) -> httpx.Response:
    response: httpx.Response = client.post("/similar", files={"file": ("q.wav", data)}, params=params)
    return response


def test_the_embedding_is_given_only_when_asked_and_is_the_librarys(client: TestClient, library: Path) -> None:
    song = (library.parent / "song-2.wav").read_bytes()
    assert post(client, song).json()["embedding"] is None
    answer = post(client, song, embedding="true").json()
    embedding = np.array(answer["embedding"])
    assert embedding.shape == (SHIPPED_CARD.embedding.dimension,)  # type: ignore[union-attr]
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
    row = next(r for r in read_rows(library) if r["path"].endswith("/song-2.wav"))
    np.testing.assert_allclose(embedding, row["embedding"], atol=1e-5)  # one pipeline behind both


def test_health_says_which_library_is_loaded(client: TestClient, library: Path) -> None:
    loaded = client.get("/health").json()["library"]
    assert loaded == {"path": str(library), "tracks": 7, "search": "exact"}  # five songs, a copy and hiss
    assert faiss.omp_get_max_threads() == 1  # searches run on the front-end threads, one each


def test_similar_puts_the_same_audio_first(client: TestClient, library: Path) -> None:
    response = similar(client, (library.parent / "song-0.wav").read_bytes(), k=3)
    assert response.status_code == 200, response.text
    answer = response.json()
    tracks = answer["tracks"]
    assert len(tracks) == 3 and [set(t) for t in tracks] == [{"path", "similarity", "top_genre"}] * 3
    first_two = {Path(t["path"]).name for t in tracks[:2]}
    assert first_two == {"song-0.wav", "copy-of-song-0.wav"}
    assert all(t["similarity"] == pytest.approx(1.0, abs=1e-5) for t in tracks[:2]) and tracks[2]["similarity"] < 0.999
    assert answer["is_music"] is True and answer["library"]["tracks"] == 7
    assert answer["model"]["version"] == SHIPPED_CARD.version


def test_similar_with_a_genre_and_k(client: TestClient, library: Path) -> None:
    rows = [r for r in read_rows(library) if r["top_genre"]]
    genre = rows[1]["top_genre"]
    tracks = similar(client, (library.parent / "song-0.wav").read_bytes(), genre=genre, k=100).json()["tracks"]
    assert tracks and all(t["top_genre"] == genre for t in tracks)
    assert len(tracks) == sum(r["top_genre"] == genre for r in rows)
    assert len(similar(client, (library.parent / "song-0.wav").read_bytes()).json()["tracks"]) == 7  # k: 10


@pytest.mark.parametrize(
    ("params", "data", "status", "message"),
    [
        ({"k": 0}, None, 422, "k: Input should be greater than or equal to 1"),
        ({"k": 101}, None, 422, "k: Input should be less than or equal to 100"),
        ({"genre": "polka"}, None, 422, "genre must be one of blues"),
        ({}, b"not audio at all" * 10, 415, "could not be decoded as audio"),
        ({}, b"", 422, "empty"),
    ],
)
def test_bad_similar_requests_get_a_clear_4xx(
    client: TestClient, library: Path, params: dict[str, object], data: bytes | None, status: int, message: str
) -> None:
    body = (library.parent / "song-0.wav").read_bytes() if data is None else data
    response = similar(client, body, **params)
    assert response.status_code == status and message in response.json()["detail"], response.text


def test_without_a_library_similar_says_so(library: Path) -> None:
    with make_client() as bare:
        response = similar(bare, (library.parent / "song-0.wav").read_bytes())
        assert response.status_code == 404
        assert "no library is loaded: start the service with GENRE_INDEX_PATH" in response.json()["detail"]
        assert bare.get("/health").json()["library"] is None


def test_a_model_without_embeddings_still_serves_genres_and_says_why_it_has_none(library: Path) -> None:
    with make_client(model_path=REFERENCE_MODEL) as older:
        song = (library.parent / "song-0.wav").read_bytes()
        assert post(older, song).json()["embedding"] is None
        response = post(older, song, embedding="true")
        assert response.status_code == 422 and "gives no embedding" in response.json()["detail"]


def test_a_library_the_model_cannot_search_stops_the_start_with_its_reason(tmp_path: Path, library: Path) -> None:
    with pytest.raises(ValueError, match=r"GENRE_INDEX_PATH: .* is not a file"):
        make_client(index_path=tmp_path / "missing.parquet")
    env_code = (
        "from app.config import Settings; from app.service import Classifier; "
        f"Classifier(Settings(index_path={str(library)!r}, model_path={str(REFERENCE_MODEL)!r}, providers='cpu'))"
    )
    result = subprocess.run([sys.executable, "-c", env_code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and "has no embedding output, so it cannot search a library" in result.stderr


def test_similar_over_http_on_a_real_server(library: Path) -> None:
    with running_server({"index_path": str(library)}) as (url, _):
        song = (library.parent / "song-3.wav").read_bytes()
        response = httpx.post(f"{url}/similar", files={"file": ("q.wav", song)}, params={"k": 1}, timeout=60)
        assert response.status_code == 200, response.text
        [track] = response.json()["tracks"]
        assert Path(track["path"]).name == "song-3.wav" and track["similarity"] == pytest.approx(1.0, abs=1e-5)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        assert 'route="/similar"' in metrics
