"""Not-music made in code: noises, tones, sweeps, clicks, telephone signals and silence (numpy).

Each generator maps (rng, seconds, rate) to a mono float32 waveform at a level drawn from the
range uploads have; `SYNTHETIC` names them by the kind the music detector reports them under.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Generator = Callable[[np.random.Generator, float, int], np.ndarray]

DTMF_HZ = {  # key -> (row, column) frequencies of the telephone keypad
    **{k: (697, c) for k, c in zip("123", (1209, 1336, 1477), strict=True)},
    **{k: (770, c) for k, c in zip("456", (1209, 1336, 1477), strict=True)},
    **{k: (852, c) for k, c in zip("789", (1209, 1336, 1477), strict=True)},
    **{k: (941, c) for k, c in zip("*0#", (1209, 1336, 1477), strict=True)},
}
CALL_PROGRESS = {  # name -> (frequencies in Hz, seconds on, seconds off; 0 off = continuous)
    "dial_us": ((350, 440), 1.0, 0.0),
    "dial_eu": ((425,), 1.0, 0.0),
    "busy": ((480, 620), 0.5, 0.5),
    "ringback": ((440, 480), 2.0, 4.0),
    "reorder": ((480, 620), 0.25, 0.25),
}


def _level(rng: np.random.Generator, x: np.ndarray, low_db: float = -45.0, high_db: float = -6.0) -> np.ndarray:
    """x scaled to an RMS drawn between low_db and high_db dBFS, its peaks kept within full scale."""
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) or 1.0
    y = x * (10 ** (rng.uniform(low_db, high_db) / 20) / rms)
    return (y / max(1.0, float(np.abs(y).max()) / 0.99)).astype(np.float32)


def coloured_noise(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """White, pink, brown or blue noise: white noise shaped by f^(-exponent / 2) in amplitude."""
    n = int(seconds * rate)
    exponent = rng.choice([0.0, 1.0, 2.0, -1.0, rng.uniform(-1, 2)])
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    f[0] = f[1]
    return _level(rng, np.fft.irfft(spectrum * f ** (-exponent / 2), n))


def room_tone(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """A quiet room: low-passed noise, a little hum and an occasional knock."""
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum[np.fft.rfftfreq(n, 1 / rate) > rng.uniform(300, 4000)] *= 0.05
    x = np.fft.irfft(spectrum, n) + hum(rng, seconds, rate) * rng.uniform(0, 0.3)
    for _ in range(rng.poisson(seconds / 10)):
        at = rng.integers(0, max(1, n - rate // 10))
        x[at : at + rate // 10] += rng.standard_normal(len(x[at : at + rate // 10])) * np.exp(
            -np.arange(rate // 10) / 200
        )
    return _level(rng, x, -70, -35)


def hum(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """Mains hum at 50 or 60 Hz with its harmonics, as a bad cable gives."""
    t = np.arange(int(seconds * rate)) / rate
    base = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.1, 1) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3)) for k in range(1, 8))
    return _level(rng, np.asarray(x) + 0.01 * rng.standard_normal(len(t)))


def tone(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """One steady tone (sine, square or sawtooth), 50 Hz to 8 kHz: a test signal."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.exp(rng.uniform(np.log(50), np.log(8000))) * t
    shape = rng.integers(3)
    x = np.sin(phase) if shape == 0 else np.sign(np.sin(phase)) if shape == 1 else (phase / np.pi) % 2 - 1
    return _level(rng, x)


def sweep(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """A logarithmic sine sweep between two frequencies, up or down, once or repeated."""
    n = int(seconds * rate)
    period = n // int(rng.integers(1, 6))
    lo, hi = sorted(np.exp(rng.uniform(np.log(30), np.log(10000), 2)))
    u = (np.arange(n) % period) / period
    f = lo * (hi / lo) ** (u if rng.random() < 0.5 else 1 - u)
    return _level(rng, np.sin(2 * np.pi * np.cumsum(f) / rate))


def clicks(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """Clicks or ticks: at a steady rate (a clock) or at random (crackle, a Geiger counter)."""
    n = int(seconds * rate)
    x = 0.003 * rng.standard_normal(n)
    if rng.random() < 0.5:
        at = np.arange(0, n, int(rate / rng.uniform(0.5, 8)))
    else:
        at = rng.integers(0, n, rng.poisson(seconds * rng.uniform(1, 50)))
    decay = np.exp(-np.arange(int(rate * 0.01)) / (rate * rng.uniform(0.0003, 0.003)))
    for i in at:
        end = min(n, int(i) + len(decay))
        x[i:end] += decay[: end - int(i)] * rng.choice([-1, 1])
    return _level(rng, x)


def dtmf(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """Keypad tones: digits of 40-200 ms with gaps, as a number is dialled."""
    n = int(seconds * rate)
    x = np.zeros(n)
    at = 0
    while at < n:
        low, high = DTMF_HZ[str(rng.choice(list(DTMF_HZ)))]
        length = int(rate * rng.uniform(0.04, 0.2))
        t = np.arange(min(length, n - at)) / rate
        x[at : at + len(t)] = np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)
        at += length + int(rate * rng.uniform(0.04, 1.0))
    return _level(rng, x + 0.001 * rng.standard_normal(n))


def call_progress(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """Dial, busy, ringback and reorder tones, with their cadences."""
    freqs, on_s, off_s = CALL_PROGRESS[str(rng.choice(list(CALL_PROGRESS)))]
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * f * t) for f in freqs)
    if off_s:
        x = x * ((t % (on_s + off_s)) < on_s)
    return _level(rng, np.asarray(x) + 0.001 * rng.standard_normal(len(t)))


def silence(rng: np.random.Generator, seconds: float, rate: int) -> np.ndarray:
    """Digital silence, or near-silence: dither, a faint hiss or hum far below any music."""
    n = int(seconds * rate)
    choice = rng.integers(3)
    if choice == 0:
        return np.zeros(n, np.float32)
    if choice == 1:
        return (rng.integers(-1, 2, n) / 32768).astype(np.float32)  # 16-bit dither
    return _level(rng, coloured_noise(rng, seconds, rate) + hum(rng, seconds, rate) * rng.uniform(0, 1), -90, -60)


SYNTHETIC: dict[str, dict[str, Generator]] = {  # kind -> name -> generator
    "noise": {"coloured_noise": coloured_noise, "room_tone": room_tone, "hum": hum},
    "tones": {"tone": tone, "sweep": sweep, "clicks": clicks, "dtmf": dtmf, "call_progress": call_progress},
    "silence": {"silence": silence},
}
