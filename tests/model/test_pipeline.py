"""model.pipeline: the limits, checked against the loaded model's front end, and the answer."""

from __future__ import annotations

import numpy as np
import pytest

from model.audio import AudioError
from model.features import DEFAULT_SETTINGS, SAMPLE_RATE
from model.pipeline import Limits, Pipeline
from model.runtime import GenreModel
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
    probabilities, attention = model.predict(inputs)
    with pytest.raises(ValueError, match="windows, but outputs for"):
        pipeline.answer(windows, probabilities[:-1], attention[:-1])
    assert np.isclose(pipeline.answer(windows, probabilities, attention).probabilities.sum(), 1.0, atol=1e-5)
