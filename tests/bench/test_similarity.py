"""The similarity benchmark's small form: both parts run, write their figures, and can tell good from bad."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.similarity import main, neighbour_shares
from tests.helpers import SMALL_CV_FOLDS, small_gtzan_subset, train_small_cv


def test_neighbour_shares_count_the_right_neighbours() -> None:
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    artists = np.array(["a", "a", "a", "b", "b", "b", "c", "c", "c", "d", "d", "d"])
    clustered = np.eye(2, dtype=np.float32)[labels] + 0.01 * np.arange(12, dtype=np.float32)[:, None]
    clustered /= np.linalg.norm(clustered, axis=1, keepdims=True)
    assert neighbour_shares(clustered, labels, artists, same_artist=True).tolist() == [1.0] * 12
    assert neighbour_shares(clustered, labels, artists, same_artist=False).tolist() == [0.6] * 12  # 3 others left
    mixed = np.eye(2, dtype=np.float32)[np.arange(12) % 2]  # clusters that mix the genres half and half
    assert neighbour_shares(mixed, labels, artists, same_artist=True).mean() < 0.5


def test_speed_measures_both_searches_at_each_size(tmp_path: Path) -> None:
    result = main(["speed", "--sizes", "300", "1200", "--queries", "20", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "similarity_speed.json").read_text()) == json.loads(json.dumps(result))
    for n in ("300", "1200"):
        exact, hnsw = result["sizes"][n]["exact"], result["sizes"][n]["hnsw"]
        assert 0 < exact["query_ms_p50_p99"][0] <= exact["query_ms_p50_p99"][1]
        assert hnsw["build_s"] >= 0 and 0.9 <= hnsw["recall_at_10"] <= 1.0
        assert exact["memory_mib_per_1e5_tracks"] > 0 and hnsw["memory_mib_per_1e5_tracks"] > 0
    assert "| 1,200 | hnsw |" in (tmp_path / "similarity_speed.md").read_text()


def test_quality_compares_the_embedding_with_its_baseline_out_of_fold(tmp_path: Path, gtzan: Path) -> None:
    data = small_gtzan_subset(gtzan, tmp_path / "gtzan")
    runs = train_small_cv(data, tmp_path / "cv", first_seed=0)
    result = main(["quality", "--data", str(data), "--out", str(tmp_path), *(f"--run={run}" for run in runs)])
    assert result["folds"] == SMALL_CV_FOLDS and result["clips"] == 180
    for view in ("all", "other_artists"):
        for name in ("embedding", "band_statistics", "chance"):
            assert 0 <= result[view][name]["overall"] <= 1 and len(result[view][name]["per_genre"]) == 10
    assert result["all"]["band_statistics"]["overall"] > result["all"]["chance"]["overall"]  # it can tell
    assert "other artists only | embedding" in (tmp_path / "similarity_quality.md").read_text()
