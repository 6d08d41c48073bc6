"""The teacher's tags as soft genre targets on unlabelled audio (model 3.0, docs/training.md).

    python -m training.train ... --tag-targets.teacher runs/teacher/MSD_musicnn.onnx

Beside each labelled batch, the genre run reads a few 15 s spans of the corpus's training
soundtracks where the MSD teacher hears a genre: a span is kept when one genre's tags
(training.teacher.GENRE_TAGS, the likeliest of its tags per 3 s patch, averaged over the span's
five patches) reach `threshold`. Its target is those eight genres' scores, normalised to sum to 1;
the network's probabilities are renormalised over the same eight genres and learn them by
cross-entropy. Classical and reggae have no tag: they take no part in this loss, so the teacher
neither pushes a span away from them nor towards them, and those two genres are learnt from the
labels alone.

The soundtracks are never GTZAN's, so every cross-validation fold may learn from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.features import FRAME_HOP_SECONDS, power_db_bands
from training.augment import AugmentConfig, augment
from training.corpus import read, soundtrack_files, soundtrack_sources
from training.data import DataError
from training.network import GenreNet
from training.teacher import GENRE_TAGS, PATCH_SECONDS, Targets, Teacher

SPAN_PATCHES = 5  # the teacher's 3 s patches per span: 15 s, a crop the genre training also draws
SPAN_FRAMES = int(SPAN_PATCHES * PATCH_SECONDS / FRAME_HOP_SECONDS)  # 171


@dataclass
class TagTargetConfig:
    teacher: Path | None = None  # an exported teacher whose tags name genres (MSD's); None: off
    weight: float = 0.5  # of this loss beside the labels'
    threshold: float = 0.3  # a span's likeliest genre score to keep it
    batch_size: int = 8  # spans beside each labelled batch
    corpus: Path = Path("runs/corpus")
    cache: Path = Path("runs/teacher/targets")  # the teacher's cached targets (training.teacher)
    sources: tuple[str, ...] = ()  # training soundtrack sources to read; none: all

    def __post_init__(self) -> None:
        soundtrack_sources(self.sources)  # the names are checked
        if not 0 < self.threshold < 1 or self.weight < 0 or self.batch_size < 1:
            raise ValueError("tag targets need 0 < threshold < 1, weight >= 0 and batch_size >= 1")


@dataclass(frozen=True)
class TagTargets:
    """Soundtrack spans where the teacher hears a genre, and what it hears, over a run's labels."""

    grids: list[np.ndarray]  # each (SPAN_FRAMES, bands)
    targets: np.ndarray  # (spans, labels): the tagged genres' normalised scores; 0 elsewhere
    tagged: np.ndarray  # (labels,) bool: the genres a tag names

    def __len__(self) -> int:
        return len(self.grids)

    def loss(
        self, net: GenreNet, batch_size: int, augment_config: AugmentConfig, rng: np.random.Generator
    ) -> torch.Tensor:
        """Cross-entropy of the network's tagged-genre probabilities against the teacher's, on a
        random batch of augmented spans."""
        idx = rng.choice(len(self), size=min(batch_size, len(self)), replace=False)
        x = np.stack([augment(self.grids[j], SPAN_FRAMES, augment_config, rng) for j in idx])
        logits, _ = net(torch.from_numpy(x))
        tagged = torch.from_numpy(self.tagged)
        log_p = torch.log_softmax(logits[:, tagged], dim=1)
        target = torch.from_numpy(self.targets[idx][:, self.tagged])
        return -(target * log_p).sum(1).mean()


def span_scores(teacher: Teacher, targets: Targets) -> np.ndarray:
    """(spans, genres of GENRE_TAGS): each whole span's genre scores, as Teacher.genre_scores."""
    n = len(targets.tag_logits) // SPAN_PATCHES
    per_patch = teacher.genre_patch_scores(targets)[: n * SPAN_PATCHES]
    scores: np.ndarray = per_patch.reshape(n, SPAN_PATCHES, len(GENRE_TAGS)).mean(axis=1)
    return scores


def load_tag_targets(cfg: TagTargetConfig, labels: list[str]) -> TagTargets | None:
    """The spans of cfg's soundtracks that the run learns the teacher's genres on; None when off."""
    if cfg.teacher is None:
        return None
    if missing := sorted(set(GENRE_TAGS) - set(labels)):
        raise DataError(f"tag targets need the genres the teacher's tags name; the labels lack {missing}")
    teacher = Teacher(cfg.teacher)
    if not teacher.has_genre_tags:
        raise DataError(f"{cfg.teacher}: its tags name no genre ({teacher.name}); use the MSD tagger")
    columns = [labels.index(genre) for genre in GENRE_TAGS]
    grids, targets = [], []
    for path in tqdm(soundtrack_files(cfg.sources, cfg.corpus), desc="tag targets"):
        scores = span_scores(teacher, teacher.cached(path, cfg.cache))
        kept = np.flatnonzero(scores.max(axis=1) >= cfg.threshold)
        if not len(kept):
            continue
        grid = power_db_bands(read(path))
        for s in kept.tolist():
            start = round(s * SPAN_PATCHES * PATCH_SECONDS / FRAME_HOP_SECONDS)
            if start + SPAN_FRAMES > len(grid):
                continue
            grids.append(grid[start : start + SPAN_FRAMES])
            row = np.zeros(len(labels), dtype=np.float32)
            row[columns] = scores[s] / scores[s].sum()
            targets.append(row)
    if not grids:
        raise DataError(f"the teacher hears no genre (score {cfg.threshold}) in any soundtrack of {cfg.corpus}")
    tagged = np.zeros(len(labels), dtype=bool)
    tagged[columns] = True
    print(f"tag targets: {len(grids)} spans of {SPAN_FRAMES * FRAME_HOP_SECONDS:.0f} s")
    return TagTargets(grids, np.stack(targets), tagged)
