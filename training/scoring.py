"""Scoring a torch network on full clips: shared by the training loop and its report.

These score the network in torch on each clip's first 30 s grid, with no windows; the figures
of the shipped ONNX file through the service's pipeline come from `training.evaluate`.
"""

from __future__ import annotations

import numpy as np
import torch

from model.features import model_input
from training.data import Split
from training.network import GenreNet


def batches(x: list[np.ndarray], size: int) -> list[list[int]]:
    """Rows of model inputs to stack together: equal lengths, at most `size` at a time."""
    by_length: dict[int, list[int]] = {}
    for i, clip in enumerate(x):
        by_length.setdefault(clip.shape[0], []).append(i)
    return [rows[i : i + size] for rows in by_length.values() for i in range(0, len(rows), size)]


@torch.no_grad()
def clip_logits(net: GenreNet, inputs: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """Class logits of full clips of any lengths, shape = (clips, classes)."""
    net.eval()
    logits = np.zeros((len(inputs), net.config.n_classes), np.float32)
    for rows in batches(inputs, batch_size):
        logits[rows] = net(torch.from_numpy(np.stack([inputs[i] for i in rows])))[0].numpy()
    return logits


def predict(net: GenreNet, inputs: list[np.ndarray]) -> np.ndarray:
    """Class probabilities of full clips of any lengths, shape = (clips, classes)."""
    probs: np.ndarray = torch.softmax(torch.from_numpy(clip_logits(net, inputs)), dim=1).numpy()
    return probs


def split_accuracy(net: GenreNet, split: Split) -> tuple[float, np.ndarray]:
    """(accuracy, probabilities) on the full clips of a split."""
    probs = predict(net, [model_input(g) for g in split.grids])
    return float((probs.argmax(1) == np.array(split.labels)).mean()), probs


def clip_agreement(net: GenreNet, arrays: Split, audio: Split) -> float | None:
    """Share of clips whose top genre is the same from the array and from the audio's first 30 s grid."""
    if not len(audio):
        return None
    index = {clip_id: i for i, clip_id in enumerate(arrays.ids)}
    both = [index[c] for c in audio.ids]
    array_top = predict(net, [model_input(arrays.grids[i]) for i in both]).argmax(1)
    audio_top = predict(net, [model_input(g) for g in audio.grids]).argmax(1)
    return float((array_top == audio_top).mean())
