"""The music detector: its head, its folds and threshold, and its place in the genre model's file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from bench.common import REFERENCE_MODEL
from model.card import MusicDetectorCard, card_path, load_card
from model.features import FrontEndSettings
from model.runtime import DEFAULT_MODEL_PATH, INPUT_NAME, MUSIC_OUTPUT, OUTPUT_NAMES, GenreModel
from training.corpus import SOURCES
from training.detector import (
    FEATURES,
    HIDDEN,
    StackedHeads,
    Windows,
    attach,
    balanced_weights,
    choose_threshold,
    fit_head,
    fit_heads,
    genre_part,
    group_folds,
    items_of,
    operating_points,
    part_path,
    rates,
    voices_over,
    with_features_output,
)


def blobs(n: int, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Music around +1, three not-music kinds around -1, in `dim` dimensions."""
    rng = np.random.default_rng(seed)
    kinds = np.array(["music"] * n + ["speech"] * (n // 2) + ["noise"] * (n // 4) + ["tones"] * (n // 4))
    x = rng.standard_normal((len(kinds), dim)) + np.where(kinds == "music", 1.0, -1.0)[:, None]
    return x.astype(np.float32), kinds


def test_the_head_learns_to_tell_music_from_the_rest() -> None:
    x, kinds = blobs(200)
    head = fit_head(x, kinds)
    test_x, test_kinds = blobs(200, seed=1)
    with torch.no_grad():
        p = head(torch.from_numpy(test_x)).numpy()
    assert ((p >= 0.5) == (test_kinds == "music")).mean() > 0.9


def test_the_detector_is_the_mean_of_heads_of_different_seeds() -> None:
    x, kinds = blobs(100)
    heads = fit_heads(x, kinds, seed=3, n=3)
    one = [fit_head(x, kinds, seed) for seed in (3, 4, 5)]
    features = torch.from_numpy(blobs(50, seed=1)[0])
    with torch.no_grad():
        expected = torch.stack([head(features) for head in one]).mean(0)
        torch.testing.assert_close(heads(features), expected)
        assert not torch.equal(one[0](features), one[1](features))  # the seeds make different heads


def test_the_exported_heads_are_one_wide_layer_to_the_same_probability(tmp_path: Path) -> None:
    """The file gets the heads stacked (standardisation folded into the weights): the same mean
    probability within float rounding, from two matrix products whatever the number of heads."""
    x, kinds = blobs(100)
    heads = fit_heads(x, kinds, n=3)
    stacked = StackedHeads(heads)
    features = torch.from_numpy(blobs(50, seed=1)[0])
    with torch.no_grad():
        torch.testing.assert_close(stacked(features), heads(features), atol=1e-6, rtol=0)
    path = tmp_path / "heads.onnx"
    torch.onnx.export(stacked, (features,), str(path), input_names=["f"], dynamo=False)
    got = ort.InferenceSession(str(path)).run(None, {"f": features.numpy()})[0]
    np.testing.assert_allclose(got, heads(features).detach().numpy(), atol=1e-6, rtol=0)
    exported = onnx.load(str(path))
    assert [n.op_type for n in exported.graph.node].count("Gemm") == 2
    # Only the stacked weights are stored, not each head's own beside them.
    stored = sum(int(np.prod(t.dims)) for t in exported.graph.initializer)
    hidden = 3 * HIDDEN
    assert stored == hidden * (x.shape[1] + 1) + 3 * hidden + 3


def test_music_and_each_not_music_kind_weigh_alike() -> None:
    _, kinds = blobs(100)
    w = balanced_weights(kinds)
    assert w[kinds == "music"].sum() == pytest.approx(w[kinds != "music"].sum())
    assert w[kinds == "speech"].sum() == pytest.approx(w[kinds == "tones"].sum())


def test_a_group_stays_in_one_fold_and_every_fold_is_used() -> None:
    groups = np.array([f"g{i % 13}" for i in range(200)])
    folds = group_folds(groups)
    assert set(folds) == set(range(5))
    assert all(len(set(folds[groups == g])) == 1 for g in set(groups))


def test_the_threshold_keeps_music_called_not_music_within_its_share() -> None:
    scores = np.concatenate([np.linspace(0.2, 1.0, 1000), np.linspace(0.0, 0.5, 500)])
    kinds = np.array(["music"] * 1000 + ["speech"] * 500)
    threshold = choose_threshold(scores, kinds)
    assert (scores[kinds == "music"] < threshold).mean() <= 0.01
    assert threshold > 0.2


def test_rates_count_each_kind_source_and_condition() -> None:
    w = Windows()
    x = np.zeros((1, 4, 2), np.float32)
    for kind, source, condition in [
        ("music", "a", "clean"),
        ("music", "a", "mp3"),
        ("speech", "b", "clean"),
        ("noise", "c", "clean"),
    ]:
        w.add(x, kind, source, source, True, condition)
    got = rates(np.array([0.9, 0.1, 0.1, 0.9]), 0.5, w, np.arange(4))
    assert got["music_called_not_music"] == 0.5
    assert got["music_called_not_music_by_condition"] == {"clean": 0.0, "mp3": 1.0}
    assert got["not_music_called_not_music_by_kind"] == {"noise": 0.0, "speech": 1.0}
    assert got["not_music_called_not_music"] == 0.5


def test_a_part_is_built_again_when_what_it_is_built_from_changes(tmp_path: Path) -> None:
    tones = next(s for s in SOURCES if s.name == "synthetic-tones")
    args = (FrontEndSettings(), tmp_path, 0, tones, items_of(tones), voices_over(tones))
    path = part_path(tmp_path, tones.name, args)
    assert path == part_path(tmp_path, tones.name, tuple(args)) and path.parent == tmp_path / "parts"
    assert path != part_path(tmp_path, tones.name, (*args[:4], items_of(tones) + 1, ()))  # more items
    assert path != part_path(tmp_path, tones.name, (*args[:2], 1, *args[3:]))  # another seed
    music = next(s for s in SOURCES if s.kind == "music" and not s.held_out)
    assert voices_over(tones) == () and voices_over(music) and all(not v.held_out for v in voices_over(music))


def test_windows_survive_their_file(tmp_path: Path) -> None:
    w = Windows()
    rng = np.random.default_rng(0)
    w.add(rng.standard_normal((2, 30, 4)).astype(np.float32), "music", "s", "g", False, "clean", "jazz")
    w.add(rng.standard_normal((1, 7, 4)).astype(np.float32), "speech", "t", "t", True, "random")
    w.save(tmp_path / "w.npz")
    back = Windows.load(tmp_path / "w.npz")
    assert [x.shape for x in back.inputs] == [(30, 4), (30, 4), (7, 4)]
    np.testing.assert_allclose(back.inputs[2], w.inputs[2], atol=1e-2)  # stored as float16
    assert back.kind == w.kind and back.held_out == w.held_out and back.genre == w.genre


def genre_model(tmp_path: Path) -> Path:
    """A genre model without a detector: model 1.2.0, an ensemble of four networks."""
    path = tmp_path / "genre" / REFERENCE_MODEL.name
    path.parent.mkdir()
    shutil.copy(REFERENCE_MODEL, path)
    shutil.copy(card_path(REFERENCE_MODEL), card_path(path))
    return path


def test_the_features_are_the_members_mean_fused_vector_and_the_summary_heads_statistics(tmp_path: Path) -> None:
    """Model 1.2.0: four members, no summary head. The shipped genre network: one member and a summary head."""
    path = genre_model(tmp_path)
    model, width = with_features_output(path)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 50, 128)).astype(np.float32)
    probabilities, features = session.run([OUTPUT_NAMES[0], FEATURES], {INPUT_NAME: x})
    hidden = int(load_card(card_path(path)).members[0].network["hidden"])
    assert features.shape == (2, 2 * hidden) == (2, width) and np.isfinite(features).all()
    # The shipped genre network: the fused vector, then band stats, modulation spectra and correlations.
    assert with_features_output(DEFAULT_MODEL_PATH)[1] == 192 + 932
    genre = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(probabilities, genre.run([OUTPUT_NAMES[0]], {INPUT_NAME: x})[0])


def test_attaching_adds_the_music_output_and_leaves_the_genres_bit_for_bit(tmp_path: Path) -> None:
    path = genre_model(tmp_path)
    x, kinds = blobs(60, dim=with_features_output(path)[1])
    head = fit_heads(x, kinds, n=2)
    card = MusicDetectorCard(reads="test", hidden=8, heads=2, threshold=0.4, threshold_rule="test", sources={})
    out = tmp_path / "attached" / "model.onnx"
    attach(path, head, out, card, "9.9.9")
    model, genre_only = GenreModel(out, providers="cpu"), GenreModel(path, providers="cpu")
    assert model.has_music_detector and not genre_only.has_music_detector
    assert model.card.version == "9.9.9" and model.card.music_threshold() == 0.4
    inputs = np.random.default_rng(1).standard_normal((3, 80, 128)).astype(np.float32)
    both, genres = model.predict(inputs), genre_only.predict(inputs)
    np.testing.assert_array_equal(both.probabilities, genres.probabilities)
    assert both.music is not None and both.music.shape == (3,) and ((both.music >= 0) & (both.music <= 1)).all()
    assert genres.music is None
    with pytest.raises(SystemExit, match="has a music detector already"):
        attach(out, head, tmp_path / "twice.onnx", card, "9.9.10")
    assert [o.name for o in ort.InferenceSession(str(out)).get_outputs()] == [*OUTPUT_NAMES, MUSIC_OUTPUT]
    domains = [o.domain for o in onnx.load(str(out)).opset_import]
    assert len(domains) == len(set(domains))  # one import per domain, as quantization tools expect


def test_a_shipped_models_genre_part_takes_a_new_detector(tmp_path: Path) -> None:
    """The shipped file (detector and embedding) cut down to its genres, bit for bit, then detected again."""
    shipped = tmp_path / "shipped" / DEFAULT_MODEL_PATH.name
    shipped.parent.mkdir()
    shutil.copy(DEFAULT_MODEL_PATH, shipped)
    shutil.copy(card_path(DEFAULT_MODEL_PATH), card_path(shipped))
    part = genre_part(shipped, tmp_path / "work")
    assert part != shipped and [o.name for o in ort.InferenceSession(str(part)).get_outputs()] == [*OUTPUT_NAMES]
    card = load_card(card_path(part))
    assert card.music_detector is None and card.embedding is None
    assert card.version == load_card(card_path(shipped)).version
    inputs = np.random.default_rng(2).standard_normal((2, 60, 128)).astype(np.float32)
    before, after = GenreModel(shipped, providers="cpu"), GenreModel(part, providers="cpu")
    np.testing.assert_array_equal(before.predict(inputs).probabilities, after.predict(inputs).probabilities)
    x, kinds = blobs(60, dim=with_features_output(part)[1])
    card_in = MusicDetectorCard(reads="test", hidden=8, threshold=0.3, threshold_rule="test", sources={})
    attach(part, fit_heads(x, kinds, n=1), tmp_path / "again" / "model.onnx", card_in, "9.9.9")
    assert GenreModel(tmp_path / "again" / "model.onnx", providers="cpu").card.music_threshold() == 0.3
    assert genre_part(part, tmp_path / "work") == part  # a genre model alone is used as it is


def test_operating_points_trade_music_kept_for_not_music_caught() -> None:
    w = Windows()
    x = np.zeros((1, 4, 2), np.float32)
    rng = np.random.default_rng(0)
    scores = []
    for i in range(600):
        music = i < 400
        w.add(x, "music" if music else "speech", "s", "g", i % 3 == 0, "clean", "jazz" if music else "")
        scores.append(rng.uniform(0.2, 1.0) if music else rng.uniform(0.0, 0.4))
    rows = np.arange(600)
    points = operating_points(np.array(scores), w, rows[rows % 3 != 0], rows[rows % 3 == 0])
    thresholds = [float(p["threshold"]) for p in points]  # type: ignore[arg-type]
    assert thresholds == sorted(thresholds, reverse=True)  # less music lost, a lower threshold
    caught = [p["held_out_not_music_called_not_music"]["speech"] for p in points]  # type: ignore[index]
    assert caught == sorted(caught, reverse=True)


def test_a_missing_genre_model_says_what_to_run(tmp_path: Path) -> None:
    from training.detector import main

    with pytest.raises(SystemExit, match=r"export the genre model first"):
        main(["--genre-model", str(tmp_path / "absent.onnx"), "--version", "9.9.9", "--work", str(tmp_path / "w")])
