"""The training report's figures: valid metrics of the model and the baselines, confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from model.labels import GENRES
from training.accuracy import confusion, summary
from training.baselines import logistic_predictions, majority_predictions
from training.data import Split, load_arrays
from training.network import GenreNet
from training.scoring import clip_agreement, split_accuracy


def plot_confusion(matrix: np.ndarray, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(GENRES)), GENRES, rotation=45, ha="right")
    ax.set_yticks(range(len(GENRES)), GENRES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def valid_figures(net: GenreNet, data: Path, valid: Split, valid_audio: Split, out: Path) -> dict[str, object]:
    labels = np.array(valid.labels)
    accuracy, probs = split_accuracy(net, valid)
    predictions = probs.argmax(1)
    plot_confusion(confusion(labels, predictions), f"valid accuracy {accuracy:.3f}", out / "confusion.png")
    train = load_arrays(data, "train")
    return {
        "valid_accuracy": accuracy,
        "valid": summary(labels, predictions),
        "clip_agreement": clip_agreement(net, valid, valid_audio),
        "baselines": {
            "majority": summary(labels, majority_predictions(train, len(labels))),
            "logistic_band_stats": summary(labels, logistic_predictions(train, valid)),
        },
    }
