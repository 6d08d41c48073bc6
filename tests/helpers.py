"""Helpers shared by test modules: uploads, hostile WAV headers, copies of the shipped model, BLAS threads."""

from __future__ import annotations

import csv
import dataclasses
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import soundfile as sf
from fastapi.testclient import TestClient
from threadpoolctl import threadpool_info

from app.config import Settings
from app.main import create_app
from batch.output import RowSchema
from model.audio import decode_file
from model.card import card_path, load_card
from model.features import SAMPLE_RATE
from model.pipeline import WINDOW_HOP_S, Analysis, Limits, Pipeline
from model.runtime import DEFAULT_MODEL_PATH, GenreModel
from tests.audio import SYNTHETIC_GENRES, encode, music_like, synthetic_genre, tone
from training.corpus import SOURCES, TRAINING_SOUNDTRACKS
from training.data import read_labels

if TYPE_CHECKING:
    from training.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
GTZAN = ROOT.parent / "shared" / "data" / "gtzan"
SHIPPED_CARD = load_card(card_path(DEFAULT_MODEL_PATH))
SHIPPED_LABELS = tuple(SHIPPED_CARD.labels)  # GTZAN's ten genres
SHIPPED_ROWS = RowSchema.of(SHIPPED_CARD)  # a `genre classify` row of the shipped model


def make_client(**overrides: object) -> TestClient:
    """A TestClient of the app on the shipped model, CPU, one thread, with Settings overrides."""
    settings = Settings.model_validate({"providers": "cpu", "intra_op_threads": 1, **overrides})
    return TestClient(create_app(settings))


def analyse(model: GenreModel, waveform: np.ndarray, hop_s: float = WINDOW_HOP_S) -> Analysis:
    """The pipeline on a mono waveform at the model's rate (no decoding), with the model's session."""
    pipeline = Pipeline.of(model.card, Limits(hop_s=hop_s))
    windows, inputs = pipeline.windows(waveform)
    return pipeline.answer(windows, model.predict(inputs))


def blas_threads() -> list[int]:
    """The thread count of each BLAS library loaded in this process (numpy's among them)."""
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def post(client: TestClient, data: bytes, name: str = "clip.wav", **params: object) -> httpx.Response:
    """POST /classify with `data` as the multipart field `file`."""
    response: httpx.Response = client.post(
        "/classify", files={"file": (name, data, "application/octet-stream")}, params=params
    )
    return response


def real_music(n: int = 1, seconds: float = 30.0) -> list[np.ndarray]:
    """n of the shared GTZAN audio clips, one per genre in turn, mono at the model's rate: music a
    test can rely on the detector to call music (generated "music" is not that)."""
    clips = sorted(GTZAN.glob("audio/*/*.flac"), key=lambda p: (p.stem.split(".")[-1], p.parent.name))
    return [decode_file(path).waveform[: int(seconds * SAMPLE_RATE)] for path in clips[:n]]


def embedding_library(root: Path, songs: int = 5) -> Path:
    """`songs` real music clips as WAV files, the first again as `copy-of-song-0.wav` (a duplicate),
    hiss and a broken file, classified with --embeddings by the real `genre classify` into
    root/library.parquet, which it returns."""
    from batch.cli import main  # the CLI's job imports the service's model code only

    root.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(real_music(songs, seconds=12.0)):
        (root / f"song-{i}.wav").write_bytes(encode(clip, SAMPLE_RATE))
    shutil.copy(root / "song-0.wav", root / "copy-of-song-0.wav")
    (root / "hiss.wav").write_bytes(
        encode(0.1 * np.random.default_rng(0).standard_normal(6 * SAMPLE_RATE), SAMPLE_RATE)
    )
    (root / "broken.mp3").write_bytes(b"not an mp3" * 100)
    out = root / "library.parquet"
    assert main(["classify", str(root), "--out", str(out), "--embeddings", "--workers", "1", "--quiet"]) == 0
    return out


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


def write_label_folder(root: Path, per_label: int = 8, seconds: float = 8.0) -> Path:
    """A user's own training folder `root/<label>/<files>` of SYNTHETIC_GENRES, in WAV, FLAC and
    Ogg Vorbis by turns, nested one level for some, with a notes file that is not audio."""
    rate = 22050
    formats = (("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"))
    for i, label in enumerate(SYNTHETIC_GENRES):
        for k in range(per_label):
            suffix, fmt, subtype = formats[k % len(formats)]
            folder = root / label / ("live" if k % 4 == 3 else "")
            folder.mkdir(parents=True, exist_ok=True)
            samples = synthetic_genre(label, seconds, rate, seed=100 * i + k)
            (folder / f"{label}{k:02d}.{suffix}").write_bytes(encode(samples, rate, fmt, subtype))
    (root / SYNTHETIC_GENRES[0] / "notes.txt").write_text("not audio")
    return root


def write_subset(src: Path, dst: Path, ids: list[str], with_audio: bool) -> None:
    """A GTZAN-layout folder holding only some clips (as the held-out test folder would)."""
    dst.mkdir()
    rows = [r for r in read_labels(src) if r["clip_id"] in ids]
    with open(dst / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["clip_id", "genre", "split"])
        writer.writeheader()
        writer.writerows(rows)
    with np.load(src / "spectrograms.npz") as npz:
        keep = [i for i, c in enumerate(npz["ids"]) if c in ids]
        np.savez_compressed(dst / "spectrograms.npz", ids=npz["ids"][keep], spectrograms=npz["spectrograms"][keep])
    if (src / "artists.csv").is_file():
        with open(src / "artists.csv", newline="") as f:
            artists = [r for r in csv.DictReader(f) if r["clip_id"] in ids]
        with open(dst / "artists.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["clip_id", "artist"])
            writer.writeheader()
            writer.writerows(artists)
    if with_audio:
        for r in rows:
            for path in (src / "audio" / r["genre"]).glob(f"{r['clip_id']}.*"):
                (dst / "audio" / r["genre"]).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dst / "audio" / r["genre"] / path.name)


SMALL_CV_FOLDS = 3  # tests/training/conftest.py's small cross-validations


def small_gtzan_subset(gtzan: Path, data: Path) -> Path:
    """A GTZAN-layout folder at `data` of 180 clips of both splits (49 of them valid), 6 with audio:
    what the training tests learn from, in seconds rather than minutes."""
    rows = read_labels(gtzan)
    has_audio = {r["clip_id"] for r in rows if any((gtzan / "audio").glob(f"*/{r['clip_id']}.*"))}
    ids = sorted(has_audio)[::15][:6] + [r["clip_id"] for r in rows if r["clip_id"] not in has_audio][::3][:174]
    write_subset(gtzan, data, ids, with_audio=True)
    return data


def fold_run(data: Path, out: Path, fold: int, **changes: Any) -> TrainConfig:
    """A quick run of one of data's SMALL_CV_FOLDS folds: one epoch on one thread (the tests run on
    two workers of two cores), with `changes` to the config."""
    from training.train import TrainConfig

    quick = TrainConfig(data=data, out=out, epochs=1, threads=1, cv_fold=fold, cv_folds=SMALL_CV_FOLDS)
    return dataclasses.replace(quick, **changes)


def train_small_cv(data: Path, out: Path, first_seed: int) -> list[Path]:
    """A SMALL_CV_FOLDS-fold cross-validation of a tiny recipe: fold k's run in out/fold{k}, seed first_seed + k."""
    from training.network import NetworkConfig
    from training.train import train

    small = NetworkConfig(hidden=24, frame_dim=48)
    runs = []
    for fold in range(SMALL_CV_FOLDS):
        run = out / f"fold{fold}"
        train(fold_run(data, run, fold, epochs=2, network=small, seed=first_seed + fold))
        runs.append(run)
    return runs


def teacher_python() -> str:
    """The teacher's own interpreter (TensorFlow needs numpy<2): GENRE_TEACHER_PYTHON, which `make test` sets."""
    python = os.environ.get("GENRE_TEACHER_PYTHON", str(ROOT / ".venv-teacher" / "bin" / "python"))
    assert Path(python).exists(), f"no teacher environment at {python}: `make .venv-teacher/.installed` makes it"
    return python


def export_teacher(out: Path, *args: str) -> Path:
    """training.teacher_export of MSD_musicnn into out/, by the teacher's interpreter; the ONNX file."""
    command = [teacher_python(), "-m", "training.teacher_export", "--model", "MSD_musicnn", "--out", str(out), *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / "MSD_musicnn.onnx"


def tiny_corpus(root: Path, per_source: int = 2, seconds: float = 45.0) -> Path:
    """Every training soundtrack source's folder, the first two holding generated music."""
    for i, source in enumerate(TRAINING_SOUNDTRACKS):
        folder = root / source.package / source.folder
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(per_source if i < 2 else 0):
            sf.write(folder / f"track{j}.ogg", music_like(seconds, 22050, seed=10 * i + j), 22050)
    held_out = next(s for s in SOURCES if s.kind == "music" and s.held_out)
    (root / held_out.package / held_out.folder).mkdir(parents=True, exist_ok=True)
    sf.write(root / held_out.package / held_out.folder / "kept_out.ogg", music_like(5.0, 22050), 22050)
    return root
