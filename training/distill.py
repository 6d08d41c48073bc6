"""Distil the teacher into the patent's network: the first stage of model 3.0's recipe.

    python -m training.distill --teachers runs/teacher/MSD_musicnn.onnx --corpus runs/corpus --out runs/distill
    python -m training.train ... --init runs/distill/checkpoint.pt      (the second stage: the genres)

The student is training.network's GenreNet, the network that ships, on our own front end. From
the soundtracks the corpus trains on (training.corpus: unlabelled game music; its held-out
soundtracks stay out), it learns to predict, from its fused vector, what the teacher
(training.teacher) says of the same span of audio: the teacher's penultimate embedding
(standardised) and its tag probabilities, averaged over the teacher's 3 s patches in the crop. The
student reads crops of the track's dB grid through the genre training's augmentation, while the
teacher heard the clean audio, so the student learns to hear through the degradations too.
Several teachers (musicnn's MSD and MTT taggers) are learnt as one: their embeddings and tags side
by side, each embedding dimension standardised, so each teacher weighs as its share of dimensions.

No GTZAN audio is distilled here: the cross-validation's folds all start from these weights, so
none of them may have seen a held-out clip, even unlabelled. Labels are never read.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model.features import CLIP_FRAMES, DEFAULT_SETTINGS, FRAME_HOP_SECONDS, power_db_bands
from training.artifacts import Checkpoint
from training.augment import AugmentConfig, augment
from training.config_flags import config_to_json, parse_config
from training.corpus import read, soundtrack_files, soundtrack_sources
from training.network import GenreNet, NetworkConfig
from training.teacher import Targets, Teacher, cached_targets


@dataclass
class DistillConfig:
    teachers: tuple[Path, ...] = (Path("runs/teacher/MSD_musicnn.onnx"),)
    corpus: Path = Path("runs/corpus")
    # Names of the corpus's training soundtrack sources to distil; none: all of them. A recipe names
    # its sources, so that its run stays what it was when the corpus gains soundtracks.
    sources: tuple[str, ...] = ()
    cache: Path = Path("runs/teacher/targets")
    out: Path = Path("runs/distill")
    seed: int = 0
    epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    tag_weight: float = 1.0  # the tags' binary cross-entropy beside the embedding's mean squared error
    max_files: int = 0  # soundtrack files to read, spread over the sources; 0 = all (small for tests)
    threads: int = 1
    network: NetworkConfig = field(default_factory=NetworkConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if not self.teachers or len(set(self.teachers)) != len(self.teachers):
            raise ValueError("give one or more teachers, each once")
        soundtrack_sources(self.sources)  # the names are checked


@dataclass(frozen=True)
class Chunk:
    """Up to 30 s of a soundtrack: its dB grid, where it starts, and the teacher on its whole track."""

    grid: np.ndarray  # (frames, bands)
    start_s: float
    targets: Targets


@dataclass(frozen=True)
class TargetScale:
    """The teacher's embedding, standardised per dimension over the distilled patches."""

    mean: np.ndarray
    std: np.ndarray


def soundtracks(cfg: DistillConfig) -> list[Path]:
    """The music files of the run's sources, interleaved (a max_files sample spreads over them all)."""
    paths = soundtrack_files(cfg.sources, cfg.corpus)
    return paths[: cfg.max_files] if cfg.max_files else paths


def read_chunks(cfg: DistillConfig, teachers: list[Teacher], paths: list[Path]) -> list[Chunk]:
    """Every soundtrack's grid, cut into 30 s chunks (a last one shorter than a crop is dropped),
    with the teachers' targets joined."""
    out: list[Chunk] = []
    for path in tqdm(paths, desc="soundtracks"):
        targets = Targets.joined(cached_targets(path, teachers, cfg.cache))
        grid = power_db_bands(read(path))
        for start in range(0, len(grid) - cfg.augment.min_crop_frames + 1, CLIP_FRAMES):
            out.append(Chunk(grid[start : start + CLIP_FRAMES], start * FRAME_HOP_SECONDS, targets))
    return out


def target_scale(chunks: list[Chunk]) -> TargetScale:
    tracks = {id(c.targets): c.targets.embedding for c in chunks}
    embedding = np.concatenate(list(tracks.values()))
    return TargetScale(embedding.mean(0), embedding.std(0) + 1e-6)


def get_batch(
    chunks: list[Chunk], idx: np.ndarray, cfg: DistillConfig, scale: TargetScale, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augmented crops of one random length, (batch, frames, features); the teacher's standardised
    embedding and tag probabilities over each crop's span, (batch, 200) and (batch, 50) per teacher."""
    length = int(rng.integers(cfg.augment.min_crop_frames, cfg.augment.max_crop_frames + 1))
    length = min(length, *(len(chunks[j].grid) for j in idx))  # a track's last chunk may be shorter
    inputs, embeddings, tags = [], [], []
    for j in idx:
        chunk = chunks[j]
        start = int(rng.integers(0, max(len(chunk.grid) - length, 0) + 1))
        crop = chunk.grid[start : start + length]
        inputs.append(augment(crop, len(crop), cfg.augment, rng))
        begin_s = chunk.start_s + start * FRAME_HOP_SECONDS
        span = chunk.targets.between(begin_s, begin_s + len(crop) * FRAME_HOP_SECONDS)
        embeddings.append((span.embedding.mean(0) - scale.mean) / scale.std)
        tags.append(span.tag_probabilities.mean(0))
    as_tensor = [torch.from_numpy(np.stack(v).astype(np.float32)) for v in (inputs, embeddings, tags)]
    return as_tensor[0], as_tensor[1], as_tensor[2]


class Student(nn.Module):
    """GenreNet with a head on its fused vector that predicts the teacher's embedding and tag logits."""

    def __init__(self, config: NetworkConfig, embedding_dim: int, n_tags: int) -> None:
        super().__init__()
        self.net = GenreNet(config)
        self.embedding_dim = embedding_dim
        self.head = nn.Linear(2 * config.hidden, embedding_dim + n_tags)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused, _ = self.net.pool(x)
        out: torch.Tensor = self.head(fused)
        return out[:, : self.embedding_dim], out[:, self.embedding_dim :]


def distill(cfg: DistillConfig) -> Path:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    teachers = [Teacher(path) for path in cfg.teachers]
    paths = soundtracks(cfg)
    chunks = read_chunks(cfg, teachers, paths)
    scale = target_scale(chunks)
    first = chunks[0].targets
    print(f"{len(chunks)} chunks of up to 30 s from {len(paths)} soundtrack files")

    student = Student(cfg.network, first.embedding.shape[1], first.tag_logits.shape[1])
    optimizer = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(chunks) // cfg.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, cfg.lr, total_steps=max(cfg.epochs * steps_per_epoch, 20), pct_start=0.1
    )
    start, epoch_losses = time.time(), []
    for _ in (bar := tqdm(range(cfg.epochs), desc="distil")):
        student.train()
        order, losses = rng.permutation(len(chunks)), []
        for i in range(0, len(order), cfg.batch_size):
            x, embedding, tags = get_batch(chunks, order[i : i + cfg.batch_size], cfg, scale, rng)
            predicted_embedding, tag_logits = student(x)
            embedding_loss = nn.functional.mse_loss(predicted_embedding, embedding)
            tag_loss = nn.functional.binary_cross_entropy_with_logits(tag_logits, tags)
            loss = embedding_loss + cfg.tag_weight * tag_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            nn.utils.clip_grad_norm_(student.parameters(), 5.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{epoch_losses[-1]:.3f}")

    cfg.out.mkdir(parents=True, exist_ok=True)
    path = cfg.out / "checkpoint.pt"
    meta = Checkpoint(
        network=cfg.network, labels=[], front_end=DEFAULT_SETTINGS, config=config_to_json(cfg), epoch=cfg.epochs - 1
    )
    meta.save(student.net, path)
    report = {
        "chunks": len(chunks),
        "files": len(paths),
        "first_epoch_loss": epoch_losses[0],
        "last_epoch_loss": epoch_losses[-1],
        "epoch_losses": epoch_losses,
        "seconds": round(time.time() - start, 1),
    }
    (cfg.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"distilled in {time.time() - start:.0f} s: {path}")
    return path


def main(argv: list[str] | None = None) -> None:
    distill(parse_config(DistillConfig, argv, __doc__))


if __name__ == "__main__":
    main()
