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

--encoder adds the fused vector (what the classifier reads) of a network pretrained without labels
(training.pretrain), beside the same network's initial weights as the control: has pretraining
learnt anything about genre that a random network's pooling does not already give?
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from model.features import model_input
from training.artifacts import Pretrained
from training.clip_summary import HeadData, clip_summaries, nested_fusion, nested_logistic, part_columns
from training.cv import bootstrap_interval, fold_report_command, out_of_fold
from training.folds import artist_groups
from training.network import GenreNet
from training.pretrain import pooled

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


def embeddings(encoder: Path, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The fused vectors of a pretrained network (training.pretrain) for the inputs, and of the
    same network as its pretraining started (its seed's initial weights): the control."""
    meta, trained = Pretrained.load(encoder)
    torch.manual_seed(meta.config["seed"])
    untrained = GenreNet(meta.network)
    return {f"pretrained {encoder}": pooled(trained, inputs), f"untrained {encoder}": pooled(untrained, inputs)}


def probe(data: Path, runs: list[Path], encoders: list[Path]) -> ProbeReport:
    oof = out_of_fold(data, runs)
    inputs = [model_input(oof.arrays.grids[i], oof.front_end) for i in oof.rows]
    summaries = clip_summaries(inputs)
    features = {"+".join(names): summaries[:, part_columns(names)] for names in FEATURE_SETS}
    for encoder in encoders:
        features |= embeddings(encoder, inputs)
    groups = artist_groups(data)
    clip_groups = [groups[c] for c in oof.ids]
    network_correct = oof.logits.argmax(1) == oof.truth
    figures = {}
    for name, x in features.items():
        clips = HeadData(x[:, None], oof.truth, oof.fold, scored=np.ones(len(x), dtype=bool))
        log_p, cs = nested_logistic(clips, len(oof.labels))
        fused, ws = nested_fusion(oof.logits, log_p, oof.truth, oof.fold)
        fused_correct = fused.argmax(1) == oof.truth
        figures[name] = ProbeFigures(
            dims=x.shape[1],
            accuracy=round(float((log_p.argmax(1) == oof.truth).mean()), 4),
            c_per_fold=cs,
            fused_accuracy=round(float(fused_correct.mean()), 4),
            fused_gain_95=bootstrap_interval(fused_correct.astype(int) - network_correct, clip_groups),
            w_per_fold=ws,
        )
    return ProbeReport(
        protocol=f"{len(runs)}-fold artist-disjoint cross-validation, the recipe's folds; logistic regression on "
        "clip summaries of the front end's log bands (or a network's fused vector), C (accuracy) and the fusion "
        "weight (log-likelihood) chosen by the other folds",
        n=len(oof.ids),
        network_accuracy=round(float(network_correct.mean()), 4),
        probes=figures,
    )


def main(argv: list[str] | None = None) -> None:
    encoder = ("--encoder", "a pretrained.pt (training.pretrain) whose fused vector is probed too; repeat")
    report = fold_report_command(__doc__, argv, probe, (("--run", "a fold's training run; repeat"), encoder))
    print(f"network {report.network_accuracy:.3f} (out of fold, {report.n} clips)")
    for name, f in report.probes.items():
        print(json.dumps({"probe": name, **f.model_dump(include={"accuracy", "fused_accuracy", "fused_gain_95"})}))


if __name__ == "__main__":
    main()
