"""Training on per-clip patch-vector sequences: splits by clip, random patch subsets, early stopping.

Pure of file I/O: callers hand in :class:`Clip` objects (each clip's sequence of patch vectors,
possibly several augmented versions of it) and get a :class:`GenreModel` back. Decoding,
augmentation and the front end run in :mod:`genre_daemon.learning.dataset`.

A training example is a song as the classifier sees one: a handful of patches of one variant
of a clip, in time order. Each is a random subset of the clip's patches (of a random length
up to the patches per song), so the network learns from many different "songs" per clip and
from short ones too; evaluation takes the patches spread evenly over the clip, as inference does.
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

from genre_daemon.model.frontend import FrontEnd
from genre_daemon.learning.metrics import report
from genre_daemon.model.files import PATCHES_PER_SONG, TRAIN_HOP_FRAMES, Architecture, GenreModel, GenreNet

ProgressFactory = Callable[[int, str], Any]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters; stored in ``model.json`` under ``training``."""

    patches: int = PATCHES_PER_SONG  # per song at inference; the longest training sequence
    min_patches: int = 3  # the shortest training sequence (0: half of ``patches``)
    train_hop_frames: int = TRAIN_HOP_FRAMES  # training excerpts embedded every this many frames
    epochs: int = 200
    crops_per_clip: int = 1  # training sequences drawn from each clip per epoch
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.0
    patience: int = 25  # epochs without a better validation score before stopping
    select: str = "loss"  # the best epoch: lowest validation loss, or "accuracy" (most songs right, loss breaks ties)
    val_fraction: float = 0.15
    balance: bool = True  # sample genres equally, whatever their clip counts
    seed: int = 0
    threads: int = 0  # 0: torch's default
    backbone_lr_factor: float = 1.0  # < 1 for a retrain: the output layer learns at lr, the rest slower
    distill_weight: float = 0.0  # > 0 for a retrain: keep the warm-start model's old-genre outputs
    distill_temperature: float = 2.0

    @property
    def shortest(self) -> int:
        return max(1, min(self.patches, self.min_patches or self.patches // 2))


@dataclass
class Clip:
    """One song's patch vectors: ``variants[0]`` the clean decode, the rest augmented copies;
    each ``(n_patches, n_inputs)`` float32, in time order."""

    name: str
    label: int
    variants: list[np.ndarray]
    logits: np.ndarray | None = None  # AudioSet's (windows, 527) logits of the file, where there is audio


    @property
    def frames(self) -> int:
        """Patches of the shortest variant."""
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


def spread_indices(n: int, count: int) -> np.ndarray:
    """Up to ``count`` indices of ``n`` items spread evenly, first and last included."""
    if n <= 0:
        raise ValueError("no patches")
    return np.unique(np.round(np.linspace(0, n - 1, min(n, max(1, count)))).astype(np.int64))


def song_sequence(vectors: np.ndarray, count: int) -> np.ndarray:
    """The ``(<= count, n_inputs)`` patches of a clip that inference would judge it on."""
    return np.ascontiguousarray(vectors[spread_indices(vectors.shape[0], count)], dtype=np.float32)


def predict_probs(net: GenreNet, sequences: Sequence[np.ndarray], batch_size: int = 128) -> list[np.ndarray]:
    """Song probabilities of each ``(n_patches, n_inputs)`` sequence (batched by length)."""
    return [torch.softmax(torch.from_numpy(z), dim=-1).numpy() for z in predict_logits(net, sequences, batch_size)]


def predict_logits(net: GenreNet, sequences: Sequence[np.ndarray], batch_size: int = 128) -> list[np.ndarray]:
    """The network's raw outputs for each ``(n_patches, n_inputs)`` sequence (batched by length):
    what a prior fuses with (:meth:`genre_daemon.model.prior.AudioSetPrior.combine`)."""
    net.eval()
    out: list[np.ndarray | None] = [None] * len(sequences)
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(sequences):
        by_length.setdefault(int(s.shape[0]), []).append(i)
    with torch.inference_mode():
        for idx in by_length.values():
            for b in range(0, len(idx), batch_size):
                part = idx[b:b + batch_size]
                x = torch.from_numpy(np.stack([sequences[i] for i in part]).astype(np.float32, copy=False))
                for i, z in zip(part, net(x).numpy()):
                    out[i] = z
    return [p for p in out if p is not None]


def normalisation_stats(clips: Sequence[Clip]) -> tuple[np.ndarray, np.ndarray]:
    """Per-input mean and standard deviation over every patch of every variant.

    The standard deviation is floored at 1e-3 and at 1 % of the mean's magnitude: a musicnn unit
    that never fires on the training audio is a constant, and its float16 rounding in the
    feature cache (~1e-4) divided by a zero spread would swamp every other input at inference."""
    stacked = np.concatenate([v for c in clips for v in c.variants]).astype(np.float64)
    mean = stacked.mean(axis=0)
    return mean, np.maximum(stacked.std(axis=0), np.maximum(1e-3, 1e-2 * np.abs(mean)))


def _sample_batch(clips: Sequence[Clip], order: np.ndarray, length: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One batch of songs of up to ``length`` patches: per clip a random variant and a random,
    time-ordered subset of its patches; a clip with fewer patches gives all of them, as
    inference would (zero-padded at the end; ``lengths`` says how many are real)."""
    xs = np.zeros((len(order), length, clips[order[0]].variants[0].shape[1]), dtype=np.float32)
    lengths = np.empty(len(order), dtype=np.int64)
    ys = np.empty(len(order), dtype=np.int64)
    for row, i in enumerate(order):
        clip = clips[i]
        variant = clip.variants[rng.integers(len(clip.variants))]
        n = variant.shape[0]
        idx = np.sort(rng.choice(n, size=length, replace=False)) if n > length else np.arange(n)
        xs[row, :len(idx)] = variant[idx]
        lengths[row], ys[row] = len(idx), clip.label
    return xs, lengths, ys


def output_layer(net: GenreNet) -> str:
    """The state-dict prefix of the per-genre output layer (the head's last module)."""
    return f"head.{len(net.head) - 1}."


def _copy_weights(source: GenreModel, net: GenreNet, genres: list[str]) -> None:
    """Every tensor of ``source`` into ``net``; the output layer row by row, by genre name (of the
    genres ``source``'s network has an output for: a prior-only genre has no row to copy)."""
    src = source.net.state_dict()
    learned = source.learned
    dst = net.state_dict()
    out = output_layer(net)
    with torch.no_grad():
        for name, tensor in dst.items():
            if name.startswith(out) or name not in src or src[name].shape != tensor.shape:
                continue
            tensor.copy_(src[name])
        for name in (k for k in dst if k.startswith(out)):
            if name not in src or src[name].shape[1:] != dst[name].shape[1:]:
                continue
            for j, genre in enumerate(genres):
                if genre in learned:
                    dst[name][j] = src[name][learned.index(genre)]
    net.load_state_dict(dst)


class _Teacher:
    """Distillation from the warm-start model (learning without forgetting): on every training
    sequence, the student's distribution over the genres the teacher knows is pulled towards the
    teacher's, so a retrain on a few new labels keeps the old genres' decision boundaries."""

    def __init__(self, model: GenreModel, genres: list[str], temperature: float) -> None:
        self.net = model.net
        self.net.eval()
        known = [g for g in model.learned if g in genres]  # not its prior-only genres: no output
        self.teacher_cols = torch.tensor([model.learned.index(g) for g in known])
        self.student_cols = torch.tensor([genres.index(g) for g in known])
        self.t = temperature

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = torch.softmax(self.net(x, lengths)[:, self.teacher_cols] / self.t, dim=-1)
        log_p = torch.log_softmax(student_logits[:, self.student_cols] / self.t, dim=-1)
        return nn.functional.kl_div(log_p, target, reduction="batchmean") * self.t * self.t


def _validation(net: GenreNet, val: Sequence[Clip], patches: int) -> tuple[float, float]:
    """Song-level cross-entropy and accuracy over every variant of every held-out clip."""
    net.eval()
    seqs = [song_sequence(v, patches) for c in val for v in c.variants]
    labels = np.array([c.label for c in val for _ in c.variants])
    probs = np.stack(predict_probs(net, seqs))
    loss = float(-np.mean(np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12))))
    return loss, float(np.mean(np.argmax(probs, axis=1) == labels))


def fit(
    train: Sequence[Clip],
    val: Sequence[Clip],
    genres: Sequence[str],
    arch: Architecture,
    cfg: TrainConfig,
    frontend: FrontEnd,
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
    model = GenreModel(net=net, genres=list(genres), frontend=frontend, patches=cfg.patches,
                       train_hop_frames=cfg.train_hop_frames)
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
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    teacher = _Teacher(warm_start, list(genres), cfg.distill_temperature) if warm_start and cfg.distill_weight > 0 else None
    labels = np.array([c.label for c in train])
    counts = np.bincount(labels, minlength=len(genres)).astype(np.float64)
    weights = (1.0 / counts[labels]) if cfg.balance else np.ones(len(train))
    weights /= weights.sum()
    history = History()
    best_state = copy.deepcopy(net.state_dict())
    steps = max(4, len(train) * cfg.crops_per_clip // cfg.batch_size)  # tiny sets still learn
    bar = progress(cfg.epochs, "train") if progress else None
    for epoch in range(cfg.epochs):
        net.train()
        total = 0.0
        for _ in range(steps):
            order = rng.choice(len(train), size=cfg.batch_size, p=weights)
            length = int(rng.integers(cfg.shortest, cfg.patches + 1))
            x, lengths, y = _sample_batch(train, order, length, rng)
            opt.zero_grad()
            xt, lt = torch.from_numpy(x), torch.from_numpy(lengths)
            logits = net(xt, lt)
            loss = loss_fn(logits, torch.from_numpy(y))
            if teacher is not None:
                loss = loss + cfg.distill_weight * teacher.loss(xt, lt, logits)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            total += loss.item()
        sched.step()
        row = {"epoch": epoch + 1, "train_loss": round(total / steps, 4)}
        history.epochs_run = epoch + 1
        if val:
            vloss, vacc = _validation(net, val, cfg.patches)
            row.update(val_loss=round(vloss, 4), val_accuracy=round(vacc, 4))
            # Best = lowest song-level loss over every variant (on musicnn embeddings the held-out
            # accuracy is flat from the first epochs, so it cannot pick an epoch), or with
            # select="accuracy" most songs right, the loss breaking ties.
            better = (vloss < history.val_loss - 1e-4 if cfg.select == "loss"
                      else (vacc, -vloss) > (history.val_accuracy, -history.val_loss))
            if better or history.best_epoch == 0:
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


def predict_clips(model: GenreModel, clips: Sequence[Clip], variant: int = 0) -> list[int]:
    """Song-level predicted class of one variant of each clip, from the patches inference would use."""
    seqs = [song_sequence(c.variants[min(variant, len(c.variants) - 1)], model.patches) for c in clips]
    return [int(np.argmax(p)) for p in predict_probs(model.net, seqs)]


def evaluate_clips(model: GenreModel, clips: Sequence[Clip]) -> dict[str, Any]:
    """Song-level metrics on the clean variant of each clip."""
    return report([c.label for c in clips], predict_clips(model, clips), model.genres)
