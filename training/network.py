"""The genre network (torch; imported by training and export only, never by the service).

A bidirectional GRU learns features from the spectrogram frames. In parallel, an attention
branch reads the same frames and outputs a softmax distribution over them. The GRU outputs
are averaged with those weights, and the fused vector is classified.

What the GRU reads per frame: a conv embedding of the log bands, plus how coarse bands move
together around their window mean (products of their deviations). Averaged over frames those
products are the bands' covariances over time. They carry genre: adding the band correlations
to a linear model on per-band statistics lifts it from 0.51 to 0.61 on `valid`, and handing
them to the GRU lifted the network too, where it had not learned them by itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, cast, get_args

import torch
from torch import nn

from model.features import N_FEATURES

FrameEncoder = Literal["linear", "conv"]
N_COARSE_BANDS = 16  # groups of adjacent log bands whose co-variation the GRU is given


@dataclass(frozen=True)
class NetworkConfig:
    n_features: int = N_FEATURES
    n_classes: int = 10  # GTZAN's genres; training sets it from its data's labels
    encoder: FrameEncoder = "conv"  # frame encoder: a conv over the log bands, or one linear map
    frame_dim: int = 128  # per-frame embedding fed to the GRU
    conv_channels: int = 16  # "conv" encoder: channels of its first layer (doubled in the second)
    hidden: int = 96  # GRU units per direction
    attention_dim: int = 64
    context_frames: int = 5  # temporal receptive field of the attention branch
    dropout: float = 0.3
    co_variation: int = 32  # width of the per-frame coarse-band co-variation features; 0 = none

    def __post_init__(self) -> None:
        if self.encoder not in get_args(FrameEncoder):
            raise ValueError(f"unknown frame encoder {self.encoder!r}: use one of {get_args(FrameEncoder)}")
        if self.co_variation and self.n_bands % N_COARSE_BANDS:
            raise ValueError(f"co-variation features need the log bands in {N_COARSE_BANDS} equal groups")

    @property
    def n_bands(self) -> int:
        """The log bands: the first half of the features (their deltas are the second)."""
        return self.n_features // 2

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
        self.convs = nn.Sequential(
            nn.Conv1d(2, c, 5, padding=2),
            nn.GELU(),
            nn.MaxPool1d(2),
            nn.Conv1d(c, 2 * c, 3, padding=1),
            nn.GELU(),
            nn.MaxPool1d(2),
            nn.Flatten(),
            nn.Linear(2 * c * (config.n_bands // 4), config.frame_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Training keeps the per-frame form (its float rounding is what runs were trained with);
        # exported, the same convolutions over one image.
        if torch.onnx.is_in_onnx_export():
            return self.as_image(x)
        batch, frames, features = x.shape
        y: torch.Tensor = self.convs(x.reshape(batch * frames, 2, features // 2))
        return y.reshape(batch, frames, -1)

    def as_image(self, x: torch.Tensor) -> torch.Tensor:
        """forward(x), the same numbers to float rounding, as ONNX Runtime runs it faster: the window
        is one image of bands by frames, convolved with kernels one frame wide, instead of a batch
        of one-frame signals (one large matrix product per layer rather than one per frame: about a
        third less time in the encoder)."""
        batch, frames, features = x.shape
        *blocks, _, linear = self.convs  # (conv, activation, pool) twice, Flatten, Linear
        image = x.reshape(batch, frames, 2, features // 2).permute(0, 2, 3, 1)  # (batch, 2, bands, frames)
        for conv, activation, pool in (blocks[0:3], blocks[3:6]):
            assert isinstance(conv, nn.Conv1d) and isinstance(pool, nn.MaxPool1d)
            padding = (cast(tuple[int], conv.padding)[0], 0)
            image = nn.functional.conv2d(image, conv.weight.unsqueeze(-1), conv.bias, padding=padding)
            image = nn.functional.max_pool2d(activation(image), (cast(int, pool.kernel_size), 1))
        y: torch.Tensor = linear(image.permute(0, 3, 1, 2).reshape(batch, frames, -1))
        return y


class BandCoVariation(nn.Module):
    """Per-frame co-variation of coarse bands: (batch, frames, n_features) -> (batch, frames, width).

    The log bands are averaged in N_COARSE_BANDS groups and centred on their mean over the
    window; the products of every pair of deviations (squares included) are projected to
    `width` and layer-normed.
    """

    first: torch.Tensor  # pair indices into the coarse bands (buffers)
    second: torch.Tensor
    pairs_to_squares: torch.Tensor

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        first, second = torch.triu_indices(N_COARSE_BANDS, N_COARSE_BANDS)
        self.register_buffer("first", first, persistent=False)
        self.register_buffer("second", second, persistent=False)
        pairs_to_squares = torch.zeros(len(first), N_COARSE_BANDS**2)
        pairs_to_squares[torch.arange(len(first)), first * N_COARSE_BANDS + second] = 1.0
        self.register_buffer("pairs_to_squares", pairs_to_squares, persistent=False)
        self.n_bands = config.n_bands
        self.project = nn.Sequential(nn.Linear(len(first), config.co_variation), nn.LayerNorm(config.co_variation))

    def deviations(self, x: torch.Tensor) -> torch.Tensor:
        """The coarse bands centred on their mean over the window: shape = (batch, frames, N_COARSE_BANDS)."""
        batch, frames, _ = x.shape
        coarse = x[..., : self.n_bands].reshape(batch, frames, N_COARSE_BANDS, -1).mean(-1)
        return coarse - coarse.mean(1, keepdim=True)

    def products(self, x: torch.Tensor) -> torch.Tensor:
        """shape = (batch, frames, N_COARSE_BANDS * (N_COARSE_BANDS + 1) / 2)."""
        deviation = self.deviations(x)
        return deviation[..., self.first] * deviation[..., self.second]

    def outer_projected(self, x: torch.Tensor) -> torch.Tensor:
        """The projection of products(x), the same numbers to float rounding, as ONNX Runtime runs
        it faster: every product of the deviations (an outer product, N_COARSE_BANDS ** 2 of them)
        through the projection's weights scattered onto the upper triangle, zeros below. The
        pairs' Gathers cost more than the larger matrix product (about 9 % of today's network)."""
        deviation = self.deviations(x)
        outer = (deviation.unsqueeze(-1) * deviation.unsqueeze(-2)).flatten(-2)
        linear = cast(nn.Linear, self.project[0])
        # (pairs, N^2) of zeros and ones: an exact copy of each pair's weight. The exported graph
        # keeps the product of two constants; ONNX Runtime folds it into one when it loads the file.
        return nn.functional.linear(outer, linear.weight @ self.pairs_to_squares, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Training keeps the pairs' form: its float rounding is what today's runs were trained with,
        # and `make train` rebuilds a shipped network bit for bit. Exported, the faster form.
        projected = self.outer_projected(x) if torch.onnx.is_in_onnx_export() else self.project[0](self.products(x))
        y: torch.Tensor = self.project[1](projected)
        return y


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
        self.co_variation = BandCoVariation(config) if config.co_variation else None
        self.rnn = nn.GRU(config.frame_dim + config.co_variation, config.hidden, batch_first=True, bidirectional=True)
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

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """What the GRU reads: shape = (batch, frames, frame_dim + co_variation)."""
        embedding: torch.Tensor = self.frame_encoder(x)
        if self.co_variation is None:
            return embedding
        return torch.cat([embedding, self.co_variation(x)], dim=2)

    def pool(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fused vector the classifier reads, shape = (batch, 2 * hidden), and the attention."""
        states, _ = self.rnn(self.frame_features(x))  # (batch, frames, 2 * hidden)
        scores = self.attention(x.transpose(1, 2)).squeeze(1)  # (batch, frames)
        weights = torch.softmax(scores, dim=1)
        return torch.bmm(weights.unsqueeze(1), states).squeeze(1), weights

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused, weights = self.pool(x)
        return self.classifier(fused), weights


class ExportWrapper(nn.Module):
    """What ships in ONNX: one network or a seed ensemble, giving class probabilities.

    An ensemble averages its members' probabilities and attention weights; the mean of
    distributions over frames is itself one, so the output contract is the same. A summary head
    (training.clip_summary) adds `head_weight` times its log-probabilities to each member's.
    `temperature` divides the logits first (training.calibration), so the file's probabilities
    are calibrated.
    """

    def __init__(
        self, *members: GenreNet, temperature: float = 1.0, head: nn.Module | None = None, head_weight: float = 0.0
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.temperature = temperature
        self.head = head
        self.head_weight = head_weight

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [member(x) for member in self.members]
        logits = [member_logits for member_logits, _ in outputs]
        if self.head is not None:
            head_log_p = self.head_weight * self.head(x)
            logits = [torch.log_softmax(member_logits, dim=1) + head_log_p for member_logits in logits]
        probabilities = torch.stack([torch.softmax(z / self.temperature, dim=1) for z in logits]).mean(0)
        attention = torch.stack([weights for _, weights in outputs]).mean(0)
        return probabilities, attention
