"""The one audio route: every file the project reads (uploads, training clips, evaluation,
benchmarks) is decoded here, into a mono waveform at the model's rate.

- libsndfile decodes WAV, FLAC, AIFF and Ogg (Vorbis, Opus): the fastest path for them.
- PyAV (its wheel carries FFmpeg) decodes the rest: MP3, AAC/M4A, WebM/Matroska (Opus,
  Vorbis), and whatever else FFmpeg knows. A file libsndfile fails on is tried there too.

Both read the file where it is (bytes in memory, or an open file such as the server's spooled
upload: never copied whole, no temporary files of their own), block by block. Each block is
downmixed and resampled as it streams, so memory follows the output rather than the source's
channels or rate, and decoding stops as soon as the duration limit is passed.

Nothing is written raw to stderr: MP3 goes to FFmpeg rather than libsndfile's mpg123 (which
prints), and FFmpeg's log callback stays off, as PyAV leaves it, because that callback can
deadlock threaded decoding. A file that breaks off mid-stream keeps the audio decoded before
the break, and says so as a warning on the `model.audio` logger.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
import soundfile as sf

from model.features import SAMPLE_RATE, mono_stream

BLOCK_SAMPLES = 1 << 17  # libsndfile block, in samples over all channels (a 1024-channel header stays small)
# libsndfile's integer PCM subtypes of up to 24 bits, read as integers: its conversion to float
# costs several times the rest of reading a WAV or FLAC file, and mono_stream's scaling gives the
# same floats exactly (32-bit PCM would differ in the last bit, so libsndfile converts it).
SNDFILE_INTEGER_READS = {"PCM_S8": "int16", "PCM_U8": "int16", "PCM_16": "int16", "PCM_24": "int32"}
MIN_SAMPLE_RATE = 1_000  # Hz; below this a header is more likely wrong than right
MAX_SAMPLE_RATE = 768_000  # Hz
# Containers libsndfile reads best; everything else starts with FFmpeg.
SNDFILE_MAGIC = (b"RIFF", b"RF64", b"fLaC", b"FORM", b"OggS")
log = logging.getLogger("model.audio")
FORMATS_FOR_HUMANS = "WAV, FLAC, AIFF, OGG (Vorbis, Opus), MP3, AAC/M4A or WebM"
# File names taken for audio when folders are walked (the bytes still decide how they decode).
AUDIO_SUFFIXES = (
    *(".wav", ".flac", ".aiff", ".aif", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac"),
    *(".webm", ".mka", ".au", ".wma"),
)


class AudioError(ValueError):
    """Bad audio from the client; `status` is the HTTP status to answer with."""

    status = 422


class UnsupportedAudio(AudioError):
    status = 415


class AudioTooLong(AudioError):
    status = 413


@dataclass(frozen=True)
class DecodedAudio:
    waveform: np.ndarray  # shape = (n_samples,), mono, float32, at the target rate (or the source's)
    sample_rate: int  # of the source
    channels: int  # of the source
    duration_s: float  # of the source


def too_long(duration_s: float, max_duration_s: float) -> str:
    return f"audio is longer than the maximum of {max_duration_s:g} s (at least {duration_s:.1f} s)"


class _Upload(io.RawIOBase):
    """A read-only view of the upload (bytes, or a file such as the server's spooled upload) for the
    decoders. Hostile headers can make a decoder seek before the start or past the end; every seek
    is clamped to the file, rather than let an error escape into a C callback."""

    def __init__(self, source: bytes | BinaryIO) -> None:
        super().__init__()
        self._file: BinaryIO = io.BytesIO(source) if isinstance(source, bytes) else source
        self._size = self._file.seek(0, io.SEEK_END)
        self._file.seek(0)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n: int = self._file.readinto(buffer)  # type: ignore[attr-defined]  # every binary file has it
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._file.tell(), io.SEEK_END: self._size}[whence]
        return self._file.seek(min(max(base + offset, 0), self._size))

    def tell(self) -> int:
        return self._file.tell()

    @property
    def size(self) -> int:
        return self._size

    def head(self, n: int) -> bytes:
        """The first n bytes, leaving the position at the start."""
        self._file.seek(0)
        data = self._file.read(n)
        self._file.seek(0)
        return data


class _Source:
    """One decoder's stream of blocks, shape = (frames, channels), with what it has read so far."""

    def __init__(self, sample_rate: int, channels: int, declared_s: float | None, blocks: Iterable[np.ndarray]):
        if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
            raise UnsupportedAudio(f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
        if channels < 1:
            raise UnsupportedAudio("the audio stream has no channels")
        self.sample_rate, self.channels, self.declared_s = sample_rate, channels, declared_s
        self._blocks = blocks
        self.frames_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self._blocks:
            self.frames_read += block.shape[0]
            yield block

    @property
    def seconds_read(self) -> float:
        return self.frames_read / self.sample_rate


def _sndfile_blocks(f: sf.SoundFile) -> Iterator[np.ndarray]:
    # One buffer, refilled: mono_stream copies each block out before the next read.
    buffer = np.empty(
        (max(1, BLOCK_SAMPLES // f.channels), f.channels), SNDFILE_INTEGER_READS.get(f.subtype, "float32")
    )
    yield from f.blocks(out=buffer)


def _ffmpeg_blocks(container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[np.ndarray]:
    # Planar float whatever the codec's sample format; rate and layout stay the stream's.
    resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
    for frame in container.decode(stream):
        for converted in resampler.resample(frame):
            yield converted.to_ndarray().T  # (channels, n) -> (n, channels)


def _read(source: _Source, target_rate: int | None, max_duration_s: float) -> np.ndarray:
    """Downmix and resample the source's blocks as they come (None: keep the source's rate),
    stopping past max_duration_s."""
    # Headers can lie (or not know) about length, so the limit is also kept while reading.
    if source.declared_s is not None and source.declared_s > max_duration_s:
        raise AudioTooLong(too_long(source.declared_s, max_duration_s))
    parts = []
    try:
        for block in mono_stream(source, source.sample_rate, target_rate or source.sample_rate):
            parts.append(block)
            if source.seconds_read > max_duration_s:
                raise AudioTooLong(too_long(source.seconds_read, max_duration_s))
    except AudioError:
        raise
    except Exception as e:  # damaged data past a good start: keep the good part, and say so
        if not parts:
            raise
        fields = {"decoded_s": round(source.seconds_read, 3), "reason": type(e).__name__}
        log.warning("the audio breaks off; using what decoded before the break", extra={"fields": fields})
    return np.concatenate([np.zeros(0, np.float32), *parts])


def _decode_sndfile(upload: _Upload, target_rate: int | None, max_duration_s: float) -> DecodedAudio:
    upload.seek(0)
    with sf.SoundFile(upload) as f:
        declared = f.frames / f.samplerate if f.frames > 0 and f.samplerate > 0 else None
        source = _Source(int(f.samplerate), int(f.channels), declared, _sndfile_blocks(f))
        waveform = _read(source, target_rate, max_duration_s)
    return DecodedAudio(waveform, source.sample_rate, source.channels, source.seconds_read)


def _decode_ffmpeg(upload: _Upload, target_rate: int | None, max_duration_s: float) -> DecodedAudio:
    upload.seek(0)
    with av.open(upload, mode="r", metadata_errors="ignore") as container:
        if not container.streams.audio:
            raise UnsupportedAudio("the file has no audio stream")
        stream = container.streams.audio[0]
        declared = container.duration / av.time_base if container.duration and container.duration > 0 else None
        channels = stream.codec_context.channels
        source = _Source(int(stream.rate or 0), int(channels), declared, _ffmpeg_blocks(container, stream))
        waveform = _read(source, target_rate, max_duration_s)
    return DecodedAudio(waveform, source.sample_rate, source.channels, source.seconds_read)


def decode(
    data: bytes | BinaryIO,
    target_rate: int | None = SAMPLE_RATE,
    max_duration_s: float = math.inf,
) -> DecodedAudio:
    """An audio file (its bytes, or a seekable binary file), any supported format, rate and channel
    count -> mono waveform at target_rate (None: at the file's own rate). A file is read in place,
    never copied whole into memory.

    Raises AudioError (422: empty), UnsupportedAudio (415: not audio in a supported format, rate
    out of range) or AudioTooLong (413: past max_duration_s), each with a message for humans.
    """
    upload = _Upload(data)
    if not upload.size:
        raise AudioError("the uploaded file is empty")
    decoders = [_decode_sndfile, _decode_ffmpeg] if upload.head(4) in SNDFILE_MAGIC else [_decode_ffmpeg]
    audio = None
    for decoder in decoders:
        try:
            audio = decoder(upload, target_rate, max_duration_s)
            break
        except AudioError:
            raise
        except Exception:  # a decoder's reasons (LibsndfileError, av.FFmpegError, ...) mean "not this way"
            continue
    if audio is None:
        raise UnsupportedAudio(f"the file could not be decoded as audio; supported formats are {FORMATS_FOR_HUMANS}")
    return audio


def decode_file(path: Path, target_rate: int | None = SAMPLE_RATE, max_duration_s: float = math.inf) -> DecodedAudio:
    """decode() of a file on disk."""
    with open(path, "rb") as f:
        return decode(f, target_rate, max_duration_s=max_duration_s)
