"""Labels -> dataset -> training in a child process -> gate -> atomic promotion.

The daemon calls :func:`due` at its rescans and :func:`spawn` when a retrain is due; the child
(``python -m genre_daemon.learning.retrain --config PATH``) runs :func:`run` at low priority with a capped
thread count and reports progress in ``state_dir/retrain.json``. The active model is never
touched by the trainer: a candidate is written beside the versions and promoted only through
:meth:`ModelStore.promote`, after the gate (see README, "Learning from you").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genre_daemon.atomic import atomic_write
from genre_daemon.config import Settings, load_settings
from genre_daemon.errors import GenreDaemonError

if TYPE_CHECKING:
    from genre_daemon.model.prior import AudioSetPrior

log = logging.getLogger("genre_daemon.learning.retrain")

PROGRESS_FILE = "retrain.json"
HELD_OUT_FRACTION = 0.25  # of the labels, stratified by genre, fixed seed
REHEARSAL_HELD_OUT = 0.2  # of the rehearsal clips
SEED = 0
THREADS = 1  # the daemon keeps the other core
RETRAIN_EPOCHS = 20
RETRAIN_CROPS = 16
BACKBONE_LR_FACTOR = 0.1  # a warm start at the first training's rate forgets old genres
# Learning without forgetting: on every window the candidate is also pulled towards the active
# model's outputs over the genres it knows (weight 1, temperature 2, the usual LwF defaults). On the
# new-genre benchmark the old genres lost 4 points with it and 8 without (README, "Learning from you").
DISTILL_WEIGHT = 1.0
OLD_GENRE_MARGIN = 0.05  # points of accuracy the old genres may lose on held-out rehearsal data


def progress_path(settings: Settings) -> Path:
    return settings.state_dir / PROGRESS_FILE


def write_progress(settings: Settings, **fields: Any) -> None:
    """Atomically replace ``retrain.json`` (read by ``status`` and the daemon)."""
    path = progress_path(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = {"pid": os.getpid(), "updated": time.time(), **fields}
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data), encoding="utf-8"), mode=0o600)


def read_progress(settings: Settings) -> dict[str, Any] | None:
    try:
        return json.loads(progress_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def due(n_new_labels: int, last_run: float | None, now: float, settings: Settings) -> bool:
    """Pure: enough new labels, and not sooner than ``retrain.min_interval`` after the last run."""
    r = settings.retrain
    if not r.enabled or n_new_labels < r.min_new_labels:
        return False
    return last_run is None or now - last_run >= r.min_interval


def spawn(config: Path | None) -> subprocess.Popen[bytes]:
    """Start the trainer as a child process (it lowers its own priority and threads)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), OPENBLAS_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
    cmd = [sys.executable, "-m", "genre_daemon.learning.retrain"]
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)


def run(settings: Settings) -> dict[str, Any]:
    """One retrain: returns a summary ``{"promoted", "reason", ...}``. Never touches the active
    model unless the gate says promote."""
    import torch

    from genre_daemon.learning import rehearsal
    from genre_daemon.learning.dataset import LabelledFile, build_clips, trained_augment
    from genre_daemon.learning.cache import FeatureCache
    from genre_daemon.model.frontend import load_embedder
    from genre_daemon.learning.gate import decide
    from genre_daemon.filing.journal import Journal
    from genre_daemon.learning.labels import new_labels, scan_labels, trainable_genres
    from genre_daemon.model.files import load_model, save_model
    from genre_daemon.learning.versions import resolve_model_dir
    from genre_daemon.learning.fit import Clip, TrainConfig, fit, stratified_split
    from genre_daemon.model.tagging import load_tagger
    from genre_daemon.learning.workflows import weights_digest
    from genre_daemon.learning.versions import ModelStore, seed_default

    torch.set_num_threads(THREADS)
    started = time.time()
    write_progress(settings, state="running", started=started, step="scanning labels")
    store = ModelStore(settings.state_dir / "models")
    active_dir = resolve_model_dir(settings)
    active = load_model(active_dir)
    with Journal(settings.journal_path) as journal:
        labels = scan_labels(settings, journal, known=active.genres)
    used = set(active.training.get("label_hashes", []))
    fresh = new_labels(labels, used)
    # The network's genres: those it has an output for, and the user's new ones with enough labels.
    # A prior-only genre (electronic) is new to the network: its folder joins the head at
    # min_per_genre labels, like any new genre; until then AudioSet alone gives it.
    genres, waiting = trainable_genres(labels, active.learned, settings.retrain.min_per_genre)
    labels = [lab for lab in labels if lab.genre in genres]
    if not labels:
        result = {"promoted": False, "reason": "no usable labels", "waiting_genres": waiting}
        write_progress(settings, state="done", started=started, finished=time.time(), **result)
        return result

    write_progress(settings, state="running", started=started, step=f"features of {len(labels)} labels")
    augment = trained_augment(active.training)
    cache = FeatureCache(settings.state_dir / "features")
    files = [LabelledFile(lab.path, lab.genre) for lab in labels]
    embedder = load_embedder(active.frontend, active.inputs)
    tagger, prior = None, None
    if active.prior is not None:  # format 3: the gate needs each label file's AudioSet logits
        tagger = load_tagger(active.prior)
        prior = candidate_prior(active.prior, genres, tagger.labels)
    clips, failures = build_clips(files, genres, embedder, active.frontend, active.train_hop_frames, augment,
                                  cache=cache, tagger=tagger, windows=prior.windows if prior is not None else 0)
    # Old genres: the active model's rehearsal sample, remapped to the new genre order; only if
    # its vectors come from the active model's own front end (never another embedding space).
    rs = rehearsal.load(active_dir)
    if rs is not None and rs.frontend != active.frontend.identity(active.inputs):
        log.warning("%s: rehearsal set of another front end; not used", active_dir)
        rs = None
    old_clips: list[Clip] = rehearsal.to_clips(rs, genres) if rs is not None else []
    tr_idx, ho_idx = stratified_split([c.label for c in clips], HELD_OUT_FRACTION, SEED)
    otr_idx, oho_idx = stratified_split([c.label for c in old_clips], REHEARSAL_HELD_OUT, SEED) if old_clips else ([], [])
    train = [clips[i] for i in tr_idx] + [old_clips[i] for i in otr_idx]
    held_labels = [clips[i] for i in ho_idx]
    held_old = [old_clips[i] for i in oho_idx]

    write_progress(settings, state="running", started=started, step=f"training on {len(train)} clips")
    cfg_data = dict(active.training.get("config", {}))
    cfg = TrainConfig(**{k: v for k, v in cfg_data.items() if k in TrainConfig.__dataclass_fields__})
    # Fewer epochs than a first training: the rehearsal windows are short (a song's patches each)
    # and the retrain must stay within minutes on one core.
    cfg = replace(cfg, seed=SEED, threads=THREADS, val_fraction=0.0, patches=active.patches,
                  train_hop_frames=active.train_hop_frames, epochs=RETRAIN_EPOCHS, crops_per_clip=RETRAIN_CROPS,
                  backbone_lr_factor=BACKBONE_LR_FACTOR, distill_weight=DISTILL_WEIGHT)
    arch = replace(active.net.arch, n_classes=len(genres))

    def progress(total: int, desc: str) -> Any:
        return _ProgressFile(settings, started, total, desc)

    candidate, _ = fit(train, [], genres, arch, cfg, active.frontend, progress, warm_start=active)
    if prior is not None:  # the active model's prior (tau, beta), its families and prior-only genres updated
        candidate.prior = prior
        candidate.genres = list(genres) + list(prior.prior_only)
    # The gate: the same held-out data for both, judged as the daemon would judge those files (the
    # network fused with AudioSet's evidence); a genre the active model lacks counts as wrong.
    cand_lab = _accuracy(candidate, held_labels, genres)
    act_lab = _accuracy(active, held_labels, genres)
    cand_old = _accuracy(candidate, held_old, genres, all_variants=True)
    act_old = _accuracy(active, held_old, genres, all_variants=True)
    result_gate = decide(cand_lab if cand_lab is not None else 0.0, act_lab if act_lab is not None else 0.0,
                         cand_old, act_old, margin=OLD_GENRE_MARGIN)
    summary: dict[str, Any] = {
        "promoted": False, "reason": result_gate.reason, "labels": len(labels), "new_labels": len(fresh),
        "genres": genres, "prior_only": list(prior.prior_only) if prior is not None else [],
        "audioset_families": _new_families(active.prior, prior, tagger.labels) if tagger is not None else {},
        "waiting_genres": waiting, "failed": [f"{p}: {r}" for p, r in failures],
        "candidate": {"labels": cand_lab, "old_genres": cand_old}, "active": {"labels": act_lab, "old_genres": act_old},
    }
    if result_gate.promote:
        candidate.training.update({
            "data": {**active.training.get("data", {}), "labels": len(labels), "per_genre": _counts(clips, genres)},
            "label_hashes": sorted({_hash(lab.path) for lab in labels} | used),
            "retrained_from": active.version, "labels": len(labels),
        })
        candidate.metrics = {"held_out_labels": cand_lab, "held_out_old_genres": cand_old,
                             "active_held_out_labels": act_lab, "active_held_out_old_genres": act_old}
        candidate.version = f"r{time.strftime('%Y%m%d%H%M%S')}-{weights_digest(candidate)}"
        tmp = store.new_candidate()
        save_model(candidate, tmp)
        rehearsal.save(rehearsal.sample(train, genres, cfg.patches, seed=SEED,
                                        frontend=active.frontend.identity(active.inputs)), tmp)
        # The shipped model becomes v0001 (rollback can reach it), but is not made active: the
        # pointer goes straight from the shipped model to the candidate.
        if store.active() is None:
            seed_default(store, active_dir, activate=False)
        info = store.promote(tmp, n_labels=len(labels), metrics=candidate.metrics)
        summary.update(promoted=True, version=info.version)
    write_progress(settings, state="done", started=started, finished=time.time(), **summary)
    return summary


def candidate_prior(prior: AudioSetPrior, genres: list[str], labels: list[str]) -> AudioSetPrior:
    """The candidate's AudioSet prior: the active one's temperature and fusion weight; a genre the
    network now learns leaves ``prior_only``; a new genre AudioSet has a class for (a folder
    "folk" or "Hip-Hop") gets its family, so its evidence counts for it as for the built-in ones."""
    return prior.with_learned(genres).extended(genres, labels)


def _new_families(old: AudioSetPrior, new: AudioSetPrior, labels: list[str]) -> dict[str, list[str]]:
    """The AudioSet classes whose evidence each new genre of the candidate gets (for the summary)."""
    return {g: [labels[r] for r in rows] for g, rows in new.families.items() if g not in old.families}


def _accuracy(model: Any, data: list[Any], names: list[str], *, all_variants: bool = False) -> float | None:
    """Song-level accuracy of ``model`` on clips labelled by index into ``names`` (the new genre
    order); a genre the model does not know is never predicted, so it counts as wrong. A clip with
    AudioSet logits (a label file) is scored as inference scores its file, the network fused with
    the model's prior. ``all_variants``: a rehearsal clip's variants are its stored sequences (of
    taggram clips among them, with no audio: no AudioSet logits, so the network alone judges them,
    ``prior.combine`` with None); the clip's scores are the mean over them."""
    from genre_daemon.learning.fit import predict_logits, song_sequence

    if not data:
        return None
    if all_variants:
        flat = predict_logits(model.net, [np.ascontiguousarray(v, dtype=np.float32) for c in data for v in c.variants])
        bounds = np.cumsum([0] + [len(c.variants) for c in data])
        probs = [np.mean([_scores(model, z, None) for z in flat[bounds[i]:bounds[i + 1]]], axis=0)
                 for i in range(len(data))]
    else:
        outputs = predict_logits(model.net, [song_sequence(c.variants[0], model.patches) for c in data])
        probs = [_scores(model, z, c.logits) for z, c in zip(outputs, data)]
    return float(np.mean([model.genres[int(np.argmax(p))] == names[c.label] for p, c in zip(probs, data)]))


def _scores(model: Any, outputs: np.ndarray, window_logits: np.ndarray | None) -> np.ndarray:
    """A song's probabilities over ``model.genres`` from the network's outputs and AudioSet's
    window logits, as :meth:`genre_daemon.model.inference.Classifier.scores` computes them."""
    if model.prior is None:
        z = np.exp(outputs - outputs.max())
        return z / z.sum()
    return model.prior.combine(model.learned, outputs, window_logits)


def _counts(clips: list[Any], genres: list[str]) -> dict[str, int]:
    counts = np.bincount([c.label for c in clips], minlength=len(genres))
    return {g: int(n) for g, n in zip(genres, counts)}


def _hash(path: Path) -> str:
    from genre_daemon.filing.journal import content_hash

    return content_hash(path)


class _ProgressFile:
    """tqdm-like progress sink that writes epochs done to ``retrain.json``."""

    def __init__(self, settings: Settings, started: float, total: int, desc: str) -> None:
        self.settings, self.started, self.total, self.desc, self.n = settings, started, total, desc, 0

    def update(self, n: int = 1) -> None:
        self.n += n
        write_progress(self.settings, state="running", started=self.started, step=self.desc,
                       done=self.n, total=self.total)

    def set_postfix(self, *_: Any, **__: Any) -> None:
        pass

    def close(self) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="genre-daemon-retrain")
    ap.add_argument("--config", type=Path)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="retrain: %(message)s")
    try:
        os.nice(19)
    except OSError:
        pass
    settings = load_settings(args.config)
    try:
        summary = run(settings)
    except (GenreDaemonError, OSError) as exc:
        write_progress(settings, state="failed", finished=time.time(), reason=str(exc))
        log.error("retrain failed: %s", exc)
        return 1
    log.info("%s", json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
