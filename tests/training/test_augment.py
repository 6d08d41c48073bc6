"""Training augmentation: each transform does what it says, and the output is a model input."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from model.features import CLIP_FRAMES, DEFAULT_SETTINGS, N_BANDS, N_FEATURES, N_LOG_BANDS, model_input
from training.augment import (
    AugmentConfig,
    augment,
    band_limit,
    mask,
    noise_floor,
    quantise,
    random_crop,
    spread,
    tilt,
)

RNG_SEED = 0


@pytest.fixture
def grid() -> np.ndarray:
    """A dB-like grid, shape = (CLIP_FRAMES, N_BANDS)."""
    return np.random.default_rng(RNG_SEED).normal(-40, 10, (CLIP_FRAMES, N_BANDS)).astype(np.float32)


@pytest.mark.parametrize("length", [48, 160, CLIP_FRAMES])
def test_augmented_inputs_are_model_inputs_of_the_crop_length(grid: np.ndarray, length: int) -> None:
    rng = np.random.default_rng(RNG_SEED)
    x = augment(grid, length, AugmentConfig(blur_prob=1.0, quantise_prob=1.0), rng)
    assert x.shape == (length, N_FEATURES) and x.dtype == np.float32 and np.isfinite(x).all()
    # Time masks fill whole frames with 0, the standardised mean.
    assert (x == 0).all(1).sum() <= 2 * AugmentConfig().max_time_mask + 1


def test_random_crop_and_masks(grid: np.ndarray) -> None:
    rng = np.random.default_rng(RNG_SEED)
    crop = random_crop(grid, 100, rng)
    start = int(np.flatnonzero((grid == crop[0]).all(1))[0])
    np.testing.assert_array_equal(crop, grid[start : start + 100])
    assert random_crop(grid[:50], 100, rng).shape == (50, N_BANDS)

    x = grid.copy()
    mask(x, 1, count=3, max_width=10, fill=7.0, rng=rng)
    masked = (x == 7.0).all(0)
    assert masked.sum() <= 30
    np.testing.assert_array_equal(x[:, ~masked], grid[:, ~masked])


def test_quantise_gives_256_levels_like_the_shared_arrays(grid: np.ndarray) -> None:
    q = quantise(grid, np.random.default_rng(RNG_SEED))
    assert q.min() == 0 and q.max() == 255
    np.testing.assert_array_equal(q, np.round(q))
    assert np.corrcoef(q.ravel(), grid.ravel())[0, 1] > 0.99


def test_band_limit_empties_the_bands_above_the_cutoff(grid: np.ndarray) -> None:
    limited = band_limit(grid, 5512.5)  # half way up: 11025 Hz is the top of band 255
    np.testing.assert_array_equal(limited[:, :128], grid[:, :128])
    assert np.ptp(limited[:, 128:]) == 0 and limited[0, 128] < grid.min()
    # Through today's front end, that is what band-limited audio becomes: a plateau at the floor.
    x = model_input(limited)
    assert np.ptp(x[:, DEFAULT_SETTINGS.log_band_edges.index(128) : N_LOG_BANDS]) == 0


def test_noise_floor_lifts_quiet_bands_and_keeps_loud_ones(grid: np.ndarray) -> None:
    hi, scale = spread(grid)
    noisy = noise_floor(grid, depth=3.0)
    level = hi - 3.0 * scale
    assert noisy.min() >= level - 1e-3  # nothing below the noise
    loud = grid > level + 2 * scale
    np.testing.assert_allclose(noisy[loud], grid[loud], atol=0.01 * scale)
    assert (noisy >= grid - 1e-4).all()  # noise adds power, never removes it


def test_tilt_is_a_ramp_across_bands(grid: np.ndarray) -> None:
    _, scale = spread(grid)
    difference = tilt(grid, 0.5) - grid
    np.testing.assert_allclose(difference[0], difference[-1], atol=1e-5)  # the same for every frame
    assert difference[0, -1] - difference[0, 0] == pytest.approx(0.5 * scale, rel=1e-4)


def test_augmentations_are_affine_equivariant(grid: np.ndarray) -> None:
    """They work in the grid's own units, so arrays (unknown dB scale) and audio get the same."""
    transforms: list[Callable[[np.ndarray], np.ndarray]] = [
        lambda g: band_limit(g, 4000.0),
        lambda g: noise_floor(g, 3.0),
        lambda g: tilt(g, 0.4),
    ]
    for transform in transforms:
        np.testing.assert_allclose(model_input(transform(0.3 * grid + 7.0)), model_input(transform(grid)), atol=2e-3)
