"""Not-music made in code: each generator's length, level and signal."""

from __future__ import annotations

import numpy as np
import pytest

from training.synthetic import CALL_PROGRESS, DTMF_HZ, SYNTHETIC, dtmf, silence

RATE = 22050
GENERATORS = [(kind, name, g) for kind, named in SYNTHETIC.items() for name, g in named.items()]


@pytest.mark.parametrize(("kind", "name", "generator"), GENERATORS, ids=[n for _, n, _ in GENERATORS])
def test_every_generator_gives_the_length_asked_for_at_an_upload_level(kind: str, name: str, generator) -> None:  # type: ignore[no-untyped-def]
    for seed in range(5):
        x = generator(np.random.default_rng(seed), 3.5, RATE)
        assert x.dtype == np.float32 and x.shape == (int(3.5 * RATE),) and np.isfinite(x).all()
        assert np.abs(x).max() <= 1.0
        rms_db = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-20)
        assert rms_db < -5 and (kind == "silence" or rms_db > -75), f"{name} seed {seed}: {rms_db:.1f} dBFS"


def test_silence_is_silent_or_far_below_music() -> None:
    levels = [np.abs(silence(np.random.default_rng(seed), 2.0, RATE)).max() for seed in range(12)]
    assert min(levels) == 0.0 and max(levels) < 0.01


def test_dtmf_digits_are_the_keypad_pairs() -> None:
    x = dtmf(np.random.default_rng(3), 4.0, RATE)
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    keypad = np.array(sorted({f for pair in DTMF_HZ.values() for f in pair}))
    near_a_key = np.abs(freqs[:, None] - keypad[None, :]).min(1) < 25
    assert (spectrum[near_a_key] ** 2).sum() > 0.9 * (spectrum**2).sum()
    assert len(DTMF_HZ) == 12 and all(len(v[0]) <= 2 for v in CALL_PROGRESS.values())
