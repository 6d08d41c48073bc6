"""Self-supervised pretraining on unlabelled music, and labelled runs that start from it."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import write_label_folder
from training.artifacts import CLASSIFIER, CvReport, Pretrained
from training.data import DataError
from training.network import GenreNet, NetworkConfig
from training.pretrain import PretrainConfig, load_tracks, main, nt_xent, pooled, pretrain
from training.probes import ProbeReport, embeddings
from training.probes import main as probes_main
from training.train import TrainConfig, parse_args, train

SMALL = NetworkConfig(hidden=16, frame_dim=32, conv_channels=8, attention_dim=16, co_variation=16)


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nine generated tracks in three formats, nested, beside a notes file, a broken WAV and a
    second copy of a track."""
    root = write_label_folder(tmp_path_factory.mktemp("music") / "music", per_label=3, seconds=6.0)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    first = sorted(root.rglob("*.flac"))[0]
    shutil.copy(first, root / "zz-copy.flac")
    return root


@pytest.fixture(scope="module")
def pretrained(music: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Pretrained]:
    out = tmp_path_factory.mktemp("pretrain")
    result = pretrain(PretrainConfig(music=music, out=out, epochs=2, batch_size=4, network=SMALL))
    return out, result


def test_nt_xent_is_low_for_matched_pairs_and_chance_for_indistinct_views() -> None:
    a = torch.eye(4, 8)  # four orthogonal unit vectors
    matched = nt_xent(a, a.clone(), temperature=0.1).item()
    crossed = nt_xent(a, a.roll(1, dims=0), temperature=0.1).item()
    same = torch.nn.functional.normalize(torch.ones(4, 8), dim=1)
    assert matched < 1e-3 < 5.0 < crossed
    assert nt_xent(same, same, temperature=0.1).item() == pytest.approx(math.log(2 * 4 - 1), abs=1e-5)


def test_pretraining_reads_every_track_and_reports_the_unreadable(pretrained: tuple[Path, Pretrained]) -> None:
    out, result = pretrained
    assert result.tracks == 9
    assert result.seconds_of_music == pytest.approx(9 * 6, rel=0.03)  # not their loops to 30 s
    broken, copy = (out / "skipped.txt").read_text().splitlines()
    assert broken.startswith("broken.wav: ")
    assert copy.startswith("zz-copy.flac: the same file as ") and copy.endswith(".flac")
    assert result.network == SMALL and result.packages["torch"] == torch.__version__
    assert math.isfinite(result.final_loss)


def test_max_tracks_reads_only_the_first_files_by_path(music: Path) -> None:
    audio = sorted(p for p in music.rglob("*") if p.suffix in {".wav", ".flac", ".ogg"})
    first = [p.relative_to(music).as_posix() for p in audio[:4]]
    assert "broken.wav" in first  # counted among the four, though unreadable
    tracks = load_tracks(music, max_tracks=4)
    assert tracks.names == [name for name in first if name != "broken.wav"]
    assert [s.split(":")[0] for s in tracks.skipped] == ["broken.wav"]


def test_the_pretrained_file_moves_every_weight_but_holds_no_classifier(pretrained: tuple[Path, Pretrained]) -> None:
    out, _ = pretrained
    saved = torch.load(out / "pretrained.pt", weights_only=True)["model"]
    torch.manual_seed(0)  # pretraining's seed: the same initial weights
    initial = GenreNet(SMALL).state_dict()
    assert not any(k.startswith(CLASSIFIER) for k in saved)
    assert set(saved) == {k for k in initial if not k.startswith(CLASSIFIER)}
    moved = [k for k in saved if saved[k].is_floating_point() and not torch.equal(saved[k], initial[k])]
    assert len(moved) == sum(v.is_floating_point() for v in saved.values())


def test_a_network_for_any_labels_loads_it_and_keeps_its_own_classifier(pretrained: tuple[Path, Pretrained]) -> None:
    out, _ = pretrained
    net = GenreNet(dataclasses.replace(SMALL, n_classes=3))
    classifier = {k: v.clone() for k, v in net.state_dict().items() if k.startswith(CLASSIFIER)}
    Pretrained.load_into(out / "pretrained.pt", net)
    saved = torch.load(out / "pretrained.pt", weights_only=True)["model"]
    for k, v in net.state_dict().items():
        assert torch.equal(v, classifier[k] if k.startswith(CLASSIFIER) else saved[k]), k
    with pytest.raises(ValueError, match="another network"):
        Pretrained.load_into(out / "pretrained.pt", GenreNet(dataclasses.replace(SMALL, hidden=24)))


def test_a_labelled_run_starts_from_it(pretrained: tuple[Path, Pretrained], music: Path, tmp_path: Path) -> None:
    out, _ = pretrained
    cfg = TrainConfig(data=music, out=tmp_path / "run", epochs=1, network=SMALL, init=out / "pretrained.pt")
    report = train(cfg)
    assert report.config["init"] == str(out / "pretrained.pt") and "init" not in report.portable_config()
    recorded = report.portable_config()["pretrained"]
    assert recorded["tracks"] == 9 and recorded["config"]["epochs"] == 2 and "music" not in recorded["config"]
    assert str(out) not in json.dumps(report.portable_config())

    other = dataclasses.replace(cfg, out=tmp_path / "other", network=dataclasses.replace(SMALL, hidden=24))
    with pytest.raises(DataError, match=r"--init .*another network"):
        train(other)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=r"--init .*junk\.pt"):
        train(dataclasses.replace(cfg, out=tmp_path / "junk", init=tmp_path / "junk.pt"))
    assert parse_args(["--init", "runs/pretrain/pretrained.pt"]).init == Path("runs/pretrain/pretrained.pt")


def test_too_little_music_or_a_bad_config_is_a_clear_error(
    music: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit, match="has 9 readable audio files; a batch contrasts 32 tracks"):
        main(["--music", str(music), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="is not a folder"):
        main(["--music", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        main(["--music", str(music), "--batch-size", "1"])
    assert "--batch-size must be at least 2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--music", str(music), "--max-tracks", "-1"])
    assert "--max-tracks must be 0 (all) or more, not -1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_probes_weigh_the_pretrained_fused_vector_against_the_untrained_network(
    pretrained: tuple[Path, Pretrained], small_cv: tuple[Path, list[Path], CvReport], tmp_path: Path
) -> None:
    out, _ = pretrained
    data, runs, cv = small_cv
    inputs = [np.random.default_rng(i).standard_normal((344, SMALL.n_features)).astype(np.float32) for i in range(3)]
    found = embeddings(out / "pretrained.pt", inputs)
    torch.manual_seed(0)
    initial = pooled(GenreNet(SMALL), inputs)
    trained, untrained = found[f"pretrained {out / 'pretrained.pt'}"], found[f"untrained {out / 'pretrained.pt'}"]
    np.testing.assert_array_equal(untrained, initial)
    assert trained.shape == (3, 2 * SMALL.hidden) and not np.allclose(trained, untrained)

    report_path = tmp_path / "probes.json"
    run_flags = [arg for run in runs for arg in ("--run", str(run))]
    probes_main(["--data", str(data), *run_flags, "--encoder", str(out / "pretrained.pt"), "--out", str(report_path)])
    report = ProbeReport.model_validate_json(report_path.read_text())
    assert list(report.probes)[-2:] == list(found) and report.n == cv.n
    assert all(report.probes[name].dims == 2 * SMALL.hidden for name in found)
    assert report.network_accuracy is not None and all(f.fused_accuracy is not None for f in report.probes.values())

    # Without the folds' runs: the probes alone, on the recipe's folds (not small_cv's) of every labelled array.
    probes_main(["--data", str(data), "--encoder", str(out / "pretrained.pt"), "--out", str(report_path)])
    alone = ProbeReport.model_validate_json(report_path.read_text())
    assert alone.n == cv.n and alone.network_accuracy is None and list(alone.probes) == list(report.probes)
    assert alone.protocol.startswith(f"{TrainConfig.cv_folds}-fold") and TrainConfig.cv_folds != len(runs)
    for figures in alone.probes.values():
        assert figures.fused_accuracy is None and figures.fused_gain_95 is None and figures.w_per_fold is None
        assert len(figures.c_per_fold) == TrainConfig.cv_folds and 0 <= figures.accuracy <= 1
