"""Helpers shared by test modules: uploads, hostile WAV headers, copies of the shipped model."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from model.card import card_path
from model.runtime import DEFAULT_MODEL_PATH
from tests.audio import tone

ROOT = Path(__file__).resolve().parents[1]
GTZAN = ROOT.parent / "shared" / "data" / "gtzan"


def make_client(**overrides: object) -> TestClient:
    """A TestClient of the app on the shipped model, CPU, one thread, with Settings overrides."""
    settings = Settings.model_validate({"providers": "cpu", "intra_op_threads": 1, **overrides})
    return TestClient(create_app(settings))


def post(client: TestClient, data: bytes, name: str = "clip.wav", **params: object) -> httpx.Response:
    """POST /classify with `data` as the multipart field `file`."""
    response: httpx.Response = client.post(
        "/classify", files={"file": (name, data, "application/octet-stream")}, params=params
    )
    return response


def wav_header_claiming(n_bytes: int, rate: int = 44100) -> bytes:
    """A PCM WAV header whose data chunk claims n_bytes, followed by one second of audio."""
    header = b"RIFF" + struct.pack("<I", min(n_bytes + 36, 2**32 - 1)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", min(n_bytes, 2**32 - 1))
    return header + (tone(440.0, 1.0, rate) * 32767).astype("<i2").tobytes()


def copy_model(tmp_path: Path) -> Path:
    """The shipped ONNX file and its card, copied into tmp_path (to be edited by a test)."""
    path = tmp_path / "m.onnx"
    shutil.copy(DEFAULT_MODEL_PATH, path)
    shutil.copy(card_path(DEFAULT_MODEL_PATH), card_path(path))
    return path
