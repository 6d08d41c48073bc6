"""Settings: cross-field rules are refused at start-up with a message that names the rule; the
rules of the loaded model's front end are refused when the service loads it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.helpers import make_client


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"min_duration_s": 10.0, "max_duration_s": 5.0}, "not exceed the maximum"),
        ({"window_hop_s": 0.0}, "window_hop_s"),
        ({"max_batch_windows": 0}, "max_batch_windows"),
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, float], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Settings.model_validate(values)


def test_the_defaults_are_consistent() -> None:
    s = Settings()
    assert s.min_duration_s <= s.max_duration_s and s.window_hop_s <= 30


@pytest.mark.parametrize(
    ("values", "reason"), [({"min_duration_s": 0.05}, "one STFT frame"), ({"window_hop_s": 31.0}, "30 s window")]
)
def test_limits_the_loaded_model_cannot_serve_stop_the_start(values: dict[str, float], reason: str) -> None:
    with pytest.raises(ValueError, match=reason), make_client(**values):
        pass
