"""Pool a recipe's cross-validation folds into its out-of-fold figures and calibration.

    python -m training.train --data DIR --cv-fold K --out runs/cv/foldK      (K = 0 .. 4; `make cv`)
    python -m training.cv --data DIR --run runs/cv/fold0 ... --out training/inputs/cv.json

Each fold's run learnt from the other folds (training.folds: artist-disjoint) and kept its last
epoch, so no figure here was chosen by the clips it is measured on. Each fold's summary head
(training.clip_summary) is fitted on the other folds' arrays and audio clips, its C chosen by
their inner cross-validation on the arrays, its fusion weight (with a temperature) by the
log-likelihood of their out-of-fold arrays' and audio-route logits. From the fused logits:
accuracy with a bootstrap interval over artists (and the network's alone), per-genre recall, and
the temperature that calibrates them (its ECE after is cross-fitted: each fold scaled by a T
fitted on the others). Both baselines are trained and scored on the same folds. Each fold's
network and head are also exported to ONNX and scored on its fold's audio clips through the
service's pipeline, degradations included. The head that ships takes the C and weight chosen on
all the folds.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from pydantic import BaseModel

from model.card import Calibration, SummaryHeadCard
from model.features import FrontEndSettings, model_input
from training.accuracy import summary
from training.artifacts import AccuracySummary, AudioFigures, Checkpoint, CvReport, RunReport
from training.baselines import logistic_predictions, majority_predictions
from training.calibration import ECE_BINS, calibrated, expected_calibration_error, fit_temperature, nll
from training.clip_summary import (
    SUMMARIES,
    HeadData,
    SummaryHead,
    band_limited,
    choose_c,
    choose_weight,
    fused,
    nested_fusion,
    nested_logistic,
    summary_views,
)
from training.data import Split, load_arrays, load_audio_clips
from training.evaluate import evaluate
from training.export import write_model
from training.folds import artist_groups
from training.network import GenreNet
from training.scoring import clip_logits

BOOTSTRAP_SAMPLES = 2000
R = TypeVar("R", bound=BaseModel)


def bootstrap_interval(values: np.ndarray, groups: list[str], seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean of per-clip values (1/0 for an accuracy, -1/0/1 for a paired gain),
    resampling whole artists (their clips are not independent)."""
    rows: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        rows.setdefault(group, []).append(i)
    members = list(rows.values())
    hits = np.array([values[m].sum() for m in members])
    sizes = np.array([len(m) for m in members])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(members), size=(BOOTSTRAP_SAMPLES, len(members)))
    accuracies = hits[draws].sum(1) / sizes[draws].sum(1)
    lo, hi = np.percentile(accuracies, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def calibration(logits: np.ndarray, truth: np.ndarray, fold: np.ndarray) -> Calibration:
    """Temperature fitted on every out-of-fold logit; ECE and NLL after it cross-fitted by fold."""
    after = np.zeros_like(logits)
    for k in np.unique(fold):
        t = fit_temperature(logits[fold != k], truth[fold != k])
        after[fold == k] = calibrated(logits[fold == k], t)
    return Calibration(
        method="temperature scaling of the logits, fitted on out-of-fold logits of the recipe's cross-validation",
        temperature=round(fit_temperature(logits, truth), 4),
        ece_before=round(expected_calibration_error(calibrated(logits, 1.0), truth), 4),
        ece_after=round(expected_calibration_error(after, truth), 4),
        nll_before=round(nll(logits, truth), 4),
        nll_after=round(float(-np.log(after[np.arange(len(truth)), truth]).mean()), 4),
        bins=ECE_BINS,
    )


def pooled_audio(per_fold: list[AudioFigures]) -> AudioFigures:
    """Folds' audio figures, pooled by their clip counts."""
    counts = np.array([f.audio_n for f in per_fold])

    def mean(values: list[float]) -> float:
        return round(float(np.dot(counts, values) / counts.sum()), 4)

    return AudioFigures(
        audio_n=int(counts.sum()),
        audio_accuracy=mean([f.audio_accuracy for f in per_fold]),
        audio_agreement=mean([f.audio_agreement for f in per_fold]),
        robustness={name: mean([f.robustness[name] for f in per_fold]) for name in per_fold[0].robustness},
    )


def fold_audio(
    fold_run: tuple[Checkpoint, GenreNet],
    data: Path,
    clip_ids: list[str],
    head: tuple[SummaryHead, SummaryHeadCard] | None = None,
) -> AudioFigures:
    """The fold's network (and head) as an ONNX file, through training.evaluate on the fold's clips."""
    checkpoint, net = fold_run
    with tempfile.TemporaryDirectory() as tmp:
        onnx = Path(tmp) / "fold.onnx"
        write_model([net], checkpoint.front_end, checkpoint.labels, onnx, head=head)
        return AudioFigures.model_validate(evaluate(data, onnx, only=clip_ids))


@dataclass
class OutOfFold:
    """The folds' runs pooled: clip i of `ids` is row rows[i] of `arrays`, its fold fold[i], its
    label truth[i], and logits[i] came from the network that did not learn from it."""

    reports: list[RunReport]
    checkpoints: list[tuple[Checkpoint, GenreNet]]  # fold k's
    recipe: dict[str, Any]  # the runs' shared config, without fold, seed or machine paths
    labels: list[str]
    arrays: Split
    ids: list[str]
    rows: list[int]
    truth: np.ndarray
    logits: np.ndarray
    fold: np.ndarray

    @property
    def front_end(self) -> FrontEndSettings:
        return self.checkpoints[0][0].front_end

    def logits_with_audio(self, audio_ids: list[str]) -> np.ndarray:
        """`logits`, then those of these audio clips through the audio route, each from the fold's
        network that did not learn from it (its run's report): shape = (clips + audio clips, labels)."""
        audio_logits = {c: v for r in self.reports for c, v in r.valid_audio_logits.items()}
        return np.concatenate([self.logits, [audio_logits[c] for c in audio_ids]])


def fold_recipe(config: dict[str, Any]) -> dict[str, Any]:
    """What a fold's run (its config) must share with the other folds' runs: all of it but the fold,
    the seed and its soft teacher (--soft-targets-from), which is that fold's own network: only
    whether it has one is the recipe's."""
    per_fold = ("cv_fold", "seed", "soft_targets_from")
    shared = {k: v for k, v in config.items() if k not in per_fold}
    return shared | {"taught": config.get("soft_targets_from") is not None}


def out_of_fold(data: Path, runs: list[Path]) -> OutOfFold:
    reports = [RunReport.model_validate_json((run / "report.json").read_text()) for run in runs]
    folds = {r.config["cv_fold"] for r in reports}
    n_folds = reports[0].config["cv_folds"]
    if folds != set(range(n_folds)) or len(reports) != n_folds:
        raise SystemExit(f"need one run per fold 0..{n_folds - 1}, got folds {sorted(folds)}")
    recipe = [fold_recipe(r.portable_config()) for r in reports]
    if any(c != recipe[0] for c in recipe) or any(r.labels != reports[0].labels for r in reports):
        raise SystemExit("the folds' runs differ in more than their fold and seed")
    labels = reports[0].labels
    arrays = load_arrays(data, labels=labels)
    row = {clip_id: i for i, clip_id in enumerate(arrays.ids)}
    ids = [clip_id for r in reports for clip_id in r.valid_ids]
    if sorted(ids) != sorted(arrays.ids):
        raise SystemExit("the folds do not cover every labelled clip exactly once")
    rows = [row[clip_id] for clip_id in ids]
    by_fold = sorted(zip(reports, runs, strict=True), key=lambda pair: pair[0].config["cv_fold"])
    return OutOfFold(
        reports=reports,
        checkpoints=[Checkpoint.load(run / "checkpoint.pt") for _, run in by_fold],
        recipe=recipe[0],
        labels=labels,
        arrays=arrays,
        ids=ids,
        rows=rows,
        truth=np.array(arrays.labels)[rows],
        logits=np.concatenate([np.array(r.valid_logits) for r in reports]),
        fold=np.concatenate([np.full(len(r.valid_ids), r.config["cv_fold"]) for r in reports]),
    )


@dataclass
class FusedHeads:
    """The summary heads of a cross-validation: out-of-fold fused logits, each fold's head, the
    choice (C, weight) on all the folds that the shipped head takes, and accuracies on the arrays
    band-limited (summary_views' second view) by the network alone and fused."""

    logits: np.ndarray
    heads: list[tuple[SummaryHead, SummaryHeadCard]]
    choice: SummaryHeadCard
    band_limited: dict[str, float]


def head_data(oof: OutOfFold, data: Path) -> tuple[HeadData, list[str], list[np.ndarray]]:
    """The arrays (scored, in out-of-fold order) then the audio clips (in their clip's fold), as
    export fits the shipped head on them; the audio clips' ids; and the arrays' band_limited grids."""
    audio = load_audio_clips(data, labels=oof.labels)
    grids = oof.arrays.grids + audio.grids
    limited = band_limited(grids)
    x = summary_views(grids, oof.front_end, limited)
    fold_of = dict(zip(oof.ids, oof.fold, strict=True))
    rows = np.concatenate([oof.rows, len(oof.arrays) + np.arange(len(audio))]).astype(int)
    heads = HeadData(
        x=x[rows],
        y=np.concatenate([oof.truth, audio.labels]).astype(int),
        fold=np.concatenate([oof.fold, [fold_of[c] for c in audio.ids]]).astype(int),
        scored=np.arange(len(rows)) < len(oof.rows),
    )
    return heads, audio.ids, [limited[i] for i in oof.rows]


def fused_heads(oof: OutOfFold, data: Path) -> FusedHeads:
    heads_data, audio_ids, limited = head_data(oof, data)
    y, fold, n_labels = oof.truth, oof.fold, len(oof.labels)
    head_log_p, cs = nested_logistic(heads_data, n_labels)
    # The weight is chosen on the arrays and on the audio route: what the service answers matters as much.
    network = oof.logits_with_audio(audio_ids)
    all_logits, weights = nested_fusion(network, head_log_p, heads_data.y, heads_data.fold)
    logits = all_logits[heads_data.scored]
    choice = SummaryHeadCard(
        parts=list(SUMMARIES),
        c=choose_c(heads_data, n_labels),
        weight=choose_weight(network, head_log_p, heads_data.y),
        c_per_fold=cs,
        weight_per_fold=weights,
    )
    heads = []
    limited_network, limited_fused = np.zeros_like(logits), np.zeros_like(logits)
    for k, ((_, net), c, w) in enumerate(zip(oof.checkpoints, cs, weights, strict=True)):
        head = SummaryHead(heads_data.where(heads_data.fold != k).fit(c), n_labels)
        heads.append((head, choice.model_copy(update={"c": c, "weight": w})))
        inputs = [model_input(limited[i], oof.front_end) for i in np.flatnonzero(fold == k)]
        limited_network[fold == k] = clip_logits(net, inputs)
        with torch.no_grad():
            head_limited = head(torch.from_numpy(np.stack(inputs))).numpy()
        limited_fused[fold == k] = fused(limited_network[fold == k], head_limited, w)
    band_limited_accuracy = {
        "network": round(float((limited_network.argmax(1) == y).mean()), 4),
        "fused": round(float((limited_fused.argmax(1) == y).mean()), 4),
    }
    return FusedHeads(logits, heads, choice, band_limited_accuracy)


def cross_validate(data: Path, runs: list[Path]) -> CvReport:
    oof = out_of_fold(data, runs)
    reports, labels, arrays, ids, truth = oof.reports, oof.labels, oof.arrays, oof.ids, oof.truth
    n_folds = len(reports)
    fusion = fused_heads(oof, data)
    predictions = fusion.logits.argmax(1)
    correct = predictions == truth
    groups = artist_groups(data)

    baseline_predictions: dict[str, list[np.ndarray]] = {"majority": [], "logistic_band_stats": []}
    rows = np.array(oof.rows)
    for k in range(n_folds):
        train, test = arrays.subset(list(rows[oof.fold != k])), arrays.subset(list(rows[oof.fold == k]))
        baseline_predictions["majority"].append(majority_predictions(train, len(test)))
        baseline_predictions["logistic_band_stats"].append(logistic_predictions(train, test))
    baselines = {
        name: AccuracySummary.model_validate(summary(truth, np.concatenate(p), labels))
        for name, p in baseline_predictions.items()
    }
    recall = AccuracySummary.model_validate(summary(truth, predictions, labels)).per_genre
    return CvReport(
        protocol=f"{n_folds}-fold artist-disjoint cross-validation over GTZAN train + valid ({len(ids)} clips); "
        "each fold's network trained on the other folds (arrays and their audio clips) for a fixed number of "
        "epochs, its summary head fitted on their arrays and audio clips (C chosen by their inner cross-validation "
        "on the arrays, the weight and a temperature by the log-likelihood of their out-of-fold arrays and "
        "audio-route logits), both scored on its own; the interval resamples artists",
        labels=labels,
        folds=n_folds,
        n=len(ids),
        accuracy=round(float(correct.mean()), 4),
        interval_95=bootstrap_interval(correct, [groups[c] for c in ids]),
        network_accuracy=round(float((oof.logits.argmax(1) == truth).mean()), 4),
        band_limited_accuracy=fusion.band_limited,
        fold_accuracies=[round(float(correct[oof.fold == k].mean()), 4) for k in range(n_folds)],
        per_genre=recall,
        baselines=baselines,
        audio=pooled_audio(
            [
                fold_audio(oof.checkpoints[r.config["cv_fold"]], data, r.valid_ids, fusion.heads[r.config["cv_fold"]])
                for r in reports
            ]
        ),
        calibration=calibration(fusion.logits, truth, oof.fold),
        summary_head=fusion.choice,
        network=reports[0].network,
        config=oof.recipe,
    )


def fold_report_command(
    doc: str | None,
    argv: list[str] | None,
    make: Callable[..., R],
    repeated: Sequence[tuple[str, str]] = (("--run", "a fold's training run; repeat"),),
    first_required: bool = True,
) -> R:
    """The command line of a report made from cross-validations' runs: --data, each of `repeated`
    (a flag and its help) as a repeated path flag, the first required (if first_required) and the
    others optional, and --out. Calls make(data, one list of paths per flag, in order) and writes it as JSON."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    dests = [f"paths{i}" for i in range(len(repeated))]
    for i, (flag, help_text) in enumerate(repeated):
        parser.add_argument(
            flag,
            dest=dests[i],
            metavar=flag.strip("-").upper(),
            type=Path,
            action="append",
            required=first_required and i == 0,
            help=help_text,
        )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    report = make(args.data, *[getattr(args, dest) or [] for dest in dests])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.model_dump_json(indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    report = fold_report_command(__doc__, argv, cross_validate)
    print(report.model_dump_json(include={"accuracy", "interval_95", "baselines", "audio", "calibration"}))


if __name__ == "__main__":
    main()
