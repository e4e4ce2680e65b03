"""Which pretrained musicnn features and which head classify genres best, honestly measured.

    python benchmarks/bench_frontend.py [--cache DIR] [--parts embed,ablation[,tagprior]] [--seeds 0,1,2]
                                        [--data ../shared/data] [--out benchmarks/results-frontend.txt]

1. embed: every clip is decoded and embedded once per variant, per-patch vectors cached in
   ``--cache`` (default /work/cache/frontend, outside the repo; never audio, never pickle):
   GTZAN ``clean`` (flac decoded at 16 kHz), GTZAN ``mp3`` (128 kbps 44.1 kHz stereo MP3 round
   trip by ffmpeg, then 16 kHz), emotify-dev ``asis``; each with non-overlapping 3-s patches
   (``s0``: patches start at frame 0, 187, ...) and, for the 1.5-s-hop config, the patches in
   between (``s93``: frames 93, 280, ...; interleaving ``s0`` and ``s93`` gives a 1.5-s hop).
   Per patch: MSD penultimate (200), MSD tags (50), MTT penultimate (200), MTT tags (50), MSD
   pooled (1506, max/mean interleaved). No ``lowpass8k`` variant: musicnn sees 16 kHz audio, its
   mel bands stop at 8 kHz, so an 8 kHz low-pass would change nothing it sees.
2. ablation: heads trained on GTZAN only (fixed seeds), song-level accuracy on
   (a) emotify-dev classical/pop/rock, 10-way argmax (headline) and argmax restricted to the 3;
   (b) GTZAN artist-filtered split (train+valid -> test, 19 clips of 4 genres), stratified 5-fold
       CV (shares artists: optimistic) and blocked 5-fold CV (contiguous clip numbers held out
       together: fewer shared artists, the GTZAN-internal selection criterion);
   (c) train clean, test on the MP3 round trip of the same held-out clips (blocked CV).
   Also patches per song at test time (4, 6, 10 evenly spread, or all).
3. the table goes to stdout and ``--out``, followed by the recommendation data.
4. tagprior (only when asked): zero-shot MSD-tag -> genre map, prior-regularised LR on the tags,
   late fusion; a section is APPENDED to ``--out`` (see :func:`run_tagprior`).

Cache format (one file per collection/variant/patch start, ``<collection>-<variant>-s<start>.safetensors``):
tensors ``msd_pen`` (N, 200), ``msd_tags`` (N, 50), ``mtt_pen`` (N, 200), ``mtt_tags`` (N, 50),
``msd_pooled`` (N, 1506) float32 and ``offsets`` (clips + 1,) int64: clip i's patches are rows
``offsets[i]:offsets[i+1]`` in time order. Metadata (strings): ``clips`` (JSON list of clip ids,
e.g. "blues.00000" or "pop/81"), ``genres`` (JSON list, parallel), ``start``/``hop`` (frames),
``variant``, ``ms_per_patch`` (JSON {"msd": .., "mtt": ..}, median network time per patch).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
EMO_GENRES = ["classical", "pop", "rock"]
HOP = 187  # frames: non-overlapping 3-s patches
HALF = 93  # frames: start of the in-between patches (1.5-s hop when interleaved)
KEYS = ["msd_pen", "msd_tags", "mtt_pen", "mtt_tags", "msd_pooled"]
SR = 16000


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Clip:
    """One labelled recording: ``cid`` is unique within its collection."""

    cid: str
    genre: str
    path: Path
    split: str = "none"  # GTZAN artist-filtered part: train/valid/test/none


def gtzan_clips(data: Path) -> list[Clip]:
    """The 150 GTZAN clips with their artist-filtered split part, sorted by id."""
    parts = {r["clip"]: r["split"] for r in csv.DictReader(open(data / "gtzan" / "splits.csv"))}
    out = []
    for g in GENRES:
        for p in sorted((data / "gtzan" / g).glob("*.flac")):
            cid = p.name[: -len(".flac")]
            out.append(Clip(cid, g, p, parts.get(cid, "none")))
    return out


def emotify_clips(data: Path) -> list[Clip]:
    """The 60 emotify-dev songs (classical/pop/rock), sorted by genre then number."""
    out = []
    for g in EMO_GENRES:
        for p in sorted((data / "emotify-dev" / g).glob("*.mp3"), key=lambda q: int(q.stem)):
            out.append(Clip(f"{g}/{p.stem}", g, p))
    return out


def mp3_roundtrip(src: Path, dst: Path) -> Path:
    """Re-encode ``src`` as 128 kbps 44.1 kHz stereo MP3 at ``dst`` (ffmpeg, libmp3lame)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-ar", "44100", "-ac", "2",
         "-c:a", "libmp3lame", "-b:a", "128k", str(dst)],
        check=True, stdin=subprocess.DEVNULL,
    )
    return dst


def decode(clip: Clip, variant: str, tmp: Path) -> np.ndarray:
    """Mono float32 16 kHz audio of ``clip`` as ``variant`` ('clean'/'asis' or 'mp3')."""
    from genre_daemon.audio import decode as audio

    if variant in ("clean", "asis"):
        return audio.load(clip.path, sr=SR)
    if variant == "mp3":
        mp3 = mp3_roundtrip(clip.path, tmp / "roundtrip.mp3")
        try:
            return audio.load(mp3, sr=SR)
        finally:
            mp3.unlink(missing_ok=True)
    raise ValueError(f"unknown variant {variant!r}")


# --------------------------------------------------------------------------------------------
# Embedding and cache
# --------------------------------------------------------------------------------------------

def load_nets(models: Path) -> dict:
    """{'msd': MusiCNN, 'mtt': MusiCNN} from the shipped model folder."""
    from genre_daemon.model.musicnn.weights import load_musicnn

    return {w: load_musicnn(models, w) for w in ("msd", "mtt")}


def embed_audio(nets: dict, y: np.ndarray, start: int = 0, batch: int = 8) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-patch vectors (KEYS) of 16 kHz audio, patches every HOP frames from frame ``start``.

    Returns the arrays and the network seconds per patch for each net.
    """
    import torch

    from genre_daemon.model.musicnn import melspec

    lm = melspec.log_mel(y)[start:]
    p = melspec.patches(lm, hop=HOP)
    out: dict[str, list[np.ndarray]] = {k: [] for k in KEYS}
    secs: dict[str, float] = {}
    with torch.inference_mode():
        for w, net in nets.items():
            t0 = time.perf_counter()
            for s in range(0, len(p), batch):
                pen, tags, pooled = net(torch.from_numpy(p[s:s + batch]), return_pooled=True)
                out[f"{w}_pen"].append(pen.numpy())
                out[f"{w}_tags"].append(tags.numpy())
                if w == "msd":
                    out["msd_pooled"].append(pooled.numpy())
            secs[w] = (time.perf_counter() - t0) / max(len(p), 1)
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}, secs


def cache_path(cache: Path, collection: str, variant: str, start: int) -> Path:
    """Where one collection/variant/patch-start embedding file lives."""
    return cache / f"{collection}-{variant}-s{start}.safetensors"


def build_cache(clips: list[Clip], collection: str, variant: str, start: int, nets: dict, cache: Path) -> Path:
    """Embed every clip (skipped when the file exists) and save it as described in the docstring."""
    from safetensors.numpy import save_file

    path = cache_path(cache, collection, variant, start)
    if path.exists():
        print(f"  {path.name}: cached", flush=True)
        return path
    t0 = time.perf_counter()
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in KEYS}
    offsets = [0]
    times: dict[str, list[float]] = {"msd": [], "mtt": []}
    with tempfile.TemporaryDirectory(prefix="bench_frontend_") as tmp:
        for i, c in enumerate(clips):
            y = decode(c, variant, Path(tmp))
            a, secs = embed_audio(nets, y, start)
            for k in KEYS:
                arrays[k].append(a[k])
            offsets.append(offsets[-1] + len(a["msd_pen"]))
            for w, s in secs.items():
                times[w].append(s)
            if (i + 1) % 30 == 0:
                print(f"  {path.name}: {i + 1}/{len(clips)} clips, {time.perf_counter() - t0:.0f} s", flush=True)
    tensors = {k: np.ascontiguousarray(np.concatenate(v)) for k, v in arrays.items()}
    tensors["offsets"] = np.asarray(offsets, dtype=np.int64)
    meta = {
        "clips": json.dumps([c.cid for c in clips]),
        "genres": json.dumps([c.genre for c in clips]),
        "variant": variant, "start": str(start), "hop": str(HOP),
        "ms_per_patch": json.dumps({w: 1000 * float(np.median(t)) for w, t in times.items()}),
    }
    cache.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_suffix(".tmp")
    save_file(tensors, str(tmp_path), metadata=meta)
    os.chmod(tmp_path, 0o644)  # a shared cache: readable by the other engineers
    os.replace(tmp_path, path)
    print(f"  {path.name}: {len(clips)} clips, {offsets[-1]} patches, {time.perf_counter() - t0:.0f} s", flush=True)
    return path


@dataclass
class Embeddings:
    """A loaded cache file: per-clip sequences of per-patch vectors."""

    clips: list[str]
    genres: list[str]
    arrays: dict[str, np.ndarray]
    offsets: np.ndarray
    meta: dict[str, str] = field(default_factory=dict)

    def seqs(self, keys: list[str]) -> list[np.ndarray]:
        """Per clip, the (patches, sum of dims) matrix of ``keys`` concatenated."""
        full = np.concatenate([self.arrays[k] for k in keys], axis=1)
        return [full[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    @property
    def ms_per_patch(self) -> dict[str, float]:
        return json.loads(self.meta.get("ms_per_patch", "{}"))


def load_embeddings(path: Path) -> Embeddings:
    """Read a cache file written by :func:`build_cache` (safetensors, no pickle)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
        arrays = {k: f.get_tensor(k) for k in f.keys()}
    offsets = arrays.pop("offsets")
    return Embeddings(json.loads(meta["clips"]), json.loads(meta["genres"]), arrays, offsets, meta)


def interleave(a: Embeddings, b: Embeddings) -> Embeddings:
    """Patches of ``a`` (start 0) and ``b`` (start HALF) merged in time order: a 1.5-s hop."""
    assert a.clips == b.clips
    arrays: dict[str, list[np.ndarray]] = {k: [] for k in a.arrays}
    offsets = [0]
    for i in range(len(a.clips)):
        sa, sb = slice(a.offsets[i], a.offsets[i + 1]), slice(b.offsets[i], b.offsets[i + 1])
        na, nb = sa.stop - sa.start, sb.stop - sb.start
        order = np.argsort(np.concatenate([np.arange(na) * 2, np.arange(nb) * 2 + 1]), kind="stable")
        for k in arrays:
            arrays[k].append(np.concatenate([a.arrays[k][sa], b.arrays[k][sb]])[order])
        offsets.append(offsets[-1] + na + nb)
    return Embeddings(a.clips, a.genres, {k: np.concatenate(v) for k, v in arrays.items()},
                      np.asarray(offsets), dict(a.meta))


EMBED_JOBS = [  # (collection, variant, start)
    ("gtzan", "clean", 0), ("emotify", "asis", 0), ("gtzan", "mp3", 0),
    ("gtzan", "clean", HALF), ("emotify", "asis", HALF),
]


def run_embed(data: Path, cache: Path) -> None:
    """Fill the cache with every job of EMBED_JOBS."""
    nets = load_nets(ROOT / "models" / "musicnn")
    sets = {"gtzan": gtzan_clips(data), "emotify": emotify_clips(data)}
    for coll, variant, start in EMBED_JOBS:
        build_cache(sets[coll], coll, variant, start, nets, cache)


# --------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------

def even_pick(n: int, k: int | None) -> np.ndarray:
    """Indices of ``k`` patches evenly spread over ``n`` (all of them when k is None or >= n)."""
    if k is None or k >= n:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """'Balanced' weights n / (classes * count): every genre counts alike (blues/jazz are 3.5x)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return w


class Standardiser:
    """Per-dimension mean/std of the training fold's patches."""

    def __init__(self, seqs: list[np.ndarray]) -> None:
        x = np.concatenate(seqs)
        self.mu = x.mean(0)
        self.sd = x.std(0) + 1e-6

    def __call__(self, s: np.ndarray) -> np.ndarray:
        return ((s - self.mu) / self.sd).astype(np.float32)


class Head:
    """Interface: ``fit`` on song sequences and labels, ``predict`` song-level probabilities."""

    name = "head"

    def fit(self, seqs: list[np.ndarray], y: np.ndarray, seed: int) -> "Head":
        raise NotImplementedError

    def predict(self, seqs: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError


class LRPatch(Head):
    """Logistic regression on single patches; a song's probabilities are its patches' mean."""

    def __init__(self, C: float = 0.1) -> None:
        self.C = C
        self.name = f"LR-patch C={C:g}"

    def fit(self, seqs: list[np.ndarray], y: np.ndarray, seed: int) -> "LRPatch":
        from sklearn.linear_model import LogisticRegression

        self.std = Standardiser(seqs)
        x = np.concatenate([self.std(s) for s in seqs])
        yy = np.concatenate([np.full(len(s), c) for s, c in zip(seqs, y)])
        self.classes = np.unique(y)
        self.lr = LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced").fit(x, yy)
        return self

    def predict(self, seqs: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(seqs), len(GENRES)))
        for i, s in enumerate(seqs):
            out[i, self.lr.classes_] = self.lr.predict_proba(self.std(s)).mean(0)
        return out


class LRMean(Head):
    """Logistic regression on the song's mean patch vector."""

    def __init__(self, C: float = 0.1) -> None:
        self.C = C
        self.name = f"LR-mean C={C:g}"

    def fit(self, seqs: list[np.ndarray], y: np.ndarray, seed: int) -> "LRMean":
        from sklearn.linear_model import LogisticRegression

        self.std = Standardiser(seqs)
        x = np.stack([self.std(s).mean(0) for s in seqs])
        self.lr = LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced").fit(x, y)
        return self

    def predict(self, seqs: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(seqs), len(GENRES)))
        out[:, self.lr.classes_] = self.lr.predict_proba(np.stack([self.std(s).mean(0) for s in seqs]))
        return out


def _net(kind: str, d: int, hidden: int, pool: str, dropout: float):
    """The torch module of :class:`NNHead` (``kind``: lstm, lstm_skip, mlp, linear)."""
    import torch
    from torch import nn

    class SeqNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop_in = nn.Dropout(0.2)
            self.drop = nn.Dropout(dropout)
            self.kind, self.pool = kind, pool
            summary = 0
            if kind.startswith("lstm"):
                self.lstm = nn.LSTM(d, hidden, batch_first=True, bidirectional=True)
                self.att = nn.Linear(2 * hidden, 1)
                summary = 2 * hidden
            if kind == "mlp":
                self.mlp = nn.Sequential(nn.Linear(d, 2 * hidden), nn.ReLU(), nn.Dropout(dropout))
                summary = 2 * hidden
            if kind in ("lstm_skip", "linear"):
                summary += d
            self.out = nn.Linear(summary, len(GENRES))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, T, d), equal lengths
            x = self.drop_in(x)
            parts = []
            if self.kind.startswith("lstm"):
                h, _ = self.lstm(x)
                if self.pool == "attn":
                    a = torch.softmax(self.att(h), dim=1)
                    parts.append((a * h).sum(1))
                else:
                    parts.append(h.mean(1))
            if self.kind == "mlp":
                parts.append(self.mlp(x.mean(1)))
            if self.kind in ("lstm_skip", "linear"):
                parts.append(x.mean(1))
            return self.out(self.drop(torch.cat(parts, dim=1)))

    return SeqNet()


class NNHead(Head):
    """Sequence head trained with Adam + weight decay + dropout, early stopping on a held-out
    15 % of the training songs (stratified). Training crops random contiguous runs of 3..n
    patches (the same length within a batch), so a song of any patch count can be scored.
    ``kind``: lstm (BiLSTM -> attention/mean pool -> linear), lstm_skip (BiLSTM summary ++ mean
    input -> linear), mlp (mean input -> MLP: the LSTM removed), linear (mean input -> linear).
    """

    def __init__(self, kind: str = "lstm", hidden: int = 32, pool: str = "attn", dropout: float = 0.3,
                 wd: float = 1e-3, lr: float = 1e-3, epochs: int = 200, patience: int = 25) -> None:
        self.kind, self.hidden, self.pool, self.dropout = kind, hidden, pool, dropout
        self.wd, self.lr, self.epochs, self.patience = wd, lr, epochs, patience
        tag = {"lstm": f"BiLSTM{hidden}-{pool}", "lstm_skip": f"BiLSTM{hidden}-{pool}+skip",
               "mlp": f"mean->MLP{2 * hidden}", "linear": "mean->linear"}[kind]
        self.name = tag

    def fit(self, seqs: list[np.ndarray], y: np.ndarray, seed: int) -> "NNHead":
        import torch
        from sklearn.model_selection import train_test_split

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        idx = np.arange(len(seqs))
        counts = np.bincount(y)
        strat = y if counts[counts > 0].min() >= 2 else None
        tr, va = train_test_split(idx, test_size=0.15, random_state=seed, stratify=strat)
        self.std = Standardiser([seqs[i] for i in tr])
        xs = [torch.from_numpy(self.std(s)) for s in seqs]
        yt = torch.from_numpy(y.astype(np.int64))
        d = xs[0].shape[1]
        self.net = _net(self.kind, d, self.hidden, self.pool, self.dropout)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr, weight_decay=self.wd)
        w = torch.tensor(class_weights(y[tr], len(GENRES)), dtype=torch.float32)
        lossf = torch.nn.CrossEntropyLoss(weight=w)
        vlossf = torch.nn.CrossEntropyLoss(weight=w, reduction="sum")
        min_len = min(len(xs[i]) for i in tr)
        best, best_state, bad = float("inf"), None, 0
        for _ in range(self.epochs):
            self.net.train()
            perm = rng.permutation(tr)
            for s in range(0, len(perm), 32):
                b = perm[s:s + 32]
                L = int(rng.integers(3, min_len + 1))
                starts = [int(rng.integers(0, len(xs[i]) - L + 1)) for i in b]
                xb = torch.stack([xs[i][st:st + L] for i, st in zip(b, starts)])
                opt.zero_grad()
                lossf(self.net(xb), yt[b]).backward()
                opt.step()
            self.net.eval()
            with torch.no_grad():
                vl = sum(float(vlossf(self.net(xs[i][None]), yt[i:i + 1])) for i in va) / len(va)
            if vl < best - 1e-4:
                best, bad = vl, 0
                best_state = {k: v.clone() for k, v in self.net.state_dict().items()}
            else:
                bad += 1
                if bad >= self.patience:
                    break
        self.net.load_state_dict(best_state)
        self.net.eval()
        return self

    def predict(self, seqs: list[np.ndarray]) -> np.ndarray:
        import torch

        with torch.no_grad():
            return np.stack([torch.softmax(self.net(torch.from_numpy(self.std(s))[None]), 1)[0].numpy()
                             for s in seqs])


# --------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------

def folds_stratified(y: np.ndarray, k: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Stratified k-fold test indices over clips (shares artists between sides: optimistic)."""
    from sklearn.model_selection import StratifiedKFold

    return [te for _, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)]


def folds_blocked(clips: list[str], genres: list[str], k: int = 5) -> list[np.ndarray]:
    """k folds, each holding one contiguous run of clip numbers per genre (GTZAN's consecutive
    numbers often share an artist: fewer shared artists than a shuffled split, not none)."""
    folds: list[list[int]] = [[] for _ in range(k)]
    for g in sorted(set(genres)):
        idx = sorted((i for i, gg in enumerate(genres) if gg == g), key=lambda i: clips[i])
        for j, block in enumerate(np.array_split(np.asarray(idx), k)):
            folds[j].extend(int(i) for i in block)
    return [np.asarray(sorted(f)) for f in folds]


@dataclass
class Data:
    """Everything a protocol needs, for one input set (``keys``) and one hop."""

    gz: list[np.ndarray]  # GTZAN clean sequences
    gz_mp3: list[np.ndarray]  # the same clips after the MP3 round trip
    emo: list[np.ndarray]
    y: np.ndarray  # GTZAN genre indices
    y_emo: np.ndarray
    clips: list[str]
    split: list[str]
    ms_per_patch: float  # network ms per patch for the nets used


@dataclass
class Result:
    """One config's numbers for one seed (accuracies in [0, 1])."""

    emo10: float
    emo3: float
    emo_recall: dict[str, float]
    emo_pred: list[str]
    emo_true: list[str]
    filt: float
    filt_recall: dict[str, tuple[int, int]]
    cv_strat: float
    cv_block: float
    cv_block_mp3: float


def _acc(p: np.ndarray, y: np.ndarray) -> float:
    return float((p.argmax(1) == y).mean())


def _pick(seqs: list[np.ndarray], k: int | None) -> list[np.ndarray]:
    return [s[even_pick(len(s), k)] for s in seqs]


def cv_predict(head: Head, data: Data, folds: list[np.ndarray], seed: int, ks: tuple[int | None, ...],
               test_sets: list[list[np.ndarray]], train_extra: list[np.ndarray] | None = None
               ) -> dict[int | None, list[np.ndarray]]:
    """Out-of-fold probabilities, per patch count k, on every set of ``test_sets`` (parallel to data.gz)."""
    outs = {k: [np.zeros((len(data.y), len(GENRES))) for _ in test_sets] for k in ks}
    for te in folds:
        tr = np.setdiff1d(np.arange(len(data.y)), te)
        xs, ys = [data.gz[i] for i in tr], data.y[tr]
        if train_extra is not None:
            xs, ys = xs + [train_extra[i] for i in tr], np.concatenate([ys, ys])
        h = head.fit(xs, ys, seed)
        for k in ks:
            for o, ts in zip(outs[k], test_sets):
                o[te] = h.predict(_pick([ts[i] for i in te], k))
    return outs


def evaluate(head: Head, data: Data, seed: int, ks: tuple[int | None, ...] = (None,),
             augment_mp3: bool = False) -> dict[int | None, Result]:
    """All protocols for one head/seed; one fit per protocol/fold, scored with each patch count
    in ``ks`` (None: all patches) at test time. ``augment_mp3`` adds the MP3 round trips of the
    training clips to every training side."""
    extra = data.gz_mp3 if augment_mp3 else None
    emo_idx = np.array([GENRES.index(g) for g in EMO_GENRES])
    # (a) train on all 150, test emotify
    xs, ys = list(data.gz), data.y
    if extra is not None:
        xs, ys = xs + list(extra), np.concatenate([ys, ys])
    h = head.fit(xs, ys, seed)
    p_emo = {k: h.predict(_pick(data.emo, k)) for k in ks}
    # (b) artist-filtered split: train+valid -> test
    tr = np.array([i for i, s in enumerate(data.split) if s in ("train", "valid")])
    te = np.array([i for i, s in enumerate(data.split) if s == "test"])
    xs, ys = [data.gz[i] for i in tr], data.y[tr]
    if extra is not None:
        xs, ys = xs + [extra[i] for i in tr], np.concatenate([ys, ys])
    h = head.fit(xs, ys, seed)
    p_filt = {k: h.predict(_pick([data.gz[i] for i in te], k)).argmax(1) for k in ks}
    # (b) CVs, (c) mp3
    ps = cv_predict(head, data, folds_stratified(data.y, 5, 0), seed, ks, [data.gz], extra)
    pb = cv_predict(head, data, folds_blocked(data.clips, [GENRES[i] for i in data.y]), seed, ks,
                    [data.gz, data.gz_mp3], extra)
    out = {}
    for k in ks:
        pred = p_emo[k].argmax(1)
        p3 = emo_idx[p_emo[k][:, emo_idx].argmax(1)]
        recall = {g: float((pred[data.y_emo == GENRES.index(g)] == GENRES.index(g)).mean()) for g in EMO_GENRES}
        pf = p_filt[k]
        frec = {}
        for g in sorted(set(data.y[te])):
            m = data.y[te] == g
            frec[GENRES[g]] = (int((pf[m] == g).sum()), int(m.sum()))
        out[k] = Result(float((pred == data.y_emo).mean()), float((p3 == data.y_emo).mean()), recall,
                        [GENRES[i] for i in pred], [GENRES[i] for i in data.y_emo],
                        float((pf == data.y[te]).mean()), frec,
                        _acc(ps[k][0], data.y), _acc(pb[k][0], data.y), _acc(pb[k][1], data.y))
    return out


# --------------------------------------------------------------------------------------------
# Ablation driver
# --------------------------------------------------------------------------------------------

INPUTS = {  # name -> cache keys
    "msd_pen": ["msd_pen"], "msd_tags": ["msd_tags"], "msd_pen+tags": ["msd_pen", "msd_tags"],
    "mtt_pen": ["mtt_pen"], "mtt_tags": ["mtt_tags"], "mtt_pen+tags": ["mtt_pen", "mtt_tags"],
    "msd+mtt_pen": ["msd_pen", "mtt_pen"], "msd+mtt_pen+tags": ["msd_pen", "msd_tags", "mtt_pen", "mtt_tags"],
    "msd_pooled_mean753": ["msd_poolmean"],
}


def load_all(cache: Path, hop15: bool = False) -> tuple[Embeddings, Embeddings, Embeddings]:
    """(GTZAN clean, GTZAN mp3, emotify) embeddings; 1.5-s hop (interleaved) when ``hop15``."""
    gz = load_embeddings(cache_path(cache, "gtzan", "clean", 0))
    emo = load_embeddings(cache_path(cache, "emotify", "asis", 0))
    mp3 = load_embeddings(cache_path(cache, "gtzan", "mp3", 0))
    if hop15:
        gz = interleave(gz, load_embeddings(cache_path(cache, "gtzan", "clean", HALF)))
        emo = interleave(emo, load_embeddings(cache_path(cache, "emotify", "asis", HALF)))
    for e in (gz, emo, mp3):
        e.arrays["msd_poolmean"] = np.ascontiguousarray(e.arrays["msd_pooled"][:, 1::2])
    return gz, mp3, emo


def make_data(embs: tuple[Embeddings, Embeddings, Embeddings], keys: list[str], split: dict[str, str]) -> Data:
    """The :class:`Data` of one input set."""
    gz, mp3, emo = embs
    assert gz.clips == mp3.clips
    nets = {k.split("_")[0] for k in keys}
    ms = sum(emo.ms_per_patch.get(n, 40.0) for n in nets)
    return Data(gz.seqs(keys), mp3.seqs(keys), emo.seqs(keys),
                np.array([GENRES.index(g) for g in gz.genres]), np.array([GENRES.index(g) for g in emo.genres]),
                gz.clips, [split.get(c, "none") for c in gz.clips], ms)


@dataclass
class Row:
    """A table row: config name, inputs, the per-seed results, patches per song, cost."""

    config: str
    inputs: str
    results: list[Result]
    k: str
    ms_song: float
    note: str = ""

    def stat(self, attr: str) -> tuple[float, float]:
        v = np.array([getattr(r, attr) for r in self.results])
        return float(v.mean()), float(v.std())


def fmt_row(r: Row) -> str:
    """One line of the table (mean over seeds; +-sd on the emotify headline when several)."""
    e10, sd = r.stat("emo10")
    rec = " ".join(f"{np.mean([x.emo_recall[g] for x in r.results]):.2f}" for g in EMO_GENRES)
    e10s = f"{e10:.3f}" + (f"±{sd:.2f}" if len(r.results) > 1 else "     ")
    d = r.stat("cv_block_mp3")[0] - r.stat("cv_block")[0]
    return (f"{r.config:<26} {r.inputs:<19} {e10s:>10} {r.stat('emo3')[0]:>6.3f}  {rec:<14} "
            f"{r.stat('filt')[0]:>6.3f} {r.stat('cv_strat')[0]:>6.3f} {r.stat('cv_block')[0]:>6.3f} "
            f"{100 * d:>+6.1f} {r.k:>4} {r.ms_song:>7.0f}  {r.note}")


HEADER = (f"{'config':<26} {'inputs':<19} {'emo10':>10} {'emo3':>6}  {'rec cl po ro':<14} "
          f"{'filt19':>6} {'cv5str':>6} {'cv5blk':>6} {'mp3Δpt':>6} {'k':>4} {'ms/song':>7}")


SWEEP: tuple[int | None, ...] = (None, 4, 6, 10)  # patches per song at test time (None: all)


def run_config(head: Head, data: Data, inputs: str, seeds: list[int], ks: tuple[int | None, ...] = SWEEP,
               augment_mp3: bool = False, note: str = "", n_default: int = 20,
               log: list[str] | None = None, log_ks: tuple[int | None, ...] = (None,)) -> dict[int | None, Row]:
    """Evaluate ``head`` over ``seeds``, one row per patch count in ``ks``; print (and append to
    ``log``) the rows of ``log_ks`` when done."""
    t0 = time.perf_counter()
    res = [evaluate(head, data, s, ks, augment_mp3) for s in seeds]
    rows = {}
    for k in ks:
        kk = k if k is not None else n_default
        extra = f"{k} patches evenly spread" if k is not None else ""
        rows[k] = Row(head.name, inputs, [r[k] for r in res], str(k) if k is not None else "all",
                      kk * data.ms_per_patch, ", ".join(x for x in (note, extra) if x))
    for k in log_ks:
        line = fmt_row(rows[k])
        print(line + (f"   [{time.perf_counter() - t0:.0f} s]" if k == log_ks[-1] else ""), flush=True)
        if log is not None:
            log.append(line)
    return rows


def log_rows(rows: list[Row], log: list[str]) -> None:
    """Print and keep already computed rows."""
    for r in rows:
        print(fmt_row(r), flush=True)
        log.append(fmt_row(r))


def zero_shot_mtt(emo: Embeddings) -> float:
    """Emotify 3-way accuracy of MTT's own 'classical'/'pop'/'rock' tags (mean over patches)."""
    from genre_daemon.model.musicnn.weights import load_musicnn

    labels = load_musicnn(ROOT / "models" / "musicnn", "mtt").tags_labels
    cols = [labels.index(g) for g in EMO_GENRES]
    pred = [EMO_GENRES[int(np.argmax(s[:, cols].mean(0)))] for s in emo.seqs(["mtt_tags"])]
    return float(np.mean([p == g for p, g in zip(pred, emo.genres)]))


def confusions(row: Row) -> str:
    """What each emotify genre was called (first seed), e.g. 'classical->jazz 3'."""
    r = row.results[0]
    out = []
    for g in EMO_GENRES:
        c: dict[str, int] = {}
        for p, t in zip(r.emo_pred, r.emo_true):
            if t == g:
                c[p] = c.get(p, 0) + 1
        out.append(f"{g}->" + ",".join(f"{k}:{v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])))
    return "; ".join(out)


def choose_C(data: Data, grid: tuple[float, ...] = (0.01, 0.1, 1.0)) -> float:
    """LR-patch regularisation picked on GTZAN blocked CV only (never on emotify)."""
    folds = folds_blocked(data.clips, [GENRES[i] for i in data.y])
    scores = [(_acc(cv_predict(LRPatch(C), data, folds, 0, (None,), [data.gz])[None][0], data.y), -C) for C in grid]
    return -max(scores)[1]


def best_by_gtzan(rows: list[Row]) -> Row:
    """The row with the best blocked-CV accuracy, ties to the better artist-filtered test
    (GTZAN-internal criteria only)."""
    return max(rows, key=lambda r: (round(r.stat("cv_block")[0], 3), round(r.stat("filt")[0], 3)))


def run_ablation(data_dir: Path, cache: Path, out: Path, seeds: list[int]) -> None:
    """Every config of the module docstring; writes the table to ``out``."""
    t0 = time.perf_counter()
    split = {r["clip"]: r["split"] for r in csv.DictReader(open(data_dir / "gtzan" / "splits.csv"))}
    embs = load_all(cache)
    n_emo = int(np.median(np.diff(embs[2].offsets)))
    lines: list[str] = []
    print(HEADER, flush=True)
    # 1. linear probes of every input set (C chosen on GTZAN blocked CV)
    sweeps: dict[int, dict[int | None, Row]] = {}  # id(row for all patches) -> its patch-count sweep
    lr_rows: list[Row] = []
    datas: dict[str, Data] = {}
    for name, keys in INPUTS.items():
        datas[name] = d = make_data(embs, keys, split)
        C = choose_C(d)
        sw = run_config(LRPatch(C), d, name, [0], n_default=n_emo, log=lines)
        sweeps[id(sw[None])] = sw
        lr_rows.append(sw[None])
    best_lr = best_by_gtzan(lr_rows)
    rows = list(lr_rows)
    for name in dict.fromkeys(["msd_pen", best_lr.inputs]):
        C = float(best_lr.config.split("C=")[1]) if name == best_lr.inputs else choose_C(datas[name])
        rows.append(run_config(LRMean(C), datas[name], name, [0], ks=(None,), n_default=n_emo, log=lines)[None])
    # 2. sequence heads on the GTZAN-best input set and on MSD pen+tags (the head nearest the tags)
    nn_rows: list[Row] = []
    for name in dict.fromkeys([best_lr.inputs, "msd_pen+tags"]):
        d = datas[name]
        for head in (NNHead("lstm", 32, "attn"), NNHead("lstm", 32, "mean"), NNHead("lstm_skip", 32, "attn"),
                     NNHead("mlp", 32), NNHead("linear")):
            sw = run_config(head, d, name, seeds, n_default=n_emo, log=lines)
            sweeps[id(sw[None])] = sw
            nn_rows.append(sw[None])
    rows += nn_rows
    lstm_rows = [r for r in nn_rows if r.config.startswith("BiLSTM")]
    best_lstm = best_by_gtzan(lstm_rows)
    print(f"GTZAN-internal choices: linear probe {best_lr.config} on {best_lr.inputs}; "
          f"LSTM head {best_lstm.config} on {best_lstm.inputs}", flush=True)

    def head_of(row: Row) -> Head:
        if row.config.startswith("LR-patch"):
            return LRPatch(float(row.config.split("C=")[1]))
        kind = "lstm_skip" if row.config.endswith("+skip") else "lstm"
        hidden = int(row.config[len("BiLSTM"):].split("-")[0])
        return NNHead(kind, hidden, "attn" if "-attn" in row.config else "mean")

    # 3. the two chosen configs: patches per song (same fits), MP3-augmented training, 1.5-s hop
    lines.append("--- chosen configs (GTZAN-internal): patches per song, MP3-augmented training, 1.5-s hop ---")
    print(lines[-1], flush=True)
    extra: list[Row] = []
    for row in (best_lr, best_lstm):
        sw = sweeps[id(row)]
        log_rows([sw[k] for k in SWEEP if k is not None], lines)
        extra += [sw[k] for k in SWEEP if k is not None]
    embs15 = load_all(cache, hop15=True)
    for row in (best_lr, best_lstm):
        sd = [0] if row is best_lr else seeds
        d = datas[row.inputs]
        extra.append(run_config(head_of(row), d, row.inputs, sd, ks=(None,), augment_mp3=True,
                                n_default=n_emo, note="train clean+mp3", log=lines)[None])
        d15 = make_data(embs15, INPUTS[row.inputs], split)
        extra.append(run_config(head_of(row), d15, row.inputs, sd, ks=(None,), n_default=2 * n_emo - 1,
                                note="1.5-s hop, train+test", log=lines)[None])
    rows += extra
    zs = zero_shot_mtt(embs[2])
    # write
    gz_split = make_data(embs, ["msd_tags"], split)
    te = [GENRES[gz_split.y[i]] for i, s in enumerate(gz_split.split) if s == "test"]
    n_test = {g: te.count(g) for g in sorted(set(te))}
    text = [
        "bench_frontend.py: frozen musicnn features + heads trained on the 150 GTZAN clips only.",
        f"seeds {seeds} for neural heads (mean; ±sd over seeds on emo10), seed 0 for LR (deterministic).",
        "emo10 = emotify-dev (60 Magnatune songs, 20 classical/pop/rock) 10-way argmax accuracy [HEADLINE];",
        "emo3 = same, argmax restricted to classical/pop/rock (easier, NOT the headline); rec = 10-way recall",
        f"per emotify genre. filt19 = GTZAN artist-filtered split, train+valid (121) -> test (19 clips: {n_test});",
        "cv5str = stratified 5-fold over the 150 clips (shares artists: optimistic); cv5blk = 5-fold with",
        "contiguous clip numbers held out together (fewer shared artists; the selection criterion);",
        "mp3Δpt = cv5blk accuracy on the 128k MP3 round trip of the held-out clips minus clean, points;",
        f"k = patches per song at test time (all: GTZAN 10, emotify {n_emo}); ms/song = network time for k",
        "patches (measured median per patch and net on this machine, 1 thread; decoding and mel excluded).",
        f"Binomial SE: emo10 ±{100 * np.sqrt(0.25 / 60):.0f} pt at n=60; filt19 ±{100 * np.sqrt(0.25 / 19):.0f} pt.",
        "",
        HEADER,
        *lines,
        "",
        f"zero-shot MTT tags classical/pop/rock (no training), emotify 3-way: {zs:.3f}",
        f"GTZAN-internal choices (blocked CV, then filt19): linear probe = {best_lr.config} on {best_lr.inputs}; "
        f"LSTM = {best_lstm.config} on {best_lstm.inputs}",
        "",
        "emotify confusions (seed 0):",
        *[f"  {r.config} [{r.inputs}{', ' + r.note if r.note else ''}]: {confusions(r)}"
          for r in rows if r in (best_lr, best_lstm) or r.note == "train clean+mp3"],
        "filtered-test per genre (correct/n, seed 0):",
        *[f"  {r.config} [{r.inputs}]: " + ", ".join(f"{g} {c}/{n}" for g, (c, n) in r.results[0].filt_recall.items())
          for r in (best_lr, best_lstm)],
        f"total {time.perf_counter() - t0:.0f} s",
    ]
    out.write_text("\n".join(text) + "\n")
    print("\n".join(text[-8:]))
    print(f"wrote {out}")


# --------------------------------------------------------------------------------------------
# Tag-prior experiments (part "tagprior"): does the MSD tag head's prior knowledge reduce the
# GTZAN artist overfit? Everything trained on GTZAN only; emotify is measured, never selected on.
# --------------------------------------------------------------------------------------------

# A-priori map from MSD-musicnn's 50 Last.fm tags to the 10 GTZAN genres. Written once, before any
# score was seen, from tag names only; never tuned. MSD has no 'classical' and no 'reggae' tag:
# classical <- instrumental + ambient + easy listening (the nearest "calm, no vocals" tags);
# reggae <- chill (the only laid-back tag; weak, knowingly). disco <- dance + funk + 70s.
TAG_MAP: dict[str, list[str]] = {
    "blues": ["blues"],
    "classical": ["instrumental", "ambient", "easy listening"],
    "country": ["country"],
    "disco": ["dance", "funk", "70s"],
    "hiphop": ["Hip-Hop", "rnb"],
    "jazz": ["jazz"],
    "metal": ["metal", "heavy metal", "hard rock"],
    "pop": ["pop"],
    "reggae": ["chill"],
    "rock": ["rock", "classic rock", "alternative rock", "indie rock", "punk"],
}
N_TAGS = 50  # msd_tags are the last 50 columns of the msd_pen+tags sequences


def tag_map_matrix() -> np.ndarray:
    """(10, 50): row g averages the tags mapped to genre g (1/|tags| each, 0 elsewhere)."""
    from genre_daemon.model.musicnn.weights import load_musicnn

    labels = load_musicnn(ROOT / "models" / "musicnn", "msd").tags_labels
    m = np.zeros((len(GENRES), len(labels)))
    for g, tags in TAG_MAP.items():
        for t in tags:
            m[GENRES.index(g), labels.index(t)] = 1.0 / len(tags)
    return m


def zero_shot_scores(seqs: list[np.ndarray], m: np.ndarray) -> np.ndarray:
    """(songs, 10) log of the mean (over patches and over the mapped tags) MSD tag probability."""
    return np.log(np.stack([s[:, -N_TAGS:].mean(0) for s in seqs]) @ m.T + 1e-9)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


class ZeroShot(Head):
    """No training: softmax of the zero-shot log scores (argmax = the map's genre)."""

    def __init__(self, m: np.ndarray) -> None:
        self.m, self.name = m, "zero-shot tag map"

    def fit(self, seqs, y, seed):
        return self

    def predict(self, seqs):
        return _softmax(zero_shot_scores(seqs, self.m))


def _logodds(s: np.ndarray) -> np.ndarray:
    p = np.clip(s[:, -N_TAGS:].astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class PriorLR(Head):
    """Patch-level multinomial LR on the MSD tags' log-odds (raw, not standardised, so that the
    prior is meaningful), balanced class weights, minimising
        C * sum_i w_i CE_i + 0.5 * ||W - W0||^2     (intercept unpenalised)
    i.e. sklearn's L2 LR with the Gaussian prior centred on ``prior_scale * W0`` (the tag map:
    genre logit = mean log-odds of its mapped tags) instead of on 0. W0 = 0 gives the plain-L2
    control. Song probabilities = mean of the patch probabilities."""

    def __init__(self, m: np.ndarray, C: float = 0.1, prior: bool = True, prior_scale: float = 1.0) -> None:
        self.W0 = prior_scale * m if prior else np.zeros_like(m)
        self.C, self.prior = C, prior
        self.name = f"{'prior' if prior else 'L2-0'}-LR tags C={C:g}"

    def fit(self, seqs, y, seed):
        from scipy.optimize import minimize

        x = np.concatenate([_logodds(s) for s in seqs])
        yy = np.concatenate([np.full(len(s), c) for s, c in zip(seqs, y)])
        w = class_weights(yy, len(GENRES))[yy]
        Y = np.eye(len(GENRES))[yy]
        present = np.bincount(yy, minlength=len(GENRES)) > 0
        K, D = self.W0.shape

        def f(theta):
            W, b = theta[:K * D].reshape(K, D), theta[K * D:]
            z = x @ W.T + b
            z = np.where(present, z, -1e9)
            z -= z.max(1, keepdims=True)
            lse = np.log(np.exp(z).sum(1, keepdims=True))
            logp = z - lse
            ce = -(Y * logp).sum(1)
            g = (np.exp(logp) - Y) * w[:, None] * self.C  # d/dz
            dW = g.T @ x + (W - self.W0)
            return self.C * float((w * ce).sum()) + 0.5 * float(((W - self.W0) ** 2).sum()), \
                np.concatenate([dW.ravel(), g.sum(0)])

        theta0 = np.concatenate([self.W0.ravel(), np.zeros(K)])
        r = minimize(f, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 3000})
        self.W, self.b = r.x[:K * D].reshape(K, D), r.x[K * D:]
        self.present = present
        return self

    def predict(self, seqs):
        out = []
        for s in seqs:
            z = np.where(self.present, _logodds(s) @ self.W.T + self.b, -1e9)
            out.append(_softmax(z).mean(0))
        return np.stack(out)


class Fusion(Head):
    """Late fusion: log of a trained head's song probabilities + w * zero-shot log scores."""

    def __init__(self, base: Head, m: np.ndarray, w: float = 1.0, label: str = "") -> None:
        self.base, self.m, self.w = base, m, w
        self.name = f"{base.name}+{w:g}*ZS{label}"

    def fit(self, seqs, y, seed):
        self.base.fit(seqs, y, seed)
        return self

    def predict(self, seqs):
        return _softmax(np.log(self.base.predict(seqs) + 1e-9) + self.w * zero_shot_scores(seqs, self.m))


def run_tagprior(data_dir: Path, cache: Path, out: Path, seeds: list[int]) -> None:
    """Zero-shot tag map, prior-regularised LR on tags, late fusion; appends a section to ``out``."""
    t0 = time.perf_counter()
    split = {r["clip"]: r["split"] for r in csv.DictReader(open(data_dir / "gtzan" / "splits.csv"))}
    embs = load_all(cache)
    n_emo = int(np.median(np.diff(embs[2].offsets)))
    d = make_data(embs, INPUTS["msd_pen+tags"], split)
    m = tag_map_matrix()
    folds = folds_blocked(d.clips, [GENRES[i] for i in d.y])
    lines: list[str] = []
    rows: list[Row] = []

    def rc(*a, **k) -> None:
        rows.append(run_config(*a, **k)[None])

    print(HEADER, flush=True)
    zs = ZeroShot(m)
    zs_all = _acc(zs.predict(d.gz), d.y)
    rc(zs, d, "msd_tags", [0], ks=(None,), n_default=n_emo, log=lines, note="no training")
    # (b) prior-regularised LR on tag log-odds, trained clean+mp3; C on GTZAN blocked CV and C a priori
    grid = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    cvs: dict[tuple[bool, float], float] = {}
    for prior in (True, False):
        for C in grid:
            p = cv_predict(PriorLR(m, C, prior), d, folds, 0, (None,), [d.gz], d.gz_mp3)[None][0]
            cvs[(prior, C)] = _acc(p, d.y)
        print(f"  blocked-CV grid ({'prior' if prior else 'L2-0'}): "
              + ", ".join(f"C={C:g} {cvs[(prior, C)]:.3f}" for C in grid), flush=True)
    grid_lines = [f"  blocked-CV grid, {'prior' if pr else 'L2-0'}-LR tags (train clean+mp3): "
                  + ", ".join(f"C={C:g} {cvs[(pr, C)]:.3f}" for C in grid) for pr in (True, False)]
    best_C = {pr: max(grid, key=lambda C: (round(cvs[(pr, C)], 3), -C)) for pr in (True, False)}
    for pr in (True, False):
        rc(PriorLR(m, 0.1, pr), d, "msd_tags logodds", [0], ks=(None,), augment_mp3=True,
                   n_default=n_emo, log=lines, note="C a priori (=usual 0.1), train clean+mp3")
        if best_C[pr] != 0.1:
            rc(PriorLR(m, best_C[pr], pr), d, "msd_tags logodds", [0], ks=(None,), augment_mp3=True,
                       n_default=n_emo, log=lines, note="C on GTZAN blocked CV, train clean+mp3")
        else:
            lines.append(f"  ({'prior' if pr else 'L2-0'}-LR: blocked-CV choice is C=0.1, same row as above)")
    rc(PriorLR(m, 1e-4, True), d, "msd_tags logodds", [0], ks=(None,), augment_mp3=True,
               n_default=n_emo, log=lines, note="C->0: tag map + fitted genre biases only")
    # (c) late fusion with the chosen linear probe (LR-patch C=0.1, msd_pen+tags, clean+mp3)
    base_oof = cv_predict(LRPatch(0.1), d, folds, 0, (None,), [d.gz], d.gz_mp3)[None][0]
    zsg = zero_shot_scores(d.gz, m)
    wgrid = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    wcv = {w: _acc(np.log(base_oof + 1e-9) + w * zsg, d.y) for w in wgrid}
    best_w = max(wgrid, key=lambda w: (round(wcv[w], 3), -w))
    grid_lines.append("  blocked-CV grid, fusion LR-patch C=0.1 [msd_pen+tags] + w*ZS: "
                      + ", ".join(f"w={w:g} {wcv[w]:.3f}" for w in wgrid))
    print(grid_lines[-1], flush=True)
    rc(Fusion(LRPatch(0.1), m, 1.0), d, "msd_pen+tags", [0], ks=(None,), augment_mp3=True,
               n_default=n_emo, log=lines, note="w a priori 1.0, train clean+mp3")
    if best_w != 1.0:
        rc(Fusion(LRPatch(0.1), m, best_w), d, "msd_pen+tags", [0], ks=(None,), augment_mp3=True,
                   n_default=n_emo, log=lines, note="w on GTZAN blocked CV (not nested), train clean+mp3")
    if "lstm" in os.environ.get("TAGPRIOR_EXTRA", ""):
        rc(Fusion(NNHead("lstm", 32, "mean"), m, 1.0), d, "msd_pen+tags", seeds, ks=(None,),
                   augment_mp3=True, n_default=n_emo, log=lines, note="w a priori 1.0, train clean+mp3")
    text = [
        "",
        "== Tag-prior experiments (part tagprior; appended, rerunning appends again) ==",
        "Question: does the MSD tag head's prior knowledge (Last.fm tags of ~1M songs) reduce the GTZAN",
        "artist overfit? Map (a priori, from tag names only, never tuned): "
        + "; ".join(f"{g}<-{'+'.join(t)}" for g, t in TAG_MAP.items()) + ".",
        "zero-shot = argmax_g log mean(prob of g's tags), mean over patches; prior-LR = patch-level LR on",
        "tag log-odds with L2 pulling W toward the map (genre logit = mean log-odds of its tags) instead",
        "of 0 (L2-0 = same head, ordinary L2 control); fusion = log p(LR-patch) + w * zero-shot scores.",
        "Selection on GTZAN blocked CV only (grids below; not nested, so the chosen rows' cv5blk is a",
        "little optimistic); emotify only measured. Trained rows: clean + MP3 round trips. seed 0.",
        f"zero-shot accuracy on all 150 GTZAN clips: {zs_all:.3f}",
        *grid_lines,
        "",
        HEADER,
        *lines,
        "emotify confusions (seed 0):",
        *[f"  {r.config} [{r.note}]: {confusions(r)}" for r in rows],
        f"part time {time.perf_counter() - t0:.0f} s",
    ]
    print("\n".join(text[-6:]), flush=True)
    with open(out, "a") as f:
        f.write("\n".join(text) + "\n")
    print(f"appended to {out}; {time.perf_counter() - t0:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/work/cache/frontend"))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--parts", default="embed,ablation")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the neural heads (LR is deterministic)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-frontend.txt")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    parts = set(args.parts.split(","))
    if "embed" in parts:
        run_embed(args.data, args.cache)
    if "ablation" in parts:
        run_ablation(args.data, args.cache, args.out, [int(s) for s in args.seeds.split(",")])
    if "tagprior" in parts:
        run_tagprior(args.data, args.cache, args.out, [int(s) for s in args.seeds.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
