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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from model.features import model_input
from training.artifacts import Pretrained
from training.clip_summary import HeadData, clip_summaries, nested_fusion, nested_logistic, part_columns
from training.cv import bootstrap_interval, fold_report_command, out_of_fold
from training.data import gtzan_labels, load_arrays
from training.folds import artist_folds, artist_groups
from training.network import GenreNet
from training.pretrain import pooled
from training.train import TrainConfig

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
    # With the folds' runs: the network's out-of-fold logits fused with the probe's; the gain
    # fused - network as a bootstrap interval over artists; each fold's fusion weight.
    fused_accuracy: float | None
    fused_gain_95: tuple[float, float] | None
    w_per_fold: list[float] | None


class ProbeReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: str
    n: int
    network_accuracy: float | None  # None without the folds' runs
    probes: dict[str, ProbeFigures]


@dataclass
class ProbeClips:
    """The clips probed, in order: their model inputs, labels, folds, and (given the folds' runs)
    the network's out-of-fold logits."""

    ids: list[str]
    inputs: list[np.ndarray]
    truth: np.ndarray
    fold: np.ndarray
    n_labels: int
    logits: np.ndarray | None


def probe_clips(data: Path, runs: list[Path]) -> ProbeClips:
    """The runs' out-of-fold clips; without runs, every labelled array on the recipe's folds, in
    the order the runs would pool them (fold by fold), since the solvers' last digits follow it."""
    if runs:
        oof = out_of_fold(data, runs)
        inputs = [model_input(oof.arrays.grids[i], oof.front_end) for i in oof.rows]
        return ProbeClips(oof.ids, inputs, oof.truth, oof.fold, len(oof.labels), oof.logits)
    arrays = load_arrays(data)
    fold_of = artist_folds(data, TrainConfig.cv_folds)
    rows = sorted(range(len(arrays)), key=lambda i: (fold_of[arrays.ids[i]], i))
    return ProbeClips(
        ids=[arrays.ids[i] for i in rows],
        inputs=[model_input(arrays.grids[i]) for i in rows],
        truth=np.array(arrays.labels)[rows],
        fold=np.array([fold_of[arrays.ids[i]] for i in rows]),
        n_labels=len(gtzan_labels(data)),
        logits=None,
    )


def embeddings(encoder: Path, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The fused vectors of a pretrained network (training.pretrain) for the inputs, and of the
    same network as its pretraining started (its seed's initial weights): the control."""
    meta, trained = Pretrained.load(encoder)
    torch.manual_seed(meta.config["seed"])
    untrained = GenreNet(meta.network)
    return {f"pretrained {encoder}": pooled(trained, inputs), f"untrained {encoder}": pooled(untrained, inputs)}


def probe(data: Path, runs: list[Path], encoders: list[Path]) -> ProbeReport:
    clips = probe_clips(data, runs)
    summaries = clip_summaries(clips.inputs)
    features = {"+".join(names): summaries[:, part_columns(names)] for names in FEATURE_SETS}
    for encoder in encoders:
        features |= embeddings(encoder, clips.inputs)
    groups = artist_groups(data)
    clip_groups = [groups[c] for c in clips.ids]
    network_correct = None if clips.logits is None else clips.logits.argmax(1) == clips.truth
    figures = {}
    for name, x in features.items():
        head_data = HeadData(x[:, None], clips.truth, clips.fold, scored=np.ones(len(x), dtype=bool))
        log_p, cs = nested_logistic(head_data, clips.n_labels)
        fused_accuracy, gain, ws = None, None, None
        if clips.logits is not None and network_correct is not None:
            fused, ws = nested_fusion(clips.logits, log_p, clips.truth, clips.fold)
            fused_correct = fused.argmax(1) == clips.truth
            fused_accuracy = round(float(fused_correct.mean()), 4)
            gain = bootstrap_interval(fused_correct.astype(int) - network_correct, clip_groups)
        figures[name] = ProbeFigures(
            dims=x.shape[1],
            accuracy=round(float((log_p.argmax(1) == clips.truth).mean()), 4),
            c_per_fold=cs,
            fused_accuracy=fused_accuracy,
            fused_gain_95=gain,
            w_per_fold=ws,
        )
    return ProbeReport(
        protocol=f"{len(set(clips.fold))}-fold artist-disjoint cross-validation, the recipe's folds; logistic "
        "regression on clip summaries of the front end's log bands (or a network's fused vector), C (accuracy) "
        "and the fusion weight (log-likelihood) chosen by the other folds",
        n=len(clips.ids),
        network_accuracy=None if network_correct is None else round(float(network_correct.mean()), 4),
        probes=figures,
    )


def main(argv: list[str] | None = None) -> None:
    flags = (
        ("--run", "a fold's training run; repeat (without runs: the probes alone, on the recipe's folds)"),
        ("--encoder", "a pretrained.pt (training.pretrain) whose fused vector is probed too; repeat"),
    )
    report = fold_report_command(__doc__, argv, probe, flags, first_required=False)
    if report.network_accuracy is not None:
        print(f"network {report.network_accuracy:.3f} (out of fold, {report.n} clips)")
    for name, f in report.probes.items():
        print(json.dumps({"probe": name, **f.model_dump(include={"accuracy", "fused_accuracy", "fused_gain_95"})}))


if __name__ == "__main__":
    main()
