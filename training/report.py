"""The training report's figures: valid metrics of the model and the baselines, confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from model.features import model_input
from training.accuracy import confusion, summary
from training.baselines import logistic_predictions, majority_predictions
from training.data import Split
from training.network import GenreNet
from training.scoring import clip_agreement, clip_logits, split_accuracy


def plot_confusion(matrix: np.ndarray, labels: list[str], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def valid_figures(
    net: GenreNet, labels: list[str], train: Split, valid: Split, valid_audio: Split, out: Path
) -> dict[str, object]:
    """The network's figures on `valid`, and those of both baselines trained on `train`."""
    if not len(valid):
        return {"valid_accuracy": None, "valid": None, "clip_agreement": None, "baselines": {}}
    truth = np.array(valid.labels)
    accuracy, probs = split_accuracy(net, valid)
    predictions = probs.argmax(1)
    matrix = confusion(truth, predictions, len(labels))
    plot_confusion(matrix, labels, f"valid accuracy {accuracy:.3f}", out / "confusion.png")
    return {
        "valid_accuracy": accuracy,
        "valid": summary(truth, predictions, labels),
        "clip_agreement": clip_agreement(net, valid, valid_audio),
        "valid_logits": clip_logits(net, [model_input(g) for g in valid.grids]).round(5).tolist(),
        "valid_audio_logits": dict(
            zip(
                valid_audio.ids,
                clip_logits(net, [model_input(g) for g in valid_audio.grids]).round(5).tolist(),
                strict=True,
            )
        ),
        "baselines": {
            "majority": summary(truth, majority_predictions(train, len(truth)), labels),
            "logistic_band_stats": summary(truth, logistic_predictions(train, valid), labels),
        },
    }
