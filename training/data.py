"""Loading the GTZAN-layout data: `spectrograms.npz`, `labels.csv`, optional `audio/` folder.

Everything is turned into dB-band grids of shape = (frames, N_BANDS); the model input is
always made from a grid by `model.features.model_input`, for arrays and audio alike.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.audio import AUDIO_SUFFIXES, decode, decode_file
from model.features import CLIP_SAMPLES, power_db_bands
from model.labels import GENRE_INDEX
from training.degrade import CODECS, through_codec

CODEC_KBPS = (32, 48, 64, 96, 128)  # the bit rates training draws from for codec variants


@dataclass
class Split:
    """Clips of one split. grids[i]: shape = (frames, N_BANDS); labels[i]: genre index;
    variants[i]: grids of the same clip through lossy codecs (empty for arrays)."""

    ids: list[str] = field(default_factory=list)
    grids: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    variants: list[list[np.ndarray]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, clip_id: str, grid: np.ndarray, label: int, variants: list[np.ndarray] | None = None) -> None:
        self.ids.append(clip_id)
        self.grids.append(grid)
        self.labels.append(label)
        self.variants.append(variants or [])

    def subset(self, rows: list[int]) -> Split:
        out = Split()
        for i in rows:
            out.add(self.ids[i], self.grids[i], self.labels[i], self.variants[i])
        return out


def read_labels(data_dir: Path) -> list[dict[str, str]]:
    """Rows of labels.csv: clip_id, genre, split."""
    with open(data_dir / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def load_arrays(data_dir: Path, split: str | None = None) -> Split:
    """The spectrogram arrays of every labelled clip (of one split, if given), in labels.csv order."""
    with np.load(data_dir / "spectrograms.npz") as npz:
        index = {str(clip_id): i for i, clip_id in enumerate(npz["ids"])}
        arrays = npz["spectrograms"]
    out = Split()
    for row in read_labels(data_dir):
        if split is None or row["split"] == split:
            out.add(row["clip_id"], arrays[index[row["clip_id"]]], GENRE_INDEX[row["genre"]])
    return out


def audio_path(data_dir: Path, genre: str, clip_id: str) -> Path | None:
    """The audio file of a clip under audio/<genre>/, whatever its format, or None."""
    for suffix in AUDIO_SUFFIXES:
        path = data_dir / "audio" / genre / f"{clip_id}{suffix}"
        if path.is_file():
            return path
    return None


def audio_grid(data: bytes) -> np.ndarray:
    """dB-band grid of the first 30 s of an audio file's bytes (the README's steps 1-5)."""
    return power_db_bands(decode(data).waveform[:CLIP_SAMPLES])


def codec_variants(path: Path, rng: np.random.Generator) -> list[np.ndarray]:
    """Grids of an audio file through each lossy codec of training.degrade, at a random bit rate."""
    source = decode_file(path, target_rate=None)
    return [
        audio_grid(through_codec(source.waveform, source.sample_rate, codec, int(rng.choice(CODEC_KBPS))))
        for codec in CODECS
    ]


def load_audio_clips(data_dir: Path, split: str | None = None, rng: np.random.Generator | None = None) -> Split:
    """Grids computed from the clips of `audio/` that labels.csv lists (of one split, if given);
    with rng, each also through the lossy codecs (Split.variants)."""
    out = Split()
    for row in read_labels(data_dir):
        if split is not None and row["split"] != split:
            continue
        path = audio_path(data_dir, row["genre"], row["clip_id"])
        if path is not None:
            variants = codec_variants(path, rng) if rng is not None else []
            out.add(row["clip_id"], audio_grid(path.read_bytes()), GENRE_INDEX[row["genre"]], variants)
    return out


def load_genre_folder(folder: Path) -> Split:
    """A GTZAN-style audio folder `<genre>/*.<audio>`: one grid per 30 s clip."""
    out = Split()
    for genre, label in GENRE_INDEX.items():
        for path in sorted((folder / genre).glob("*")):
            if path.suffix.lower() in AUDIO_SUFFIXES:
                out.add(path.stem, audio_grid(path.read_bytes()), label)
    return out


def data_hash(data_dir: Path) -> str:
    """sha256 over the files that define the training data."""
    digest = hashlib.sha256()
    for name in ("labels.csv", "spectrograms.npz"):
        with open(data_dir / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
