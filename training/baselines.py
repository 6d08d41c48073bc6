"""Two baselines trained on the same split, so each model figure is read against them.

The logistic regression's C=1.0 is the best of 0.003-3 on `valid`.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from model.features import model_input
from training.data import Split


def band_stats(split: Split) -> np.ndarray:
    """Per-band mean and std of each clip's model input, shape = (clips, 2 * bands)."""
    feats = [model_input(g) for g in split.grids]
    return np.stack([np.concatenate([f.mean(0), f.std(0)]) for f in feats])


def majority_predictions(train: Split, n: int) -> np.ndarray:
    return np.full(n, np.bincount(train.labels).argmax())


def logistic_predictions(train: Split, test: Split, seed: int = 0) -> np.ndarray:
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    classifier.fit(band_stats(train), train.labels)
    return np.asarray(classifier.predict(band_stats(test)))
