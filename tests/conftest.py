from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from tests.audio import music_like
from tests.helpers import GTZAN, export_teacher


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


@pytest.fixture(scope="session")
def exported_teacher(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """musicnn's MSD tagger exported to ONNX (training.teacher_export, once per test process), and a
    generated 16 kHz clip whose musicnn patches and TensorFlow outputs lie beside it (.reference.npz)."""
    folder = tmp_path_factory.mktemp("teacher")
    clip = folder / "clip.wav"
    sf.write(clip, music_like(10.0, 16_000, seed=3), 16_000, subtype="PCM_16")
    return export_teacher(folder, "--reference", str(clip)), clip
