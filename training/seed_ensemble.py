"""How much the recipe's cross-validation moves with its seed, and what an ensemble of seeds scores.

    python -m training.train --data DIR --cv-fold K --seed 1 --out runs/cv-seed1/foldK   (`make seeds`)
    python -m training.seed_ensemble --data DIR --cv runs/cv --cv runs/cv-seed1 \
        [--versus runs/cv-distil] --out training/results/seed_ensemble.json

Each --cv is a folder of one complete cross-validation of the same recipe (its fold runs are the
sub-folders), trained with another seed. Every clip's logits then come from several networks,
none of which learnt from it, so the members' spread says how much of a difference between two
recipes is only their seeds, and the ensemble (the mean of the members' probabilities, as
training.network.ExportWrapper averages a shipped ensemble) says what distilling it into one
network could aim at. Each figure is also given fused with the recipe's summary head, fitted and
weighted exactly as training.cv does (one head per fold; its C and fusion weight chosen by the
other folds), so the fused figure of the first --cv is that cross-validation's shipped figure.

Each --versus is a cross-validation of another recipe on the same folds (a student distilled from
the seeds, say). It is scored the same way and set against each seed and their ensemble clip by
clip, so its gains are paired: the same clips, the same artists resampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.special import log_softmax, logsumexp

from training.clip_summary import nested_fusion, nested_logistic
from training.cv import OutOfFold, bootstrap_interval, fold_report_command, head_data, out_of_fold
from training.folds import artist_groups


class NetworkFigures(BaseModel):
    """Out of fold: on the labelled arrays (with a bootstrap interval over artists, and per fold)
    and on the audio clips' route, each by the network(s) alone and fused with the summary head."""

    model_config = ConfigDict(extra="forbid")

    accuracy: float
    interval_95: tuple[float, float]
    fold_accuracies: list[float]
    fused_accuracy: float
    audio_accuracy: float
    fused_audio_accuracy: float
    fusion_weight_per_fold: list[float]


class ComparedFigures(NetworkFigures):
    # Its accuracy minus each other's (by name), clip by clip (95 % interval, resampling artists).
    gain_95: dict[str, tuple[float, float]]
    fused_gain_95: dict[str, tuple[float, float]]


class SeedEnsembleReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: str
    n: int
    audio_n: int
    members: dict[str, NetworkFigures]  # by the --cv folder's name
    ensemble: ComparedFigures  # against each member
    versus: dict[str, ComparedFigures] = {}  # by the --versus folder's name; against each member and the ensemble


@dataclass
class Scored:
    """One set of out-of-fold logits scored: its figures, and per labelled clip whether the
    network alone and fused got it right (1 or 0)."""

    figures: NetworkFigures
    right: np.ndarray
    fused_right: np.ndarray


def fold_runs(cv: Path) -> list[Path]:
    """A cross-validation folder's runs: its sub-folders that hold a training report."""
    return sorted(report.parent for report in cv.glob("*/report.json"))


def mean_probability_logits(logits: list[np.ndarray]) -> np.ndarray:
    """log of the mean of each member's softmax: an ensemble's logits, shape = that of each member's."""
    out: np.ndarray = logsumexp(np.stack([log_softmax(z, axis=1) for z in logits]), axis=0) - np.log(len(logits))
    return out


def same_clips(a: OutOfFold, b: OutOfFold) -> bool:
    """Whether two cross-validations hold out the same clips in the same folds, with the same labels."""
    return a.ids == b.ids and np.array_equal(a.fold, b.fold) and a.labels == b.labels


def seed_ensemble(data: Path, cvs: list[Path], versus: Sequence[Path] = ()) -> SeedEnsembleReport:
    if len(cvs) < 2:
        raise SystemExit("need two or more cross-validations (--cv), each of another seed")
    names = ["ensemble", *(cv.name for cv in [*cvs, *versus])]
    if len(set(names)) < len(names):
        raise SystemExit(
            "the report names each cross-validation by its folder's name, so those must differ (and not be 'ensemble')"
        )
    members = [out_of_fold(data, fold_runs(cv)) for cv in cvs]
    first = members[0]
    if any(not same_clips(m, first) or m.recipe != first.recipe for m in members):
        raise SystemExit("the cross-validations differ in more than their seeds (their recipe or their folds' clips)")
    if len({tuple(r.seed for r in m.reports) for m in members}) < len(members):
        raise SystemExit("two cross-validations were trained with the same seeds")
    others = {cv.name: out_of_fold(data, fold_runs(cv)) for cv in versus}
    for cv, other in zip(versus, others.values(), strict=True):
        if not same_clips(other, first) or other.front_end != first.front_end:
            raise SystemExit(
                f"{cv} is not on the seeds' folds, labels and front end, so no gain against them is paired"
            )
    heads, audio_ids, _ = head_data(first, data)
    head_log_p, _ = nested_logistic(heads, len(first.labels))
    groups = artist_groups(data)
    clip_groups = [groups[c] for c in first.ids]

    def figures(logits: np.ndarray) -> Scored:
        """Figures of out-of-fold logits of the arrays then audio clips (head_data's rows), and which
        arrays the network alone and fused got right."""
        fused, weights = nested_fusion(logits, head_log_p, heads.y, heads.fold)
        right, fused_right = logits.argmax(1) == heads.y, fused.argmax(1) == heads.y
        scored, audio = heads.scored, ~heads.scored
        result = NetworkFigures(
            accuracy=round(float(right[scored].mean()), 4),
            interval_95=bootstrap_interval(right[scored], clip_groups),
            fold_accuracies=[round(float(right[scored & (heads.fold == k)].mean()), 4) for k in np.unique(heads.fold)],
            fused_accuracy=round(float(fused_right[scored].mean()), 4),
            audio_accuracy=round(float(right[audio].mean()), 4),
            fused_audio_accuracy=round(float(fused_right[audio].mean()), 4),
            fusion_weight_per_fold=weights,
        )
        return Scored(result, right[scored].astype(int), fused_right[scored].astype(int))

    def against(one: Scored, rivals: dict[str, Scored]) -> ComparedFigures:
        return ComparedFigures(
            **one.figures.model_dump(),
            gain_95={name: bootstrap_interval(one.right - r.right, clip_groups) for name, r in rivals.items()},
            fused_gain_95={
                name: bootstrap_interval(one.fused_right - r.fused_right, clip_groups) for name, r in rivals.items()
            },
        )

    logits = [m.logits_with_audio(audio_ids) for m in members]
    seeds = {cv.name: figures(z) for cv, z in zip(cvs, logits, strict=True)}
    ensemble = figures(mean_probability_logits(logits))
    return SeedEnsembleReport(
        protocol=f"{len(cvs)} cross-validations of one recipe, each trained with other seeds, on the same "
        f"{first.reports[0].config['cv_folds']} artist-disjoint folds; the ensemble averages their out-of-fold "
        "probabilities; fused: with the recipe's summary head as training.cv fits and weights it; the "
        "intervals resample artists; gains are paired, clip by clip",
        n=len(first.ids),
        audio_n=len(audio_ids),
        members={name: s.figures for name, s in seeds.items()},
        ensemble=against(ensemble, seeds),
        versus={
            name: against(figures(other.logits_with_audio(audio_ids)), {**seeds, "ensemble": ensemble})
            for name, other in others.items()
        },
    )


def main(argv: list[str] | None = None) -> None:
    report = fold_report_command(
        __doc__,
        argv,
        seed_ensemble,
        [
            ("--cv", "a cross-validation's folder, one per seed; repeat"),
            ("--versus", "another recipe's cross-validation on the same folds; repeat"),
        ],
    )
    for name, f in [*report.members.items(), ("ensemble", report.ensemble), *report.versus.items()]:
        print(f"{name}: {f.accuracy:.3f} {f.interval_95}, fused {f.fused_accuracy:.3f}, audio {f.audio_accuracy:.3f}")


if __name__ == "__main__":
    main()
