"""Training augmentation on dB-band grids, shape = (frames, bands).

Besides crops and SpecAugment-style masking, it mimics
- the difference between the shared arrays (rendered images: blur, 8-bit quantisation) and
  grids computed from real audio, so that the model gives the same answer on both routes;
- what users upload: band limits (8-16 kHz recordings, low-pass filters), a noise floor and
  an EQ tilt. They work in the grid's own units, scaled by its spread, so they apply to the
  arrays (whose dB scale is unknown) and to audio alike. Gain needs nothing: the model input
  is invariant to it. Lossy codecs are real encodings of the audio clips (training.data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from model.features import CLIP_FRAMES, SAMPLE_RATE, model_input


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
    band_limit_prob: float = 0.3
    min_cutoff_hz: float = 3500.0
    max_cutoff_hz: float = 11000.0
    noise_floor_prob: float = 0.2
    min_noise_floor_depth: float = 2.0  # spreads below the window's 99th percentile
    max_noise_floor_depth: float = 5.0
    tilt_prob: float = 0.3
    max_tilt: float = 0.5  # spreads from the lowest to the highest band
    codec_prob: float = 0.5  # an audio clip's codec variant instead of the clip itself


def spread(grid: np.ndarray) -> tuple[float, float]:
    """(99th percentile, its distance to the 90th): a loud level and a scale, in the grid's units."""
    hi, mid = np.percentile(grid, [99, 90])
    return float(hi), max(float(hi - mid), 1e-6)


def band_limit(grid: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """The grid of the same music with nothing above cutoff_hz: those bands far below anything else,
    as upsampled audio leaves them (~140 dB down)."""
    _, scale = spread(grid)
    first_empty = int(np.ceil(cutoff_hz / (SAMPLE_RATE / 2) * grid.shape[1]))
    out = grid.copy()
    out[:, first_empty:] = grid.min() - 8 * scale
    return out


def noise_floor(grid: np.ndarray, depth: float) -> np.ndarray:
    """A smooth floor `depth` spreads below the loud level: in power terms, noise added to the music."""
    hi, scale = spread(grid)
    level, softness = hi - depth * scale, scale / 4
    return level + softness * np.logaddexp(0.0, (grid - level) / softness)


def tilt(grid: np.ndarray, amount: float) -> np.ndarray:
    """An EQ tilt: a ramp of `amount` spreads across the bands, centred on the middle band."""
    _, scale = spread(grid)
    ramp = np.linspace(-amount / 2, amount / 2, grid.shape[1], dtype=np.float32) * scale
    tilted: np.ndarray = grid + ramp
    return tilted


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
    if rng.random() < config.band_limit_prob:
        g = band_limit(g, rng.uniform(config.min_cutoff_hz, config.max_cutoff_hz))
    if rng.random() < config.noise_floor_prob:
        g = noise_floor(g, rng.uniform(config.min_noise_floor_depth, config.max_noise_floor_depth))
    if rng.random() < config.tilt_prob:
        g = tilt(g, rng.uniform(-config.max_tilt, config.max_tilt))
    # Frequency masks on the grid (before pooling), so band and delta features mask together.
    mask(g, 1, config.freq_masks, config.max_freq_mask, float(g.mean()), rng)
    x = model_input(g)
    mask(x, 0, config.time_masks, config.max_time_mask, 0.0, rng)  # 0: the standardised mean
    return x
