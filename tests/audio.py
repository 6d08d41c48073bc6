"""Generated audio for tests: tones, noise and encoded files in memory."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from training.degrade import CODECS, encode_ffmpeg

SNDFILE_FORMATS = {  # name -> (libsndfile format, subtype, sample rate it supports)
    "wav": ("WAV", "PCM_16", 44100),
    "wav_float": ("WAV", "FLOAT", 44100),
    "flac": ("FLAC", "PCM_16", 44100),
    "ogg": ("OGG", "VORBIS", 44100),
    "opus": ("OGG", "OPUS", 48000),
    "mp3": ("MP3", "MPEG_LAYER_III", 44100),
    "aiff": ("AIFF", "PCM_16", 44100),
}
FFMPEG_FORMATS = {  # name -> (FFmpeg container, codec, sample rate): what phones and browsers record
    "m4a": CODECS["aac"],
    "webm": CODECS["opus"],
    "mp3_lame": CODECS["mp3"],
    "mka_flac": ("matroska", "flac", 44100),
}
FORMATS = sorted({*SNDFILE_FORMATS, *FFMPEG_FORMATS})


def tone(freq_hz: float, seconds: float, sample_rate: int, channels: int = 1, amplitude: float = 0.3) -> np.ndarray:
    """A sine, shape = (n,) or (n, channels) when channels > 1."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    x = (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def music_like(seconds: float, sample_rate: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Noise bursts on a beat over a chord: something with spectral and temporal structure."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    beat = (np.mod(t, 0.5) < 0.05) * rng.standard_normal(n) * 0.3
    x = (chord + beat).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def encode(samples: np.ndarray, sample_rate: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def encoded(name: str, seconds: float = 2.0, channels: int = 1) -> bytes:
    """A clip in one of FORMATS at that format's sample rate."""
    if name in FFMPEG_FORMATS:
        container, codec, rate = FFMPEG_FORMATS[name]
        return encode_ffmpeg(music_like(seconds, rate, channels=channels), rate, container, codec)
    fmt, subtype, rate = SNDFILE_FORMATS[name]
    return encode(music_like(seconds, rate, channels=channels), rate, fmt, subtype)


SYNTHETIC_GENRES = ("beat", "chime", "drone")  # what a user's own label folder might hold, made up


def synthetic_genre(kind: str, seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """A clip of one of SYNTHETIC_GENRES, different every seed: noise hits on a beat (no pitch),
    decaying high bells, or a low hum with harmonics."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    if kind == "beat":
        period = rng.uniform(0.3, 0.6)
        x = (np.mod(t, period) < 0.04) * rng.standard_normal(t.shape) * 0.5
    elif kind == "chime":
        period, freq = rng.uniform(0.5, 1.0), rng.uniform(2000.0, 4000.0)
        x = 0.3 * np.sin(2 * np.pi * freq * t) * np.exp(-np.mod(t, period) * 6)
    elif kind == "drone":
        f0 = rng.uniform(60.0, 120.0)
        x = np.sum([0.15 / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) for k in range(1, 6)], axis=0)
    else:
        raise ValueError(kind)
    noisy: np.ndarray = (x + 0.003 * rng.standard_normal(t.shape)).astype(np.float32)
    return noisy
