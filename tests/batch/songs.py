"""Generated files of every kind a library job meets, for the batch tests that mix them."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from model.features import SAMPLE_RATE
from tests.audio import encode, encoded, music_like
from tests.helpers import real_music

# Files of every kind a library job meets, for tests that mix them: good ones at several rates,
# codecs and window counts, and ones that must get an error row.
SONG_KINDS = ("flac_44k", "wav_22k", "m4a", "two_windows", "short", "corrupt", "too_short", "noise", "real_music")


@functools.cache
def song(kind: str, seed: int = 0) -> bytes:
    """The bytes of a generated file of one of SONG_KINDS."""
    if kind == "flac_44k":
        return encode(music_like(12.0, 44100, seed=seed), 44100, "FLAC", "PCM_16")
    if kind == "wav_22k":
        return encode(music_like(8.0, 22050, seed=seed), 22050)
    if kind == "m4a":
        return encoded("m4a", seconds=5.0)
    if kind == "two_windows":
        return encode(music_like(40.0, 22050, seed=seed), 22050)
    if kind == "short":
        return encode(music_like(1.5, 16000, seed=seed), 16000)
    if kind == "corrupt":
        return b"ID3 not an mp3 at all" * 50
    if kind == "too_short":
        return encode(music_like(0.4, 22050, seed=seed), 22050)
    if kind == "noise":  # not music: the detector's verdict
        return encode(0.1 * np.random.default_rng(seed).standard_normal(6 * 22050).astype(np.float32), 22050)
    if kind == "real_music":
        return encode(real_music(seed + 1, seconds=12.0)[seed], SAMPLE_RATE)
    raise ValueError(kind)


SUFFIXES = {"flac_44k": ".flac", "m4a": ".m4a", "corrupt": ".mp3"}


def write_library(root: Path, kinds: list[str]) -> Path:
    """A folder of the files `kinds` names, in that order by name."""
    root.mkdir(parents=True, exist_ok=True)
    for i, kind in enumerate(kinds):
        (root / f"{i:03d}-{kind}{SUFFIXES.get(kind, '.wav')}").write_bytes(song(kind, seed=i % 3))
    return root
