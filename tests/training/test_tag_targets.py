"""training.tag_targets: the MSD teacher's genre tags as soft targets on soundtrack spans, with
classical and reggae (no tag names them) left out of that loss."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import fold_run, tiny_corpus
from training.artifacts import Checkpoint
from training.data import DataError, gtzan_labels
from training.network import GenreNet, NetworkConfig
from training.tag_targets import SPAN_FRAMES, SPAN_PATCHES, TagTargetConfig, load_tag_targets, span_scores
from training.teacher import GENRE_TAGS, Targets, Teacher
from training.train import TrainConfig, train

TINY = NetworkConfig(frame_dim=16, conv_channels=4, hidden=8, attention_dim=8, co_variation=8, n_classes=10)
LABELS = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
QUIET = -6.0  # a tag's logit the teacher does not hear (probability 0.0025)


def heard(teacher: Teacher, patches: int, loud: dict[int, str]) -> Targets:
    """Targets of `patches` patches where patch i's tag loud[i] has probability 0.95, the rest QUIET."""
    logits = np.full((patches, len(teacher.tags)), QUIET, dtype=np.float32)
    for patch, tag in loud.items():
        logits[patch, teacher.tags.index(tag)] = np.log(0.95 / 0.05)
    return Targets(np.zeros((patches, 200), dtype=np.float32), logits)


@pytest.fixture(scope="module")
def teacher(exported_teacher: tuple[Path, Path]) -> Teacher:
    return Teacher(exported_teacher[0])


@pytest.fixture(scope="module")
def config(
    tmp_path_factory: pytest.TempPathFactory, exported_teacher: tuple[Path, Path], teacher: Teacher
) -> TagTargetConfig:
    """The tiny corpus's four 45 s tracks (three spans each), the teacher's targets written into the
    cache as if it had heard jazz in track 0's second span and rock in all of track 1's third."""
    root = tmp_path_factory.mktemp("tags")
    cfg = TagTargetConfig(teacher=exported_teacher[0], corpus=tiny_corpus(root / "corpus"), cache=root / "targets")
    files = sorted((root / "corpus").rglob("track*.ogg"))
    loud = {0: {SPAN_PATCHES + 1: "jazz", SPAN_PATCHES + 2: "jazz"}, 1: {i: "rock" for i in range(10, 15)}}
    for i, path in enumerate(files):
        where = teacher.entry(hashlib.sha256(path.read_bytes()).hexdigest()[:32], cfg.cache)
        where.parent.mkdir(parents=True, exist_ok=True)
        targets = heard(teacher, 15, loud.get(i, {}))
        np.savez(where, embedding=targets.embedding, tag_logits=targets.tag_logits)
    return cfg


def test_a_spans_scores_are_the_teachers_zero_shot_scores(teacher: Teacher) -> None:
    targets = heard(teacher, 2 * SPAN_PATCHES + 3, {1: "jazz", SPAN_PATCHES + 4: "hard rock"})
    scores = span_scores(teacher, targets)
    assert scores.shape == (2, len(GENRE_TAGS))  # the 3 patches after the last whole span are left
    for span in range(2):
        patches = slice(span * SPAN_PATCHES, (span + 1) * SPAN_PATCHES)
        expected = teacher.genre_scores(Targets(targets.embedding[patches], targets.tag_logits[patches]))
        np.testing.assert_allclose(scores[span], list(expected.values()), rtol=1e-6)
    genres = list(GENRE_TAGS)
    assert scores[0].argmax() == genres.index("jazz") and scores[1].argmax() == genres.index("rock")


def test_spans_where_a_genre_is_heard_are_kept_with_its_targets(config: TagTargetConfig) -> None:
    found = load_tag_targets(config, LABELS)
    assert found is not None
    assert len(found) == 2  # track 0's second span (jazz in 2 of 5 patches: 0.38) and track 1's third
    assert all(g.shape == (SPAN_FRAMES, 256) for g in found.grids)
    assert [LABELS[i] for i in found.targets.argmax(1)] == ["jazz", "rock"]
    np.testing.assert_allclose(found.targets.sum(1), 1.0, rtol=1e-6)
    untagged = [LABELS.index("classical"), LABELS.index("reggae")]
    assert not found.tagged[untagged].any() and (found.targets[:, untagged] == 0).all()
    # Jazz in 2 of 5 patches scores 0.38: a higher bar keeps track 1's span alone.
    stricter = load_tag_targets(dataclasses.replace(config, threshold=0.5), LABELS)
    assert stricter is not None and len(stricter) == 1


def test_the_loss_leaves_the_untagged_genres_alone(config: TagTargetConfig) -> None:
    found = load_tag_targets(config, LABELS)
    assert found is not None
    torch.manual_seed(0)
    net = GenreNet(TINY)
    loss = found.loss(net, 8, TrainConfig().augment, np.random.default_rng(0))
    loss.backward()  # type: ignore[no-untyped-call]
    untagged = [LABELS.index("classical"), LABELS.index("reggae")]
    tagged_rows = [i for i in range(len(LABELS)) if i not in untagged]
    classifier = net.classifier[-1]
    assert isinstance(classifier, torch.nn.Linear)
    weight_grad = classifier.weight.grad
    assert weight_grad is not None
    assert (weight_grad[untagged] == 0).all() and (weight_grad[tagged_rows] != 0).any()
    assert 0 < loss.item() < 10


def test_off_unless_a_teacher_is_named(config: TagTargetConfig) -> None:
    assert load_tag_targets(dataclasses.replace(config, teacher=None), LABELS) is None


def test_labels_without_the_tagged_genres_are_refused(config: TagTargetConfig) -> None:
    with pytest.raises(DataError, match=r"lack \['blues', 'country'"):
        load_tag_targets(config, ["ambient", "disco", "hiphop", "jazz", "metal", "pop", "rock"])


def test_a_teacher_whose_tags_name_no_genre_is_refused(config: TagTargetConfig, tmp_path: Path) -> None:
    assert config.teacher is not None
    other = tmp_path / "tagger.onnx"  # MagnaTagATune's tags are instruments and moods, not genres
    shutil.copy(config.teacher, other)
    note = json.loads(config.teacher.with_suffix(".json").read_text())
    other.with_suffix(".json").write_text(json.dumps({**note, "tags": [f"mood {i}" for i in range(50)]}))
    with pytest.raises(DataError, match="its tags name no genre"):
        load_tag_targets(dataclasses.replace(config, teacher=other), LABELS)


def test_bad_settings_are_refused() -> None:
    for bad in [{"threshold": 1.0}, {"weight": -1.0}, {"batch_size": 0}, {"sources": ("nexuiz-music",)}]:
        with pytest.raises(ValueError):
            TagTargetConfig(**bad)  # type: ignore[arg-type]


def test_a_genre_run_learns_the_tags_too(config: TagTargetConfig, small_gtzan: Path, tmp_path: Path) -> None:
    assert gtzan_labels(small_gtzan) == LABELS

    def run(weight: float) -> dict[str, torch.Tensor]:
        out = tmp_path / f"weight{weight}"
        cfg = fold_run(small_gtzan, out, 0, network=TINY, tag_targets=dataclasses.replace(config, weight=weight))
        assert train(cfg).config["tag_targets"]["teacher"] == str(config.teacher)
        return Checkpoint.load(out / "checkpoint.pt")[1].state_dict()

    # The same random draws either way: the weights differ only by what the tags' loss taught.
    ignored, learnt = run(0.0), run(0.5)
    assert any(not torch.equal(ignored[k], learnt[k]) for k in ignored)
