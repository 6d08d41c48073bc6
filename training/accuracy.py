"""Classification metrics shared by the training report and the evaluation CLI."""

from __future__ import annotations

import numpy as np

from model.labels import GENRES, N_GENRES


def confusion(labels: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Counts, shape = (true genre, predicted genre)."""
    matrix = np.zeros((N_GENRES, N_GENRES), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def summary(labels: np.ndarray, predictions: np.ndarray) -> dict[str, object]:
    """accuracy, n and per-genre recall (null for a genre with no clips)."""
    matrix = confusion(labels, predictions)
    totals = matrix.sum(1)
    return {
        "accuracy": float((labels == predictions).mean()) if len(labels) else None,
        "n": len(labels),
        "per_genre": {
            genre: (round(float(matrix[i, i] / totals[i]), 4) if totals[i] else None) for i, genre in enumerate(GENRES)
        },
    }
