"""The genre network (torch; imported by training and export only, never by the service).

A bidirectional GRU learns features from the spectrogram frames. In parallel, an attention
branch reads the same frames and outputs a softmax distribution over them. The GRU outputs
are averaged with those weights, and the fused vector is classified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, get_args

import torch
from torch import nn

from model.features import N_FEATURES
from model.labels import N_GENRES

FrameEncoder = Literal["linear", "conv"]


@dataclass(frozen=True)
class NetworkConfig:
    n_features: int = N_FEATURES
    n_classes: int = N_GENRES
    encoder: FrameEncoder = "conv"  # frame encoder: a conv over the log bands, or one linear map
    frame_dim: int = 128  # per-frame embedding fed to the GRU
    conv_channels: int = 16  # "conv" encoder: channels of its first layer (doubled in the second)
    hidden: int = 96  # GRU units per direction
    attention_dim: int = 64
    context_frames: int = 5  # temporal receptive field of the attention branch
    dropout: float = 0.3

    def __post_init__(self) -> None:
        if self.encoder not in get_args(FrameEncoder):
            raise ValueError(f"unknown frame encoder {self.encoder!r}: use one of {get_args(FrameEncoder)}")

    def to_dict(self) -> dict[str, int | float | str]:
        return asdict(self)


class BandConvEncoder(nn.Module):
    """Per-frame conv over frequency: (batch, frames, n_features) -> (batch, frames, frame_dim).

    The features' two halves (log bands, their deltas) are two channels over the same
    bands; shared kernels find spectral shapes wherever they sit in pitch.
    """

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        c = config.conv_channels
        n_bands = config.n_features // 2
        self.convs = nn.Sequential(
            nn.Conv1d(2, c, 5, padding=2),
            nn.GELU(),
            nn.MaxPool1d(2),
            nn.Conv1d(c, 2 * c, 3, padding=1),
            nn.GELU(),
            nn.MaxPool1d(2),
            nn.Flatten(),
            nn.Linear(2 * c * (n_bands // 4), config.frame_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, features = x.shape
        y: torch.Tensor = self.convs(x.reshape(batch * frames, 2, features // 2))
        return y.reshape(batch, frames, -1)


class GenreNet(nn.Module):
    """x: shape = (batch, frames, n_features) -> (logits (batch, classes), attention (batch, frames))."""

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        self.config = config
        first: nn.Module = (
            BandConvEncoder(config) if config.encoder == "conv" else nn.Linear(config.n_features, config.frame_dim)
        )
        self.frame_encoder = nn.Sequential(
            first,
            nn.LayerNorm(config.frame_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
        )
        self.rnn = nn.GRU(config.frame_dim, config.hidden, batch_first=True, bidirectional=True)
        # The attention branch reads the spectrogram itself, not the GRU states (the method's
        # parallel design): a small temporal conv scores each frame from its neighbourhood.
        self.attention = nn.Sequential(
            nn.Conv1d(
                config.n_features,
                config.attention_dim,
                config.context_frames,
                padding=config.context_frames // 2,
            ),
            nn.Tanh(),
            nn.Conv1d(config.attention_dim, 1, 1),
        )
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(2 * config.hidden, config.n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states, _ = self.rnn(self.frame_encoder(x))  # (batch, frames, 2 * hidden)
        scores = self.attention(x.transpose(1, 2)).squeeze(1)  # (batch, frames)
        weights = torch.softmax(scores, dim=1)
        fused = torch.bmm(weights.unsqueeze(1), states).squeeze(1)  # (batch, 2 * hidden)
        return self.classifier(fused), weights


class ExportWrapper(nn.Module):
    """What ships in ONNX: one network or a seed ensemble, giving class probabilities.

    An ensemble averages its members' probabilities and attention weights; the mean of
    distributions over frames is itself one, so the output contract is the same.
    """

    def __init__(self, *members: GenreNet) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [member(x) for member in self.members]
        probabilities = torch.stack([torch.softmax(logits, dim=1) for logits, _ in outputs]).mean(0)
        attention = torch.stack([weights for _, weights in outputs]).mean(0)
        return probabilities, attention
