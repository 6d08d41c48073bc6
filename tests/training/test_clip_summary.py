"""The clip-summary branch: its features on signals whose answer is known, its nested choices,
and the fitted head as torch weights."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax

from model.features import FRAME_HOP_SECONDS, N_FEATURES, N_LOG_BANDS
from training.clip_summary import (
    CO_VARIATION_RESOLUTIONS,
    MISSING_LABEL_LOG_P,
    MODULATION_BANDS,
    MODULATION_WINDOW_FRAMES,
    ClipSummary,
    HeadData,
    SummaryHead,
    choose_weight,
    clip_summaries,
    fit_logistic,
    log_proba,
    modulation_bin_hz,
    modulation_groups,
    nested_fusion,
    nested_logistic,
    part_columns,
)

FRAMES = 344


def envelope_inputs(hz: float, frames: int = FRAMES, seed: int = 0) -> np.ndarray:
    """Model input whose every log band rises and falls at `hz`, with a little noise."""
    t = np.arange(frames) * FRAME_HOP_SECONDS
    noise = np.random.default_rng(seed).normal(0, 0.1, (frames, N_FEATURES))
    x: np.ndarray = (np.sin(2 * np.pi * hz * t)[:, None] + noise).astype(np.float32)
    return x


def part(features: np.ndarray, name: str) -> np.ndarray:
    out: np.ndarray = features[..., part_columns((name,))]
    return out


@pytest.mark.parametrize("hz", [0.5, 2.0, 3.0])  # 30, 120 and 180 BPM
def test_the_modulation_spectrum_peaks_in_the_group_of_the_envelopes_rate(hz: float) -> None:
    features = part(clip_summaries([envelope_inputs(hz)])[0], "modulation")
    lo, hi = modulation_groups()[int(features.reshape(-1, MODULATION_BANDS).mean(1).argmax())]
    assert modulation_bin_hz(lo - 0.5) <= hz <= modulation_bin_hz(hi - 0.5)


def reference_modulation(bands: np.ndarray) -> np.ndarray:
    """The definition, in numpy: whole 128-frame segments 32 apart (one zero-padded segment for a
    shorter window), each centred, Hann-windowed, |rfft|; their mean; log1p; each group's mean."""
    pooled = bands.reshape(len(bands), MODULATION_BANDS, -1).mean(2)
    if len(pooled) < MODULATION_WINDOW_FRAMES:
        pooled = np.pad(pooled, ((0, MODULATION_WINDOW_FRAMES - len(pooled)), (0, 0)))
    starts = range(0, len(pooled) - MODULATION_WINDOW_FRAMES + 1, 32)
    segments = np.stack([pooled[s : s + MODULATION_WINDOW_FRAMES] for s in starts])
    segments -= segments.mean(1, keepdims=True)
    window = np.hanning(MODULATION_WINDOW_FRAMES)[None, :, None]
    magnitude = np.log1p(np.abs(np.fft.rfft(segments * window, axis=1)).mean(0))
    return np.concatenate([magnitude[lo:hi].mean(0) for lo, hi in modulation_groups()])


@pytest.mark.parametrize("frames", [1, 40, 127, 128, 129, 200, 344, 1000])
def test_the_modulation_spectrum_is_its_definition_at_any_window_length(frames: int) -> None:
    x = np.random.default_rng(frames).normal(size=(frames, N_FEATURES)).astype(np.float32)
    got = part(clip_summaries([x])[0], "modulation")
    np.testing.assert_allclose(got, reference_modulation(x[:, :N_LOG_BANDS].astype(np.float64)), atol=1e-4)


def test_the_modulation_groups_cover_every_bin_above_zero_hz_once() -> None:
    groups = modulation_groups()
    assert groups[0][0] == 1 and groups[-1][1] == MODULATION_WINDOW_FRAMES // 2 + 1
    assert all(lo < hi for lo, hi in groups) and all(a[1] == b[0] for a, b in itertools.pairwise(groups))


def test_band_stats_are_each_log_bands_mean_and_std() -> None:
    x = np.random.default_rng(1).normal(size=(FRAMES, N_FEATURES)).astype(np.float32) * 2 + 1
    got = part(clip_summaries([x])[0], "band_stats")
    bands = x[:, :N_LOG_BANDS]
    np.testing.assert_allclose(got, np.concatenate([bands.mean(0), bands.std(0)]), atol=1e-5)


def test_co_variation_is_one_for_bands_that_move_together_and_zero_for_a_constant_one() -> None:
    together = np.tile(np.arange(FRAMES, dtype=np.float32)[:, None] / FRAMES, (1, N_FEATURES))
    out = part(clip_summaries([together])[0], "co_variation")
    assert out.shape == (sum(n * (n - 1) // 2 for n in CO_VARIATION_RESOLUTIONS),)
    assert out == pytest.approx(1.0, abs=1e-5)
    x = np.random.default_rng(2).normal(size=(FRAMES, N_FEATURES)).astype(np.float32)
    x[:, :8] = 3.0  # a silent low octave: the first band at every resolution is constant
    out = part(clip_summaries([x])[0], "co_variation")
    assert np.isfinite(out).all() and out[0] == 0.0 and np.abs(out).max() < 0.5


def test_windows_of_different_lengths_are_summarised_as_they_would_be_alone() -> None:
    short, long = envelope_inputs(1.0, 100), envelope_inputs(2.0, 400)
    together = clip_summaries([short, long])
    np.testing.assert_allclose(together[0], clip_summaries([short])[0], atol=1e-6)
    assert np.isfinite(together).all() and together.shape == (2, sum(ClipSummary().dims.values()))


def test_nested_choices_learn_what_the_features_say_and_fusion_keeps_the_better_opinion() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 60)
    fold = np.tile(np.arange(5), 48)
    informative = np.eye(4)[y] * 2 + rng.normal(size=(240, 4))
    scored = np.ones(240, dtype=bool)
    log_p, cs = nested_logistic(HeadData(informative[:, None], y, fold, scored), 4)
    assert (log_p.argmax(1) == y).mean() > 0.8 and len(cs) == 5
    shuffled, _ = nested_logistic(HeadData(informative[:, None], rng.permutation(y), fold, scored), 4)
    assert (shuffled.argmax(1) == y).mean() < 0.45
    # Rows that only teach (audio clips): the fold's head learns from them, and they are not scored.
    both = np.concatenate([informative, informative])[:, None]
    teaching = HeadData(both, np.concatenate([y, y]), np.concatenate([fold, fold]), np.arange(480) < 240)
    doubled, _ = nested_logistic(teaching, 4)
    assert doubled.shape == (480, 4) and (doubled[:240].argmax(1) == y).mean() > 0.8

    noise = np.log(rng.dirichlet(np.ones(4), size=240))
    good_network = np.eye(4)[y] * 3 + rng.normal(size=(240, 4))
    fused, ws = nested_fusion(good_network, noise, y, fold)
    assert max(ws) <= 0.25 and (fused.argmax(1) == y).mean() >= (good_network.argmax(1) == y).mean() - 0.02
    fused, ws = nested_fusion(rng.normal(size=(240, 4)) * 0.1, log_p, y, fold)
    assert min(ws) > 0 and (fused.argmax(1) == y).mean() >= (log_p.argmax(1) == y).mean() - 0.05


def test_the_weight_is_the_one_labels_were_drawn_with_once_the_temperature_is_fitted_with_it() -> None:
    # Labels drawn from softmax(a + 0.5 log p_head), seen through a network twice over-confident
    # (logits 2a): its fusion 2a + w log p_head, divided by T = 2, is the truth at w = 1.0. Over 20
    # draws of 400 clips, accuracy finds that w 12 times, the likelihood without T once.
    hits = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        a = rng.normal(size=(400, 5)) * 1.5
        head = log_softmax(rng.normal(size=(400, 5)) * 2, axis=1)
        y = np.array([rng.choice(5, p=p) for p in softmax(a + 0.5 * head, axis=1)])
        hits += choose_weight(2 * a, head, y) == 1.0
    assert hits >= 16


@pytest.mark.parametrize("labels", [[0, 1], [0, 1, 3]])  # binary; and label 2 never seen
def test_the_head_is_the_fitted_logistic_regression_on_the_summaries(labels: list[int]) -> None:
    rng = np.random.default_rng(3)
    inputs = [envelope_inputs(hz, seed=i) * rng.uniform(0.5, 2) for i, hz in enumerate(rng.uniform(0.3, 4, 24))]
    y = np.resize(labels, len(inputs))
    x = clip_summaries(inputs)
    classifier = fit_logistic(x, y, 0.3)
    n_labels = max(labels) + 1
    head = SummaryHead(classifier, n_labels).eval()
    with torch.no_grad():
        got = head(torch.from_numpy(np.stack(inputs))).numpy()
    expected = log_proba(classifier, x, n_labels)
    seen = sorted(set(labels))
    np.testing.assert_allclose(got[:, seen], expected[:, seen], atol=1e-4)
    assert (got[:, [k for k in range(n_labels) if k not in seen]] <= MISSING_LABEL_LOG_P / 2).all()
