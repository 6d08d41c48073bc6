"""Self-supervised pretraining of the genre network on unlabelled music.

    python -m training.pretrain --music runs/soundtracks --out runs/pretrain
    python -m training.train --data ../shared/data/gtzan --init runs/pretrain/pretrained.pt --out runs/main

Contrastive, as COLA (Saeed et al., 2021): two crops of one track, each through the training
augmentations (band limits, noise floor, tilt, blur, quantisation, masks), should pool to nearby
points, and the other tracks' crops in the batch to distant ones (NT-Xent over the batch's 2B
views, through a small projection that is then dropped). What pools them is the network itself
up to the fused vector its classifier reads: frame encoder, co-variation, GRU and attention. A
labelled run then starts from those weights and trains a classifier of its own (--init).

The music is any folder of audio files (`make soundtracks` unpacks Debian's game soundtracks:
12.2 h once repeated files are skipped). Each file's first MAX_FILE_S seconds are read; files
too short, unreadable or the same as one read already are skipped and reported. An epoch draws
one pair per 30 s of music, tracks in proportion to their length, no track twice in a batch.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model.audio import AUDIO_SUFFIXES, AudioError
from model.features import CLIP_FRAMES, DEFAULT_SETTINGS
from training.artifacts import WEIGHT_PACKAGES, Pretrained, package_versions
from training.augment import AugmentConfig, augment
from training.config_flags import config_to_json, parse_config
from training.data import DataError, looped, track_grid
from training.network import GenreNet, NetworkConfig


@dataclass
class PretrainConfig:
    music: Path = Path("runs/soundtracks")
    out: Path = Path("runs/pretrain")
    seed: int = 0
    epochs: int = 20
    batch_size: int = 32  # tracks per batch: 2 views each
    lr: float = 1e-3
    weight_decay: float = 1e-2
    temperature: float = 0.1  # of NT-Xent's cosine similarities
    projection_dim: int = 64
    max_tracks: int = 0  # 0 = all; a few make a quick trial run
    threads: int = 1
    network: NetworkConfig = field(default_factory=NetworkConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, not {self.epochs}")
        if self.max_tracks < 0:
            raise ValueError(f"--max-tracks must be 0 (all) or more, not {self.max_tracks}")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be at least 2 (a contrast needs other tracks), not {self.batch_size}")

    def to_dict(self) -> dict[str, Any]:
        return config_to_json(self)


@dataclass
class Tracks:
    """A music folder's files: their dB-band grids, shape = (frames, N_BANDS) each, looped to one
    30 s clip where shorter, and their frames before looping."""

    names: list[str] = field(default_factory=list)
    grids: list[np.ndarray] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def load_tracks(folder: Path, max_tracks: int = 0) -> Tracks:
    """Every audio file under `folder` (sorted by path; the first max_tracks if above 0)."""
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if max_tracks:
        paths = paths[:max_tracks]
    tracks = Tracks()
    first_of: dict[str, str] = {}  # sha256 of a file's bytes -> the name it was read under
    for path in tqdm(paths, desc="decode"):
        name = path.relative_to(folder).as_posix()
        # One track in several places (a game's copy per language) would be contrasted with itself.
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in first_of:
            tracks.skipped.append(f"{name}: the same file as {first_of[digest]}")
            continue
        first_of[digest] = name
        try:
            grid = track_grid(path)
        except AudioError as e:
            tracks.skipped.append(f"{name}: {e}")
            continue
        tracks.names.append(name)
        tracks.grids.append(looped(grid))
        tracks.frames.append(len(grid))
    return tracks


class Contrastive(nn.Module):
    """The network's fused vector through a projection, L2-normed: (batch, frames, features) -> (batch, dim)."""

    def __init__(self, net: GenreNet, dim: int) -> None:
        super().__init__()
        self.net = net
        width = 2 * net.config.hidden
        self.projection = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused, _ = self.net.pool(x)
        return nn.functional.normalize(self.projection(fused), dim=1)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR): each of the 2B unit vectors should pick its pair among the other 2B - 1.

    a, b: shape = (B, dim), row i of each a view of the same track."""
    z = torch.cat([a, b])
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))  # a view is not its own pair
    n = len(a)
    pairs = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return nn.functional.cross_entropy(similarity, pairs)


def get_pairs(
    tracks: Tracks, batch_size: int, config: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Two augmented views of each of batch_size distinct tracks, one crop length: each (B, frames, features)."""
    frames = np.array(tracks.frames)
    picked = rng.choice(len(frames), size=batch_size, replace=False, p=frames / frames.sum())
    length = int(rng.integers(config.min_crop_frames, config.max_crop_frames + 1))
    views = [np.stack([augment(tracks.grids[j], length, config, rng) for j in picked]) for _ in range(2)]
    return views[0], views[1]


def pooled(net: GenreNet, inputs: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """Model inputs of one length, shape = (frames, features) each -> the network's fused vectors,
    shape = (len(inputs), 2 * hidden), in eval mode."""
    net.eval()
    with torch.no_grad():
        chunks = [net.pool(torch.from_numpy(np.stack(inputs[i : i + batch])))[0] for i in range(0, len(inputs), batch)]
    return torch.cat(chunks).numpy()


def pretrain(cfg: PretrainConfig) -> Pretrained:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    tracks = load_tracks(cfg.music, cfg.max_tracks)
    for message in tracks.skipped:
        print(f"skipped {message}")
    if len(tracks.grids) < cfg.batch_size:
        raise DataError(
            f"{cfg.music} has {len(tracks.grids)} readable audio files; a batch contrasts {cfg.batch_size} tracks"
        )
    frames = sum(tracks.frames)
    seconds = frames * DEFAULT_SETTINGS.hop_length / DEFAULT_SETTINGS.sample_rate
    print(f"{len(tracks.grids)} tracks, {seconds / 3600:.2f} h; {len(tracks.skipped)} files skipped")

    net = GenreNet(cfg.network)
    model = Contrastive(net, cfg.projection_dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(frames // CLIP_FRAMES // cfg.batch_size, 1)
    total_steps = max(cfg.epochs * steps_per_epoch, 20)  # OneCycle needs a few steps in each phase
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=total_steps, pct_start=0.1)
    start = time.time()
    model.train()
    for _ in (bar := tqdm(range(cfg.epochs), desc="pretrain")):
        for _ in range(steps_per_epoch):
            a, b = get_pairs(tracks, cfg.batch_size, cfg.augment, rng)
            loss = nt_xent(model(torch.from_numpy(a)), model(torch.from_numpy(b)), cfg.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            schedule.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")

    result = Pretrained(
        network=cfg.network,
        front_end=DEFAULT_SETTINGS,
        config=cfg.to_dict(),
        tracks=len(tracks.grids),
        seconds_of_music=round(seconds, 1),
        train_seconds=round(time.time() - start, 1),
        final_loss=round(loss.item(), 4),
        packages=package_versions(WEIGHT_PACKAGES),
    )
    cfg.out.mkdir(parents=True, exist_ok=True)
    result.save(net, cfg.out / "pretrained.pt")
    (cfg.out / "skipped.txt").write_text("".join(f"{m}\n" for m in tracks.skipped))
    return result


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(PretrainConfig, argv, __doc__)
    try:
        result = pretrain(cfg)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    print(result.model_dump_json(exclude={"config", "front_end", "network", "packages"}))


if __name__ == "__main__":
    main()
