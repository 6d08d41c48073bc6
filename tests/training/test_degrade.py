"""The degradations of the robustness report: each does what its name says, as an upload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.audio import decode
from tests.audio import music_like
from training.data import CODEC_KBPS, codec_variants
from training.degrade import CODECS, DEGRADATIONS, low_passed, resampled, through_codec, with_noise

RATE = 22050


def band_energy_above(waveform: np.ndarray, rate: int, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(waveform)) ** 2
    return float(spectrum[np.fft.rfftfreq(len(waveform), 1 / rate) > hz].sum() / spectrum.sum())


@pytest.fixture(scope="module")
def music() -> np.ndarray:
    return music_like(5.0, RATE, seed=2)


def test_every_degradation_is_an_upload_of_the_same_length(music: np.ndarray) -> None:
    for name, degrade in DEGRADATIONS.items():
        audio = decode(degrade(music, RATE))
        assert audio.duration_s == pytest.approx(5.0, abs=0.08), name


@pytest.mark.parametrize("to_rate", [8000, 11025, 16000])
def test_resampling_ends_the_band_at_half_the_new_rate(music: np.ndarray, to_rate: int) -> None:
    audio = decode(resampled(music, RATE, to_rate))
    assert audio.sample_rate == to_rate
    assert band_energy_above(audio.waveform, RATE, to_rate / 2 + 200) < 1e-5  # soxr's stop band
    assert band_energy_above(music, RATE, to_rate / 2 + 200) > 0.05


def test_low_pass_keeps_the_rate_and_removes_the_top(music: np.ndarray) -> None:
    audio = decode(low_passed(music, RATE, 4000.0))
    assert audio.sample_rate == RATE and band_energy_above(audio.waveform, RATE, 4100) < 1e-6


def test_noise_is_at_the_asked_snr(music: np.ndarray) -> None:
    noisy = decode(with_noise(music, RATE, 20.0)).waveform
    snr = 10 * np.log10(np.mean(music**2) / np.mean((noisy - music) ** 2))
    assert snr == pytest.approx(20.0, abs=0.3)


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codecs_encode_at_their_bit_rate(music: np.ndarray, codec: str) -> None:
    data = through_codec(music, RATE, codec, 32)
    assert len(data) * 8 / 5.0 < 32_000 * 1.6  # about 32 kbps (containers add a little)
    assert decode(data).duration_s == pytest.approx(5.0, abs=0.08)


def test_codec_variants_of_a_clip(tmp_path: Path) -> None:
    path = tmp_path / "clip.flac"
    sf.write(path, music_like(31.0, RATE), RATE)
    variants = codec_variants(path, np.random.default_rng(0))
    assert len(variants) == len(CODECS) and all(v.shape == (344, 256) for v in variants)
    assert min(CODEC_KBPS) >= 32 and max(CODEC_KBPS) <= 128
