"""bench.teacher_ceiling on the real GTZAN audio clips with the exported MSD teacher."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from bench.teacher_ceiling import main, out_of_fold_probe
from model.features import DEFAULT_SETTINGS
from tests.helpers import GTZAN
from training.artifacts import Checkpoint
from training.network import GenreNet, NetworkConfig


def test_the_probe_never_sees_the_fold_it_predicts() -> None:
    """Each sample's label is only learnable from itself: left out, it cannot be predicted."""
    labels = np.arange(6) % 3
    features = np.eye(6)
    assert (out_of_fold_probe(features, labels, np.arange(6)) != labels).all()


def test_the_ceiling_on_the_audio_clips(tmp_path: Path, exported_teacher: tuple[Path, Path]) -> None:
    small = NetworkConfig(frame_dim=16, conv_channels=4, hidden=8, attention_dim=8, co_variation=8)
    network = tmp_path / "net.pt"
    torch.manual_seed(0)  # the untrained control's seed: the same network
    Checkpoint(network=small, labels=[], front_end=DEFAULT_SETTINGS, config={}, epoch=0).save(GenreNet(small), network)
    args = ["--teacher", str(exported_teacher[0]), "--network", f"tiny={network}", "--network", f"again={network}"]
    args += ["--data", str(GTZAN)]
    result = main([*args, "--cache", str(tmp_path / "c"), "--out", str(tmp_path)])

    assert result.clips == 89 and result.zero_shot_clips == 73
    # Blues, classical, reggae and rock are one artist each among the clips: no probe kept from
    # the artist can learn them, so the by-artist figure scores the other six genres.
    assert result.by_artist_genres == ["country", "disco", "hiphop", "jazz", "metal", "pop"]
    assert result.by_artist_clips == 53
    untrained = "untrained network (tiny and again's shape)"  # one control for networks of one shape
    assert list(result.probes) == ["MSD_musicnn", "band statistics", "tiny", "again", untrained]
    teacher, bands = result.probes["MSD_musicnn"], result.probes["band statistics"]
    # The teacher is worth distilling: it beats our front end's band statistics, like for like.
    assert teacher.by_artist.accuracy > bands.by_artist.accuracy + 0.1
    assert teacher.by_clip.accuracy > bands.by_clip.accuracy + 0.1
    assert result.probes["tiny"] == result.probes[untrained]  # this one learnt nothing
    assert result.zero_shot is not None and result.zero_shot.accuracy > 0.5  # 8 genres: chance 0.125

    saved = json.loads((tmp_path / "teacher_ceiling.json").read_text())
    assert saved["probes"]["MSD_musicnn"]["by_artist"]["accuracy"] == teacher.by_artist.accuracy
    assert "| MSD_musicnn |" in (tmp_path / "teacher_ceiling.md").read_text()
