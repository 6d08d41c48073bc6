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

from model.audio import AUDIO_SUFFIXES, decode_file
from model.features import CLIP_SAMPLES, power_db_bands
from model.labels import GENRE_INDEX


@dataclass
class Split:
    """Clips of one split. grids[i]: shape = (frames, N_BANDS); labels[i]: genre index."""

    ids: list[str] = field(default_factory=list)
    grids: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, clip_id: str, grid: np.ndarray, label: int) -> None:
        self.ids.append(clip_id)
        self.grids.append(grid)
        self.labels.append(label)


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


def audio_grid(path: Path) -> np.ndarray:
    """dB-band grid of the first 30 s of an audio file (the README's steps 1-5)."""
    return power_db_bands(decode_file(path).waveform[:CLIP_SAMPLES])


def load_audio_clips(data_dir: Path, split: str | None = None) -> Split:
    """Grids computed from the clips of `audio/` that labels.csv lists (of one split, if given)."""
    out = Split()
    for row in read_labels(data_dir):
        if split is not None and row["split"] != split:
            continue
        path = audio_path(data_dir, row["genre"], row["clip_id"])
        if path is not None:
            out.add(row["clip_id"], audio_grid(path), GENRE_INDEX[row["genre"]])
    return out


def load_genre_folder(folder: Path) -> Split:
    """A GTZAN-style audio folder `<genre>/*.<audio>`: one grid per 30 s clip."""
    out = Split()
    for genre, label in GENRE_INDEX.items():
        for path in sorted((folder / genre).glob("*")):
            if path.suffix.lower() in AUDIO_SUFFIXES:
                out.add(path.stem, audio_grid(path), label)
    return out


def data_hash(data_dir: Path) -> str:
    """sha256 over the files that define the training data."""
    digest = hashlib.sha256()
    for name in ("labels.csv", "spectrograms.npz"):
        with open(data_dir / name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
