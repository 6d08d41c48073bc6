"""Training augmentation on dB-band grids, shape = (frames, bands).

Besides crops and SpecAugment-style masking, it mimics the difference between the shared
arrays (rendered images: blur, 8-bit quantisation) and grids computed from real audio, so
that the model gives the same answer on both routes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from model.features import CLIP_FRAMES, model_input


@dataclass(frozen=True)
class AugmentConfig:
    min_crop_frames: int = 160
    max_crop_frames: int = CLIP_FRAMES
    blur_prob: float = 0.3
    max_blur_sigma: float = 1.0  # frames/bands
    quantise_prob: float = 0.3
    freq_masks: int = 2
    max_freq_mask: int = 24  # bands
    time_masks: int = 2
    max_time_mask: int = 24  # frames


def random_crop(grid: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random run of `length` frames (all of them if the grid is shorter)."""
    start = int(rng.integers(0, max(grid.shape[0] - length, 0) + 1))
    return grid[start : start + length]


def quantise(grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Map a random dB range onto 256 levels and round, as the array rendering did."""
    lo, hi = np.percentile(grid, [rng.uniform(0, 2), rng.uniform(98, 100)])
    levels: np.ndarray = np.round(255 * np.clip((grid - lo) / max(hi - lo, 1e-6), 0, 1))
    return levels


def mask(x: np.ndarray, axis: int, count: int, max_width: int, fill: float, rng: np.random.Generator) -> None:
    """Set `count` random stripes along `axis` to `fill`, in place."""
    size = x.shape[axis]
    for _ in range(count):
        width = int(rng.integers(0, min(max_width, size) + 1))
        start = int(rng.integers(0, size - width + 1))
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + width)
        x[tuple(index)] = fill


def augment(grid: np.ndarray, length: int, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """A grid -> one augmented model input, shape = (length, bands)."""
    g = random_crop(grid, length, rng).astype(np.float32)  # a copy: masks write in place
    if rng.random() < config.blur_prob:
        g = gaussian_filter(g, rng.uniform(0, config.max_blur_sigma, size=2))
    if rng.random() < config.quantise_prob:
        g = quantise(g, rng)
    # Frequency masks on the grid (before pooling), so band and delta features mask together.
    mask(g, 1, config.freq_masks, config.max_freq_mask, float(g.mean()), rng)
    x = model_input(g)
    mask(x, 0, config.time_masks, config.max_time_mask, 0.0, rng)  # 0: the standardised mean
    return x
