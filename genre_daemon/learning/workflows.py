"""The ``train`` / ``evaluate`` / cross-validation workflows: folders in, model directory out.

Glue between :mod:`dataset` (audio -> clips), :mod:`training` (clips -> model) and
:mod:`model` (model -> directory); keeps those three free of each other's concerns.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genre_daemon.learning import rehearsal
from genre_daemon.learning.dataset import build_clips, check_augment, scan_labelled
from genre_daemon.errors import AudioDecodeError
from genre_daemon.learning.cache import FeatureCache
from genre_daemon.model.frontend import DEFAULT_INPUTS, FrontEnd, load_embedder
from genre_daemon.learning.metrics import report
from genre_daemon.model.files import Architecture, GenreModel, save_model
from genre_daemon.learning.fit import Clip, TrainConfig, evaluate_clips, fit, predict_clips, stratified_folds, stratified_split

Progress = Callable[[int, str], Any] | None


def weights_digest(model: GenreModel) -> str:
    """A short content hash of the weights: two different models never share a version."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:10]


def train_clips(
    clips: Sequence[Clip],
    genres: Sequence[str],
    arch: Architecture,
    cfg: TrainConfig,
    frontend: FrontEnd,
    refit: bool = True,
    progress: Progress = None,
) -> tuple[GenreModel, dict[str, Any]]:
    """Early-stop on a clip-level validation split, then (``refit``) retrain on every clip for the
    number of epochs that was best, so no labelled clip is left out of the final model."""
    labels = [c.label for c in clips]
    tr, va = stratified_split(labels, cfg.val_fraction, cfg.seed) if cfg.val_fraction > 0 else (list(range(len(clips))), [])
    model, history = fit([clips[i] for i in tr], [clips[i] for i in va], genres, arch, cfg, frontend, progress)
    metrics: dict[str, Any] = {}
    if va:
        metrics["validation"] = evaluate_clips(model, [clips[i] for i in va])
        metrics["validation"]["best_epoch"] = history.best_epoch
    if refit and va:
        final_cfg = replace(cfg, epochs=max(1, history.best_epoch), patience=10**6)
        model, _ = fit(list(clips), [], genres, arch, final_cfg, frontend, progress)
        model.training["early_stopping"] = asdict(history)
    return model, metrics


def train_from_folder(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    epochs: int | None = None,
    patches: int | None = None,
    augment: Sequence[str] = (),
    arch_overrides: dict[str, Any] | None = None,
    val_fraction: float | None = None,
    threads: int = 0,
    progress: Progress = None,
    cache: FeatureCache | None = None,
    train_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``genre-daemon train``: decode and embed (or read from ``cache``), augment, train, write the
    model directory with its rehearsal set (a sample of the training vectors, see :mod:`rehearsal`)."""
    cfg = TrainConfig(seed=seed, threads=threads)
    cfg = replace(cfg, **{k: v for k, v in {"epochs": epochs, "patches": patches, "val_fraction": val_fraction,
                                             **(train_overrides or {})}.items() if v is not None})
    overrides = dict(arch_overrides or {})
    inputs = tuple(overrides.pop("inputs", DEFAULT_INPUTS))
    augment = check_augment(augment)
    Architecture(inputs=inputs, **overrides)  # an impossible architecture is refused before any decode
    genres, files = scan_labelled(data_dir)
    if len(genres) < 2:
        raise AudioDecodeError(data_dir, "training needs at least two genre folders with audio")
    if threads:
        torch.set_num_threads(threads)
    frontend = FrontEnd.from_directory(inputs)
    embedder = load_embedder(frontend, inputs)
    clips, failures = build_clips(files, genres, embedder, frontend, cfg.train_hop_frames, augment, progress, cache)
    if len({c.label for c in clips}) < 2:
        raise AudioDecodeError(data_dir, "training needs decodable audio of at least two genres")
    arch = Architecture(inputs=inputs, n_classes=len(genres), **overrides)
    model, metrics = train_clips(clips, genres, arch, cfg, frontend, progress=progress)
    counts = np.bincount([c.label for c in clips], minlength=len(genres))
    model.training.update({
        "data": {"folder": os.fspath(data_dir), "clips": len(clips), "per_genre": dict(zip(genres, map(int, counts))),
                 "augment": list(augment), "failed": len(failures)},
        "seed": seed,
        "torch": torch.__version__,
    })
    model.metrics.update(metrics)
    model.version = f"{Path(out_dir).name}-{weights_digest(model)}"
    model.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    save_model(model, out_dir)
    rehearsal.save(rehearsal.sample(clips, genres, cfg.patches, seed=seed, frontend=frontend.identity(inputs)),
                   Path(out_dir))
    return {"model": os.fspath(out_dir), "version": model.version, "clips": len(clips),
            "failed": [f"{p}: {r}" for p, r in failures], "metrics": metrics}


ClassifyMany = Callable[[list[str]], Iterable[Any]]  # paths -> a Prediction or AudioDecodeError each, any order


def evaluate_folder(data_dir: str | os.PathLike[str], model_dir: str | os.PathLike[str], progress: Progress = None,
                    classify_many: ClassifyMany | None = None) -> dict[str, Any]:
    """``genre-daemon evaluate``: classify every file through the real pipeline, score by folder.

    ``classify_many`` runs the classification instead of a Classifier in this process (an
    engine's ``classify_many``, e.g. on a pool or a cluster); results may come in any order,
    they are matched back by path, so the report is the same whatever classified the files."""
    from genre_daemon.model.files import load_model
    from genre_daemon.model.inference import Classifier

    if classify_many is None:
        classifier = Classifier.from_dir(model_dir)
        model, classify_many = classifier.model, classifier.classify_many
    else:
        model = load_model(model_dir)
    genres = model.genres
    _, files = scan_labelled(data_dir)
    truth: list[int] = []
    predicted: list[int] = []
    failures: list[tuple[str, str]] = []
    unknown: dict[str, int] = {}
    bar = progress(len(files), "evaluate") if progress else None
    known = []
    for f in files:
        if f.genre in genres:
            known.append(f)
            continue
        unknown[f.genre] = unknown.get(f.genre, 0) + 1
        if bar is not None:
            bar.update(1)
    outcomes: dict[str, Any] = {}
    for outcome in classify_many([str(f.path) for f in known]):
        outcomes[outcome.path] = outcome
        if bar is not None:
            bar.update(1)
    for f in known:
        outcome = outcomes[str(f.path)]
        if isinstance(outcome, AudioDecodeError):
            failures.append((str(f.path), outcome.reason))
            continue
        truth.append(genres.index(f.genre))
        predicted.append(genres.index(outcome.genre))
    if bar is not None:
        bar.close()
    result = report(truth, predicted, genres)
    result["model"] = model.version
    if failures:
        result["failures"] = failures
    if unknown:
        result["skipped_unknown_genres"] = unknown
    return result


def cross_validate(
    clips: Sequence[Clip],
    genres: Sequence[str],
    arch: Architecture,
    cfg: TrainConfig,
    frontend: FrontEnd,
    k: int = 5,
    test_variants: dict[str, int] | None = None,
    progress: Progress = None,
    log: Callable[[str], None] = print,
    folds: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Clip-split ``k``-fold CV: every clip is tested once by a model that never saw any patch
    of it. ``test_variants`` maps a name to the variant index scored (0 = clean); ``folds``
    (clip indices) replaces the default stratified random folds."""
    test_variants = test_variants or {"clean": 0}
    labels = [c.label for c in clips]
    folds = [list(f) for f in folds] if folds is not None else stratified_folds(labels, k, cfg.seed)
    k = len(folds)
    truth: list[int] = []
    predicted: dict[str, list[int]] = {name: [] for name in test_variants}
    for i, test_idx in enumerate(folds):
        held = set(test_idx)
        train = [c for j, c in enumerate(clips) if j not in held]
        model, _ = train_clips(train, genres, arch, replace(cfg, seed=cfg.seed + i), frontend, progress=progress)
        test = [clips[j] for j in test_idx]
        truth += [c.label for c in test]
        line = []
        for name, v in test_variants.items():
            pred = predict_clips(model, test, variant=v)
            predicted[name] += pred
            line.append(f"{name} {np.mean(np.array(pred) == [c.label for c in test]):.3f}")
        log(f"fold {i + 1}/{k}: " + ", ".join(line))
    return {name: report(truth, pred, genres) for name, pred in predicted.items()}
