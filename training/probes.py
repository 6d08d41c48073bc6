"""Probe feature ideas for model 2.x against the network, on the recipe's own folds.

    python -m training.probes --data DIR --run runs/cv/fold0 ... --out training/results/probes.json

Training a network per idea costs a cross-validation (about 95 min on 2 cores); a linear probe costs
seconds. So each idea is first a clip summary of the same front end's log bands, scored by a
logistic regression on the same artist-disjoint folds, alone and fused with the network's
out-of-fold logits. Every choice is nested: the regularisation C is picked by the other folds'
inner cross-validation, and the fusion weight w (fused = log p_network + w log p_probe) by the
other folds' out-of-fold predictions, so no figure here was chosen by the clips it scores.

The ideas (issue 14):
- modulation spectra: each band's envelope over ~11 s of frames, as a spectrum of 0.09-5.7 Hz
  (5-344 BPM): rhythm, which a 30 s average of bands cannot see;
- co-variation at several band resolutions: which bands rise and fall together;
- each log band's mean and std (the logistic baseline's features without their deltas), as the
  control: a second opinion that knows no more than a summary of the network's input.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from model.features import FRAME_HOP_SECONDS, N_LOG_BANDS, model_input
from training.cv import bootstrap_interval, fold_report_command, out_of_fold
from training.folds import artist_groups

MODULATION_WINDOW_FRAMES = 128  # 11.1 s of 87 ms frames: 0.09 Hz resolution
MODULATION_HOP_FRAMES = 32
MODULATION_BANDS = 16  # the 64 log bands, pooled 4 to 1 before their envelopes' spectra
MODULATION_GROUPS = 12  # log-spaced groups of the 64 modulation bins above 0 Hz (fewer where they merge)
CO_VARIATION_RESOLUTIONS = (8, 16, 32)  # bands per clip at which band-to-band correlations are taken
STD_FLOOR = 1e-6
PROBE_C = (0.003, 0.03, 0.3)  # logistic regression's inverse regularisation, picked per fold
FUSION_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


def log_bands(grid: np.ndarray) -> np.ndarray:
    """Grid (frames, bands) -> the network's standardised log bands, shape = (frames, N_LOG_BANDS)."""
    return model_input(grid)[:, :N_LOG_BANDS]


def coarse_bands(bands: np.ndarray, n: int) -> np.ndarray:
    """(frames, b) -> (frames, n), the mean of each run of b / n adjacent bands."""
    pooled: np.ndarray = bands.reshape(len(bands), n, -1).mean(2)
    return pooled


def modulation_bin_hz(k: float | np.ndarray) -> np.ndarray:
    """Modulation-spectrum bin k -> its frequency in Hz (frame rate / window)."""
    return np.asarray(k) / (MODULATION_WINDOW_FRAMES * FRAME_HOP_SECONDS)


def modulation_groups() -> list[tuple[int, int]]:
    """[lo, hi) bin ranges of the modulation spectrum (bins 1..64), log-spaced, none empty."""
    edges = np.unique(np.geomspace(1, MODULATION_WINDOW_FRAMES // 2 + 1, MODULATION_GROUPS + 1).astype(int))
    return list(itertools.pairwise(int(e) for e in edges))


def modulation_spectrum(bands: np.ndarray) -> np.ndarray:
    """Log bands (frames >= MODULATION_WINDOW_FRAMES, N_LOG_BANDS) -> rhythm features, shape =
    (len(modulation_groups()) * MODULATION_BANDS,): log(1 + |spectrum|) of each pooled band's
    envelope, Hann-windowed, averaged over windows, then over each group of modulation bins."""
    if len(bands) < MODULATION_WINDOW_FRAMES:
        raise ValueError(f"need at least {MODULATION_WINDOW_FRAMES} frames, got {len(bands)}")
    pooled = coarse_bands(bands, MODULATION_BANDS)
    starts = range(0, len(pooled) - MODULATION_WINDOW_FRAMES + 1, MODULATION_HOP_FRAMES)
    segments = np.stack([pooled[s : s + MODULATION_WINDOW_FRAMES] for s in starts])
    segments -= segments.mean(1, keepdims=True)
    window = np.hanning(MODULATION_WINDOW_FRAMES)[None, :, None]
    magnitude = np.log1p(np.abs(np.fft.rfft(segments * window, axis=1)).mean(0))
    return np.concatenate([magnitude[lo:hi].mean(0) for lo, hi in modulation_groups()])


def co_variation(bands: np.ndarray) -> np.ndarray:
    """Log bands (frames, N_LOG_BANDS) -> the upper triangles of the band-to-band correlation
    matrices at each of CO_VARIATION_RESOLUTIONS, concatenated; a constant band correlates 0."""
    out = []
    for n in CO_VARIATION_RESOLUTIONS:
        pooled = coarse_bands(bands, n)
        z = (pooled - pooled.mean(0)) / np.maximum(pooled.std(0), STD_FLOOR)
        out.append((z.T @ z / len(z))[np.triu_indices(n, 1)])
    return np.concatenate(out)


def log_band_stats(bands: np.ndarray) -> np.ndarray:
    """Log bands (frames, N_LOG_BANDS) -> each band's mean and std, shape = (2 * N_LOG_BANDS,)."""
    return np.concatenate([bands.mean(0), bands.std(0)])


SUMMARIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "band_stats": log_band_stats,
    "modulation": modulation_spectrum,
    "co_variation": co_variation,
}
FEATURE_SETS = (
    ("band_stats",),
    ("modulation",),
    ("co_variation",),
    ("band_stats", "modulation"),
    ("band_stats", "co_variation"),
    ("band_stats", "modulation", "co_variation"),
)


def _fit_log_proba(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, c: float, n_labels: int) -> np.ndarray:
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
    classifier.fit(x, y)
    out = np.full((len(x_test), n_labels), -np.inf)
    out[:, classifier.classes_] = classifier.predict_log_proba(x_test)
    return out


def nested_logistic(x: np.ndarray, y: np.ndarray, fold: np.ndarray, n_labels: int) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold log-probabilities, shape = (clips, n_labels), and each fold's C, chosen by the
    accuracy of an inner cross-validation over the other folds."""

    def accuracy(train: np.ndarray, test: np.ndarray, c: float) -> float:
        return float((_fit_log_proba(x[train], y[train], x[test], c, n_labels).argmax(1) == y[test]).mean())

    out = np.zeros((len(y), n_labels))
    chosen = []
    for k in np.unique(fold):
        inner = [j for j in np.unique(fold) if j != k]
        c = max(PROBE_C, key=lambda c: np.mean([accuracy((fold != k) & (fold != j), fold == j, c) for j in inner]))
        chosen.append(c)
        out[fold == k] = _fit_log_proba(x[fold != k], y[fold != k], x[fold == k], c, n_labels)
    return out, chosen


def fuse(network: np.ndarray, probe: np.ndarray, y: np.ndarray, fold: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Predictions of log p_network + w log p_probe, and each fold's w, chosen on the other folds."""
    net = log_softmax(network, axis=1)
    probe = np.maximum(probe, -1e9)  # a label a fold's probe never saw: certain no, but finite
    predictions = np.zeros(len(y), dtype=int)
    weights = []
    for k in np.unique(fold):
        rest = fold != k
        w = max(FUSION_WEIGHTS, key=lambda w: float(((net[rest] + w * probe[rest]).argmax(1) == y[rest]).mean()))
        weights.append(w)
        predictions[fold == k] = (net[fold == k] + w * probe[fold == k]).argmax(1)
    return predictions, weights


class ProbeFigures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dims: int
    accuracy: float  # the probe alone
    c_per_fold: list[float]
    fused_accuracy: float  # the network's out-of-fold logits fused with the probe's
    fused_gain_95: tuple[float, float]  # fused - network, bootstrap interval over artists
    w_per_fold: list[float]


class ProbeReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: str
    n: int
    network_accuracy: float
    probes: dict[str, ProbeFigures]


def probe(data: Path, runs: list[Path]) -> ProbeReport:
    oof = out_of_fold(data, runs)
    bands = [log_bands(oof.arrays.grids[i]) for i in oof.rows]
    summaries = {name: np.stack([f(b) for b in bands]) for name, f in SUMMARIES.items()}
    groups = artist_groups(data)
    clip_groups = [groups[c] for c in oof.ids]
    network_correct = oof.logits.argmax(1) == oof.truth
    figures = {}
    for names in FEATURE_SETS:
        x = np.hstack([summaries[n] for n in names])
        log_proba, cs = nested_logistic(x, oof.truth, oof.fold, len(oof.labels))
        fused, ws = fuse(oof.logits, log_proba, oof.truth, oof.fold)
        figures["+".join(names)] = ProbeFigures(
            dims=x.shape[1],
            accuracy=round(float((log_proba.argmax(1) == oof.truth).mean()), 4),
            c_per_fold=cs,
            fused_accuracy=round(float((fused == oof.truth).mean()), 4),
            fused_gain_95=bootstrap_interval((fused == oof.truth).astype(int) - network_correct, clip_groups),
            w_per_fold=ws,
        )
    return ProbeReport(
        protocol=f"{len(runs)}-fold artist-disjoint cross-validation, the recipe's folds; logistic regression on "
        "clip summaries of the front end's log bands, C and the fusion weight chosen by the other folds",
        n=len(oof.ids),
        network_accuracy=round(float(network_correct.mean()), 4),
        probes=figures,
    )


def main(argv: list[str] | None = None) -> None:
    report = fold_report_command(__doc__, argv, probe)
    print(f"network {report.network_accuracy:.3f} (out of fold, {report.n} clips)")
    for name, f in report.probes.items():
        print(json.dumps({"probe": name, **f.model_dump(include={"accuracy", "fused_accuracy", "fused_gain_95"})}))


if __name__ == "__main__":
    main()
