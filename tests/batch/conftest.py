"""A generated music library for the batch job's tests: good files, a broken one, a tiny one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.audio import encode, encoded, music_like


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("library")
    (root / "album" / "disc 2").mkdir(parents=True)
    (root / "a.wav").write_bytes(encode(music_like(10.0, 22050, seed=1), 22050))
    (root / "album" / "b.flac").write_bytes(encode(music_like(35.0, 44100, seed=2), 44100, "FLAC", "PCM_16"))
    (root / "album" / "c.m4a").write_bytes(encoded("m4a", seconds=5.0))
    (root / "album" / "disc 2" / "d.webm").write_bytes(encoded("webm", seconds=4.0))
    (root / "album" / "broken.mp3").write_bytes(b"not an mp3 at all" * 100)
    (root / "tiny.wav").write_bytes(encode(np.zeros(500, np.float32), 22050))
    (root / "hiss.wav").write_bytes(encode(0.1 * np.random.default_rng(0).standard_normal(6 * 22050), 22050))
    (root / "album" / "cover.txt").write_text("not audio, not listed")
    return root
