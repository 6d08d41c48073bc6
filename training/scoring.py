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


def batches(x: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Stack equal-length model inputs into batches, shape = (batch, frames, bands)."""
    return [np.stack(x[i : i + size]) for i in range(0, len(x), size)]


@torch.no_grad()
def predict(net: GenreNet, inputs: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """Class probabilities of full clips, shape = (clips, classes). Clips of equal length."""
    net.eval()
    probs = [torch.softmax(net(torch.from_numpy(b))[0], dim=1).numpy() for b in batches(inputs, batch_size)]
    return np.concatenate(probs) if probs else np.zeros((0, net.config.n_classes), np.float32)


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
