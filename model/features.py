"""The one audio front end, shared by training, evaluation and serving (numpy + soxr only).

audio (any rate, any channels) -> mono 22050 Hz waveform -> dB band grid -> model input.

The grid reproduces steps 1-5 of the GTZAN data README exactly, so arrays computed from
audio and the shared spectrogram arrays differ only by a per-clip affine map (plus the
arrays' rendering blur and 8-bit quantisation); `model_input` removes the affine map.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 22050  # Hz
N_FFT = 2048  # samples per STFT frame
HOP_LENGTH = 1920  # samples between frame starts (87.1 ms)
N_BINS = N_FFT // 2 + 1  # 1025 rfft bins
N_BANDS = 256  # linear frequency bands of the grid
CLIP_SECONDS = 30  # training clip length; the service's analysis window
CLIP_SAMPLES = CLIP_SECONDS * SAMPLE_RATE  # 661500 samples
CLIP_FRAMES = 1 + (CLIP_SAMPLES - N_FFT) // HOP_LENGTH  # 344 frames
FRAME_HOP_SECONDS = HOP_LENGTH / SAMPLE_RATE
FIRST_FRAME_CENTER_SECONDS = (N_FFT / 2) / SAMPLE_RATE  # centre of frame 0
N_LOG_BANDS = 64  # log-spaced bands pooled from the 256 linear ones, for the model input
N_FEATURES = 2 * N_LOG_BANDS  # log bands and their frame-to-frame differences
STD_FLOOR = 1e-6  # keeps constant (silent) windows finite after standardisation

_FRAMES_PER_CHUNK = 512  # bounds the STFT's working memory on long audio


def feature_settings() -> dict[str, int | str]:
    """The settings a model was trained with; stored in its card and checked at load."""
    return {
        "sample_rate": SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "n_bands": N_BANDS,
        "window": "hann_symmetric",
        "scale": "power_db",
        "band_pooling": "overlap_weighted_mean",
        "model_input": "per_window_standardise+log_bands+delta",
        "n_log_bands": N_LOG_BANDS,
        "clip_seconds": CLIP_SECONDS,
    }


def load_audio(source: str | BinaryIO) -> tuple[np.ndarray, int]:
    """Decode a whole audio file (path or file object) with libsndfile.

    Returns (samples, sample_rate), samples float32 of shape = (n_samples, n_channels).
    """
    samples, sample_rate = sf.read(source, dtype="float32", always_2d=True)
    return samples, int(sample_rate)


def _downmix(block: np.ndarray) -> np.ndarray:
    x = np.asarray(block, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected 1-D or 2-D samples, got shape {x.shape}")
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def mono_stream(blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[np.ndarray]:
    """Downmix, zero non-finite samples and resample to the model rate, block by block.

    blocks: shape = (n, n_channels) or (n,) each. Yields float32 blocks at SAMPLE_RATE whose
    concatenation equals resampling the whole signal at once (soxr's stream is exact).
    """
    if sample_rate == SAMPLE_RATE:
        yield from (_downmix(block) for block in blocks)
        return
    stream = soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    for block in blocks:
        yield stream.resample_chunk(_downmix(block))
    yield stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)


def to_mono(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Downmix and resample an array to the model rate.

    samples: shape = (n_samples,) or (n_samples, n_channels), any sample rate.
    Returns float32 of shape = (n_samples_at_22050,). Non-finite samples become 0.
    """
    return np.concatenate([np.zeros(0, np.float32), *mono_stream([samples], sample_rate)])


def n_frames(n_samples: int) -> int:
    """Number of STFT frames for a waveform of n_samples at the model rate (no padding)."""
    return 0 if n_samples < N_FFT else 1 + (n_samples - N_FFT) // HOP_LENGTH


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    # float64 as the README defines it: a float32 window's rounding sets the leakage floor of
    # quiet bins (~150 dB down) and moves their dB values by several dB.
    return np.hanning(N_FFT)


@lru_cache(maxsize=1)
def _band_edges() -> tuple[np.ndarray, np.ndarray]:
    """Band edges on the bin axis as (whole bin index, fraction into that bin), N_BANDS + 1 each."""
    edges = np.arange(N_BANDS + 1) * (N_BINS / N_BANDS)
    whole = np.floor(edges).astype(np.intp)
    return whole, edges - whole


def pool_bands(db: np.ndarray) -> np.ndarray:
    """Overlap-weighted band means of bin values, shape (frames, N_BINS) -> (frames, N_BANDS).

    Bin i is the unit cell [i, i+1); band b is [b * N_BINS / N_BANDS, (b+1) * N_BINS / N_BANDS).
    The mean over a band is the difference of the piecewise-constant integral at its edges.
    """
    whole, frac = _band_edges()
    padded = np.concatenate([db, np.zeros((db.shape[0], 1))], axis=1)  # the last edge is N_BINS
    integral = np.zeros((db.shape[0], N_BINS + 2))
    np.cumsum(padded, axis=1, out=integral[:, 1:])
    at_edges = integral[:, whole] + frac * padded[:, whole]
    bands: np.ndarray = np.diff(at_edges, axis=1) / (N_BINS / N_BANDS)
    return bands


def power_db_bands(waveform: np.ndarray) -> np.ndarray:
    """Steps 1-5 of the data README: the dB band grid of a mono 22050 Hz waveform.

    waveform: shape = (n_samples,). Returns float32 of shape = (n_frames, N_BANDS).
    Bins of zero power take the lowest finite dB value of the whole waveform.
    """
    total = n_frames(waveform.shape[0])
    if total == 0:
        return np.zeros((0, N_BANDS), dtype=np.float32)
    x = np.ascontiguousarray(waveform, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP_LENGTH][:total]
    db = np.empty((total, N_BINS), dtype=np.float64)
    for start in range(0, total, _FRAMES_PER_CHUNK):
        chunk = np.multiply(frames[start : start + _FRAMES_PER_CHUNK], _window(), dtype=np.float64)
        spectrum = np.fft.rfft(chunk, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        with np.errstate(divide="ignore"):
            np.log10(power, out=db[start : start + chunk.shape[0]])
    db *= 10.0
    finite = np.isfinite(db)
    if not finite.all():
        db[~finite] = db[finite].min() if finite.any() else 0.0
    return pool_bands(db).astype(np.float32)


@lru_cache(maxsize=1)
def log_band_matrix() -> np.ndarray:
    """Mean over runs of linear bands with log-spaced edges, shape = (N_BANDS, N_LOG_BANDS).

    The lowest linear bands (43 Hz wide) stay single; higher ones are merged, as a mel scale
    would, so the input spends its width where music's pitch and timbre are.
    """
    n = N_LOG_BANDS
    for n_edges in range(n, 4 * n):  # the smallest geometric grid with n distinct integer edges
        edges = np.unique(np.round(np.geomspace(1, N_BANDS, n_edges)).astype(int))
        if len(edges) >= n:
            break
    edges = np.concatenate([[0], edges[-n:]])
    matrix = np.zeros((N_BANDS, n), dtype=np.float32)
    for j, (lo, hi) in enumerate(itertools.pairwise(edges)):
        matrix[lo:hi, j] = 1.0 / (hi - lo)
    return matrix


def model_input(grid: np.ndarray) -> np.ndarray:
    """Grid window -> network input, shape = (n_frames, N_FEATURES).

    grid: shape = (n_frames, N_BANDS), dB bands or the shared uint8 arrays. The window is
    standardised as a whole first, so any per-window affine map a * grid + b (a > 0) gives
    the same output; then pooled to log bands, and their frame-to-frame differences (0 for
    frame 0) appended.
    """
    g = np.asarray(grid, dtype=np.float32)
    mean, std = float(g.mean(dtype=np.float64)), float(g.std(dtype=np.float64))
    # Pooling first is the same map (the pooling matrix's columns sum to 1), on 4x fewer values.
    x = (g @ log_band_matrix() - np.float32(mean)) / np.float32(max(std, STD_FLOOR))
    delta = np.diff(x, axis=0, prepend=x[:1])
    return np.concatenate([x, delta], axis=1).astype(np.float32)


def waveform_features(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Audio array (any rate, any channels) -> model input for its first CLIP_SECONDS.

    Returns float32 of shape = (n_frames, N_FEATURES), n_frames <= CLIP_FRAMES.
    """
    waveform = to_mono(samples, sample_rate)[:CLIP_SAMPLES]
    return model_input(power_db_bands(waveform))


def window_starts(total_frames: int, window_frames: int, hop_frames: int) -> list[int]:
    """Start frames of the analysis windows over a grid of total_frames.

    Windows are window_frames long and hop_frames apart; when the last one leaves a tail
    uncovered, one more window is aligned to the end, so every window is full length.
    Audio shorter than one window is a single (shorter) window starting at 0.
    """
    if total_frames <= window_frames:
        return [0]
    last = total_frames - window_frames
    starts = list(range(0, last + 1, hop_frames))
    if starts[-1] != last:
        starts.append(last)
    return starts
