"""The teacher's own genre figures on the GTZAN audio clips: the ceiling on audio for a student.

    python -m bench.teacher_ceiling --teacher runs/teacher/MSD_musicnn.onnx --teacher runs/teacher/MTT_musicnn.onnx

writes bench/results/teacher_ceiling.{json,md}: each teacher alone, then all of them together.

The 89 clips allow little: blues, classical, reggae and rock are one artist each, so no probe that
is kept from a clip's artist can learn those four genres from these clips. Hence three figures:

- zero-shot: the teacher's tags mapped to genres with no training (training.teacher.GENRE_TAGS),
  on the clips of the eight genres that have tags; nothing was fitted, so nothing leaks;
- by artist: a linear probe (a standardised logistic regression) on each clip's mean teacher
  embedding, fitted on the other artists' clips (leave one artist out) and scored on the genres
  with clips of two artists or more;
- by clip: the same probe left one clip out, all genres: the same artist's other clips are in its
  training set, so this one is optimistic (it is the issue's first hint, 0.94).

Each probe is also fitted on our front end's band statistics (training.baselines), like for like.
With several teachers the probe reads their embeddings side by side.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.common import RESULTS, ROOT, markdown_table, write
from training.accuracy import summary
from training.baselines import band_stats
from training.cv import bootstrap_interval
from training.data import audio_path, gtzan_labels, load_audio_clips, read_labels
from training.folds import artist_groups
from training.teacher import GENRE_TAGS, Teacher


class Probe(BaseModel):
    accuracy: float
    interval: tuple[float, float]  # 95 %, bootstrap over artists
    per_genre: dict[str, float | None]


class Figures(BaseModel):
    clips: int
    teacher: Probe
    band_statistics: Probe  # our front end: the same probe, folds and clips


class TeacherCeiling(BaseModel):
    teachers: list[str]
    zero_shot: Probe | None  # tags mapped to genres, on the clips of genres that have tags (MSD tags only)
    zero_shot_clips: int
    by_artist: Figures  # leave one artist out, scored on genres with two artists or more
    by_artist_genres: list[str]
    by_clip: Figures  # leave one clip out (optimistic: the artist's other clips are learnt from)


def out_of_fold_probe(features: np.ndarray, labels: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each fold's predictions by a probe fitted on the other folds."""
    predictions = np.empty_like(labels)
    for k in np.unique(fold):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
        probe.fit(features[fold != k], labels[fold != k])
        predictions[fold == k] = probe.predict(features[fold == k])
    return predictions


def _probe(truth: np.ndarray, predictions: np.ndarray, names: list[str], groups: list[str]) -> Probe:
    figures = summary(truth, predictions, names)
    return Probe(
        accuracy=round(float(np.mean(truth == predictions)), 4),
        interval=bootstrap_interval((truth == predictions).astype(float), groups),
        per_genre=figures["per_genre"],
    )


def _figures(
    features: list[np.ndarray],
    truth: np.ndarray,
    fold: np.ndarray,
    scored: np.ndarray,
    names: list[str],
    groups: list[str],
) -> Figures:
    """Probes on each feature set (teacher, band statistics), left out by `fold`, scored where `scored`."""
    kept = [g for g, keep in zip(groups, scored, strict=True) if keep]
    teacher, bands = (out_of_fold_probe(f, truth, fold)[scored] for f in features)
    return Figures(
        clips=int(scored.sum()),
        teacher=_probe(truth[scored], teacher, names, kept),
        band_statistics=_probe(truth[scored], bands, names, kept),
    )


def ceiling(teachers: list[Teacher], data: Path, cache: Path) -> TeacherCeiling:
    names = gtzan_labels(data)
    group_of = artist_groups(data)
    clips = load_audio_clips(data, labels=names)
    genre_of = {row["clip_id"]: row["genre"] for row in read_labels(data)}
    paths = [audio_path(data, genre_of[c], c) or Path(c) for c in clips.ids]
    targets = [[teacher.cached(p, cache) for p in paths] for teacher in teachers]
    truth = np.asarray(clips.labels)
    groups = [group_of[c] for c in clips.ids]

    embeddings = np.hstack([np.stack([t.embedding.mean(0) for t in per_clip]) for per_clip in targets])
    features = [embeddings, band_stats(clips)]
    artist = np.unique(groups, return_inverse=True)[1]
    artists_of = {g: {a for a, t in zip(groups, truth, strict=True) if t == g} for g in set(truth.tolist())}
    several = np.array([len(artists_of[t]) >= 2 for t in truth])

    tagged = np.array([names[label] in GENRE_TAGS for label in truth])
    zero_shot = None
    for teacher, per_clip in zip(teachers, targets, strict=True):
        if teacher.has_genre_tags:
            guesses = np.array([names.index(teacher.zero_shot_genre(t)) for t in per_clip])
            kept = [g for g, t in zip(groups, tagged, strict=True) if t]
            zero_shot = _probe(truth[tagged], guesses[tagged], names, kept)
            break
    return TeacherCeiling(
        teachers=[t.name for t in teachers],
        zero_shot=zero_shot,
        zero_shot_clips=int(tagged.sum()),
        by_artist=_figures(features, truth, artist, several, names, groups),
        by_artist_genres=sorted({names[t] for t in truth[several]}),
        by_clip=_figures(features, truth, np.arange(len(truth)), np.ones(len(truth), bool), names, groups),
    )


def table(results: list[TeacherCeiling]) -> str:
    rows: list[list[object]] = []
    for r in results:
        name = " + ".join(r.teachers)
        if r.zero_shot is not None:
            interval = f"{r.zero_shot.interval[0]}-{r.zero_shot.interval[1]}"
            rows.append([name, f"zero-shot tags, 8 genres ({r.zero_shot_clips})", r.zero_shot.accuracy, interval, ""])
        for view, figures in (("by artist", r.by_artist), ("by clip (optimistic)", r.by_clip)):
            rows.append(
                [
                    name,
                    f"probe left out {view} ({figures.clips})",
                    figures.teacher.accuracy,
                    f"{figures.teacher.interval[0]}-{figures.teacher.interval[1]}",
                    figures.band_statistics.accuracy,
                ]
            )
    return markdown_table(["teacher", "figure (clips)", "accuracy", "95 % interval", "band statistics"], rows)


def main(argv: list[str] | None = None) -> list[TeacherCeiling]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, action="append", required=True, help="an exported teacher")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "gtzan")
    parser.add_argument("--cache", type=Path, default=Path("runs/teacher/targets"))
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the results")
    args = parser.parse_args(argv)
    teachers = [Teacher(path) for path in args.teacher]
    sets = [[t] for t in teachers] + ([teachers] if len(teachers) > 1 else [])
    results = [ceiling(chosen, args.data, args.cache) for chosen in sets]
    write("teacher_ceiling", {"results": [r.model_dump() for r in results]}, table(results), args.out)
    return results


if __name__ == "__main__":
    main()
