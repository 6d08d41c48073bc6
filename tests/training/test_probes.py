"""The probes' clip summaries and their nested scoring, on signals whose answer is known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from model.features import FRAME_HOP_SECONDS, N_LOG_BANDS
from training.probes import (
    CO_VARIATION_RESOLUTIONS,
    MODULATION_BANDS,
    MODULATION_WINDOW_FRAMES,
    co_variation,
    fuse,
    modulation_bin_hz,
    modulation_groups,
    modulation_spectrum,
    nested_logistic,
)

FRAMES = 344


def envelope_bands(hz: float, seed: int = 0) -> np.ndarray:
    """Every log band rising and falling at `hz`, with a little noise: shape = (FRAMES, N_LOG_BANDS)."""
    t = np.arange(FRAMES) * FRAME_HOP_SECONDS
    noise = np.random.default_rng(seed).normal(0, 0.1, (FRAMES, N_LOG_BANDS))
    bands: np.ndarray = np.sin(2 * np.pi * hz * t)[:, None] + noise
    return bands


@pytest.mark.parametrize("hz", [0.5, 2.0, 3.0])  # 30, 120 and 180 BPM
def test_the_modulation_spectrum_peaks_in_the_group_of_the_envelopes_rate(hz: float) -> None:
    features = modulation_spectrum(envelope_bands(hz)).reshape(len(modulation_groups()), MODULATION_BANDS)
    lo, hi = modulation_groups()[int(features.mean(1).argmax())]
    assert modulation_bin_hz(lo - 0.5) <= hz <= modulation_bin_hz(hi - 0.5)


def test_the_modulation_groups_cover_every_bin_above_zero_hz_once() -> None:
    groups = modulation_groups()
    assert groups[0][0] == 1 and groups[-1][1] == MODULATION_WINDOW_FRAMES // 2 + 1
    assert all(lo < hi for lo, hi in groups) and all(a[1] == b[0] for a, b in itertools.pairwise(groups))
    with pytest.raises(ValueError, match="at least 128 frames"):
        modulation_spectrum(envelope_bands(1.0)[:100])


def test_co_variation_is_one_for_bands_that_move_together_and_zero_for_a_constant_one() -> None:
    together = co_variation(np.tile(np.arange(FRAMES, dtype=float)[:, None], (1, N_LOG_BANDS)))
    assert together.shape == (sum(n * (n - 1) // 2 for n in CO_VARIATION_RESOLUTIONS),)
    assert together == pytest.approx(1.0)
    bands = np.random.default_rng(2).normal(size=(FRAMES, N_LOG_BANDS))
    bands[:, :8] = 3.0  # a silent low octave: the first band at every resolution is constant
    out = co_variation(bands)
    assert np.isfinite(out).all() and out[0] == 0.0 and np.abs(out).max() < 0.5


def test_nested_probes_learn_what_the_features_say_and_fusion_keeps_the_better_opinion() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 60)
    fold = np.tile(np.arange(5), 48)
    informative = np.eye(4)[y] * 2 + rng.normal(size=(240, 4))
    log_proba, cs = nested_logistic(informative, y, fold, 4)
    assert (log_proba.argmax(1) == y).mean() > 0.8 and len(cs) == 5
    shuffled, _ = nested_logistic(informative, rng.permutation(y), fold, 4)
    assert (shuffled.argmax(1) == y).mean() < 0.45

    noise = np.log(rng.dirichlet(np.ones(4), size=240))
    good_network = np.eye(4)[y] * 3 + rng.normal(size=(240, 4))
    predictions, ws = fuse(good_network, noise, y, fold)
    assert max(ws) <= 0.25 and (predictions == y).mean() >= (good_network.argmax(1) == y).mean() - 0.02
    predictions, ws = fuse(rng.normal(size=(240, 4)) * 0.1, log_proba, y, fold)
    assert min(ws) > 0 and (predictions == y).mean() >= (log_proba.argmax(1) == y).mean() - 0.05
