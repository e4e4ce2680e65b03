"""A compact sample of a model's training data, kept in its directory (``rehearsal.safetensors``).

A retrain on a user's few labels must not forget the genres the model already knew, yet the
audio those were learnt from is not on the user's machine. So every model directory carries a
few "windows" per training clip: each a song as the network sees one, a time-ordered sequence
of ``length`` patch vectors of the model's front end (float16, a few MB), which a retrain mixes
back in (:func:`to_clips`) and holds some of out, by clip, to check the old genres did not get
worse. The front end's identity is stored with them: vectors of another embedding space are
never mixed in.

Run as ``python -m genre_daemon.learning.rehearsal --data DIR --model DIR`` to (re)make the rehearsal
set of a model from its training data, with the model's own front end and augmentations.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genre_daemon.errors import ModelError
from genre_daemon.atomic import atomic_write
from genre_daemon.model.files import REHEARSAL_FILE, check_safetensors_header
from genre_daemon.learning.fit import Clip, spread_indices

log = logging.getLogger(__name__)

FORMAT = "genre-daemon-rehearsal/2"  # 1: round-1 windows of librosa features


@dataclass
class RehearsalSet:
    """Patch-vector sequences of a model's training clips, with their labels and source clips."""

    windows: np.ndarray  # (n, length, n_inputs) float16: n sequences of up to ``length`` patch vectors
    labels: np.ndarray  # (n,) int64, indices into genres
    genres: list[str]
    clip_ids: np.ndarray  # (n,) int64: the source clip of each window (split by clip, not window)
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (n,) int64: real patches
    frontend: str = ""  # FrontEnd.identity(inputs) of the vectors

    def __post_init__(self) -> None:
        if self.lengths.size == 0 and self.windows.ndim == 3 and self.windows.shape[0]:  # not given: all full
            self.lengths = np.full(self.windows.shape[0], self.windows.shape[1], dtype=np.int64)

    def sequence(self, row: int) -> np.ndarray:
        """Window ``row`` without its padding (zeros after its real patches), float32 ``(length, n_inputs)``."""
        return self.windows[row, :int(self.lengths[row])].astype(np.float32)

    def __len__(self) -> int:
        return int(self.windows.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.windows.nbytes + self.labels.nbytes + self.clip_ids.nbytes + self.lengths.nbytes)


def sample(
    clips: Sequence[Clip],
    genres: Sequence[str],
    length: int,
    *,
    windows_per_clip: int = 4,
    max_bytes: int = 8 << 20,
    seed: int = 0,
    frontend: str = "",
) -> RehearsalSet:
    """Up to ``windows_per_clip`` sequences of ``length`` patches per clip, alternating between
    the clean variant and one augmented variant (picked at random per clip) where there is one,
    so both kinds of sound are rehearsed. The first is the clean clip's patches spread evenly
    (what inference judges it on), the others random time-ordered subsets; a clip of fewer
    patches gives all of them (its ``lengths`` entry says how many; zeros after). When that
    exceeds ``max_bytes``, fewer sequences per clip are taken; below one per clip, a random
    subset of clips, stratified by genre, is kept."""
    if length < 1 or windows_per_clip < 1:
        raise ValueError(f"length ({length}) and windows_per_clip ({windows_per_clip}) must be >= 1")
    bad = [c.name for c in clips if not 0 <= c.label < len(genres)]
    if bad:
        raise ValueError(f"{len(bad)} clips have a label outside the {len(genres)} genres, e.g. {bad[0]}")
    rng = np.random.default_rng(seed)
    n_inputs = clips[0].variants[0].shape[1] if clips else 0
    per_window = length * n_inputs * 2 + 24  # float16 sequence + three int64
    budget = max(0, max_bytes // per_window) if per_window else 0
    per_clip = min(windows_per_clip, budget // max(1, len(clips)))
    chosen = list(range(len(clips)))
    if per_clip == 0 and clips:
        per_clip = 1
        chosen = _stratified_subset([c.label for c in clips], budget, rng)
    windows: list[np.ndarray] = []
    labels: list[int] = []
    ids: list[int] = []
    lengths: list[int] = []
    for i in chosen:
        clip = clips[i]
        clean = clip.variants[0]
        other = clip.variants[1 + int(rng.integers(len(clip.variants) - 1))] if len(clip.variants) > 1 else clean
        for k in range(per_clip):
            source = clean if k % 2 == 0 else other
            idx = _indices(source.shape[0], length, first=k == 0, rng=rng)
            window = np.zeros((length, n_inputs), np.float32)
            window[:len(idx)] = source[idx]
            windows.append(window)
            lengths.append(len(idx))
            labels.append(clip.label)
            ids.append(i)
    shape = (0, length, n_inputs)
    return RehearsalSet(
        windows=np.stack(windows).astype(np.float16) if windows else np.zeros(shape, np.float16),
        labels=np.asarray(labels, dtype=np.int64),
        genres=list(genres),
        clip_ids=np.asarray(ids, dtype=np.int64),
        lengths=np.asarray(lengths, dtype=np.int64),
        frontend=frontend,
    )


def _indices(n: int, length: int, *, first: bool, rng: np.random.Generator) -> np.ndarray:
    """Up to ``length`` time-ordered patch indices of ``n``: spread evenly (``first``), or a
    random subset; all of them when ``n <= length``."""
    if first or n <= length:
        return spread_indices(n, length)
    return np.sort(rng.choice(n, size=length, replace=False))


def _stratified_subset(labels: Sequence[int], k: int, rng: np.random.Generator) -> list[int]:
    """``k`` clip indices, each genre keeping its share (at least one clip where k allows)."""
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    quota = {y: max(1, int(len(idx) * k / len(labels))) for y, idx in by_class.items()}
    while sum(quota.values()) > k and any(q > 1 for q in quota.values()):
        largest = max(quota, key=lambda y: quota[y])
        quota[largest] -= 1
    picked: list[int] = []
    for y, idx in sorted(by_class.items()):
        picked += rng.permutation(idx)[: quota[y]].tolist()
    return sorted(picked)[:k]


def save(rs: RehearsalSet, model_dir: Path) -> None:
    """Write ``rs`` into ``model_dir`` as safetensors, the genres as JSON in its metadata."""
    from safetensors.numpy import save as serialise

    _validate(rs, Path(model_dir) / REHEARSAL_FILE)
    tensors = {
        "windows": np.ascontiguousarray(rs.windows, dtype=np.float16),
        "labels": np.ascontiguousarray(rs.labels, dtype=np.int64),
        "clip_ids": np.ascontiguousarray(rs.clip_ids, dtype=np.int64),
        "lengths": np.ascontiguousarray(rs.lengths, dtype=np.int64),
    }
    meta = {"format": FORMAT, "genres": json.dumps(list(rs.genres)), "frontend": rs.frontend}
    path = Path(model_dir) / REHEARSAL_FILE
    payload = serialise(tensors, metadata=meta)
    # Bytes written by hand: safetensors' save_file replaces the file with a 0600 one, and a
    # service account must be able to read a model directory.
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(payload))


def load(model_dir: Path) -> RehearsalSet | None:
    """The rehearsal set of a model directory; None when it has none; ModelError when malformed."""
    from safetensors import SafetensorError, safe_open

    path = Path(model_dir) / REHEARSAL_FILE
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not path.is_file():
        raise ModelError(f"{path}: not a regular file (refusing to follow it)")
    check_safetensors_header(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a valid safetensors file: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not a rehearsal set (format {meta.get('format')!r}, expected {FORMAT!r})")
    try:
        genres = json.loads(meta["genres"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: metadata has no readable genre list: {exc!r}") from exc
    if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
        raise ModelError(f"{path}: genres must be a list of names, got {genres!r}")
    if sorted(tensors) != ["clip_ids", "labels", "lengths", "windows"]:
        raise ModelError(f"{path}: expected tensors windows, labels, clip_ids, lengths; found {sorted(tensors)}")
    rs = RehearsalSet(tensors["windows"], tensors["labels"], genres, tensors["clip_ids"], tensors["lengths"],
                      str(meta.get("frontend", "")))
    _validate(rs, path)
    return rs


def _validate(rs: RehearsalSet, path: Path) -> None:
    """ModelError naming ``path`` unless the arrays agree with each other and with the genres."""
    w, y, ids, lengths = rs.windows, rs.labels, rs.clip_ids, rs.lengths
    problems = []
    if w.ndim != 3 or w.dtype != np.float16:
        problems.append(f"windows must be (n, length, n_inputs) float16, got {w.shape} {w.dtype}")
    if y.shape != (w.shape[0],) or ids.shape != (w.shape[0],) or y.dtype != np.int64 or ids.dtype != np.int64:
        problems.append(f"labels {y.shape} {y.dtype} and clip_ids {ids.shape} {ids.dtype} must be ({w.shape[0]},) int64")
    elif y.size and (y.min() < 0 or y.max() >= len(rs.genres)):
        problems.append(f"labels outside 0..{len(rs.genres) - 1}")
    if len(set(rs.genres)) != len(rs.genres):
        problems.append(f"duplicate genres in {rs.genres}")
    if lengths.shape != (w.shape[0],) or lengths.dtype != np.int64:
        problems.append(f"lengths must be ({w.shape[0]},) int64")
    elif lengths.size and w.ndim == 3 and (lengths.min() < 1 or lengths.max() > w.shape[1]):
        problems.append(f"lengths outside 1..{w.shape[1]}")
    if w.ndim == 3 and w.size and not np.all(np.isfinite(w)):
        problems.append("windows hold non-finite values")
    if problems:
        raise ModelError(f"{path}: malformed rehearsal set: " + "; ".join(problems))


def to_clips(rs: RehearsalSet, genres: Sequence[str] | None = None) -> list[Clip]:
    """One :class:`Clip` per source clip, whose variants are its windows (each a ``length``-patch
    sequence, float32; the first is a clean one), ready to mix with new clips in
    :func:`genre_daemon.learning.fit.fit`. ``genres`` re-indexes the labels into a new model's genre
    list (which must hold every rehearsed genre; new genres may be added anywhere)."""
    target = list(genres) if genres is not None else list(rs.genres)
    missing = sorted({rs.genres[i] for i in np.unique(rs.labels)} - set(target))
    if missing:
        raise ValueError(f"rehearsal genres {missing} are not in the target genre list {target}")
    remap = {i: target.index(g) for i, g in enumerate(rs.genres) if g in target}
    order: dict[int, list[int]] = {}
    for row, cid in enumerate(rs.clip_ids.tolist()):
        order.setdefault(cid, []).append(row)
    clips = []
    for cid, rows in order.items():
        label = int(rs.labels[rows[0]])
        variants = [rs.sequence(r) for r in rows]
        clips.append(Clip(f"rehearsal:{rs.genres[label]}:{cid}", remap[label], variants))
    return clips


def _main(argv: Sequence[str] | None = None) -> int:
    from genre_daemon.learning.dataset import build_clips, scan_labelled, trained_augment
    from genre_daemon.learning.cache import FeatureCache
    from genre_daemon.model.frontend import load_embedder
    from genre_daemon.model.files import load_model

    ap = argparse.ArgumentParser(prog="python -m genre_daemon.learning.rehearsal",
                                 description="(Re)make the rehearsal set of a model directory from its training data.")
    ap.add_argument("--data", required=True, help="folder with one sub-folder per genre (the model's training data)")
    ap.add_argument("--model", required=True, help="model directory to write rehearsal.safetensors into")
    ap.add_argument("--windows-per-clip", type=int, default=4)
    ap.add_argument("--max-mb", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", help="feature cache folder to use (optional)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    model = load_model(args.model)
    genres = list(model.genres)
    augment = trained_augment(model.training)
    _, files = scan_labelled(args.data)
    skipped = sorted({f.genre for f in files if f.genre not in genres})
    if skipped:
        log.warning("skipping folders that are not genres of the model: %s", ", ".join(skipped))
    files = [f for f in files if f.genre in genres]
    cache = FeatureCache(Path(args.cache)) if args.cache else None
    embedder = load_embedder(model.frontend, model.inputs)
    clips, failures = build_clips(files, genres, embedder, model.frontend, model.train_hop_frames, augment, cache=cache)
    rs = sample(clips, genres, model.patches, windows_per_clip=args.windows_per_clip,
                max_bytes=int(args.max_mb * (1 << 20)), seed=args.seed, frontend=model.frontend.identity(model.inputs))
    save(rs, Path(args.model))
    size = (Path(args.model) / REHEARSAL_FILE).stat().st_size
    print(f"{Path(args.model) / REHEARSAL_FILE}: {len(rs)} windows of {len(set(rs.clip_ids.tolist()))} clips, "
          f"{size / 2**20:.2f} MiB; augment {augment}; {len(failures)} files failed")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
