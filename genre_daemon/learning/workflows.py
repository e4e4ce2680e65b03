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

from genre_daemon.config.names import NO_NAMES, HasNames, label_genre, shown_name, shown_names
from genre_daemon.learning import rehearsal
from genre_daemon.learning.dataset import build_clips, check_augment, scan_labelled
from genre_daemon.errors import AudioDecodeError, GenreDaemonError
from genre_daemon.learning.cache import FeatureCache
from genre_daemon.model.frontend import DEFAULT_INPUTS, FrontEnd, load_embedder
from genre_daemon.learning.metrics import report
from genre_daemon.model.files import Architecture, GenreModel, save_model
from genre_daemon.learning.taggrams import INPUTS as TAGGRAM_INPUTS, load_taggram_clips, per_genre
from genre_daemon.model.prior import AudioSetPrior, family_rows, fit_temperature
from genre_daemon.model.tagging import load_tagger
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
    taggrams: str | os.PathLike[str] | None = None,
    taggram_parts: Sequence[str] | None = None,
    prior_only: Sequence[str] | None = None,
    fusion_weight: float | None = None,
) -> dict[str, Any]:
    """``genre-daemon train``: decode and embed (or read from ``cache``), augment, train, write the
    model directory with its rehearsal set (a sample of the training vectors, see :mod:`rehearsal`).

    ``taggrams``: a folder of feature-only clips (:mod:`taggrams`) trained on beside the audio
    (needs ``inputs == ("msd_tags",)``), of the split ``taggram_parts`` (None: all).
    ``fusion_weight`` (None: no prior): fit AudioSet's genre prior on the training audio and fuse
    it with this weight (:mod:`genre_daemon.model.prior`); ``prior_only`` genres have no examples
    and come from the prior alone (e.g. ``electronic``)."""
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
    if taggrams is not None and inputs != TAGGRAM_INPUTS:
        raise ValueError(f"taggram clips carry only {TAGGRAM_INPUTS}; train with --inputs {','.join(TAGGRAM_INPUTS)}")
    clips, failures = build_clips(files, genres, embedder, frontend, cfg.train_hop_frames, augment, progress, cache)
    if len({c.label for c in clips}) < 2:
        raise AudioDecodeError(data_dir, "training needs decodable audio of at least two genres")
    sets = [{"set": f"audio: {Path(data_dir).name}", "clips": len(clips), "per_genre": per_genre(clips, genres),
             "augment": list(augment), "failed": len(failures)}]
    if taggrams is not None:
        extra = load_taggram_clips(taggrams, genres, taggram_parts, skip={Path(c.name).stem for c in clips})
        sets.append({"set": f"taggrams (MSD-musicnn tags, no audio): {Path(taggrams).name}"
                            + (f", parts {'+'.join(taggram_parts)}" if taggram_parts else ""),
                     "clips": len(extra), "per_genre": per_genre(extra, genres)})
        clips = clips + extra
    arch = Architecture(inputs=inputs, n_classes=len(genres), **overrides)
    model, metrics = train_clips(clips, genres, arch, cfg, frontend, progress=progress)
    if fusion_weight is not None:
        model.prior = fit_prior(files, genres, list(prior_only or ()), fusion_weight, progress)
        model.genres = list(genres) + list(model.prior.prior_only)
    model.training.update({
        "data": {"clips": len(clips), "sets": sets},
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


def fit_prior(files: Sequence[Any], genres: Sequence[str], prior_only: Sequence[str], fusion_weight: float,
              progress: Progress = None) -> AudioSetPrior:
    """AudioSet's prior for ``genres`` + ``prior_only``: the families by name, the temperature
    fitted on the training audio's window logits (each file as inference reads it)."""
    from genre_daemon.audio import decode as audio

    tagger = load_tagger()
    names = list(genres) + [g for g in prior_only if g not in genres]
    families = family_rows(names, tagger.labels)
    for g in prior_only:
        if g not in families:
            raise ValueError(f"prior-only genre {g!r}: AudioSet has no class for it")
    shell = AudioSetPrior(families, 1.0, fusion_weight, tuple(g for g in prior_only if g not in genres),
                          frontend=tagger.identity)
    evidence, labels = [], []
    bar = progress(len(files), "audioset") if progress else None
    for f in files:
        try:
            logits = tagger.file_logits(f.path, audio.probe(f.path).duration, shell.windows, 60.0)
        except AudioDecodeError:
            logits = None
        if logits is not None:
            evidence.append(shell.evidence(logits))
            labels.append(f.genre)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    tau = fit_temperature(evidence, labels, [g for g in names if g in families])
    return AudioSetPrior(families, tau, fusion_weight, shell.prior_only, shell.windows, tagger.identity)


ClassifyMany = Callable[[list[str]], Iterable[Any]]  # paths -> a Prediction or AudioDecodeError each, any order


def read_folders(names: HasNames, folders: Iterable[str], genres: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The data folders of ``evaluate`` by the user's names: ({folder: the name of the genre it
    holds}, [folders that name no genre of the model]). A folder is read as the label scan reads
    one (:func:`genre_daemon.config.names.label_genre`: a name of ``genre_names``, a genre's
    name but for case, '-', '_', spaces, '&'); a merged name scores the merge as one."""
    read: dict[str, str] = {}
    skipped: list[str] = []
    for folder in dict.fromkeys(folders):
        if (genre := label_genre(names, folder, genres)) not in genres:
            skipped.append(folder)
        else:
            read[folder] = shown_name(names, genre)
    return read, skipped


class NoGenreFolders(GenreDaemonError):
    """``evaluate`` on a data folder none of whose sub-folders names a genre of the model."""


def evaluate_folder(data_dir: str | os.PathLike[str], model_dir: str | os.PathLike[str], progress: Progress = None,
                    classify_many: ClassifyMany | None = None, names: HasNames = NO_NAMES) -> dict[str, Any]:
    """``genre-daemon evaluate``: classify every file through the real pipeline, score by folder.

    ``classify_many`` runs the classification instead of a Classifier in this process (an
    engine's ``classify_many``, e.g. on a pool or a cluster); results may come in any order,
    they are matched back by path, so the report is the same whatever classified the files.
    ``names``: ``genre_names`` (``--config``): folders are read by the user's names
    (:func:`read_folders`) and the report is by those names (a merge is one). A folder that
    names no genre is skipped (``skipped_unknown_genres``); when none names one,
    :class:`NoGenreFolders` says which folders and which genres."""
    from genre_daemon.model.files import load_model
    from genre_daemon.model.inference import Classifier

    if classify_many is None:
        classifier = Classifier.from_dir(model_dir)
        model, classify_many = classifier.model, classifier.classify_many
    else:
        model = load_model(model_dir)
    genres = model.genres
    folders, files = scan_labelled(data_dir)
    read, skipped = read_folders(names, folders, genres)
    if not read:
        shown = ", ".join(shown_names(names, genres))
        raise NoGenreFolders(f"evaluate: {os.fspath(data_dir)}: no sub-folder names a genre of the model "
                             f"({', '.join(repr(f) for f in skipped)}); its genres: {shown}"
                             + ("" if names.genre_names else " (your names for them: evaluate --config)"))
    labels = shown_names(names, genres)
    truth: list[int] = []
    predicted: list[int] = []
    failures: list[tuple[str, str]] = []
    unknown: dict[str, int] = {}
    bar = progress(len(files), "evaluate") if progress else None
    known = []
    for f in files:
        if f.genre in read:
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
        truth.append(labels.index(read[f.genre]))
        predicted.append(labels.index(shown_name(names, outcome.genre)))
    if bar is not None:
        bar.close()
    result = report(truth, predicted, labels)
    result["model"] = model.version
    result["folders"] = read  # each folder scored, and the genre (by the user's name) it was scored as
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
