"""The teacher of model 3.0: musicnn exported to ONNX against TensorFlow, our copy of its front end
against musicnn's own, and its targets cached."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from tests.audio import music_like
from tests.helpers import ROOT, teacher_python
from training.teacher import (
    BATCH_PATCHES,
    GENRE_TAGS,
    PATCH_FRAMES,
    PATCH_SECONDS,
    SAMPLE_RATE_HZ,
    Targets,
    Teacher,
    audio_files,
    cached_targets,
    log_mel,
    patches,
    read_16k,
)


def test_the_note_names_the_tags_input_and_check(exported_teacher: tuple[Path, Path]) -> None:
    note = json.loads(exported_teacher[0].with_suffix(".json").read_text())
    assert len(note["tags"]) == 50 and all(t in note["tags"] for tags in GENRE_TAGS.values() for t in tags)
    assert note["input"] == {"name": "log_mel", "frames": PATCH_FRAMES, "mel_bands": 96}
    assert note["check"]["largest_difference"] <= note["check"]["tolerance"] == 1e-4
    assert note["packages"]["musicnn"] == "0.1.0"


def test_onnx_runtime_matches_tensorflow_on_a_clip(exported_teacher: tuple[Path, Path]) -> None:
    path, _ = exported_teacher
    reference = np.load(path.with_name("MSD_musicnn.reference.npz"))
    got = Teacher(path).on_patches(reference["patches"])
    assert got.embedding.shape == (3, 200) and got.tag_logits.shape == (3, 50)
    np.testing.assert_allclose(got.embedding, reference["embedding"], atol=1e-4)
    np.testing.assert_allclose(got.tag_logits, reference["tag_logits"], atol=1e-4)


def test_our_front_end_is_musicnns(exported_teacher: tuple[Path, Path]) -> None:
    """training.teacher's log-mel (librosa here, numpy 2) gives musicnn's patches (its numpy 1), and
    so the teacher's outputs, for the same audio."""
    path, clip = exported_teacher
    reference = np.load(path.with_name("MSD_musicnn.reference.npz"))
    waveform, rate = sf.read(clip, dtype="float32")
    assert rate == SAMPLE_RATE_HZ
    np.testing.assert_allclose(patches(log_mel(waveform)), reference["patches"], atol=1e-3)
    from_file = Teacher(path)(read_16k(clip))
    np.testing.assert_allclose(from_file.embedding, reference["embedding"], atol=1e-3)
    np.testing.assert_allclose(from_file.tag_logits, reference["tag_logits"], atol=1e-3)


def test_a_missing_checkpoint_fails_the_export(tmp_path: Path) -> None:
    """musicnn's own loader would carry on with random weights; the export must not."""
    code = (
        "import sys; from pathlib import Path; import musicnn.models as m; "
        "m.__file__ = str(Path(sys.argv[1]) / 'models.py'); "
        "from training.teacher_export import export; export('MSD_musicnn', Path(sys.argv[1]))"
    )
    done = subprocess.run(
        [teacher_python(), "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert "not a valid checkpoint" in done.stderr
    assert not (tmp_path / "MSD_musicnn.onnx").exists()


def test_patches_cut_musicnns_way_and_loop_short_audio() -> None:
    frames = np.arange(2 * PATCH_FRAMES + 50, dtype=np.float32)[:, None] * np.ones(96, np.float32)
    cut = patches(frames)
    assert cut.shape == (2, PATCH_FRAMES, 96)
    assert cut[1, 0, 0] == PATCH_FRAMES  # non-overlapping; the last partial patch is dropped
    short = patches(frames[:10])
    assert short.shape == (1, PATCH_FRAMES, 96)
    assert short[0, 10, 0] == 0 and short[0, 25, 0] == 5  # looped


def test_targets_between_picks_the_patches_of_a_span() -> None:
    targets = Targets(np.arange(10, dtype=np.float32)[:, None], np.zeros((10, 50), np.float32))
    assert targets.between(0.0, 3 * PATCH_SECONDS).embedding[:, 0].tolist() == [0, 1, 2]
    assert targets.between(2 * PATCH_SECONDS, 2.5 * PATCH_SECONDS).embedding[:, 0].tolist() == [2]
    assert targets.between(100.0, 130.0).embedding[:, 0].tolist() == [9]  # past the end: the last


def test_targets_are_cached_by_content(
    exported_teacher: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = Teacher(exported_teacher[0])
    clip = tmp_path / "a.wav"
    sf.write(clip, music_like(4.0, SAMPLE_RATE_HZ, seed=1), SAMPLE_RATE_HZ)
    first = teacher.cached(clip, tmp_path / "cache")

    def no_teacher(waveform: np.ndarray) -> Targets:
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(Teacher, "__call__", lambda self, waveform: no_teacher(waveform))
    again = teacher.cached(clip, tmp_path / "cache")
    np.testing.assert_array_equal(first.embedding, again.embedding)
    sf.write(clip, music_like(4.0, SAMPLE_RATE_HZ, seed=2), SAMPLE_RATE_HZ)  # new content: a new entry
    with pytest.raises(AssertionError, match="cache was not used"):
        teacher.cached(clip, tmp_path / "cache")
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 1


def test_zero_shot_reads_the_genre_tags(exported_teacher: tuple[Path, Path]) -> None:
    teacher = Teacher(exported_teacher[0])
    assert teacher.has_genre_tags
    logits = np.full((4, 50), -5.0, np.float32)
    logits[:, teacher.tags.index("Hip-Hop")] = 3.0
    assert teacher.zero_shot_genre(Targets(np.zeros((4, 200), np.float32), logits)) == "hiphop"


def test_audio_files_finds_audio_under_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/b/x.flac", "a/y.ogg", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in audio_files([tmp_path / "a"])] == ["x.flac", "y.ogg"]


def test_the_command_caches_every_file(exported_teacher: tuple[Path, Path], tmp_path: Path) -> None:
    folder = tmp_path / "music"
    folder.mkdir()
    for seed in range(2):
        sf.write(folder / f"{seed}.wav", music_like(3.5, 22050, seed=seed), 22050)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.teacher",
            str(folder),
            "--teacher",
            str(exported_teacher[0]),
            "--cache",
            str(tmp_path / "c"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "2/2 files" in done.stdout
    assert len(list((tmp_path / "c").rglob("*.npz"))) == 2


def test_several_teachers_share_one_decode(
    exported_teacher: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = Teacher(exported_teacher[0]), Teacher(exported_teacher[0])
    second.name = "another"
    decoded: list[Path] = []

    def counted(path: Path) -> np.ndarray:
        decoded.append(path)
        return read_16k(path)

    monkeypatch.setattr("training.teacher.read_16k", counted)
    a, b = cached_targets(exported_teacher[1], [first, second], tmp_path)
    assert len(decoded) == 1
    np.testing.assert_array_equal(a.embedding, b.embedding)
    assert {p.parts[-3] for p in tmp_path.rglob("*.npz")} == {"MSD_musicnn", "another"}
    cached_targets(exported_teacher[1], [first, second], tmp_path)
    assert len(decoded) == 1  # both from the cache


def test_a_long_track_goes_through_in_batches(exported_teacher: tuple[Path, Path]) -> None:
    """ONNX Runtime keeps its largest batch's memory: a long track is cut into bounded batches,
    with the same results as one batch."""
    teacher = Teacher(exported_teacher[0])
    many = np.random.default_rng(0).uniform(0, 3, (BATCH_PATCHES * 2 + 3, PATCH_FRAMES, 96)).astype(np.float32)
    session, sizes = teacher._session, []

    def run(names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        sizes.append(len(feeds["log_mel"]))
        return session.run(names, feeds)  # type: ignore[no-any-return]

    teacher._session = SimpleNamespace(run=run)
    batched = teacher.on_patches(many)
    assert sizes == [BATCH_PATCHES, BATCH_PATCHES, 3]
    assert batched.embedding.shape == (len(many), 200)
    teacher._session = session
    np.testing.assert_allclose(batched.embedding[-3:], teacher.on_patches(many[-3:]).embedding, atol=1e-5)
