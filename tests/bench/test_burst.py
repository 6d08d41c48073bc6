"""The burst benchmark with small numbers: with one place and a queue of one, a burst is partly shed."""

from __future__ import annotations

import json
from pathlib import Path

from bench.burst import SETTINGS, main


def test_a_small_burst_is_served_or_shed_and_recorded(tmp_path: Path, monkeypatch: object) -> None:
    SETTINGS["tight"] = {"max_in_flight": "1", "max_queue": "1"}
    try:
        [result] = main(
            ["--clients", "6", "--seconds-of-audio", "20", "--only", "tight", "--name", "b", "--out", str(tmp_path)]
        )
    finally:
        del SETTINGS["tight"]
    assert json.loads((tmp_path / "b.json").read_text()) == {"runs": [result]}
    assert result["served"] + result["shed"] == 6 and result["other"] == {}
    assert result["served"] >= 2 and result["shed"] >= 1  # one served, one queued, the rest shed at once
    assert result["shed_ms"]["p50"] < result["served_ms"]["p50"]  # shedding answers before serving
    assert result["peak_rss_mib"] > 50
