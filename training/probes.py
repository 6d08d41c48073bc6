"""Probe feature ideas for model 2.x against the network, on the recipe's own folds.

    python -m training.probes --data DIR --run runs/cv/fold0 ... --out training/results/probes.json

Training a network per idea costs a cross-validation (about 95 min on 2 cores); a linear probe costs
seconds. So each idea is first a clip summary of the same front end's log bands, scored by a
logistic regression on the same artist-disjoint folds, alone and fused with the network's
out-of-fold logits. Every choice is nested: the regularisation C is picked by the other folds'
inner cross-validation, and the fusion weight w (fused = log p_network + w log p_probe) by the
log-likelihood of the other folds' out-of-fold predictions, so no figure here was chosen by the
clips it scores.

The ideas (issue 14), the parts of training.clip_summary.ClipSummary:
- modulation spectra: each band's envelope over ~11 s of frames, as a spectrum of 0.09-5.7 Hz
  (5-344 BPM): rhythm, which a 30 s average of bands cannot see;
- co-variation at several band resolutions: which bands rise and fall together;
- each log band's mean and std (the logistic baseline's features without their deltas), as the
  control: a second opinion that knows no more than a summary of the network's input.
All three together won, and ship as model 2.1's summary head.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from model.features import model_input
from training.clip_summary import HeadData, clip_summaries, nested_fusion, nested_logistic, part_columns
from training.cv import bootstrap_interval, fold_report_command, out_of_fold
from training.folds import artist_groups

FEATURE_SETS = (
    ("band_stats",),
    ("modulation",),
    ("co_variation",),
    ("band_stats", "modulation"),
    ("band_stats", "co_variation"),
    ("band_stats", "modulation", "co_variation"),
)


class ProbeFigures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dims: int
    accuracy: float  # the probe alone
    c_per_fold: list[float]
    fused_accuracy: float  # the network's out-of-fold logits fused with the probe's
    fused_gain_95: tuple[float, float]  # fused - network, bootstrap interval over artists
    w_per_fold: list[float]


class ProbeReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: str
    n: int
    network_accuracy: float
    probes: dict[str, ProbeFigures]


def probe(data: Path, runs: list[Path]) -> ProbeReport:
    oof = out_of_fold(data, runs)
    summaries = clip_summaries([model_input(oof.arrays.grids[i], oof.front_end) for i in oof.rows])
    groups = artist_groups(data)
    clip_groups = [groups[c] for c in oof.ids]
    network_correct = oof.logits.argmax(1) == oof.truth
    figures = {}
    for names in FEATURE_SETS:
        x = summaries[:, part_columns(names)]
        clips = HeadData(x[:, None], oof.truth, oof.fold, scored=np.ones(len(x), dtype=bool))
        log_p, cs = nested_logistic(clips, len(oof.labels))
        fused, ws = nested_fusion(oof.logits, log_p, oof.truth, oof.fold)
        fused_correct = fused.argmax(1) == oof.truth
        figures["+".join(names)] = ProbeFigures(
            dims=x.shape[1],
            accuracy=round(float((log_p.argmax(1) == oof.truth).mean()), 4),
            c_per_fold=cs,
            fused_accuracy=round(float(fused_correct.mean()), 4),
            fused_gain_95=bootstrap_interval(fused_correct.astype(int) - network_correct, clip_groups),
            w_per_fold=ws,
        )
    return ProbeReport(
        protocol=f"{len(runs)}-fold artist-disjoint cross-validation, the recipe's folds; logistic regression on "
        "clip summaries of the front end's log bands, C (accuracy) and the fusion weight (log-likelihood) chosen "
        "by the other folds",
        n=len(oof.ids),
        network_accuracy=round(float(network_correct.mean()), 4),
        probes=figures,
    )


def main(argv: list[str] | None = None) -> None:
    report = fold_report_command(__doc__, argv, probe)
    print(f"network {report.network_accuracy:.3f} (out of fold, {report.n} clips)")
    for name, f in report.probes.items():
        print(json.dumps({"probe": name, **f.model_dump(include={"accuracy", "fused_accuracy", "fused_gain_95"})}))


if __name__ == "__main__":
    main()
