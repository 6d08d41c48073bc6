"""Optional API keys: the inference route needs one when keys are set; the probes stay open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.auth import parse_keys
from app.config import Settings
from tests.audio import encoded
from tests.helpers import make_client, post

KEYS = "alpha-key-1,beta-key-2"


@pytest.fixture(scope="module")
def locked() -> Iterator[TestClient]:
    with make_client(api_keys=KEYS) as client:
        yield client


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "an API key is needed"),
        ({"Authorization": "Bearer wrong"}, "invalid API key"),
        ({"Authorization": "Bearer alpha-key-"}, "invalid API key"),  # a prefix of a key
        ({"Authorization": "Basic alpha-key-1"}, "invalid API key"),  # the key, but not as a bearer
    ],
)
def test_classify_without_a_valid_key_is_401(locked: TestClient, headers: dict[str, str], reason: str) -> None:
    response = locked.post("/classify", files={"file": ("a.wav", encoded("wav"))}, headers=headers)
    assert response.status_code == 401 and reason in response.json()["detail"]
    assert response.headers["www-authenticate"] == 'Bearer realm="genre"'


@pytest.mark.parametrize("key", ["alpha-key-1", "beta-key-2"])
def test_each_key_opens_classify(locked: TestClient, key: str) -> None:
    response = locked.post(
        "/classify", files={"file": ("a.wav", encoded("wav"))}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text


def test_probes_metrics_page_and_docs_stay_open(locked: TestClient) -> None:
    for path in ("/health", "/ready", "/metrics", "/", "/docs"):
        assert locked.get(path).status_code == 200, path


def test_metrics_can_be_locked_too() -> None:
    with make_client(api_keys=KEYS, metrics_need_key=True) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer beta-key-2"}).status_code == 200
        assert client.get("/health").status_code == 200


def test_keys_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# the team's keys\nfile-key-1\n\nfile-key-2  # rotated in May\n")
    assert parse_keys(str(path)) == ("file-key-1", "file-key-2")
    with make_client(api_keys=str(path)) as client:
        assert post(client, encoded("wav")).status_code == 401
        files = {"file": ("a.wav", encoded("wav"))}
        assert client.post("/classify", files=files, headers={"Authorization": "Bearer file-key-2"}).status_code == 200


def test_without_keys_nothing_changes() -> None:
    with make_client() as client:
        assert post(client, encoded("wav")).status_code == 200


def test_an_empty_key_list_is_refused_and_keys_never_show_in_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds no key"):
        Settings.model_validate({"api_keys": " , "})
    settings = Settings.model_validate({"api_keys": KEYS})
    assert "alpha-key-1" not in repr(settings) and "alpha-key-1" not in str(settings.model_dump())
