"""Loading labelled data, in either of two layouts:

- GTZAN's: `spectrograms.npz`, `labels.csv` (clip_id, genre, split) and an optional `audio/` folder;
- a plain folder of audio files, one sub-folder per label: `DIR/<label>/**/<file>`.

Everything is turned into dB-band grids of shape = (frames, N_BANDS); the model input is
always made from a grid by `model.features.model_input`, for arrays and audio alike. A run's
labels are the data's, sorted by name (for GTZAN, its ten genres).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.audio import AUDIO_SUFFIXES, AudioError, decode, decode_file
from model.features import CLIP_FRAMES, CLIP_SAMPLES, SAMPLE_RATE, power_db_bands
from training.degrade import CODECS, through_codec

CODEC_KBPS = (32, 48, 64, 96, 128)  # the bit rates training draws from for codec variants
MIN_FILE_S = 3.0  # shorter files of a label folder are skipped: too little music to learn from
MAX_FILE_S = 300.0  # longer ones are read up to here: five minutes of a track is plenty


class DataError(ValueError):
    """Data that cannot be trained on, with a message for humans."""


@dataclass
class Split:
    """Clips of one split. grids[i]: shape = (frames, N_BANDS); labels[i]: label index;
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

    def extend(self, other: Split) -> None:
        for i in range(len(other)):
            self.add(other.ids[i], other.grids[i], other.labels[i], other.variants[i])

    def subset(self, rows: list[int]) -> Split:
        out = Split()
        for i in rows:
            out.add(self.ids[i], self.grids[i], self.labels[i], self.variants[i])
        return out


def is_gtzan_layout(data_dir: Path) -> bool:
    return (data_dir / "labels.csv").is_file() and (data_dir / "spectrograms.npz").is_file()


def read_labels(data_dir: Path) -> list[dict[str, str]]:
    """Rows of labels.csv: clip_id, genre, split."""
    with open(data_dir / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def gtzan_labels(data_dir: Path) -> list[str]:
    """The labels of a GTZAN-layout folder, sorted: its genres."""
    return sorted({row["genre"] for row in read_labels(data_dir)})


def label_index(labels: list[str], found: str, where: Path) -> int:
    """The index of a data label among a model's labels; a label the model lacks is an error."""
    if found not in labels:
        raise DataError(f"{where} has the label {found!r}, which the model does not have ({', '.join(labels)})")
    return labels.index(found)


def load_arrays(data_dir: Path, split: str | None = None, labels: list[str] | None = None) -> Split:
    """The spectrogram arrays of every labelled clip (of one split, if given), in labels.csv order;
    label indices into `labels` (default: the folder's own)."""
    labels = gtzan_labels(data_dir) if labels is None else labels
    with np.load(data_dir / "spectrograms.npz") as npz:
        index = {str(clip_id): i for i, clip_id in enumerate(npz["ids"])}
        arrays = npz["spectrograms"]
    out = Split()
    for row in read_labels(data_dir):
        if split is None or row["split"] == split:
            out.add(row["clip_id"], arrays[index[row["clip_id"]]], label_index(labels, row["genre"], data_dir))
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


def load_audio_clips(
    data_dir: Path,
    keep: Callable[[str], bool] = lambda clip_id: True,
    rng: np.random.Generator | None = None,
    labels: list[str] | None = None,
) -> Split:
    """Grids computed from the clips of `audio/` that labels.csv lists (those whose id `keep`s);
    with rng, each also through the lossy codecs (Split.variants)."""
    labels = gtzan_labels(data_dir) if labels is None else labels
    out = Split()
    for row in read_labels(data_dir):
        path = audio_path(data_dir, row["genre"], row["clip_id"]) if keep(row["clip_id"]) else None
        if path is not None:
            variants = codec_variants(path, rng) if rng is not None else []
            label = label_index(labels, row["genre"], data_dir)
            out.add(row["clip_id"], audio_grid(path.read_bytes()), label, variants)
    return out


@dataclass
class LabelFolder:
    """The audio files of a plain folder `DIR/<label>/**/<file>`; labels sorted by name."""

    root: Path
    labels: list[str]
    files: list[tuple[Path, str]]  # (path, label)

    @property
    def paths(self) -> list[Path]:
        return [path for path, _ in self.files]


def scan_label_folder(folder: Path) -> LabelFolder:
    """Every audio file under each label's sub-folder. A folder that cannot make a classifier
    (not a folder, fewer than two labels, a label without audio files) is a DataError."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    labels = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(labels) < 2:
        raise DataError(
            f"{folder} has {len(labels)} label folder(s) ({', '.join(labels) or 'none'}); a classifier needs "
            "at least two: put each label's audio files in its own sub-folder, DIR/<label>/<files>"
        )
    files = [
        (path, label)
        for label in labels
        for path in sorted((folder / label).rglob("*"))
        if path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES
    ]
    empty = sorted(set(labels) - {label for _, label in files})
    if empty:
        raise DataError(
            f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under {', '.join(f'{folder / e}/' for e in empty)}"
        )
    return LabelFolder(folder, labels, files)


def track_grid(path: Path) -> np.ndarray:
    """dB-band grid of an audio file's first MAX_FILE_S seconds, shape = (frames, N_BANDS)."""
    waveform = decode_file(path).waveform[: int(MAX_FILE_S * SAMPLE_RATE)]
    if waveform.shape[0] < MIN_FILE_S * SAMPLE_RATE:
        raise AudioError(f"{waveform.shape[0] / SAMPLE_RATE:.1f} s of audio; at least {MIN_FILE_S:g} s are needed")
    return power_db_bands(waveform)


def looped(grid: np.ndarray) -> np.ndarray:
    """A grid shorter than one 30 s clip looped to one, so that it can be cropped to any training length."""
    return np.tile(grid, (-(-CLIP_FRAMES // grid.shape[0]), 1)) if grid.shape[0] < CLIP_FRAMES else grid


def file_grid(path: Path) -> np.ndarray:
    """track_grid(path), looped to one 30 s clip if shorter."""
    return looped(track_grid(path))


def load_label_folder(found: LabelFolder, labels: list[str]) -> tuple[Split, list[str]]:
    """Grids of a label folder's files, label indices into `labels`, and one message per file that
    could not be read (skipped, not fatal). Clip ids are the files' paths relative to the folder."""
    out, skipped = Split(), []
    for path, label in found.files:
        name = path.relative_to(found.root).as_posix()
        try:
            grid = file_grid(path)
        except AudioError as e:
            skipped.append(f"{name}: {e}")
            continue
        out.add(name, grid, label_index(labels, label, found.root))
    return out, skipped


def stratified_holdout(
    split: Split, labels: list[str], fraction: float, rng: np.random.Generator
) -> tuple[Split, Split]:
    """(train, holdout): `fraction` of each label's clips held out at random, at least one of each.
    A label with fewer than two clips cannot be both learnt and checked: a DataError."""
    counts = Counter(split.labels)
    few = [labels[i] for i in range(len(labels)) if counts[i] < 2]
    if few:
        raise DataError(
            f"each label needs at least two readable audio files (one to learn from, one to check on); "
            f"{', '.join(f'{label!r} has {counts[labels.index(label)]}' for label in few)}"
        )
    train_rows: list[int] = []
    holdout_rows: list[int] = []
    for label in range(len(labels)):
        rows = [i for i, y in enumerate(split.labels) if y == label]
        rng.shuffle(rows)
        n_out = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        holdout_rows += rows[:n_out]
        train_rows += rows[n_out:]
    return split.subset(sorted(train_rows)), split.subset(sorted(holdout_rows))


def data_hash(data_dir: Path) -> str:
    """sha256 over the files that define the training data (of a plain folder: names and contents)."""
    digest = hashlib.sha256()
    gtzan = is_gtzan_layout(data_dir)
    paths = [data_dir / n for n in ("labels.csv", "spectrograms.npz")] if gtzan else scan_label_folder(data_dir).paths
    for path in paths:
        if not gtzan:  # a file's label is its folder: the names are data too
            digest.update(path.relative_to(data_dir).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
