"""Golden tests of the front end against the data README's definition."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from model import features as F
from model.audio import decode, decode_file
from tests.audio import encode, music_like, tone
from training.data import audio_path, load_arrays, read_labels


def reference_grid(waveform: np.ndarray) -> np.ndarray:
    """Steps 1-5 of the data README, written out plainly and slowly."""
    n = 1 + (len(waveform) - 2048) // 1920
    frames = np.stack([waveform[1920 * k : 1920 * k + 2048] * np.hanning(2048) for k in range(n)])
    with np.errstate(divide="ignore"):
        db = 10 * np.log10(np.abs(np.fft.rfft(frames.astype(np.float64), axis=1)) ** 2)
    db[~np.isfinite(db)] = db[np.isfinite(db)].min()
    out = np.zeros((n, 256))
    width = 1025 / 256
    for b in range(256):
        lo, hi = b * width, (b + 1) * width
        for i in range(int(np.floor(lo)), min(int(np.ceil(hi)), 1025)):
            out[:, b] += max(0.0, min(i + 1, hi) - max(i, lo)) * db[:, i]
        out[:, b] /= width
    return out


def test_grid_matches_the_readme_definition() -> None:
    x = music_like(3.0, F.SAMPLE_RATE)
    x[:4000] = 0.0  # digital silence takes the clip's lowest finite dB
    np.testing.assert_allclose(F.power_db_bands(x), reference_grid(x), atol=2e-3)


def test_golden_values_of_a_tone() -> None:
    """A 1 kHz tone at amplitude 0.5, bands 21-25 of a middle frame: values recorded once."""
    grid = F.power_db_bands(tone(1000.0, 1.0, F.SAMPLE_RATE, amplitude=0.5))
    assert grid.shape == (11, 256)
    np.testing.assert_allclose(grid[5, 21:26], [-21.4646, 1.9780, 35.0574, -9.6976, -26.8147], atol=0.05)


@pytest.mark.parametrize("freq_hz", [110.0, 1000.0, 4000.0, 9000.0])
def test_a_tone_lands_in_its_band(freq_hz: float) -> None:
    grid = F.power_db_bands(tone(freq_hz, 2.0, F.SAMPLE_RATE))
    expected_band = int(freq_hz / (F.SAMPLE_RATE / 2) * F.N_BINS / (F.N_BINS / F.N_BANDS))
    assert abs(int(grid.mean(0).argmax()) - expected_band) <= 1


@pytest.mark.parametrize("rate", [8000, 44100, 48000, 192000])
def test_resampled_tone_lands_in_the_same_band(rate: int) -> None:
    grid = F.power_db_bands(F.to_mono(tone(1000.0, 2.0, rate, channels=2), rate))
    assert int(grid.mean(0).argmax()) == 23


@pytest.mark.parametrize(("seconds", "frames"), [(30.0, 344), (1.0, 11), (0.05, 0), (60.0, 688)])
def test_frame_count(seconds: float, frames: int) -> None:
    n = int(seconds * F.SAMPLE_RATE)
    assert F.n_frames(n) == frames
    assert F.power_db_bands(np.zeros(n, np.float32) + 0.01).shape == (frames, F.N_BANDS)


def test_clip_constants() -> None:
    assert (F.CLIP_SAMPLES, F.CLIP_FRAMES) == (661500, 344)


def test_file_and_array_give_the_same_features() -> None:
    x = music_like(4.0, 44100, channels=2)
    from_array = F.waveform_features(x, 44100)
    decoded = decode(encode(x, 44100, "WAV", "FLOAT"))
    from_file = F.model_input(F.power_db_bands(decoded.waveform[: F.CLIP_SAMPLES]))
    np.testing.assert_allclose(from_file, from_array, atol=1e-5)


def test_model_input_is_invariant_to_affine_maps() -> None:
    grid = np.random.default_rng(0).uniform(0, 255, (100, 256))
    x = F.model_input(grid)
    assert x.shape == (100, F.N_FEATURES) and x.dtype == np.float32
    np.testing.assert_allclose(F.model_input(0.37 * grid - 12.0), x, atol=1e-4)


def test_silence_and_non_finite_samples_give_finite_features() -> None:
    x = np.zeros((44100, 8), np.float32)
    x[100, 3], x[200, 5] = np.nan, np.inf
    feats = F.waveform_features(x, 44100)
    assert np.isfinite(feats).all() and not feats.any()


@pytest.mark.parametrize("shape", [(0,), (0, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_empty_blocks_downmix_to_nothing(shape: tuple[int, ...], dtype: type) -> None:
    """Decoders can hand over empty blocks (a resampler's flush); they add nothing, and raise nothing."""
    blocks: list[np.ndarray] = [np.zeros(shape, dtype), np.ones((100, 2), dtype), np.zeros(shape, dtype)]
    mono = np.concatenate(list(F.mono_stream(blocks, 22050)))
    np.testing.assert_array_equal(mono, F.to_mono(np.ones((100, 2), dtype), 22050))
    assert F.to_mono(np.zeros(shape, dtype), 44100).shape == (0,)


def test_integer_pcm_arrays_are_scaled_to_full_scale_floats() -> None:
    pcm = (np.random.default_rng(0).uniform(-1, 1, (4410, 2)) * 32767).astype(np.int16)
    np.testing.assert_array_equal(F.to_mono(pcm, 44100), F.to_mono(pcm / np.float32(32768), 44100))
    wide = pcm.astype(np.int32) << 16  # 32-bit PCM of the same samples
    np.testing.assert_array_equal(F.to_mono(wide, 22050), F.to_mono(pcm / np.float32(32768), 22050))


def test_log_band_matrix_covers_every_band_once() -> None:
    m = F.log_band_matrix(F.N_BANDS, F.DEFAULT_SETTINGS.log_band_edges)
    assert m.shape == (F.N_BANDS, F.N_LOG_BANDS)
    np.testing.assert_allclose(m.sum(0), 1.0, rtol=1e-6)
    assert ((m > 0).sum(1) == 1).all()


def test_golden_values_of_model_input_with_the_original_settings() -> None:
    """A fixed random grid through the original front end (model 1.2.0's): values recorded once."""
    grid = np.random.default_rng(12345).normal(-40, 12, (20, 256)).astype(np.float32)
    x = F.model_input(grid, F.FrontEndSettings())
    assert x.shape == (20, 128)
    np.testing.assert_allclose(
        x[3, [0, 5, 17, 40, 63]], [-0.148602, 0.399267, -1.955290, 0.111042, 0.477661], atol=1e-5
    )
    np.testing.assert_allclose(x[7, [64, 70, 100, 127]], [-0.113960, -0.739544, 1.613702, -0.561300], atol=1e-5)
    assert float(np.abs(x).sum()) == pytest.approx(1612.104, rel=1e-5)


def test_golden_values_of_model_input_with_todays_settings() -> None:
    """The same grid through DEFAULT_SETTINGS (log-band statistics and floor): recorded once."""
    grid = np.random.default_rng(12345).normal(-40, 12, (20, 256)).astype(np.float32)
    x = F.model_input(grid)
    expected = [-0.225408, 0.565332, -2.010016, 0.149337, 0.678477]
    np.testing.assert_allclose(x[3, [0, 5, 17, 40, 63]], expected, atol=1e-5)
    np.testing.assert_allclose(x[7, [64, 70, 100, 127]], [-0.164479, -0.531386, 2.329055, -0.810124], atol=1e-5)
    assert float(np.abs(x).sum()) == pytest.approx(2228.189, rel=1e-5)


def test_the_floor_turns_empty_bands_into_a_plateau_and_keeps_content() -> None:
    grid = np.random.default_rng(1).normal(-30, 10, (50, 256)).astype(np.float32)
    limited = grid.copy()
    limited[:, 93:] = -150.0  # what 8 kHz audio upsampled to 22.05 kHz leaves above 4 kHz
    x = F.model_input(limited)[:, : F.N_LOG_BANDS]
    empty = F.DEFAULT_SETTINGS.log_band_edges.index(96)  # first log band wholly above linear band 93
    assert np.ptp(x[:, empty:]) == 0  # one level
    gap = x[:, :empty].min() - x[:, empty:].max()
    assert 0 <= gap < 3  # near the quietest content, not 10 std below it
    no_floor = F.model_input(limited, F.DEFAULT_SETTINGS.model_copy(update={"floor_spread": None}))
    assert no_floor[:, : F.N_LOG_BANDS][:, :empty].std() < 0.3  # without it, the empty bands squash the music


@pytest.mark.parametrize(
    ("rate", "at_least"), [(8000, 0.87), (11025, 0.9), (16000, 0.95), (22050, 0.999), (44100, 0.999), (48000, 0.999)]
)
def test_the_same_music_at_any_rate_gives_nearly_the_same_input(rate: int, at_least: float) -> None:
    """Golden check: music rendered at `rate` (its band limited to rate / 2) against the same music at
    44.1 kHz. Generated music is broadband (loud noise beats up to 22 kHz), a harder case than most
    recordings; the figures were measured once, and the original front end scores lower."""
    source = music_like(12.0, 44100, seed=5)
    full = F.to_mono(source, 44100)
    at_rate = decode(encode(soxr.resample(source, 44100, rate) if rate != 44100 else source, rate, "WAV", "FLOAT"))

    def similarity(settings: F.FrontEndSettings) -> float:
        a = F.model_input(F.power_db_bands(at_rate.waveform, settings), settings)[:, : F.N_LOG_BANDS]
        b = F.model_input(F.power_db_bands(full, settings), settings)[:, : F.N_LOG_BANDS]
        n = min(len(a), len(b))
        return float(np.corrcoef(a[:n].ravel(), b[:n].ravel())[0, 1])

    today, original = similarity(F.DEFAULT_SETTINGS), similarity(F.FrontEndSettings())
    assert today >= at_least
    if rate < 22050:
        assert today > original + 0.02


def test_settings_round_trip_and_check_their_edges() -> None:
    s = F.DEFAULT_SETTINGS
    assert F.FrontEndSettings.model_validate_json(s.model_dump_json()) == s
    assert (s.n_log_bands, s.n_features, s.clip_frames) == (64, 128, 344)
    assert s.log_band_edges[:3] == (0, 1, 2) and s.log_band_edges[-2:] == (242, 256)
    with pytest.raises(ValueError, match="log_band_edges"):
        F.FrontEndSettings(log_band_edges=(0, 100, 200))  # does not reach n_bands


def test_model_input_follows_its_settings() -> None:
    grid = np.random.default_rng(0).normal(-40, 12, (30, 256)).astype(np.float32)
    coarse = F.FrontEndSettings(log_band_edges=(0, 64, 128, 256), deltas=False)
    x = F.model_input(grid, coarse)
    assert x.shape == (30, 3)
    standardised = (grid - grid.mean()) / grid.std()
    np.testing.assert_allclose(x[:, 2], standardised[:, 128:].mean(1), atol=1e-4)


def test_shared_arrays_and_audio_route_agree(gtzan) -> None:  # type: ignore[no-untyped-def]
    """The README's measurement, through today's front end: after standardisation and the floor, the two
    routes correlate at 0.979 on average, 0.967 lowest (0.987 and 0.971 without the floor)."""
    arrays = load_arrays(gtzan)
    index = {c: i for i, c in enumerate(arrays.ids)}
    correlations = []
    for row in read_labels(gtzan):
        path = audio_path(gtzan, row["genre"], row["clip_id"])
        if path is None:
            continue
        audio = F.model_input(F.power_db_bands(decode_file(path).waveform[: F.CLIP_SAMPLES]))
        array = F.model_input(arrays.grids[index[row["clip_id"]]])
        correlations.append(np.corrcoef(audio[:, : F.N_LOG_BANDS].ravel(), array[:, : F.N_LOG_BANDS].ravel())[0, 1])
    assert len(correlations) == 89
    assert np.mean(correlations) > 0.975 and np.min(correlations) > 0.96


def overlap_matrix(n_bins: int, n_bands: int) -> np.ndarray:
    """The data README's step 5, literally: band b's weight on bin i is their overlap, over b's width."""
    width = n_bins / n_bands
    matrix = np.zeros((n_bins, n_bands))
    for b in range(n_bands):
        lo, hi = b * width, (b + 1) * width
        for i in range(n_bins):
            matrix[i, b] = max(0.0, min(hi, i + 1) - max(lo, i)) / width
    return matrix


@pytest.mark.parametrize(("n_bins", "n_bands"), [(1025, 256), (10, 4), (7, 7), (5, 8)])
def test_pool_bands_is_the_overlap_weighted_mean(n_bins: int, n_bands: int) -> None:
    db = np.random.default_rng(n_bins).normal(-30, 5, size=(6, n_bins))
    np.testing.assert_allclose(F.pool_bands(db, n_bands), db @ overlap_matrix(n_bins, n_bands), rtol=0, atol=1e-9)
