"""bench.teacher_ceiling on the real GTZAN audio clips with the exported MSD teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.teacher_ceiling import main, out_of_fold_probe
from tests.helpers import GTZAN


def test_the_probe_never_sees_the_fold_it_predicts() -> None:
    """Each sample's label is only learnable from itself: left out, it cannot be predicted."""
    labels = np.arange(6) % 3
    features = np.eye(6)
    assert (out_of_fold_probe(features, labels, np.arange(6)) != labels).all()


def test_the_ceiling_on_the_audio_clips(tmp_path: Path, exported_teacher: tuple[Path, Path]) -> None:
    teacher, _ = exported_teacher
    (result,) = main(
        ["--teacher", str(teacher), "--data", str(GTZAN), "--cache", str(tmp_path / "c"), "--out", str(tmp_path)]
    )
    assert result.by_clip.clips == 89 and result.zero_shot_clips == 73
    # Blues, classical, reggae and rock are one artist each among the clips: no probe kept from
    # the artist can learn them, so the by-artist figure scores the other six genres.
    assert result.by_artist_genres == ["country", "disco", "hiphop", "jazz", "metal", "pop"]
    assert result.by_artist.clips == 53
    # The teacher is worth distilling: it beats our front end's band statistics, like for like.
    for figures in (result.by_artist, result.by_clip):
        assert figures.teacher.accuracy > figures.band_statistics.accuracy + 0.1
    assert result.zero_shot is not None and result.zero_shot.accuracy > 0.5  # 8 genres: chance 0.125
    saved = json.loads((tmp_path / "teacher_ceiling.json").read_text())
    assert saved["results"][0]["teachers"] == ["MSD_musicnn"]
    assert "probe left out by artist (53)" in (tmp_path / "teacher_ceiling.md").read_text()
