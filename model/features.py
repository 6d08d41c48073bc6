"""The one audio front end, shared by training, evaluation and serving (numpy + soxr).

audio (any rate, any channels) -> mono 22050 Hz waveform -> dB band grid -> model input.

The grid reproduces steps 1-5 of the GTZAN data README exactly, so arrays computed from
audio and the shared spectrogram arrays differ only by a per-clip affine map (plus the
arrays' rendering blur and 8-bit quantisation); `model_input` removes the affine map.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Literal

import numpy as np
import soxr
from pydantic import BaseModel, ConfigDict, Field, model_validator
from threadpoolctl import threadpool_limits

FRONT_END_VERSION = 1  # bump whenever these functions compute something else from the same settings


def geometric_band_edges(n_bands: int, n_log_bands: int) -> tuple[int, ...]:
    """Edges (n_log_bands + 1, into the linear bands) of log-spaced bands, as a mel scale spaces them.

    The lowest linear bands (43 Hz wide) stay single; higher ones are merged, so the input spends
    its width where music's pitch and timbre are. The smallest geometric grid with n_log_bands
    distinct integer edges.
    """
    for n_edges in range(n_log_bands, 4 * n_log_bands):
        edges = np.unique(np.round(np.geomspace(1, n_bands, n_edges)).astype(int))
        if len(edges) >= n_log_bands:
            break
    return (0, *(int(e) for e in edges[-n_log_bands:]))


def n_frames(n_samples: int, settings: FrontEndSettings | None = None) -> int:
    """Number of STFT frames for a waveform of n_samples at the model rate (no padding)."""
    s = settings or DEFAULT_SETTINGS
    return 0 if n_samples < s.n_fft else 1 + (n_samples - s.n_fft) // s.hop_length


class FrontEndSettings(BaseModel):
    """Every setting that shapes the model input. Saved in the model card beside the weights, and
    the front end is rebuilt from the card's copy (as a HuggingFace feature extractor is), so a
    model always gets the input it was trained on. The grid (sample rate to band pooling) is the
    data README's definition; the rest is how a grid window becomes the network's input.

    The class defaults describe the original front end, so that older cards, which lack the
    later settings, still load as what they were; DEFAULT_SETTINGS is what training uses now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = FRONT_END_VERSION
    sample_rate: int = Field(22050, gt=0)  # Hz
    n_fft: int = Field(2048, gt=0)  # samples per STFT frame
    hop_length: int = Field(1920, gt=0)  # samples between frame starts (87.1 ms)
    window: Literal["hann_symmetric"] = "hann_symmetric"
    scale: Literal["power_db"] = "power_db"
    n_bands: int = Field(256, gt=0)  # linear frequency bands of the grid
    band_pooling: Literal["overlap_weighted_mean"] = "overlap_weighted_mean"
    clip_seconds: int = Field(30, gt=0)  # training clip length; the service's analysis window
    # Mean and std of the window over its linear bands, or over its log bands (each log band
    # weighs the same, so a band-limited upload's empty top octave weighs a quarter, not 64 %).
    standardise: Literal["per_window", "per_window_log_bands"] = "per_window"
    std_floor: float = Field(1e-6, gt=0)  # keeps constant (silent) windows finite
    # Log bands below hi - floor_spread * (hi - mid) are raised to it, hi and mid being the window's
    # floor_quantiles (percent): the empty bands of upsampled audio (~140 dB down) become a plateau
    # where full-band music would have its quietest content. None: no floor.
    floor_spread: float | None = Field(None, gt=0)
    floor_quantiles: tuple[float, float] = (99.0, 90.0)
    log_band_edges: tuple[int, ...] = geometric_band_edges(256, 64)
    deltas: bool = True  # append the log bands' frame-to-frame differences

    @model_validator(mode="after")
    def _edges_cover_the_bands(self) -> FrontEndSettings:
        edges = self.log_band_edges
        if len(edges) < 2 or edges[0] != 0 or edges[-1] != self.n_bands or list(edges) != sorted(set(edges)):
            raise ValueError(f"log_band_edges must rise strictly from 0 to n_bands ({self.n_bands})")
        return self

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def n_log_bands(self) -> int:
        return len(self.log_band_edges) - 1

    @property
    def n_features(self) -> int:
        """Width of the model input: the log bands, and their deltas when on."""
        return self.n_log_bands * (2 if self.deltas else 1)

    @property
    def clip_samples(self) -> int:
        return self.clip_seconds * self.sample_rate

    @property
    def clip_frames(self) -> int:
        return n_frames(self.clip_samples, self)

    @property
    def frame_hop_s(self) -> float:
        return self.hop_length / self.sample_rate

    @property
    def first_frame_center_s(self) -> float:
        return (self.n_fft / 2) / self.sample_rate


# What training uses today: robust to band-limited uploads (8-16 kHz, low-pass, low-bitrate codecs).
DEFAULT_SETTINGS = FrontEndSettings(standardise="per_window_log_bands", floor_spread=3.0)
# The defaults as constants, for code that trains on (or reasons about) this grid.
SAMPLE_RATE = DEFAULT_SETTINGS.sample_rate  # Hz
N_FFT = DEFAULT_SETTINGS.n_fft  # samples per STFT frame
HOP_LENGTH = DEFAULT_SETTINGS.hop_length  # samples between frame starts
N_BINS = DEFAULT_SETTINGS.n_bins  # 1025 rfft bins
N_BANDS = DEFAULT_SETTINGS.n_bands
CLIP_SAMPLES = DEFAULT_SETTINGS.clip_samples  # 661500 samples
N_LOG_BANDS = DEFAULT_SETTINGS.n_log_bands  # 64
N_FEATURES = DEFAULT_SETTINGS.n_features  # 128: log bands and their deltas
CLIP_FRAMES = DEFAULT_SETTINGS.clip_frames  # 344
FRAME_HOP_SECONDS = DEFAULT_SETTINGS.frame_hop_s

_FRAMES_PER_CHUNK = 64  # keeps the STFT's temporaries small and reused, on audio of any length


def _downmix(block: np.ndarray) -> np.ndarray:
    """shape = (n, channels) or (n,) -> (n,) float32, the channels' mean, non-finite samples 0.

    Float samples are taken as they are; integer PCM (as libsndfile reads it without converting)
    is scaled so that its type's full range maps onto [-1, 1), giving the same floats as reading
    the file as float32 would, at a fraction of the cost.
    """
    x = np.asarray(block)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected 1-D or 2-D samples, got shape {x.shape}")
    columns = x if x.ndim == 2 else x[:, None]
    # Adding whole columns: a mean over the short channel axis is ~10x slower on (n, 2) blocks.
    if np.issubdtype(x.dtype, np.integer) and columns.shape[1] > 1:
        # Converted whole, then added in float32: PCM of up to 24 bits converts exactly, so each sum
        # rounds as a mixed-type add would, at half the cost of converting column by column.
        columns = columns.astype(np.float32)
        mono: np.ndarray = columns[:, 0] + columns[:, 1]
        added = 2
    else:
        mono, added = columns[:, 0].astype(np.float32), 1  # a copy: the caller's array stays
    for channel in range(added, columns.shape[1]):
        mono += columns[:, channel]
    if np.issubdtype(x.dtype, np.integer):
        mono *= np.float32(2.0 ** -(8 * x.dtype.itemsize - 1))  # a power of two: exact
    elif not np.isfinite(mono).all():  # one pass; nan_to_num alone takes three
        np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0, copy=False)
    if columns.shape[1] > 1:
        mono /= np.float32(columns.shape[1])
    return mono


def mono_stream(blocks: Iterable[np.ndarray], sample_rate: int, target_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Downmix, zero non-finite samples and resample to target_rate, block by block.

    blocks: shape = (n, n_channels) or (n,) each, float or integer PCM. Yields float32 blocks at
    target_rate whose concatenation equals resampling the whole signal at once (soxr's stream is
    exact).
    """
    if sample_rate == target_rate:
        yield from (_downmix(block) for block in blocks)
        return
    stream = soxr.ResampleStream(sample_rate, target_rate, 1, dtype="float32", quality="HQ")
    for block in blocks:
        yield stream.resample_chunk(_downmix(block))
    yield stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def to_mono(samples: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Downmix and resample an array to target_rate.

    samples: shape = (n_samples,) or (n_samples, n_channels), any sample rate; float, or integer
    PCM whose type's full range is [-1, 1). Returns float32 of shape = (n_samples_at_target_rate,).
    Non-finite samples become 0.
    """
    return np.concatenate([np.zeros(0, np.float32), *mono_stream([samples], sample_rate, target_rate)])


@lru_cache(maxsize=4)
def _window(n_fft: int) -> np.ndarray:
    # float64 as the README defines it: a float32 window's rounding sets the leakage floor of
    # quiet bins (~150 dB down) and moves their dB values by several dB.
    return np.hanning(n_fft)


@lru_cache(maxsize=4)
def _band_edges(n_bins: int, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Band edges on the bin axis as (bin index, fraction of that bin), n_bands + 1 each; the last
    edge, n_bins, is the whole of the last bin (so that no edge reads past the bins)."""
    edges = np.arange(n_bands + 1) * (n_bins / n_bands)
    whole = np.minimum(np.floor(edges).astype(np.intp), n_bins - 1)
    return whole, edges - whole


def pool_bands(db: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """Overlap-weighted band means of bin values, shape (frames, n_bins) -> (frames, n_bands).

    Bin i is the unit cell [i, i+1); band b is [b * n_bins / n_bands, (b+1) * n_bins / n_bands).
    The mean over a band is the difference of the piecewise-constant integral at its edges: at
    bin i plus a fraction f, the sum of the bins before i plus f times bin i.
    """
    n_bins = db.shape[1]
    whole, frac = _band_edges(n_bins, n_bands)
    before = np.empty((db.shape[0], n_bins))  # the sum of the bins before each bin
    before[:, 0] = 0.0
    np.cumsum(db[:, :-1], axis=1, out=before[:, 1:])
    at_edges = before[:, whole] + frac * db[:, whole]
    bands: np.ndarray = np.diff(at_edges, axis=1) / (n_bins / n_bands)
    return bands


def power_db_bands(waveform: np.ndarray, settings: FrontEndSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """Steps 1-5 of the data README: the dB band grid of a mono waveform at settings.sample_rate.

    waveform: shape = (n_samples,). Returns float32 of shape = (n_frames, n_bands).
    Bins of zero power take the lowest finite dB value of the whole waveform.
    """
    s = settings
    total = n_frames(waveform.shape[0], s)
    if total == 0:
        return np.zeros((0, s.n_bands), dtype=np.float32)
    x = np.ascontiguousarray(waveform, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, s.n_fft)[:: s.hop_length][:total]
    # Natural log (about twice as fast as log10); the dB scale is applied to the pooled bands,
    # as the pooling is linear.
    log_power = np.empty((total, s.n_bins), dtype=np.float64)
    for start in range(0, total, _FRAMES_PER_CHUNK):
        chunk = np.multiply(frames[start : start + _FRAMES_PER_CHUNK], _window(s.n_fft), dtype=np.float64)
        spectrum = np.fft.rfft(chunk, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        with np.errstate(divide="ignore"):
            np.log(power, out=log_power[start : start + chunk.shape[0]])
    finite = np.isfinite(log_power)
    if not finite.all():
        log_power[~finite] = log_power[finite].min() if finite.any() else 0.0
    bands = pool_bands(log_power, s.n_bands)
    bands *= 10.0 / np.log(10.0)
    return bands.astype(np.float32)


@lru_cache(maxsize=4)
def log_band_matrix(n_bands: int, edges: tuple[int, ...]) -> np.ndarray:
    """Mean over each run of linear bands [edges[j], edges[j+1]), shape = (n_bands, len(edges) - 1)."""
    matrix = np.zeros((n_bands, len(edges) - 1), dtype=np.float32)
    for j, (lo, hi) in enumerate(itertools.pairwise(edges)):
        matrix[lo:hi, j] = 1.0 / (hi - lo)
    return matrix


def one_blas_thread() -> None:
    """Run numpy's BLAS (the log-band pooling's matrix product) on one thread in this process.

    Whoever runs front ends in parallel (the service's threads, the batch job's processes) calls
    this: each small product would otherwise wake a BLAS thread per core, to spin and contend."""
    threadpool_limits(1, user_api="blas")


def model_input(grid: np.ndarray, settings: FrontEndSettings = DEFAULT_SETTINGS) -> np.ndarray:
    """Grid window -> network input, shape = (n_frames, settings.n_features).

    grid: shape = (n_frames, n_bands), dB bands or the shared uint8 arrays. Pooled to log bands,
    raised to the window's floor (if any), and standardised with the window's mean and std; then
    the log bands' frame-to-frame differences (0 for frame 0) are appended. The floor and the
    statistics are equivariant, so any per-window affine map a * grid + b (a > 0) gives the same
    output.
    """
    g = np.asarray(grid, dtype=np.float32)
    pooled = g @ log_band_matrix(settings.n_bands, settings.log_band_edges)
    if settings.floor_spread is not None:
        hi, mid = np.percentile(pooled, settings.floor_quantiles)
        np.maximum(pooled, np.float32(hi - settings.floor_spread * (hi - mid)), out=pooled)
    # The linear-band statistics are those of the original front end: pooling commutes with them
    # (the pooling matrix's columns sum to 1), so they are applied after it, on 4x fewer values.
    stats_of = pooled if settings.standardise == "per_window_log_bands" else g
    mean, std = float(stats_of.mean(dtype=np.float64)), float(stats_of.std(dtype=np.float64))
    x = (pooled - np.float32(mean)) / np.float32(max(std, settings.std_floor))
    features = [x, np.diff(x, axis=0, prepend=x[:1])] if settings.deltas else [x]
    return np.concatenate(features, axis=1, dtype=np.float32)


def waveform_features(
    samples: np.ndarray, sample_rate: int, settings: FrontEndSettings = DEFAULT_SETTINGS
) -> np.ndarray:
    """Audio array (any rate, any channels) -> model input for its first clip_seconds.

    Returns float32 of shape = (n_frames, n_features), n_frames <= settings.clip_frames.
    """
    waveform = to_mono(samples, sample_rate, settings.sample_rate)[: settings.clip_samples]
    return model_input(power_db_bands(waveform, settings), settings)
