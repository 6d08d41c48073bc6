"""training.distill: the student learns the teacher's view of unlabelled soundtracks, and a genre
run starts from it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from model.features import DEFAULT_SETTINGS
from tests.helpers import tiny_corpus
from training.artifacts import Checkpoint, load_starting_weights
from training.augment import AugmentConfig
from training.corpus import TRAINING_SOUNDTRACKS
from training.distill import DistillConfig, distill, read_chunks, soundtracks
from training.network import GenreNet, NetworkConfig
from training.teacher import PATCH_SECONDS, Targets, Teacher

TINY = NetworkConfig(frame_dim=16, conv_channels=4, hidden=8, attention_dim=8, co_variation=8)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory, exported_teacher: tuple[Path, Path]) -> DistillConfig:
    root = tmp_path_factory.mktemp("distill")
    return DistillConfig(
        teachers=(exported_teacher[0],),
        corpus=tiny_corpus(root / "corpus"),
        cache=root / "targets",
        out=root / "run",
        epochs=6,
        batch_size=4,
        lr=1e-2,
        network=TINY,
        augment=AugmentConfig(min_crop_frames=120, codec_prob=0.0),
    )


def test_only_the_training_soundtracks_are_read(config: DistillConfig) -> None:
    names = [p.name for p in soundtracks(config)]
    assert len(names) == 4 and "kept_out.ogg" not in names
    assert [p.parent for p in soundtracks(config)][:2] != [soundtracks(config)[0].parent] * 2  # interleaved
    assert len(soundtracks(dataclasses.replace(config, max_files=3))) == 3


def test_a_run_reads_the_sources_it_names(config: DistillConfig) -> None:
    second = TRAINING_SOUNDTRACKS[1]
    paths = soundtracks(dataclasses.replace(config, sources=(second.name,)))
    assert len(paths) == 2 and all(second.folder in p.as_posix() for p in paths)
    with pytest.raises(ValueError, match=r"unknown soundtrack sources \['nexuiz-music'\]"):
        dataclasses.replace(config, sources=("nexuiz-music",))  # held out: never distilled


def test_a_teacher_is_given_once(config: DistillConfig) -> None:
    for teachers in [(), config.teachers * 2]:
        with pytest.raises(ValueError, match="one or more teachers, each once"):
            dataclasses.replace(config, teachers=teachers)


def test_a_track_is_cut_into_30_s_chunks_with_its_teacher(config: DistillConfig) -> None:
    chunks = read_chunks(config, [Teacher(p) for p in config.teachers], soundtracks(config))
    assert len(chunks) == 8  # 45 s: a whole chunk and a 15 s one (longer than a 120-frame crop), 4 tracks
    assert [c.start_s for c in chunks[:2]] == [0.0, pytest.approx(344 * 1920 / 22050)]
    assert chunks[0].targets.embedding.shape == (int(45 // PATCH_SECONDS), 200)


def test_the_student_learns_the_teacher(config: DistillConfig) -> None:
    path = distill(config)
    report = json.loads((config.out / "report.json").read_text())
    assert report["chunks"] == 8
    assert report["last_epoch_loss"] < 0.8 * report["first_epoch_loss"]
    meta, _ = Checkpoint.load(path)
    assert meta.network == TINY and meta.config["teachers"] == [str(p) for p in config.teachers]


def test_two_teachers_are_learnt_side_by_side(config: DistillConfig, tmp_path: Path) -> None:
    msd = config.teachers[0]
    other = tmp_path / "other.onnx"  # the same weights under another name stand in for MTT
    shutil.copy(msd, other)
    note = json.loads(msd.with_suffix(".json").read_text())
    other.with_suffix(".json").write_text(json.dumps({**note, "model": "other"}))
    teachers = [Teacher(msd), Teacher(other)]
    paths = soundtracks(config)[:1]
    one = read_chunks(config, teachers[:1], paths)[0].targets
    both = read_chunks(config, teachers, paths)[0].targets
    assert both.embedding.shape == (one.embedding.shape[0], 400) and both.tag_logits.shape[1] == 100
    assert (both.embedding[:, 200:] == one.embedding).all() and (both.tag_logits[:, :50] == one.tag_logits).all()


def test_teachers_that_cut_a_file_differently_are_not_joined() -> None:
    one, two = (Targets(np.zeros((n, 200)), np.zeros((n, 50))) for n in (3, 4))
    with pytest.raises(ValueError, match="different patches"):
        Targets.joined([one, two])


def test_a_genre_run_starts_from_all_but_the_classifier(tmp_path: Path) -> None:
    start, path = GenreNet(TINY), tmp_path / "start.pt"
    Checkpoint(network=TINY, labels=[], front_end=DEFAULT_SETTINGS, config={}, epoch=0).save(start, path)
    net = GenreNet(dataclasses.replace(TINY, n_classes=4))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    load_starting_weights(net, path)
    for name, value in net.state_dict().items():
        expected = before[name] if name.startswith("classifier.") else start.state_dict()[name]
        assert torch.equal(value, expected), name


def test_a_start_of_another_shape_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "start.pt"
    Checkpoint(network=TINY, labels=[], front_end=DEFAULT_SETTINGS, config={}, epoch=0).save(GenreNet(TINY), path)
    with pytest.raises(ValueError, match="another shape"):
        load_starting_weights(GenreNet(dataclasses.replace(TINY, hidden=12)), path)
