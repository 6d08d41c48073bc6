"""training.embedding: the fused vector as an output, with every other output bit for bit."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.common import REFERENCE_MODEL
from model.card import card_path, load_card
from model.runtime import GenreModel
from training.embedding import main


def test_the_embedding_is_added_and_nothing_else_moves(tmp_path: Path) -> None:
    """On model 1.2.0 (four members, no detector): the output is their fused vectors' mean."""
    before = tmp_path / "before.onnx"
    shutil.copy(REFERENCE_MODEL, before)
    shutil.copy(card_path(REFERENCE_MODEL), card_path(before))
    after = tmp_path / "after.onnx"
    main(["--model", str(before), "--out", str(after), "--version", "1.2.1"])
    old, new = GenreModel(before, providers="cpu"), GenreModel(after, providers="cpu")
    card = load_card(card_path(after))
    hidden = int(card.members[0].network["hidden"])
    assert card.version == "1.2.1" and card.embedding is not None and card.embedding.dimension == 2 * hidden
    assert new.has_embedding and not old.has_embedding
    x = np.random.default_rng(1).standard_normal((2, 300, old.front_end.n_features)).astype(np.float32)
    a, b = old.predict(x), new.predict(x)
    assert np.array_equal(a.probabilities, b.probabilities) and np.array_equal(a.attention, b.attention)
    assert b.embedding is not None and b.embedding.shape == (2, 2 * hidden) and np.isfinite(b.embedding).all()
    assert not np.allclose(b.embedding[0], b.embedding[1])  # it depends on the input
    with pytest.raises(SystemExit, match="already"):
        main(["--model", str(after), "--out", str(tmp_path / "twice.onnx"), "--version", "1.2.2"])
