"""The clip-summary branch: a second opinion from whole-window statistics of the log bands (torch).

The network sees frames through a GRU and attention; a few statistics of the whole window say
what it does not learn from 640 clips: each log band's mean and std, the bands' envelopes as
modulation spectra (rhythm, 0.09-5.7 Hz: 5-344 BPM), and band-to-band correlations at several
resolutions. A logistic regression on them (`SummaryHead`, fitted with scikit-learn, no
gradient) gives log-probabilities that the shipped file adds to the network's, weighted
(training.network.ExportWrapper): log p = log p_network + w log p_summary.

Out of fold on the recipe's five artist-disjoint folds this lifted model 2.0 from 0.620 to 0.656
(docs/experiments.md; training/inputs/cv.json measures the shipped recipe).
Everything here is made of ONNX-exportable ops, for any window of one frame or more.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from model.features import FRAME_HOP_SECONDS, N_LOG_BANDS, FrontEndSettings, model_input
from training.augment import AugmentConfig, band_limit
from training.calibration import fit_temperature, nll

MODULATION_WINDOW_FRAMES = 128  # 11.1 s of 87 ms frames: 0.09 Hz resolution
MODULATION_HOP_FRAMES = 32
MODULATION_BANDS = 16  # the 64 log bands, pooled 4 to 1 before their envelopes' spectra
MODULATION_GROUPS = 12  # log-spaced groups of the 64 modulation bins above 0 Hz (fewer where they merge)
CO_VARIATION_RESOLUTIONS = (8, 16, 32)  # bands per window at which band-to-band correlations are taken
# A band of the standardised window whose std is below this is constant (a floored band): its float32
# rounding noise must not become a correlation.
STD_FLOOR = 1e-3
HEAD_C = (0.003, 0.03, 0.3)  # the logistic regression's inverse regularisation, chosen by cross-validation
HEAD_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)  # w, chosen by out-of-fold log-likelihood
MISSING_LABEL_LOG_P = -1e9  # a label the head never saw: certain no, but finite
SUMMARIES = ("band_stats", "modulation", "co_variation")  # the parts, in the order of their features


def modulation_bin_hz(k: float | np.ndarray) -> np.ndarray:
    """Modulation-spectrum bin k -> its frequency in Hz (frame rate / window)."""
    return np.asarray(k) / (MODULATION_WINDOW_FRAMES * FRAME_HOP_SECONDS)


def modulation_groups() -> list[tuple[int, int]]:
    """[lo, hi) bin ranges of the modulation spectrum (bins 1..64), log-spaced, none empty."""
    edges = np.unique(np.geomspace(1, MODULATION_WINDOW_FRAMES // 2 + 1, MODULATION_GROUPS + 1).astype(int))
    return list(itertools.pairwise(int(e) for e in edges))


def coarse_bands(bands: torch.Tensor, n: int) -> torch.Tensor:
    """(batch, frames, b) -> (batch, frames, n), the mean of each run of b / n adjacent bands."""
    batch, frames, b = bands.shape
    return bands.reshape(batch, frames, n, b // n).mean(-1)


def _centred_dft_kernels() -> torch.Tensor:
    """Conv kernels, shape = (2 * 64, 1, MODULATION_WINDOW_FRAMES): the real then imaginary parts of
    bins 1..64 of the Hann-windowed DFT of a segment minus its mean. Removing the mean is linear,
    so it is folded into the kernel: DFT(h (e - mean e)) = sum_t e_t (h_t c_kt - H_k / N)."""
    n = MODULATION_WINDOW_FRAMES
    t = np.arange(n)
    k = np.arange(1, n // 2 + 1)[:, None]
    window = np.hanning(n)
    basis = np.concatenate([np.cos(2 * np.pi * k * t / n), -np.sin(2 * np.pi * k * t / n)]) * window
    kernels = basis - basis.sum(1, keepdims=True) / n
    return torch.tensor(kernels, dtype=torch.float32).unsqueeze(1)


def _group_matrix() -> torch.Tensor:
    """shape = (64 bins, groups): the mean over each of modulation_groups() (bin b is row b - 1)."""
    groups = modulation_groups()
    matrix = torch.zeros(MODULATION_WINDOW_FRAMES // 2, len(groups))
    for j, (lo, hi) in enumerate(groups):
        matrix[lo - 1 : hi - 1, j] = 1.0 / (hi - lo)
    return matrix


class ClipSummary(nn.Module):
    """Model input (batch, frames >= 1, features) -> summary features (batch, dims), the parts in
    SUMMARIES order: band_stats (2 * 64), modulation (groups * 16), co_variation (28 + 120 + 496)."""

    kernels: torch.Tensor  # buffers
    groups: torch.Tensor

    def __init__(self, n_bands: int = N_LOG_BANDS) -> None:
        super().__init__()
        self.n_bands = n_bands
        self.register_buffer("kernels", _centred_dft_kernels(), persistent=False)
        self.register_buffer("groups", _group_matrix(), persistent=False)
        for n in CO_VARIATION_RESOLUTIONS:  # flat indices of each correlation matrix's upper triangle
            first, second = torch.triu_indices(n, n, 1)
            self.register_buffer(f"upper{n}", first * n + second, persistent=False)

    @property
    def dims(self) -> dict[str, int]:
        """Width of each part."""
        return {
            "band_stats": 2 * self.n_bands,
            "modulation": self.groups.shape[1] * MODULATION_BANDS,
            "co_variation": sum(n * (n - 1) // 2 for n in CO_VARIATION_RESOLUTIONS),
        }

    def band_stats(self, bands: torch.Tensor) -> torch.Tensor:
        """Each log band's mean and std over the window, shape = (batch, 2 * bands)."""
        mean = bands.mean(1)
        std = ((bands - mean.unsqueeze(1)) ** 2).mean(1).sqrt()
        return torch.cat([mean, std], dim=1)

    def modulation(self, bands: torch.Tensor) -> torch.Tensor:
        """log(1 + |spectrum|) of each pooled band's envelope in 128-frame segments 32 apart, the
        segments' mean, averaged over each modulation group: shape = (batch, groups * 16), group-major.

        A window shorter than a segment is one segment, zero-padded (the bands are standardised,
        so zero is their level); a longer one uses only whole segments."""
        batch = bands.shape[0]
        envelopes = coarse_bands(bands, MODULATION_BANDS).transpose(1, 2).reshape(batch * MODULATION_BANDS, 1, -1)
        tail = MODULATION_WINDOW_FRAMES - 1
        padded = nn.functional.pad(envelopes, (0, tail))
        spectra = nn.functional.conv1d(padded, self.kernels, stride=MODULATION_HOP_FRAMES)  # (b * 16, 128, segments)
        real, imaginary = spectra.chunk(2, dim=1)
        magnitude = (real**2 + imaginary**2).sqrt()
        # How many real frames each segment holds; whole segments, or the first when none is whole.
        ones = nn.functional.pad(torch.ones_like(envelopes[:1]), (0, tail))
        held = nn.functional.conv1d(ones, torch.ones_like(self.kernels[:1]), stride=MODULATION_HOP_FRAMES)
        use = (held >= held[..., :1] - 0.5).to(magnitude.dtype)
        mean = (magnitude * use).sum(2) / use.sum(2)  # (b * 16, 64)
        grouped = torch.log1p(mean) @ self.groups  # (b * 16, groups)
        return grouped.reshape(batch, MODULATION_BANDS, -1).transpose(1, 2).reshape(batch, -1)

    def co_variation(self, bands: torch.Tensor) -> torch.Tensor:
        """Upper triangles of the band-to-band correlation matrices at each resolution,
        concatenated; a constant band correlates 0 with every other."""
        frames = torch.ones_like(bands[:, :, :1]).sum(1, keepdim=True)  # (batch, 1, 1): a tensor, for ONNX
        out = []
        for n in CO_VARIATION_RESOLUTIONS:
            pooled = coarse_bands(bands, n)
            centred = pooled - pooled.mean(1, keepdim=True)
            z = centred / (centred**2).mean(1, keepdim=True).sqrt().clamp(min=STD_FLOOR)
            correlation = torch.bmm(z.transpose(1, 2), z) / frames  # (batch, n, n)
            out.append(correlation.reshape(-1, n * n)[:, getattr(self, f"upper{n}")])
        return torch.cat(out, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bands = x[..., : self.n_bands]
        return torch.cat([self.band_stats(bands), self.modulation(bands), self.co_variation(bands)], dim=1)


def clip_summaries(inputs: list[np.ndarray], batch: int = 64) -> np.ndarray:
    """Model inputs (frames, features) each -> their summary features, shape = (clips, dims).
    Windows of different lengths are summarised one by one."""
    summary = ClipSummary()
    out = []
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            chunk = inputs[i : i + batch]
            if len({len(x) for x in chunk}) == 1:
                out.append(summary(torch.from_numpy(np.stack(chunk))).numpy())
            else:
                out.extend(summary(torch.from_numpy(x[None])).numpy() for x in chunk)
    return np.concatenate(out) if out else np.zeros((0, sum(summary.dims.values())), np.float32)


def part_columns(names: tuple[str, ...]) -> np.ndarray:
    """Column indices of these parts in ClipSummary's output."""
    dims = ClipSummary().dims
    starts = dict(zip(SUMMARIES, np.cumsum([0, *dims.values()]), strict=False))
    return np.concatenate([np.arange(starts[n], starts[n] + dims[n]) for n in names])


def band_limited(grids: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """Each grid band-limited at a random 3.5-11 kHz cut-off: what users upload, as training.augment
    makes it for the network."""
    config, rng = AugmentConfig(), np.random.default_rng(seed)
    return [band_limit(g, rng.uniform(config.min_cutoff_hz, config.max_cutoff_hz)) for g in grids]


def summary_views(
    grids: list[np.ndarray], front_end: FrontEndSettings, limited: list[np.ndarray] | None = None
) -> np.ndarray:
    """Each grid's summary as it is (view 0) and band_limited (view 1; `limited` if the caller has
    made them already), shape = (clips, 2, dims)."""
    limited = band_limited(grids) if limited is None else limited
    views = [clip_summaries([model_input(g, front_end) for g in view]) for view in (grids, limited)]
    return np.stack(views, axis=1)


@dataclass(frozen=True)
class HeadData:
    """What summary heads learn from, a row per clip: x, shape = (rows, views, dims); labels y and
    folds. `scored` rows (the arrays) are what C is chosen by; the others (audio clips) teach, and
    only help choose the fusion weight."""

    x: np.ndarray
    y: np.ndarray
    fold: np.ndarray
    scored: np.ndarray

    def where(self, rows: np.ndarray) -> HeadData:
        return HeadData(self.x[rows], self.y[rows], self.fold[rows], self.scored[rows])

    def fit(self, c: float) -> LogisticRegression:
        return fit_logistic(self.x, self.y, c)


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
    """A standardised logistic regression of labels y on summaries x (C: inverse regularisation).
    x: shape = (clips, dims), or (clips, views, dims), every view a training row with its clip's label."""
    if x.ndim == 3:
        x, y = x.reshape(-1, x.shape[2]), np.repeat(y, x.shape[1])
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
    classifier.fit(x, y)
    return classifier


def log_proba(classifier: LogisticRegression, x: np.ndarray, n_labels: int) -> np.ndarray:
    """log p of every label, shape = (clips, n_labels); a label the fit never saw gets MISSING_LABEL_LOG_P.
    x: shape = (clips, dims), or (clips, views, dims), of which the first view (the clip itself) is scored."""
    x = x[:, 0] if x.ndim == 3 else x
    out = np.full((len(x), n_labels), MISSING_LABEL_LOG_P)
    out[:, classifier.classes_] = np.maximum(classifier.predict_log_proba(x), MISSING_LABEL_LOG_P)
    return out


def fit_summary_head(
    grids: list[np.ndarray], y: np.ndarray, c: float, n_labels: int, front_end: FrontEndSettings
) -> SummaryHead:
    """The head fitted on these grids (their summary_views) and labels."""
    return SummaryHead(fit_logistic(summary_views(grids, front_end), y, c), n_labels)


class SummaryHead(nn.Module):
    """Model input (batch, frames, features) -> log p of each label, shape = (batch, labels): a fitted
    standardised logistic regression on the window's ClipSummary, as fixed torch weights."""

    mean: torch.Tensor  # the scaler's, buffers
    scale: torch.Tensor

    def __init__(self, classifier: LogisticRegression, n_labels: int) -> None:
        super().__init__()
        scaler, logistic = classifier[0], classifier[-1]
        if scaler.n_features_in_ != sum(ClipSummary().dims.values()):
            raise ValueError(f"the classifier reads {scaler.n_features_in_} features, not the whole ClipSummary")
        coef, intercept = logistic.coef_, logistic.intercept_
        if len(logistic.classes_) == 2:  # one logit z for the second class: softmax([0, z]) = sigmoid
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, *intercept])
        weight = np.zeros((n_labels, scaler.n_features_in_))
        bias = np.full(n_labels, MISSING_LABEL_LOG_P)
        weight[logistic.classes_], bias[logistic.classes_] = coef, intercept
        self.summary = ClipSummary()
        # Standardised first, as the fit was: folding 1 / scale into the weights loses float32 precision.
        self.register_buffer("mean", torch.tensor(scaler.mean_, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scaler.scale_, dtype=torch.float32))
        self.linear = nn.Linear(weight.shape[1], n_labels)
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(weight))
            self.linear.bias.copy_(torch.from_numpy(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        standardised = (self.summary(x) - self.mean) / self.scale
        return torch.log_softmax(self.linear(standardised), dim=1)


def choose_c(data: HeadData, n_labels: int) -> float:
    """The HEAD_C whose fits score best on average over the folds, each fold's scored rows
    scored by a fit on the other folds."""

    def accuracy(c: float) -> float:
        scores = []
        for k in np.unique(data.fold):
            test = data.where((data.fold == k) & data.scored)
            scores.append((log_proba(data.where(data.fold != k).fit(c), test.x, n_labels).argmax(1) == test.y).mean())
        return float(np.mean(scores))

    return max(HEAD_C, key=accuracy)


def nested_logistic(data: HeadData, n_labels: int) -> tuple[np.ndarray, list[float]]:
    """Out-of-fold log-probabilities of every row, shape = (rows, n_labels), and each fold's C,
    chosen by the other folds (choose_c over them), never by the fold scored."""
    out = np.zeros((len(data.y), n_labels))
    chosen = []
    for k in np.unique(data.fold):
        rest = data.where(data.fold != k)
        c = choose_c(rest, n_labels)
        chosen.append(c)
        out[data.fold == k] = log_proba(rest.fit(c), data.x[data.fold == k], n_labels)
    return out, chosen


def fused(network_logits: np.ndarray, head_log_p: np.ndarray, weight: float) -> np.ndarray:
    """log p_network + weight * log p_summary: the shipped file's logits before its temperature."""
    out: np.ndarray = log_softmax(network_logits, axis=1) + weight * head_log_p
    return out


def choose_weight(network_logits: np.ndarray, head_log_p: np.ndarray, y: np.ndarray) -> float:
    """The HEAD_WEIGHTS value whose fusion, scaled by the temperature fitted with it, gives these
    clips' labels the least negative log-likelihood.

    w and T are chosen together because the shipped file applies both. Likelihood rather than
    accuracy: accuracy over a few hundred clips is flat across w and moves by single close calls
    (it chose 0.75, then 1.0 after float-level changes), while the likelihood weighs every clip's
    confidence."""

    def fused_nll(w: float) -> float:
        logits = fused(network_logits, head_log_p, w)
        return nll(logits, y, fit_temperature(logits, y))

    return min(HEAD_WEIGHTS, key=fused_nll)


def nested_fusion(
    network_logits: np.ndarray, head_log_p: np.ndarray, y: np.ndarray, fold: np.ndarray
) -> tuple[np.ndarray, list[float]]:
    """Fused out-of-fold logits, shape = (clips, labels), and each fold's weight, chosen on the other folds."""
    out = np.zeros_like(head_log_p)
    weights = []
    for k in np.unique(fold):
        rest = fold != k
        w = choose_weight(network_logits[rest], head_log_p[rest], y[rest])
        weights.append(w)
        out[fold == k] = fused(network_logits[fold == k], head_log_p[fold == k], w)
    return out, weights
