from __future__ import annotations

import pytest

from model.runtime import GenreModel


@pytest.fixture(scope="session")
def model() -> GenreModel:
    """The shipped model on CPU, one thread."""
    return GenreModel(providers="cpu", intra_op_threads=1)
