"""Settings: cross-field rules are refused at start-up with a message that names the rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"min_duration_s": 0.05}, "one STFT frame"),
        ({"min_duration_s": 10.0, "max_duration_s": 5.0}, "must not exceed max_duration_s"),
        ({"window_hop_s": 31.0}, "30 s window"),
        ({"max_batch_windows": 0}, "max_batch_windows"),
    ],
)
def test_inconsistent_settings_are_refused(values: dict[str, float], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Settings.model_validate(values)


def test_the_defaults_are_consistent() -> None:
    s = Settings()
    assert s.min_duration_s <= s.max_duration_s and s.window_hop_s <= 30
