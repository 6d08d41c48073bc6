"""Cross-validate a past release's recipe on today's folds, with the code it shipped with.

    python -m training.past_release_cv --data DIR --commit 4c1052a --version 1.2.0 \
        --seed 0 --seed 1 --seed 2 --seed 3 --work runs/cv-1.2.0 \
        --out training/results/cv_1.2.0.json                               (`make cv-1.2.0`)

Releases up to 1.3.0 were scored only on GTZAN's `valid` split, after early-stopping on that same
split. To set one against today's recipe, this takes its `model/` and `training/` from git as they
were at COMMIT and runs them on each of training.folds' artist-disjoint folds: trained on the other
folds (their arrays and audio clips, as the release trained on `train`'s), one run per seed, each
keeping its last epoch as training.cv's runs do (the one line changed in the old code; its OneCycle
schedule ends there), the seeds exported as that release exported its ensemble, and the ONNX file
scored on the fold's arrays and audio clips by the release's own evaluation. Out of fold: the
ensemble's accuracy with a bootstrap interval over artists, per fold and per genre, each seed's
alone, and the audio route's. A finished run or export is kept, so the command resumes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from training.accuracy import summary
from training.cv import bootstrap_interval
from training.data import read_labels
from training.folds import artist_folds, artist_groups

N_FOLDS = 5
# Keep every epoch's weights, so the last one stays: the old loop saved only on a better `valid`
# accuracy, which here would be the held-out fold's.
KEEP_BEST = 'if accuracy > float(best["valid_accuracy"]):  # type: ignore[arg-type]'
KEEP_LAST = "if True:  # training.past_release_cv: keep the last epoch, never pick by the fold"
# Run inside the old code: the exported file's probabilities for the fold's arrays, by its own front end.
SCORE_ARRAYS = """
import json, sys
from pathlib import Path
from model.features import model_input
from model.runtime import GenreModel
from training.data import load_arrays
model = GenreModel(Path(sys.argv[1]), providers="cpu")
clips = load_arrays(Path(sys.argv[2]), "valid")
rows = [model.predict(model_input(grid)[None])[0][0].tolist() for grid in clips.grids]
print(json.dumps({"ids": clips.ids, "probabilities": rows}))
"""


class PastReleaseCv(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: str
    release: str
    commit: str
    seeds: list[int]
    labels: list[str]
    n: int
    accuracy: float  # the seeds' ensemble, as the release shipped them
    interval_95: tuple[float, float]  # bootstrap over artists
    fold_accuracies: list[float]
    per_genre: dict[str, float | None]
    seed_accuracies: list[float]  # each seed's network alone, out of fold
    audio_n: int
    audio_accuracy: float | None  # the ensemble on the folds' audio clips, through the release's pipeline
    audio_agreement: float | None  # with its array route, on the same clips


def checkout(commit: str, code: Path) -> Path:
    """COMMIT's `model/` and `training/` under CODE, its training loop made to keep the last epoch."""
    loop, stamp = code / "training" / "train.py", code / "COMMIT"
    if stamp.is_file() and stamp.read_text() != commit:
        raise SystemExit(f"{code} holds the code of {stamp.read_text()}, not {commit}: use another --work")
    if not loop.is_file():
        tree = subprocess.run(["git", "archive", commit, "model", "training"], capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(tree)) as archive:
            archive.extractall(code, filter="data")
        stamp.write_text(commit)
    source = loop.read_text()
    if KEEP_LAST not in source:
        if source.count(KEEP_BEST) != 1:
            raise SystemExit(f"{commit}'s training loop does not save the way this harness expects")
        loop.write_text(source.replace(KEEP_BEST, KEEP_LAST))
    return code


def fold_folder(data: Path, fold_of: dict[str, int], fold: int, out: Path) -> Path:
    """A GTZAN-layout folder whose `valid` split is FOLD and whose `train` split is the other folds
    (FOLD_OF: training.folds.artist_folds); the arrays, audio and artists are links to DATA's."""
    out.mkdir(parents=True, exist_ok=True)
    rows = read_labels(data)
    with open(out / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "split": "valid" if fold_of[row["clip_id"]] == fold else "train"})
    for name in ("spectrograms.npz", "audio", "artists.csv"):
        if not (out / name).exists():
            (out / name).symlink_to((data / name).resolve())
    return out


def fold_work(work: Path, fold: int) -> Path:
    """Where a fold's runs, ensemble and logs go."""
    return work / f"fold{fold}"


def run_folder(work: Path, fold: int, seed: int) -> Path:
    return fold_work(work, fold) / f"seed{seed}"


def run_logged(command: list[str], code: Path, log: Path) -> None:
    with open(log, "w") as f:
        result = subprocess.run(command, cwd=code, stdout=f, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed; see {log}")


def train_folds(code: Path, folds: list[Path], seeds: list[int], work: Path, jobs: int, train_args: list[str]) -> None:
    """Every (seed, fold) run not done yet, JOBS at once, one thread each, TRAIN_ARGS passed on."""
    todo = [
        (seed, k)
        for seed in seeds
        for k in range(len(folds))
        if not (run_folder(work, k, seed) / "report.json").is_file()
    ]

    def train(seed: int, k: int) -> None:
        run = run_folder(work, k, seed)
        run.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "training.train", "--data", str(folds[k].resolve())]
        command += ["--seed", str(seed), "--threads", "1", "--out", str(run.resolve()), *train_args]
        run_logged(command, code, run.with_suffix(".log"))

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda job: train(*job), todo))


@dataclass
class FoldScores:
    """The release's ensemble on one held-out fold."""

    labels: list[str]
    ids: list[str]
    probabilities: np.ndarray  # (clips, labels)
    valid: dict[str, Any]  # its card's metrics on the fold: accuracy, audio_n, audio_accuracy, ...


def export_fold(code: Path, folder: Path, work: Path, fold: int, seeds: list[int], release: str) -> FoldScores:
    """The fold's seeds exported as one ONNX ensemble and scored by the release's own code."""
    onnx = (fold_work(work, fold) / f"seeds{'-'.join(map(str, seeds))}.onnx").resolve()
    if not onnx.with_suffix(".json").is_file():
        command = [sys.executable, "-m", "training.export", "--out", str(onnx), "--data", str(folder.resolve())]
        command += [arg for seed in seeds for arg in ("--run", str(run_folder(work, fold, seed).resolve()))]
        run_logged([*command, "--version", release], code, onnx.parent / "export.log")
    scored = subprocess.run(
        [sys.executable, "-c", SCORE_ARRAYS, str(onnx), str(folder.resolve())],
        cwd=code,
        capture_output=True,
        text=True,
        check=True,
    )
    arrays = json.loads(scored.stdout.splitlines()[-1])
    card = json.loads(onnx.with_suffix(".json").read_text())
    return FoldScores(card["labels"], arrays["ids"], np.array(arrays["probabilities"]), card["metrics"]["valid"])


def seed_accuracy(work: Path, seed: int, folds: list[FoldScores]) -> float:
    """One seed's networks alone, out of fold: each run's `valid` accuracy is its fold's."""
    correct = sum(
        float(json.loads((run_folder(work, k, seed) / "report.json").read_text())["valid_accuracy"]) * len(fold.ids)
        for k, fold in enumerate(folds)
    )
    return round(correct / sum(len(fold.ids) for fold in folds), 4)


def pooled(
    data: Path, work: Path, folds: list[FoldScores], seeds: list[int], release: str, commit: str
) -> PastReleaseCv:
    labels = folds[0].labels
    genre_of = {row["clip_id"]: row["genre"] for row in read_labels(data)}
    groups = artist_groups(data)
    ids = [clip_id for fold in folds for clip_id in fold.ids]
    truth = np.array([labels.index(genre_of[clip_id]) for clip_id in ids])
    predictions = np.concatenate([fold.probabilities.argmax(1) for fold in folds])
    hits = (predictions == truth).astype(float)
    fold_hits = np.split(hits, np.cumsum([len(fold.ids) for fold in folds])[:-1])
    audio_n = sum(int(fold.valid["audio_n"]) for fold in folds)

    def audio_mean(key: str) -> float | None:  # a fold without audio clips has null figures
        total = sum(int(fold.valid["audio_n"]) * float(fold.valid[key]) for fold in folds if fold.valid["audio_n"])
        return round(total / audio_n, 4) if audio_n else None

    return PastReleaseCv(
        protocol=(
            f"{release}'s training and export code (git {commit}) on training.folds' {N_FOLDS} artist-disjoint "
            "folds of GTZAN train + valid: each seed trained on the other folds' arrays and audio clips and kept "
            "at its last epoch, the seeds exported as one ensemble and scored on the fold"
        ),
        release=release,
        commit=commit,
        seeds=seeds,
        labels=labels,
        n=len(ids),
        accuracy=round(float(hits.mean()), 4),
        interval_95=bootstrap_interval(hits, [groups[clip_id] for clip_id in ids]),
        fold_accuracies=[round(float(h.mean()), 4) for h in fold_hits],
        per_genre=summary(truth, predictions, labels)["per_genre"],
        seed_accuracies=[seed_accuracy(work, seed, folds) for seed in seeds],
        audio_n=audio_n,
        audio_accuracy=audio_mean("audio_accuracy"),
        audio_agreement=audio_mean("audio_agreement"),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="GTZAN-layout folder (train + valid)")
    parser.add_argument("--commit", required=True, help="the release's commit")
    parser.add_argument("--version", required=True, help="the release's version, for its card")
    parser.add_argument("--seed", type=int, action="append", required=True, help="a seed of its ensemble; repeat")
    parser.add_argument("--work", type=Path, required=True, help="folder for the code, the fold folders and runs")
    parser.add_argument("--out", type=Path, required=True, help="the report's JSON file")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each")
    # Any other flag is the old training's (`--epochs 2 --max-train-clips 40` makes a quick trial run).
    args, train_args = parser.parse_known_args(argv)

    code = checkout(args.commit, args.work / "code")
    fold_of = artist_folds(args.data, N_FOLDS)
    folds = [fold_folder(args.data, fold_of, k, args.work / "data" / f"fold{k}") for k in range(N_FOLDS)]
    train_folds(code, folds, args.seed, args.work, args.jobs, train_args)
    scores = [export_fold(code, folder, args.work, k, args.seed, args.version) for k, folder in enumerate(folds)]
    report = pooled(args.data, args.work, scores, args.seed, args.version, args.commit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.model_dump_json(indent=2) + "\n")
    print(report.model_dump_json(exclude={"labels", "protocol"}))


if __name__ == "__main__":
    main()
