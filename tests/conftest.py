from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import GTZAN


@pytest.fixture(scope="session")
def gtzan() -> Path:
    """The shared GTZAN folder beside the checkout (never copied into the project)."""
    assert (GTZAN / "labels.csv").is_file(), f"the shared data is missing at {GTZAN}"
    return GTZAN


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """One local 2-CPU Ray for every test that needs one (each start costs seconds and memory), on
    127.0.0.1 only."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
