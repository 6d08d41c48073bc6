"""Uploaded bytes -> mono 22050 Hz waveform, with every way that can fail named.

libsndfile decodes WAV, FLAC, OGG (Vorbis, Opus), MP3 and AIFF from memory. Audio is read
block by block and resampled as it streams, so memory follows the output, not the upload's
channel count or rate, and decoding stops as soon as the duration limit is passed.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from model.features import SAMPLE_RATE, mono_stream

BLOCK_FRAMES = 1 << 16
MIN_SAMPLE_RATE = 1_000  # Hz; below this libsndfile's header is more likely wrong than right
MAX_SAMPLE_RATE = 768_000  # Hz


class AudioError(ValueError):
    """Bad audio from the client; `status` is the HTTP status to answer with."""

    status = 422


class UnsupportedAudio(AudioError):
    status = 415


class AudioTooLong(AudioError):
    status = 413


@dataclass(frozen=True)
class DecodedAudio:
    waveform: np.ndarray  # shape = (n_samples,), mono, at the target rate
    sample_rate: int  # of the upload
    channels: int
    duration_s: float  # of the upload


class _Upload(io.BytesIO):
    """The upload as a file for libsndfile. Hostile headers can make it seek before the start,
    which BytesIO refuses only for absolute seeks (relative ones clamp to 0); clamp those too,
    rather than let the error escape into libsndfile's C callback."""

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return super().seek(max(offset, 0) if whence == io.SEEK_SET else offset, whence)


class _BlockReader:
    """Iterates a SoundFile in blocks of shape = (frames, channels), counting frames read."""

    def __init__(self, f: sf.SoundFile) -> None:
        self.file = f
        self.frames_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.file.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
            self.frames_read += block.shape[0]
            yield block


def decode(data: bytes, min_duration_s: float, max_duration_s: float, target_rate: int = SAMPLE_RATE) -> DecodedAudio:
    if not data:
        raise AudioError("the uploaded file is empty")
    try:
        with sf.SoundFile(_Upload(data)) as f:
            sample_rate, channels = int(f.samplerate), int(f.channels)
            if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
                raise UnsupportedAudio(
                    f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
                )
            # Headers can lie (or not know) about length, so the limit is also kept while reading.
            if f.frames > 0 and f.frames / sample_rate > max_duration_s:
                raise AudioTooLong(too_long(f.frames / sample_rate, max_duration_s))
            reader = _BlockReader(f)
            parts = []
            for block in mono_stream(reader, sample_rate, target_rate):
                parts.append(block)
                if reader.frames_read / sample_rate > max_duration_s:
                    raise AudioTooLong(too_long(reader.frames_read / sample_rate, max_duration_s))
    except AudioError:
        raise
    except Exception as e:  # libsndfile's reasons (LibsndfileError, RuntimeError, ...) become 415s
        raise UnsupportedAudio(f"could not decode the file as audio: {e}") from e
    duration_s = reader.frames_read / sample_rate
    if duration_s < min_duration_s:
        raise AudioError(f"audio is {duration_s:.3f} s long; the minimum is {min_duration_s:g} s")
    return DecodedAudio(np.concatenate([np.zeros(0, np.float32), *parts]), sample_rate, channels, duration_s)


def too_long(duration_s: float, max_duration_s: float) -> str:
    return f"audio is longer than the maximum of {max_duration_s:g} s (at least {duration_s:.1f} s)"
