from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import GTZAN


@pytest.fixture(scope="session")
def gtzan() -> Path:
    """The shared GTZAN folder beside the checkout (never copied into the project)."""
    assert (GTZAN / "labels.csv").is_file(), f"the shared data is missing at {GTZAN}"
    return GTZAN
