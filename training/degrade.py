"""What real uploads do to music: low sample rates, low-pass filters, lossy codecs, noise.

Each degradation turns a mono waveform into the bytes of an audio file, which then goes through
the service's own audio route (`model.audio.decode`): the robustness report of
`training.evaluate` scores exactly what a user's upload would get, and the training set's
codec variants are decoded the same way.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from fractions import Fraction

import av
import numpy as np
import soundfile as sf
import soxr

CODECS = {  # name -> (FFmpeg container, encoder, sample rate it is encoded at)
    "mp3": ("mp3", "libmp3lame", 44100),
    "aac": ("ipod", "aac", 44100),
    "opus": ("webm", "libopus", 48000),
}


def encode_ffmpeg(samples: np.ndarray, sample_rate: int, container: str, codec: str, bit_rate: int = 0) -> bytes:
    """Encode with PyAV's FFmpeg in memory. samples: shape = (n,) or (n, channels), float."""
    planar = np.atleast_2d(np.asarray(samples, np.float32).T)  # (channels, n)
    layout = {1: "mono", 2: "stereo"}.get(planar.shape[0], f"{planar.shape[0]}c")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        if bit_rate:
            stream.bit_rate = bit_rate
        formats = [f.name for f in stream.codec_context.codec.audio_formats or []]
        sample_format = "fltp" if "fltp" in formats else formats[0]
        frame_size = stream.codec_context.frame_size or None  # codecs with fixed frames want them cut so
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=sample_rate, frame_size=frame_size)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar), format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = sample_rate, 0, Fraction(1, sample_rate)
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def wav(waveform: np.ndarray, rate: int) -> bytes:
    """A float WAV file of a waveform (lossless, so only the degradation before it counts)."""
    buffer = io.BytesIO()
    sf.write(buffer, waveform, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def resampled(waveform: np.ndarray, rate: int, to_rate: int) -> bytes:
    """The music recorded at to_rate: its band ends at to_rate / 2."""
    return wav(soxr.resample(waveform, rate, to_rate, quality="HQ"), to_rate)


def low_passed(waveform: np.ndarray, rate: int, cutoff_hz: float) -> bytes:
    """A brick-wall low-pass at cutoff_hz, keeping the sample rate (band-limited music at full rate)."""
    spectrum = np.fft.rfft(waveform.astype(np.float64))
    spectrum[np.fft.rfftfreq(len(waveform), 1 / rate) > cutoff_hz] = 0
    return wav(np.fft.irfft(spectrum, len(waveform)).astype(np.float32), rate)


def with_noise(waveform: np.ndarray, rate: int, snr_db: float, seed: int = 0) -> bytes:
    """White noise at snr_db below the music's mean power."""
    power = float(np.mean(waveform.astype(np.float64) ** 2)) or 1e-12
    noise = np.random.default_rng(seed).standard_normal(len(waveform)) * np.sqrt(power / 10 ** (snr_db / 10))
    return wav((waveform + noise).astype(np.float32), rate)


def through_codec(waveform: np.ndarray, rate: int, codec: str, kbps: int) -> bytes:
    """The music encoded with a lossy codec at kbps (resampled to the rate the codec is used at)."""
    container, encoder, codec_rate = CODECS[codec]
    return encode_ffmpeg(soxr.resample(waveform, rate, codec_rate), codec_rate, container, encoder, kbps * 1000)


# The robustness report's conditions: each maps (waveform, rate) to the bytes of an upload.
DEGRADATIONS: dict[str, Callable[[np.ndarray, int], bytes]] = {
    "resampled_8khz": lambda w, r: resampled(w, r, 8000),
    "resampled_11khz": lambda w, r: resampled(w, r, 11025),
    "resampled_16khz": lambda w, r: resampled(w, r, 16000),
    "mp3_64kbps": lambda w, r: through_codec(w, r, "mp3", 64),
    "aac_96kbps": lambda w, r: through_codec(w, r, "aac", 96),
    "opus_32kbps": lambda w, r: through_codec(w, r, "opus", 32),
    "lowpass_4khz": lambda w, r: low_passed(w, r, 4000.0),
    "white_noise_20db": lambda w, r: with_noise(w, r, 20.0),
}
