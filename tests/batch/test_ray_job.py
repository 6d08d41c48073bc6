"""`genre classify --ray local`: the same rows as the local job, from a Ray Data pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch.cli import main
from batch.output import read_rows
from model.card import card_path, load_card
from model.runtime import DEFAULT_MODEL_PATH

LABELS = load_card(card_path(DEFAULT_MODEL_PATH)).labels


@pytest.mark.usefixtures("ray_cluster")
def test_ray_gives_the_local_jobs_rows(library: Path, tmp_path: Path) -> None:
    import ray

    assert ray.util.get_node_ip_address() == "127.0.0.1"  # type: ignore[no-untyped-call]  # loopback only
    local, on_ray = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main(["classify", str(library), "--out", str(local), "--workers", "2", "--quiet"]) == 0
    assert main(["classify", str(library), "--out", str(on_ray), "--ray", "local", "--actors", "1", "--quiet"]) == 0
    expected = {r["path"]: r for r in read_rows(local)}
    got = {r["path"]: r for r in read_rows(on_ray)}
    assert set(got) == set(expected) and len(got) == 6
    for path, row in got.items():
        assert list(row) == list(expected[path])
        assert (row["top_genre"], row["error"], row["duration_s"]) == (
            expected[path]["top_genre"],
            expected[path]["error"],
            expected[path]["duration_s"],
        ), path
        for label in LABELS:
            assert (row[label] is None) == (expected[path][label] is None)
            if row[label] is not None:
                assert row[label] == pytest.approx(expected[path][label], abs=1e-5)


@pytest.mark.usefixtures("ray_cluster")
def test_ray_resume_skips_what_is_done(library: Path, tmp_path: Path) -> None:
    out = tmp_path / "genres.csv"
    assert main(["classify", str(library / "a.wav"), "--out", str(out), "--quiet"]) == 0
    assert main(["classify", str(library), "--out", str(out), "--ray", "local", "--resume", "--quiet"]) == 0
    paths = [r["path"] for r in read_rows(out)]
    assert len(paths) == len(set(paths)) == 6
