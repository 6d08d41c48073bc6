"""The library benchmark's small form (CI's), on the tests' shared Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.library import main


@pytest.mark.usefixtures("ray_cluster")
def test_both_jobs_are_timed_and_measured_on_both_libraries(tmp_path: Path) -> None:
    result = main(
        ["--short-files", "24", "--long-files", "3", "--long-seconds", "40", "--distinct", "4", "--out", str(tmp_path)]
    )
    assert json.loads((tmp_path / "library.json").read_text()) == result
    for name, files in (("short", 24), ("long", 3)):
        figures = result[name]
        assert isinstance(figures, dict) and figures["files"] == files
        local, on_ray = figures["local_files_per_s"], figures["ray_files_per_s"]
        assert local > 0 and on_ray > 0 and figures["ray_over_local"] == pytest.approx(on_ray / local, abs=0.02)
        assert figures["local_peak_mib"] > 50 and figures["ray_peak_mib"] > 50  # the model and its session
        assert figures["local_memory_second_half_over_first"] > 0
    table = (tmp_path / "library.md").read_text()
    assert "24 x 2 s | local" in table and "3 x 40 s | Ray Data" in table
