"""Train the BiGRU + attention genre model.

    python -m training.train --data ../shared/data/gtzan --out runs/main
    python -m training.train --data MY_MUSIC --out runs/mine

--data is a GTZAN-layout folder (its `train` split is learnt, its `valid` split watched) or a
plain folder of audio files, one sub-folder per label, `MY_MUSIC/<label>/<files>`: any number
of labels from two, any names; a stratified share of each label (--holdout) is watched.

After every epoch the run keeps its state (RUN/train_state.pt, removed when it ends): --resume
continues an interrupted run from its last whole epoch, to the weights an uninterrupted one gets.

Early-stops on the watched clips' accuracy, keeps the best checkpoint (with its config and
labels) and writes a report (its figures against two baselines, confusion matrix) next to it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model.features import DEFAULT_SETTINGS
from training.artifacts import (
    WEIGHT_PACKAGES,
    Checkpoint,
    RunReport,
    TrainState,
    load_starting_weights,
    package_versions,
)
from training.augment import AugmentConfig, augment
from training.config_flags import config_to_json, parse_config
from training.data import (
    DataError,
    Split,
    data_hash,
    gtzan_labels,
    is_gtzan_layout,
    load_arrays,
    load_audio_clips,
    load_label_folder,
    read_labels,
    scan_label_folder,
    stratified_holdout,
)
from training.folds import artist_folds
from training.network import GenreNet, NetworkConfig
from training.report import valid_figures
from training.scoring import split_accuracy
from training.tag_targets import TagTargetConfig, load_tag_targets


@dataclass
class TrainConfig:
    data: Path = Path("../shared/data/gtzan")
    out: Path = Path("runs/main")
    audio_folder: Path | None = None  # optional extra `<label>/<audio files>` folder to learn from too
    use_shared_audio: bool = True  # GTZAN layout: add the train split's real audio clips (audio route)
    holdout: float = 0.2  # plain folder: the share of each label's files watched for early stopping
    # GTZAN layout, cross-validation: learn from train + valid except one artist-disjoint fold
    # (training.folds) and score that fold. Such runs keep their last epoch: they never pick by the fold.
    cv_fold: int = -1  # -1: no fold
    cv_folds: int = 5
    all_clips: bool = False  # GTZAN layout: learn from train + valid and all audio clips, keep the last epoch
    init: Path | None = None  # start from a distilled network (training.distill), all but its classifier
    # Learn a trained genre network's outputs too (knowledge distillation, e.g. into a smaller
    # network): its checkpoint, of the same fold (or all clips) as this run, so it never saw what
    # this run is scored on. The loss is (1 - weight) * the labels' + weight * T^2 * KL at T.
    soft_targets_from: Path | None = None
    soft_target_weight: float = 0.5
    soft_target_temperature: float = 2.0
    # Learn the genres the MSD teacher's tags name on unlabelled soundtracks too (training.tag_targets).
    tag_targets: TagTargetConfig = field(default_factory=TagTargetConfig)
    seed: int = 0
    epochs: int = 80
    patience: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    mixup: float = 0.2  # Beta(a, a) mixing of pairs of clips; 0 = off
    max_train_clips: int = 0  # 0 = all; small values make quick CI runs
    threads: int = 2
    resume: bool = False  # continue from out/train_state.pt if there is one (how to run, not what: not in to_dict)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON types only (paths as strings), for checkpoints and reports."""
        as_json = config_to_json(self)
        del as_json["resume"]
        return as_json


@dataclass
class RunData:
    """What a run learns from and watches, and under which labels."""

    labels: list[str]
    train: Split  # what the network learns from
    baseline_train: Split  # what the baselines learn from (GTZAN: the arrays alone)
    valid: Split  # what early stopping watches
    valid_audio: Split  # GTZAN: valid clips that have audio, for the two routes' agreement
    skipped: list[str] = field(default_factory=list)  # files that could not be read, with why


def gtzan_data(cfg: TrainConfig, rng: np.random.Generator) -> RunData:
    """GTZAN's train split against its valid split; or, for cross-validation, every other fold
    against one; or all clips against nothing."""
    labels = gtzan_labels(cfg.data)
    if cfg.cv_fold >= 0:
        fold_of = artist_folds(cfg.data, cfg.cv_folds)
        watched = {clip_id for clip_id, fold in fold_of.items() if fold == cfg.cv_fold}
    else:
        watched = (
            set() if cfg.all_clips else {row["clip_id"] for row in read_labels(cfg.data) if row["split"] == "valid"}
        )
    arrays = load_arrays(cfg.data, labels=labels)
    train = arrays.subset([i for i, c in enumerate(arrays.ids) if c not in watched])
    valid = arrays.subset([i for i, c in enumerate(arrays.ids) if c in watched])
    if cfg.max_train_clips:
        keep = sorted(rng.choice(len(train), min(cfg.max_train_clips, len(train)), replace=False))
        train = train.subset([int(i) for i in keep])
    learnt = train.subset(list(range(len(train))))
    if cfg.use_shared_audio:
        learnt.extend(load_audio_clips(cfg.data, lambda c: c not in watched, rng, labels))
    valid_audio = load_audio_clips(cfg.data, lambda c: c in watched, labels=labels)
    return RunData(labels, learnt, train, valid, valid_audio)


def folder_data(cfg: TrainConfig, rng: np.random.Generator) -> RunData:
    found = scan_label_folder(cfg.data)
    clips, skipped = load_label_folder(found, found.labels)
    train, valid = stratified_holdout(clips, found.labels, cfg.holdout, rng)
    return RunData(found.labels, train, train, valid, Split(), skipped)


def run_data(cfg: TrainConfig, rng: np.random.Generator) -> RunData:
    data = gtzan_data(cfg, rng) if is_gtzan_layout(cfg.data) else folder_data(cfg, rng)
    if cfg.audio_folder is not None:
        extra, skipped = load_label_folder(scan_label_folder(cfg.audio_folder), data.labels)
        data.train.extend(extra)
        data.skipped += skipped
    return data


def get_batch(
    train_set: Split, idx: np.ndarray, cfg: TrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, torch.Tensor]:
    """Augmented inputs of one random crop length, shape = (batch, frames, features), and labels."""
    length = int(rng.integers(cfg.augment.min_crop_frames, cfg.augment.max_crop_frames + 1))
    x = np.stack([augment(pick_grid(train_set, j, cfg, rng), length, cfg.augment, rng) for j in idx])
    return x, torch.tensor([train_set.labels[j] for j in idx])


def pick_grid(train_set: Split, j: int, cfg: TrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Clip j's grid, or (for audio clips, with probability codec_prob) one of its codec variants."""
    variants = train_set.variants[j]
    if variants and rng.random() < cfg.augment.codec_prob:
        return variants[int(rng.integers(len(variants)))]
    return train_set.grids[j]


def batch_loss(
    net: GenreNet,
    x: np.ndarray,
    y: torch.Tensor,
    loss_fn: nn.Module,
    cfg: TrainConfig,
    rng: np.random.Generator,
    soft_teacher: GenreNet | None = None,
) -> torch.Tensor:
    """The loss of a batch: cross-entropy with its labels, of random pairs mixed up when mixup > 0
    (Beta(mixup, mixup) weights); with a soft teacher, blended with matching its outputs on the
    same (mixed) inputs."""
    if cfg.mixup <= 0:
        inputs = torch.from_numpy(x)
        logits, _ = net(inputs)
        loss: torch.Tensor = loss_fn(logits, y)
    else:
        lam, perm = float(rng.beta(cfg.mixup, cfg.mixup)), rng.permutation(len(y))
        inputs = torch.from_numpy(lam * x + (1 - lam) * x[perm])
        logits, _ = net(inputs)
        loss = lam * loss_fn(logits, y) + (1 - lam) * loss_fn(logits, y[perm])
    if soft_teacher is None:
        return loss
    with torch.no_grad():
        teacher_logits, _ = soft_teacher(inputs)
    t, w = cfg.soft_target_temperature, cfg.soft_target_weight
    matching = nn.functional.kl_div(
        torch.log_softmax(logits / t, dim=1),
        torch.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    return (1 - w) * loss + w * t**2 * matching


def clips_learnt(config: dict[str, Any]) -> dict[str, Any]:
    """What decides the clips a run learnt from: its data folder (however its path was spelt), its
    fold and fold count, or all clips."""
    found = {key: config.get(key) for key in ("data", "cv_fold", "cv_folds", "all_clips")}
    if found["data"] is not None:
        found["data"] = os.path.realpath(found["data"])
    return found


def load_soft_teacher(cfg: TrainConfig, labels: list[str]) -> GenreNet | None:
    """The network whose outputs this run learns too (cfg.soft_targets_from), checked to have this
    run's labels and to have learnt from no clip this run is scored on."""
    if cfg.soft_targets_from is None:
        return None
    meta, teacher = Checkpoint.load(cfg.soft_targets_from)
    if meta.labels != labels:
        raise DataError(f"{cfg.soft_targets_from} has other labels: {meta.labels}, not {labels}")
    held_out = clips_learnt(meta.config)
    if held_out != clips_learnt(cfg.to_dict()):
        raise DataError(
            f"{cfg.soft_targets_from} learnt from other clips than this run ({held_out}): it may have seen"
            " the ones this run is scored on"
        )
    return teacher.eval()


def train(cfg: TrainConfig) -> RunReport:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    data = run_data(cfg, rng)
    cfg.out.mkdir(parents=True, exist_ok=True)
    for message in data.skipped:
        print(f"skipped {message}")
    train_set, valid = data.train, data.valid
    print(
        f"{len(data.labels)} labels; train {len(train_set)} clips, valid {len(valid)}"
        f" (+{len(data.valid_audio)} as audio); {len(data.skipped)} files skipped"
    )

    network = dataclasses.replace(cfg.network, n_classes=len(data.labels))
    net = GenreNet(network)
    if cfg.init is not None:
        load_starting_weights(net, cfg.init)
    soft_teacher = load_soft_teacher(cfg, data.labels)
    tag_targets = load_tag_targets(cfg.tag_targets, data.labels)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(train_set) // cfg.batch_size)
    # OneCycle needs a few steps in each phase: a tiny folder's run stops partway through a longer one.
    total_steps = max(cfg.epochs * steps_per_epoch, 20)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=total_steps, pct_start=0.1)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    # Early stopping picks the best epoch on the watched clips; a cross-validation fold's run must not
    # pick by the clips it is scored on, and an all-clips run has none: both keep their last epoch.
    keep_best = len(valid) > 0 and cfg.cv_fold < 0
    best_accuracy, best_epoch, since_best, first_epoch, seconds_before = -1.0, 0, 0, 0, 0.0
    state_path = cfg.out / "train_state.pt"
    if cfg.resume and state_path.exists():
        state = TrainState.load(state_path, net, optimizer, schedule, rng)
        if state.config != cfg.to_dict():
            raise DataError(
                f"{state_path} is of a run with another config: resume it with the same flags, or delete it"
            )
        best_accuracy, best_epoch, since_best = state.best_accuracy, state.best_epoch, state.since_best
        first_epoch, seconds_before = state.epoch + 1, state.seconds
        print(f"resumed after epoch {state.epoch}")
    start = time.time() - seconds_before

    def save(epoch: int) -> None:
        meta = Checkpoint(
            network=network, labels=data.labels, front_end=DEFAULT_SETTINGS, config=cfg.to_dict(), epoch=epoch
        )
        meta.save(net, cfg.out / "checkpoint.pt")

    def keep_state(epoch: int) -> None:
        state = TrainState(
            config=cfg.to_dict(),
            epoch=epoch,
            best_accuracy=best_accuracy,
            best_epoch=best_epoch,
            since_best=since_best,
            seconds=time.time() - start,
        )
        state.save(state_path, net, optimizer, schedule, rng)

    epochs = range(first_epoch, cfg.epochs)
    for epoch in (bar := tqdm(epochs, desc="train", initial=first_epoch, total=cfg.epochs)):
        net.train()
        order = rng.permutation(len(train_set))
        for i in range(0, len(order), cfg.batch_size):
            x, y = get_batch(train_set, order[i : i + cfg.batch_size], cfg, rng)
            loss = batch_loss(net, x, y, loss_fn, cfg, rng, soft_teacher)
            if tag_targets is not None:
                loss = loss + cfg.tag_targets.weight * tag_targets.loss(
                    net, cfg.tag_targets.batch_size, cfg.augment, rng
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
            schedule.step()
        if not keep_best:  # the state holds the weights until the last epoch's are saved, after the loop
            bar.set_postfix(loss=f"{loss.item():.3f}")
            best_epoch = epoch
            keep_state(epoch)
            continue

        accuracy, _ = split_accuracy(net, valid)
        bar.set_postfix(loss=f"{loss.item():.3f}", valid=f"{accuracy:.3f}", best=f"{best_accuracy:.3f}")
        if accuracy > best_accuracy:
            best_accuracy, best_epoch, since_best = accuracy, epoch, 0
            save(epoch)
        else:
            since_best += 1
            if since_best >= cfg.patience:
                print(f"early stop at epoch {epoch}: no better valid accuracy for {cfg.patience} epochs")
                break
        keep_state(epoch)

    if not keep_best:
        save(best_epoch)
    state_path.unlink(missing_ok=True)
    _, net = Checkpoint.load(cfg.out / "checkpoint.pt")
    report = RunReport.model_validate(
        {
            **valid_figures(net, data.labels, data.baseline_train, valid, data.valid_audio, cfg.out),
            "seed": cfg.seed,
            "labels": data.labels,
            "train_clips": len(train_set),
            "valid_ids": valid.ids,
            "skipped": data.skipped,
            "best_epoch": best_epoch,
            "train_seconds": round(time.time() - start, 1),
            "data_sha256": data_hash(cfg.data),
            "network": network,
            "config": cfg.to_dict(),
            "packages": package_versions(WEIGHT_PACKAGES),
        }
    )
    (cfg.out / "report.json").write_text(report.model_dump_json(indent=2))
    print(report.model_dump_json(include={"valid_accuracy", "clip_agreement", "baselines"}))
    return report


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    return parse_config(TrainConfig, argv, __doc__)


def main(argv: list[str] | None = None) -> None:
    try:
        train(parse_args(argv))
    except DataError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
