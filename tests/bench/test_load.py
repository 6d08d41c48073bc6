"""The load script with small numbers: zero errors, flat memory, /health answering throughout."""

from __future__ import annotations

import json
from pathlib import Path

from bench.load import main


def test_load_has_no_errors_and_flat_memory(tmp_path: Path) -> None:
    result = main(["--clients", "8", "--seconds", "10", "--name", "load-ci", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "load-ci.json").read_text()) == result
    assert "| clients |" in (tmp_path / "load-ci.md").read_text()
    assert result["requests"] > 8 and result["errors"] == 0, result["error_kinds"]
    rss = result["rss_mib"]
    assert rss["last_quarter_peak"] - rss["first_quarter_peak"] < 64, rss
    assert result["health_probes"] > 10
    assert result["health_ms"]["max"] != float("inf")  # every probe answered
