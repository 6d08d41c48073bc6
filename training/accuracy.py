"""Classification metrics shared by the training report and the evaluation CLI."""

from __future__ import annotations

import numpy as np


def confusion(truth: np.ndarray, predictions: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts, shape = (true label, predicted label)."""
    matrix = np.zeros((n_labels, n_labels), dtype=np.int64)
    np.add.at(matrix, (truth, predictions), 1)
    return matrix


def summary(truth: np.ndarray, predictions: np.ndarray, labels: list[str]) -> dict[str, object]:
    """accuracy, n and per-label recall (null for a label with no clips)."""
    matrix = confusion(truth, predictions, len(labels))
    totals = matrix.sum(1)
    return {
        "accuracy": float((truth == predictions).mean()) if len(truth) else None,
        "n": len(truth),
        "per_genre": {
            label: (round(float(matrix[i, i] / totals[i]), 4) if totals[i] else None) for i, label in enumerate(labels)
        },
    }
