"""Training on per-clip feature arrays: splits by clip, random crops, augmentation, early stopping.

Pure of file I/O: callers hand in :class:`Clip` objects (features of each clip, possibly several
augmented versions of it) and get a :class:`GenreModel` back. Decoding and augmentation of audio
happen in :mod:`genre_daemon.dataset`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .features import FeatureParams
from .metrics import report
from .model import Architecture, GenreModel, GenreNet

ProgressFactory = Callable[[int, str], Any]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; stored in ``model.json`` under ``training``."""

    window_frames: int = 130  # ~3 s at hop 512 / 22050 Hz
    epochs: int = 40
    crops_per_clip: int = 32  # random windows drawn from each training clip per epoch
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.0
    patience: int = 12  # epochs without a better validation score before stopping
    val_fraction: float = 0.15
    eval_windows: int = 12  # windows spread over a clip at evaluation
    balance: bool = True  # sample genres equally, whatever their clip counts
    gain_db: float = 3.0  # random gain (+-) applied in the feature domain
    noise_floor_db: float | None = -40.0  # features.add_noise_floor, at training and inference
    seed: int = 0
    threads: int = 0  # 0: torch's default
    backbone_lr_factor: float = 1.0  # < 1 for a retrain: the output layer learns at lr, the rest slower
    distill_weight: float = 0.0  # > 0 for a retrain: keep the warm-start model's old-genre outputs
    distill_temperature: float = 2.0
    freeze_norm: bool = False  # a retrain keeps the warm-start model's BatchNorm statistics


@dataclass
class Clip:
    """One song's features: ``variants[0]`` is the clean decode, the rest augmented copies."""

    name: str
    label: int
    variants: list[np.ndarray]  # each (frames, n_features) float32

    @property
    def frames(self) -> int:
        return min(v.shape[0] for v in self.variants)


@dataclass
class History:
    epochs_run: int = 0
    best_epoch: int = 0
    val_accuracy: float = 0.0
    val_loss: float = math.inf
    curve: list[dict[str, float]] = field(default_factory=list)


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split clip indices into (train, held-out) with ``fraction`` of every class held out."""
    if fraction <= 0:
        return list(range(len(labels))), []
    rng = np.random.default_rng(seed)
    train: list[int] = []
    held: list[int] = []
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        held += idx[:k]
        train += idx[k:]
    return sorted(train), sorted(held)


def stratified_folds(labels: Sequence[int], k: int, seed: int) -> list[list[int]]:
    """``k`` disjoint folds of clip indices, each class spread evenly over them."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(i)
        offset += len(idx)
    return [sorted(f) for f in folds]


def window_starts(n_frames: int, window: int, count: int) -> list[int]:
    """Start frames of up to ``count`` windows spread evenly over ``n_frames`` frames."""
    if n_frames <= window:
        return [0]
    last = n_frames - window
    count = max(1, min(count, last // max(1, window // 4) + 1))
    return sorted({int(round(v)) for v in np.linspace(0, last, count)})


def clip_windows(features: np.ndarray, window: int, count: int) -> np.ndarray:
    """``(n_windows, window, F)`` windows spread over one clip's features; short clips padded."""
    if features.shape[0] < window:
        reps = math.ceil(window / max(1, features.shape[0]))
        features = np.concatenate([features] * reps)[:window]
    return np.stack([features[s : s + window] for s in window_starts(features.shape[0], window, count)])


def predict_probs(net: GenreNet, batches: Sequence[np.ndarray], batch_size: int = 128) -> list[np.ndarray]:
    """Mean window probabilities per clip, for a list of ``(n_windows, window, F)`` arrays."""
    net.eval()
    flat = np.concatenate(batches)
    out = []
    with torch.inference_mode():
        for i in range(0, len(flat), batch_size):
            out.append(torch.softmax(net(torch.from_numpy(flat[i : i + batch_size])), dim=-1).numpy())
    probs = np.concatenate(out)
    result, pos = [], 0
    for b in batches:
        result.append(probs[pos : pos + len(b)].mean(axis=0))
        pos += len(b)
    return result


def normalisation_stats(clips: Sequence[Clip]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over every frame of every variant."""
    stacked = np.concatenate([v for c in clips for v in c.variants]).astype(np.float64)
    return stacked.mean(axis=0), stacked.std(axis=0)


def _gain_shift(params: FeatureParams) -> np.ndarray:
    """How 1 dB of gain moves each feature: only MFCC 0 (orthonormal DCT of a constant)."""
    shift = np.zeros(params.n_features, dtype=np.float32)
    shift[0] = math.sqrt(params.n_mels)
    return shift


def _sample_batch(
    clips: Sequence[Clip], order: np.ndarray, window: int, rng: np.random.Generator,
    gain_db: float, shift: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i in order:
        clip = clips[i]
        variant = clip.variants[rng.integers(len(clip.variants))]
        if variant.shape[0] <= window:
            crop = clip_windows(variant, window, 1)[0]
        else:
            s = int(rng.integers(0, variant.shape[0] - window + 1))
            crop = variant[s : s + window]
        if gain_db:
            crop = crop + shift * rng.uniform(-gain_db, gain_db)
        xs.append(crop)
        ys.append(clip.label)
    return np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64)


def _copy_weights(source: GenreModel, net: GenreNet, genres: list[str]) -> None:
    """Every tensor of ``source`` into ``net``; the output layer row by row, by genre name."""
    src = source.net.state_dict()
    dst = net.state_dict()
    head = [k for k in dst if k.startswith("head.")]
    with torch.no_grad():
        for name, tensor in dst.items():
            if name in head:
                continue
            if name in src and src[name].shape == tensor.shape:
                tensor.copy_(src[name])
        for name in head:
            if name not in src or src[name].shape[1:] != dst[name].shape[1:]:
                continue
            for j, genre in enumerate(genres):
                if genre in source.genres:
                    dst[name][j] = src[name][source.genres.index(genre)]
    net.load_state_dict(dst)


class _Teacher:
    """Distillation from the warm-start model (learning without forgetting): on every training
    window, the student's distribution over the genres the teacher knows is pulled towards the
    teacher's, so a retrain on a few new labels keeps the old genres' decision boundaries."""

    def __init__(self, model: GenreModel, genres: list[str], temperature: float) -> None:
        self.net = model.net
        self.net.eval()
        known = [g for g in model.genres if g in genres]
        self.teacher_cols = torch.tensor([model.genres.index(g) for g in known])
        self.student_cols = torch.tensor([genres.index(g) for g in known])
        self.t = temperature

    def loss(self, x: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = torch.softmax(self.net(x)[:, self.teacher_cols] / self.t, dim=-1)
        log_p = torch.log_softmax(student_logits[:, self.student_cols] / self.t, dim=-1)
        return nn.functional.kl_div(log_p, target, reduction="batchmean") * self.t * self.t


def _validation(net: GenreNet, val: Sequence[Clip], windows: Sequence[np.ndarray]) -> tuple[float, float]:
    """Window-level cross-entropy over every variant, and song-level accuracy over every variant.

    ``windows`` holds one array per (clip, variant), in clip order then variant order.
    """
    net.eval()
    owners = [c for c in val for _ in c.variants]
    labels = np.concatenate([np.full(len(w), c.label) for c, w in zip(owners, windows)])
    with torch.inference_mode():
        logits = torch.cat([net(torch.from_numpy(w)) for w in windows])
        loss = float(nn.functional.cross_entropy(logits, torch.from_numpy(labels)))
        probs = torch.softmax(logits, dim=-1).numpy()
    bounds = np.cumsum([0] + [len(w) for w in windows])
    hits = [int(np.argmax(probs[bounds[i] : bounds[i + 1]].mean(axis=0))) == c.label for i, c in enumerate(owners)]
    return loss, float(np.mean(hits))


def fit(
    train: Sequence[Clip],
    val: Sequence[Clip],
    genres: Sequence[str],
    arch: Architecture,
    cfg: TrainConfig,
    params: FeatureParams,
    progress: ProgressFactory | None = None,
    warm_start: GenreModel | None = None,
) -> tuple[GenreModel, History]:
    """Train a model on ``train``; early-stop on ``val`` (or run all epochs when it is empty).

    ``warm_start``: begin from that model's weights and normalisation (a retrain); the output
    rows of genres it knows are kept, a new genre's row starts fresh."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    net = GenreNet(arch)
    model = GenreModel(net=net, genres=list(genres), feature_params=params, window_frames=cfg.window_frames,
                       noise_floor_db=cfg.noise_floor_db)
    if warm_start is not None:
        _copy_weights(warm_start, net, list(genres))
    else:
        mean, std = normalisation_stats(train)
        model.set_normalisation(mean, std)
    head = list(net.head.parameters())
    head_ids = {id(p) for p in head}
    backbone = [p for p in net.parameters() if id(p) not in head_ids]
    opt = torch.optim.AdamW([{"params": backbone, "lr": cfg.lr * cfg.backbone_lr_factor}, {"params": head, "lr": cfg.lr}],
                            lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    teacher = _Teacher(warm_start, list(genres), cfg.distill_temperature) if warm_start and cfg.distill_weight > 0 else None
    labels = np.array([c.label for c in train])
    counts = np.bincount(labels, minlength=len(genres)).astype(np.float64)
    weights = (1.0 / counts[labels]) if cfg.balance else np.ones(len(train))
    weights /= weights.sum()
    shift = _gain_shift(params)
    # Early stopping watches the window-level loss over every variant of the held-out clips: with
    # a few dozen clips, song-level figures move in steps too coarse to pick an epoch by.
    val_windows = [clip_windows(v, cfg.window_frames, cfg.eval_windows) for c in val for v in c.variants]
    history = History()
    best_state = copy.deepcopy(net.state_dict())
    steps = max(4, len(train) * cfg.crops_per_clip // cfg.batch_size)  # tiny sets still learn
    bar = progress(cfg.epochs, "train") if progress else None
    for epoch in range(cfg.epochs):
        net.train()
        if cfg.freeze_norm:
            for m in net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        total = 0.0
        for _ in range(steps):
            order = rng.choice(len(train), size=cfg.batch_size, p=weights)
            x, y = _sample_batch(train, order, cfg.window_frames, rng, cfg.gain_db, shift)
            opt.zero_grad()
            xt = torch.from_numpy(x)
            logits = net(xt)
            loss = loss_fn(logits, torch.from_numpy(y))
            if teacher is not None:
                loss = loss + cfg.distill_weight * teacher.loss(xt, logits)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            total += loss.item()
        sched.step()
        row = {"epoch": epoch + 1, "train_loss": round(total / steps, 4)}
        history.epochs_run = epoch + 1
        if val:
            vloss, vacc = _validation(net, val, val_windows)
            row.update(val_loss=round(vloss, 4), val_accuracy=round(vacc, 4))
            # Best = most songs right (over every variant); the loss breaks ties. The loss alone
            # bottoms out within a few epochs, as the model grows confident, long before the
            # accuracy stops improving.
            if (vacc, -vloss) > (history.val_accuracy, -history.val_loss) or history.best_epoch == 0:
                history.val_loss, history.val_accuracy, history.best_epoch = vloss, vacc, epoch + 1
                best_state = copy.deepcopy(net.state_dict())
            elif epoch + 1 - history.best_epoch >= cfg.patience:
                history.curve.append(row)
                if bar is not None:
                    bar.update(1)
                break
        else:
            history.best_epoch = epoch + 1
            best_state = copy.deepcopy(net.state_dict())
        history.curve.append(row)
        if bar is not None:
            bar.set_postfix({k: v for k, v in row.items() if k != "epoch"})
            bar.update(1)
    if bar is not None:
        bar.close()
    net.load_state_dict(best_state)
    net.eval()
    model.training = {"config": asdict(cfg), "history": asdict(history)}
    return model, history


def predict_clips(model: GenreModel, clips: Sequence[Clip], n_windows: int = 12, variant: int = 0) -> list[int]:
    """Song-level predicted class (mean of window probabilities) of one variant of each clip."""
    windows = [clip_windows(c.variants[min(variant, len(c.variants) - 1)], model.window_frames, n_windows) for c in clips]
    return [int(np.argmax(p)) for p in predict_probs(model.net, windows)]


def evaluate_clips(model: GenreModel, clips: Sequence[Clip], n_windows: int = 12) -> dict[str, Any]:
    """Song-level metrics on the clean variant of each clip."""
    return report([c.label for c in clips], predict_clips(model, clips, n_windows), model.genres)
