"""Training augmentation: each transform does what it says, and the output is a model input."""

from __future__ import annotations

import numpy as np
import pytest

from model.features import CLIP_FRAMES, N_BANDS, N_FEATURES
from training.augment import AugmentConfig, augment, mask, quantise, random_crop

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
