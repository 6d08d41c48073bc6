"""The soak benchmark with small numbers: it records an RSS series and its summary."""

from __future__ import annotations

import json
from pathlib import Path

from bench.soak import main


def test_soak_records_memory_over_time(tmp_path: Path) -> None:
    [result] = main(
        [
            "--clients",
            "2",
            "--seconds",
            "6",
            "--only",
            "ORT arena off, batches of at most 8",
            "--name",
            "s",
            "--out",
            str(tmp_path),
        ]
    )
    assert json.loads((tmp_path / "s.json").read_text()) == {"runs": [result]}
    series = result["load"]["rss_series_mib"]
    assert len(series) >= 10 and min(series) > 50
    assert result["load"]["requests"] >= 2 and result["load"]["errors"] == 0
    assert result["last_quarter_peak_mib"] <= result["load"]["rss_mib"]["peak"]
