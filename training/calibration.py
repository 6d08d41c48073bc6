"""Temperature scaling (Guo et al. 2017) and the expected calibration error.

A network trained with label smoothing and mixup tends to be under-confident, one trained
without them over-confident; one scalar T on the logits, fitted on out-of-fold predictions,
fixes most of either without changing any prediction's rank.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

ECE_BINS = 15


def nll(logits: np.ndarray, truth: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels. logits: shape = (clips, labels)."""
    return float(-log_softmax(logits / temperature, axis=1)[np.arange(len(truth)), truth].mean())


def fit_temperature(logits: np.ndarray, truth: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the NLL of softmax(logits / T)."""
    result = minimize_scalar(
        lambda log_t: nll(logits, truth, float(np.exp(log_t))), bounds=(-3.0, 3.0), method="bounded"
    )
    return float(np.exp(result.x))


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: |accuracy - confidence| over equal-width confidence bins, weighted by their clips."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gaps = [
        abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).sum()
        for b in range(bins)
        if (which == b).any()
    ]
    return float(sum(gaps) / len(truth))


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    probabilities: np.ndarray = softmax(logits / temperature, axis=1)
    return probabilities
