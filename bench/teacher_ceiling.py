"""The teacher's own genre figures on the GTZAN audio clips: the ceiling on audio for a student.

    python -m bench.teacher_ceiling --teacher runs/teacher/MSD_musicnn.onnx --teacher runs/teacher/MTT_musicnn.onnx \
        [--network distilled=runs/distill/checkpoint.pt]

writes bench/results/teacher_ceiling.{json,md}. The 89 clips allow little: blues, classical, reggae
and rock are one artist each, so no probe that is kept from a clip's artist can learn those four
genres from these clips. Hence three figures:

- zero-shot: the MSD teacher's tags mapped to genres with no training (training.teacher.GENRE_TAGS),
  on the clips of the eight genres that have tags; nothing was fitted, so nothing leaks;
- by artist: a linear probe (a standardised logistic regression) on each clip's features, fitted on
  the other artists' clips (leave one artist out), scored on the genres with clips of two artists
  or more;
- by clip: the same probe left one clip out, all genres: the same artist's other clips are in its
  training set, so this one is optimistic (it is the issue's first hint, 0.94).

The probes read, per clip: each teacher's mean embedding, the teachers' side by side, our front
end's band statistics (training.baselines, the baseline), and, for each `--network`, the fused
vector of a network's first 30 s window beside an untrained network of the same shape (seed 0): how
much of the teacher a distilled student holds, against what a random network's features give.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.common import RESULTS, ROOT, markdown_table, write
from model.features import CLIP_FRAMES, model_input
from training.accuracy import summary
from training.artifacts import Checkpoint
from training.baselines import band_stats
from training.cv import bootstrap_interval
from training.data import Split, audio_path, gtzan_labels, load_audio_clips, read_labels
from training.folds import artist_groups
from training.network import GenreNet, NetworkConfig
from training.teacher import GENRE_TAGS, Teacher, cached_targets


class Probe(BaseModel):
    accuracy: float
    interval: tuple[float, float]  # 95 %, bootstrap over artists
    per_genre: dict[str, float | None]


class Probes(BaseModel):
    by_artist: Probe  # leave one artist out, scored on the genres with two artists or more
    by_clip: Probe  # leave one clip out (optimistic: the artist's other clips are learnt from)


class TeacherCeiling(BaseModel):
    clips: int
    by_artist_clips: int
    by_artist_genres: list[str]
    zero_shot: Probe | None  # the MSD tags mapped to genres, on the clips of genres that have tags
    zero_shot_clips: int
    probes: dict[str, Probes]  # features -> their probes


def out_of_fold_probe(features: np.ndarray, labels: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each fold's predictions by a probe fitted on the other folds."""
    predictions = np.empty_like(labels)
    for k in np.unique(fold):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
        probe.fit(features[fold != k], labels[fold != k])
        predictions[fold == k] = probe.predict(features[fold == k])
    return predictions


def _probe(truth: np.ndarray, predictions: np.ndarray, names: list[str], groups: list[str]) -> Probe:
    return Probe(
        accuracy=round(float(np.mean(truth == predictions)), 4),
        interval=bootstrap_interval((truth == predictions).astype(float), groups),
        per_genre=summary(truth, predictions, names)["per_genre"],
    )


def fused_vectors(net: GenreNet, clips: Split) -> np.ndarray:
    """A network's fused vector on each clip's first 30 s window, shape = (clips, 2 * hidden)."""
    with torch.no_grad():
        windows = [torch.from_numpy(model_input(grid[:CLIP_FRAMES]))[None] for grid in clips.grids]
        return np.concatenate([net.eval().pool(window)[0].numpy() for window in windows])


def ceiling(teachers: list[Teacher], networks: dict[str, Path], data: Path, cache: Path) -> TeacherCeiling:
    names = gtzan_labels(data)
    clips = load_audio_clips(data, labels=names)
    genre_of = {row["clip_id"]: row["genre"] for row in read_labels(data)}
    paths = [audio_path(data, genre_of[c], c) or Path(c) for c in clips.ids]
    targets = [cached_targets(path, teachers, cache) for path in paths]  # per clip, per teacher
    truth = np.asarray(clips.labels)
    group_of = artist_groups(data)
    groups = [group_of[c] for c in clips.ids]

    features = {
        t.name: np.stack([per_clip[i].embedding.mean(0) for per_clip in targets]) for i, t in enumerate(teachers)
    }
    if len(teachers) > 1:
        features[" + ".join(t.name for t in teachers)] = np.hstack([features[t.name] for t in teachers])
    features["band statistics"] = band_stats(clips)
    shapes: dict[NetworkConfig, list[str]] = {}  # one untrained network per shape
    for name, path in networks.items():
        meta, net = Checkpoint.load(path)
        features[name] = fused_vectors(net, clips)
        shapes.setdefault(meta.network, []).append(name)
    for shape, of_shape in shapes.items():
        torch.manual_seed(0)
        features[f"untrained network ({' and '.join(of_shape)}'s shape)"] = fused_vectors(GenreNet(shape), clips)

    artist = np.unique(groups, return_inverse=True)[1]
    artists_of = {g: {a for a, t in zip(groups, truth, strict=True) if t == g} for g in set(truth.tolist())}
    several = np.array([len(artists_of[t]) >= 2 for t in truth])
    kept = [g for g, keep in zip(groups, several, strict=True) if keep]
    probes = {
        name: Probes(
            by_artist=_probe(truth[several], out_of_fold_probe(f, truth, artist)[several], names, kept),
            by_clip=_probe(truth, out_of_fold_probe(f, truth, np.arange(len(truth))), names, groups),
        )
        for name, f in features.items()
    }

    tagged = np.array([names[label] in GENRE_TAGS for label in truth])
    zero_shot = None
    msd = next((i for i, t in enumerate(teachers) if t.has_genre_tags), None)
    if msd is not None:
        guesses = np.array([names.index(teachers[msd].zero_shot_genre(per_clip[msd])) for per_clip in targets])
        tagged_groups = [g for g, t in zip(groups, tagged, strict=True) if t]
        zero_shot = _probe(truth[tagged], guesses[tagged], names, tagged_groups)
    return TeacherCeiling(
        clips=len(truth),
        by_artist_clips=int(several.sum()),
        by_artist_genres=sorted({names[t] for t in truth[several]}),
        zero_shot=zero_shot,
        zero_shot_clips=int(tagged.sum()),
        probes=probes,
    )


def table(result: TeacherCeiling) -> str:
    def cell(probe: Probe) -> str:
        return f"{probe.accuracy:.3f} ({probe.interval[0]:.2f}-{probe.interval[1]:.2f})"

    rows: list[list[object]] = [[name, cell(p.by_artist), cell(p.by_clip)] for name, p in result.probes.items()]
    if result.zero_shot is not None:
        rows.append([f"MSD tags, zero-shot ({result.zero_shot_clips} clips of 8 genres)", cell(result.zero_shot), ""])
    header = [
        "features",
        f"probe left out by artist ({result.by_artist_clips} clips, 6 genres)",
        f"by clip ({result.clips} clips, optimistic)",
    ]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> TeacherCeiling:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, action="append", required=True, help="an exported teacher")
    parser.add_argument("--network", action="append", default=[], help="NAME=checkpoint.pt: a network to probe too")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    parser.add_argument("--cache", type=Path, default=Path("runs/teacher/targets"))
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args(argv)
    networks = {name: Path(path) for name, _, path in (n.partition("=") for n in args.network)}
    result = ceiling([Teacher(path) for path in args.teacher], networks, args.data, args.cache)
    write("teacher_ceiling", result.model_dump(), table(result), args.out)
    return result


if __name__ == "__main__":
    main()
