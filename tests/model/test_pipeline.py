"""model.pipeline: the limits, checked against the loaded model's front end, and the answer."""

from __future__ import annotations

import numpy as np
import pytest

from model.audio import AudioError
from model.features import DEFAULT_SETTINGS, SAMPLE_RATE
from model.pipeline import Limits, Pipeline
from model.runtime import GenreModel, Outputs
from model.windows import Window, coverage_weights
from tests.audio import encode, music_like


def test_too_short_is_422_with_the_duration() -> None:
    with pytest.raises(AudioError, match=r"0\.500 s long; the minimum is 1 s") as caught:
        Pipeline(DEFAULT_SETTINGS).prepare(encode(music_like(0.5, 22050), 22050))
    assert caught.value.status == 422


def test_the_one_frame_rule_is_the_loaded_models() -> None:
    """A model with a longer STFT frame needs longer audio: the rule follows its card, not the default."""
    frame_s = DEFAULT_SETTINGS.n_fft / SAMPLE_RATE
    Pipeline(DEFAULT_SETTINGS, Limits(min_duration_s=frame_s))
    wider = DEFAULT_SETTINGS.model_copy(update={"n_fft": 4096})
    with pytest.raises(ValueError, match=r"one STFT frame of the model \(0\.186 s\)"):
        Pipeline(wider, Limits(min_duration_s=frame_s))
    with pytest.raises(ValueError, match="30 s window"):
        Pipeline(DEFAULT_SETTINGS, Limits(hop_s=31.0))


@pytest.mark.parametrize(
    "limits", [{"min_duration_s": 2.0, "max_duration_s": 1.0}, {"min_duration_s": 0.0}, {"hop_s": 0.0}]
)
def test_limits_no_model_could_serve_are_refused(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Limits(**limits)


def test_the_shortest_audio_accepted_is_answered(model: GenreModel) -> None:
    pipeline = Pipeline(model.front_end, Limits(min_duration_s=0.1))
    prepared, analysis = pipeline.classify(model, encode(music_like(0.1, 22050), 22050))
    assert prepared.inputs.shape[:2] == (1, 1) and analysis.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert pipeline.silence().shape[1] == 1


def test_outputs_for_other_windows_are_refused(model: GenreModel) -> None:
    pipeline = Pipeline(model.front_end)
    windows, inputs = pipeline.windows(music_like(70.0, SAMPLE_RATE))
    outputs = model.predict(inputs)
    with pytest.raises(ValueError, match="windows, but outputs for"):
        pipeline.answer(windows, outputs.rows(0, len(windows) - 1))
    assert np.isclose(pipeline.answer(windows, outputs).probabilities.sum(), 1.0, atol=1e-5)


def scored(music: list[float], labels: int = 3) -> tuple[list[Window], Outputs]:
    """Windows of 344 frames, 172 apart, whose genre is window i mod labels, with these music probabilities."""
    windows = [Window(172 * i, 344, DEFAULT_SETTINGS, 30.0 + 172 * len(music) * 0.087) for i in range(len(music))]
    probabilities = np.eye(labels)[[i % labels for i in range(len(music))]].astype(np.float32)
    attention = np.full((len(music), 344), 1 / 344, np.float32)
    embedding = np.random.default_rng(len(music)).standard_normal((len(music), 6)).astype(np.float32)
    return windows, Outputs(probabilities, attention, np.array(music, np.float32), embedding)


def test_windows_that_are_not_music_do_not_vote_on_the_genre() -> None:
    """A talk show with a music intro: its genre is the intro's, and its verdict the talk's."""
    windows, outputs = scored([0.99, 0.02, 0.01, 0.02])
    analysis = Pipeline(DEFAULT_SETTINGS, music_threshold=0.5).answer(windows, outputs)
    assert analysis.probabilities.argmax() == 0 and analysis.probabilities[0] > 0.9
    assert [w.is_music for w in analysis.windows] == [True, False, False, False]
    assert analysis.music_probability == pytest.approx(float(coverage_weights(windows) @ outputs.music), abs=1e-6)
    assert analysis.is_music is False


def test_with_no_music_anywhere_every_window_counts_by_coverage() -> None:
    windows, outputs = scored([0.0, 0.0, 0.0])
    analysis = Pipeline(DEFAULT_SETTINGS, music_threshold=0.5).answer(windows, outputs)
    np.testing.assert_allclose(analysis.probabilities, coverage_weights(windows) @ outputs.probabilities, atol=1e-6)
    assert analysis.is_music is False and analysis.music_probability == 0.0


def test_the_threshold_decides_and_a_model_without_a_detector_has_no_verdict() -> None:
    windows, outputs = scored([0.6, 0.6])
    assert Pipeline(DEFAULT_SETTINGS, music_threshold=0.5).answer(windows, outputs).is_music is True
    assert Pipeline(DEFAULT_SETTINGS, music_threshold=0.7).answer(windows, outputs).is_music is False
    bare = Outputs(outputs.probabilities, outputs.attention)
    analysis = Pipeline(DEFAULT_SETTINGS).answer(windows, bare)
    assert analysis.is_music is None and analysis.music_probability is None
    assert all(w.music_probability is None and w.is_music is None for w in analysis.windows)
    np.testing.assert_allclose(analysis.probabilities, coverage_weights(windows) @ bare.probabilities, atol=1e-6)


def test_outputs_split_and_join_by_rows() -> None:
    _, outputs = scored([0.1, 0.2, 0.3, 0.4, 0.5])
    parts = [outputs.rows(0, 2), outputs.rows(2, 5)]
    joined = Outputs.concatenate(parts)
    assert len(parts[0]) == 2 and joined.music is not None and outputs.music is not None
    np.testing.assert_array_equal(joined.music, outputs.music)
    np.testing.assert_array_equal(joined.probabilities, outputs.probabilities)
    assert joined.embedding is not None and outputs.embedding is not None
    np.testing.assert_array_equal(joined.embedding, outputs.embedding)
    bare = Outputs.concatenate([Outputs(outputs.probabilities, outputs.attention)])
    assert bare.music is None and bare.embedding is None


def test_a_tracks_embedding_is_its_windows_coverage_weighted_mean_at_unit_length() -> None:
    windows, outputs = scored([0.9, 0.1, 0.9, 0.9])
    assert outputs.embedding is not None
    analysis = Pipeline(DEFAULT_SETTINGS, music_threshold=0.5).answer(windows, outputs)
    mean = coverage_weights(windows) @ outputs.embedding  # every window, music or not: the track as it is
    assert analysis.embedding is not None and analysis.embedding.dtype == np.float32
    np.testing.assert_allclose(analysis.embedding, mean / np.linalg.norm(mean), atol=1e-6)
    assert np.linalg.norm(analysis.embedding) == pytest.approx(1.0, abs=1e-6)
    assert (
        Pipeline(DEFAULT_SETTINGS).answer(windows, Outputs(outputs.probabilities, outputs.attention)).embedding is None
    )
