"""The library benchmark with small numbers, on the tests' shared Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.library import main


@pytest.mark.usefixtures("ray_cluster")
def test_both_jobs_are_timed_and_compared(tmp_path: Path) -> None:
    result = main(["--files", "4", "--seconds", "5", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "library.json").read_text()) == result
    local, on_ray = result["local_files_per_s"], result["ray_files_per_s"]
    assert isinstance(local, float) and isinstance(on_ray, float) and local > 0 and on_ray > 0
    assert result["ray_over_local"] == pytest.approx(on_ray / local, abs=0.02)
    assert "Ray Data" in (tmp_path / "library.md").read_text()
