"""The genre network and the model directory format (format 3: musicnn patch embeddings and AudioSet's
genre evidence; format 2, musicnn only, is still read).

A model is a directory holding ``weights.safetensors`` (the genre network's tensors only, never
a pickle) and ``model.json``: format version, model version, created-at, architecture (its
inputs among the front end's outputs, the LSTM, the pooling, the head), ordered genres, the
pretrained front end by identity (see :mod:`genre_daemon.model.frontend`: nets, sha256, source wheel,
licence), patches per song, normalisation statistics, training summary and metrics. See
DESIGN.md, "Model file". A round-1 directory (format 1: librosa features) is refused with a
:class:`ModelError` that says so and what to do.
"""

from __future__ import annotations

import json
import logging
import math
import os
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from genre_daemon.atomic import atomic_write
from genre_daemon.errors import ModelError
from genre_daemon.model.frontend import DEFAULT_INPUTS, FrontEnd, check_inputs, input_dim, nets_of
from genre_daemon.model.prior import AudioSetPrior
from genre_daemon.names import safe_component

FORMAT_VERSION = 3
READABLE_FORMATS = (2, 3)  # format 2: round 2's musicnn-only models, served as they are (no prior)
ROUND1_FORMAT = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
REHEARSAL_FILE = "rehearsal.safetensors"
POOLINGS = ("attention", "mean", "last")
HEADS = ("linear", "mlp")
PATCHES_PER_SONG = 10  # measured (benchmarks/results-frontend.txt): 10 spread > 6 > 4, on GTZAN and emotify
TRAIN_HOP_FRAMES = 187  # training excerpts cut into non-overlapping 3-s patches (a 1.5-s hop gained nothing)

log = logging.getLogger(__name__)
_SAID_FORMAT_2: set[str] = set()  # model directories already logged as served without a prior


@dataclass(frozen=True)
class Architecture:
    """Hyper-parameters of :class:`GenreNet`; stored verbatim in ``model.json``.

    ``inputs``: which front-end outputs make up a patch vector, concatenated in this order
    (:data:`genre_daemon.model.frontend.INPUT_KINDS`). The LSTM runs over the song's sequence of patch
    vectors; ``pooling`` turns its outputs into one vector; ``skip_mean`` adds the mean input
    vector beside it (a linear model on the mean embedding is a strong baseline on small data);
    ``head`` is one linear layer or a one-hidden-layer MLP.
    """

    inputs: tuple[str, ...] = DEFAULT_INPUTS
    n_classes: int = 10
    hidden: int = 32
    lstm_layers: int = 1
    bidirectional: bool = True
    pooling: str = "mean"
    skip_mean: bool = False
    head: str = "linear"
    head_hidden: int = 64
    dropout: float = 0.3
    input_dropout: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", check_inputs(self.inputs))
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        for name in ("n_classes", "hidden", "lstm_layers", "head_hidden"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        for name in ("dropout", "input_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")

    @property
    def n_inputs(self) -> int:
        return input_dim(self.inputs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inputs"] = list(self.inputs)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Architecture":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(f"unknown architecture keys: {sorted(unknown)}")
        try:
            return cls(**{**data, **({"inputs": tuple(data["inputs"])} if "inputs" in data else {})})
        except (TypeError, ValueError) as exc:
            raise ModelError(f"bad architecture: {exc}") from exc


class AttentionPool(nn.Module):
    """Weighted mean over time, the weights learnt: lets the telling patches count more."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, max(1, dim // 2)), nn.Tanh(), nn.Linear(max(1, dim // 2), 1))

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        score = self.score(h)  # (B, T, 1)
        if mask is not None:
            score = score.masked_fill(~mask[..., None], float("-inf"))
        return (torch.softmax(score, dim=1) * h).sum(dim=1)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over time of ``(B, T, F)``, only over the steps ``mask`` (B, T) keeps."""
    if mask is None:
        return x.mean(dim=1)
    m = mask[..., None].to(x.dtype)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


class GenreNet(nn.Module):
    """Standardise -> (Bi)LSTM over the song's patch vectors -> pooling [+ mean input] -> head.

    Input: raw patch vectors ``(batch, patches, n_inputs)``; any number of patches >= 1, and
    with ``lengths`` a batch of songs of different lengths (zero-padded at the end; a padded
    step never reaches the LSTM or the pooling). The standardisation statistics live in
    buffers, so a model directory is complete by itself.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        d = arch.n_inputs
        self.register_buffer("feat_mean", torch.zeros(d))
        self.register_buffer("feat_std", torch.ones(d))
        self.in_drop = nn.Dropout(arch.input_dropout)
        self.lstm = nn.LSTM(d, arch.hidden, num_layers=arch.lstm_layers, batch_first=True,
                            bidirectional=arch.bidirectional, dropout=arch.dropout if arch.lstm_layers > 1 else 0.0)
        out_dim = arch.hidden * (2 if arch.bidirectional else 1)
        self.pool = AttentionPool(out_dim) if arch.pooling == "attention" else None
        head_in = out_dim + (d if arch.skip_mean else 0)
        if arch.head == "linear":
            self.head = nn.Sequential(nn.Dropout(arch.dropout), nn.Linear(head_in, arch.n_classes))
        else:
            self.head = nn.Sequential(nn.Dropout(arch.dropout), nn.Linear(head_in, arch.head_hidden), nn.ReLU(),
                                      nn.Dropout(arch.dropout), nn.Linear(arch.head_hidden, arch.n_classes))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.in_drop((x - self.feat_mean) / self.feat_std)
        t = x.shape[1]
        mask = None
        if lengths is not None and bool((lengths < t).any()):
            mask = torch.arange(t)[None, :] < lengths[:, None]
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            h, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=t)
        else:
            h, _ = self.lstm(x)
        if self.pool is not None:
            pooled = self.pool(h, mask)
        elif self.arch.pooling == "mean":
            pooled = _masked_mean(h, mask)
        else:  # last: the forward direction's last output and the backward direction's first
            last = lengths - 1 if lengths is not None else torch.full((x.shape[0],), t - 1)
            fwd = h[torch.arange(x.shape[0]), last.long()]
            half = self.arch.hidden
            pooled = torch.cat([fwd[:, :half], h[:, 0, half:]], dim=1) if self.arch.bidirectional else fwd
        if self.arch.skip_mean:
            pooled = torch.cat([pooled, _masked_mean(x, mask)], dim=1)
        return self.head(pooled)


@dataclass
class GenreModel:
    """A trained network together with everything needed to use it on raw audio."""

    net: GenreNet
    genres: list[str]
    frontend: FrontEnd
    patches: int = PATCHES_PER_SONG  # patches per song at inference (spread over it)
    train_hop_frames: int = TRAIN_HOP_FRAMES  # how training excerpts were embedded (a retrain does the same)
    version: str = "unversioned"
    created: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    prior: AudioSetPrior | None = None  # AudioSet's genre evidence, fused late (format 3)

    @property
    def learned(self) -> list[str]:
        """The genres the LSTM has an output for (the first ``n_classes`` of :attr:`genres`);
        the rest are the prior's ``prior_only`` genres."""
        return self.genres[:self.net.arch.n_classes]

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.net.arch.inputs

    @property
    def n_inputs(self) -> int:
        return self.net.arch.n_inputs

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.net.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.net.feat_std.copy_(torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))

    def metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "created": self.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "architecture": self.net.arch.to_dict(),
            "genres": list(self.genres),
            "frontend": self.frontend.to_dict(),
            "patches": {"per_song": int(self.patches), "train_hop_frames": int(self.train_hop_frames)},
            "normalisation": {
                "mean": [float(v) for v in self.net.feat_mean],
                "std": [float(v) for v in self.net.feat_std],
            },
            "training": self.training,
            "metrics": self.metrics,
            **({"prior": self.prior.to_dict()} if self.prior is not None else {}),
        }


def check_genres(genres: object, where: str | os.PathLike[str]) -> list[str]:
    """The genre list of a model, refused with a :class:`ModelError` naming ``where`` and the
    genre unless every name is usable as it stands as ONE folder of the library.

    A genre name becomes ``<library>/<genre>/``, so it must be exactly what
    :func:`genre_daemon.names.safe_component` leaves unchanged: not empty, ``.`` or ``..``; no
    ``/``, ``\\``, NUL, control or bidi characters; no leading dot, dash or space, no trailing dot
    or space; at most 200 bytes; composed (NFC) Unicode. Two names that differ only by case
    or Unicode normalisation are refused too (one folder on macOS and SMB shares). Refusing,
    rather than silently renaming, keeps the model's classes and the library's folders one to
    one.
    """
    if not isinstance(genres, list):
        raise ModelError(f"{where}: 'genres' must be a list of names, not {type(genres).__name__}")
    seen: dict[str, str] = {}
    for genre in genres:
        if not isinstance(genre, str):
            raise ModelError(f"{where}: genre {genre!r} is not text")
        if safe_component(genre, fallback="_") != genre:
            raise ModelError(f"{where}: genre {genre!r} cannot be a folder name of the library "
                             f"(it must be one path component, such as {safe_component(genre)!r})")
        key = unicodedata.normalize("NFC", genre).casefold()
        if key in seen and seen[key] == genre:
            raise ModelError(f"{where}: genre {genre!r} appears twice (duplicates)")
        if key in seen:
            raise ModelError(f"{where}: genres {seen[key]!r} and {genre!r} differ only by case "
                             "or Unicode normalisation (one folder on many filesystems)")
        seen[key] = genre
    return list(genres)


def save_model(model: GenreModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``directory`` (created); each file appears whole or not at all.
    A genre list that :func:`load_model` would refuse is refused before anything is written."""
    from safetensors.torch import save_file

    check_genres(list(model.genres), Path(directory) / META_FILE)
    _check_frontend_covers(model.frontend, model.net.arch, Path(directory) / META_FILE)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    meta = model.metadata()
    model.created = meta["created"]
    tensors = {k: v.detach().contiguous().clone() for k, v in model.net.state_dict().items()}
    atomic_write(out / WEIGHTS_FILE, lambda p: save_file(tensors, p, metadata={"format": "pt"}))
    text = json.dumps(meta, indent=2, sort_keys=False) + "\n"
    atomic_write(out / META_FILE, lambda p: Path(p).write_text(text, encoding="utf-8"))
    return out


def _check_frontend_covers(frontend: FrontEnd, arch: Architecture, where: Path) -> None:
    """ModelError unless the front end names (by sha256) every net the inputs come from."""
    missing = [n for n in nets_of(arch.inputs) if n not in frontend.sha256]
    if missing:
        raise ModelError(f"{where}: inputs {list(arch.inputs)} need the {', '.join(missing)} front end, "
                         "which the model's front end does not name")


def check_format(meta: Any, where: Path) -> None:
    """Refuse a ``model.json`` of another format, saying what it is and what to do."""
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version in READABLE_FORMATS:
        return
    directory = where.parent
    if version == ROUND1_FORMAT:
        raise ModelError(
            f"{directory}: a round-1 model (format_version 1: librosa features, no pretrained front end); "
            f"this genre-daemon reads formats {' and '.join(map(str, READABLE_FORMATS))} (musicnn embeddings) "
            f"only. Retrain it in the new format with `genre-daemon train --data DIR --out NEW_DIR` on its "
            f"training folders, or drop the "
            f"`model:` setting to use the shipped model (the daemon relearns your labels at its next retrain)")
    raise ModelError(f"{where}: format_version {version!r} is not one this genre-daemon reads "
                     f"(it reads {' and '.join(map(str, READABLE_FORMATS))}); a newer genre-daemon may have written it")


def load_model(directory: str | os.PathLike[str]) -> GenreModel:
    """Read a model directory. Refuses anything but a safetensors weights file: never unpickles."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    src = Path(directory)
    meta_path, weights_path = src / META_FILE, src / WEIGHTS_FILE
    if not meta_path.is_file() or not weights_path.is_file():
        raise ModelError(f"{src}: not a model directory (needs {META_FILE} and {WEIGHTS_FILE})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_path}: unreadable model metadata: {exc}") from exc
    check_format(meta, meta_path)
    check_safetensors_header(weights_path)
    try:
        arch = Architecture.from_dict(meta["architecture"])
        genres = check_genres(meta["genres"], meta_path)
        frontend = FrontEnd.from_dict(meta["frontend"])
        patches = int(meta["patches"]["per_song"])
        hop = int(meta["patches"]["train_hop_frames"])
        if patches < 1 or hop < 1:
            raise ValueError(f"patches per song ({patches}) and train hop ({hop}) must be >= 1")
        prior = AudioSetPrior.from_dict(meta["prior"]) if meta.get("prior") is not None else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: malformed model metadata: {exc!r}") from exc
    except ModelError as exc:
        raise ModelError(f"{meta_path}: {exc}") from exc
    extra = list(prior.prior_only) if prior is not None else []
    if len(genres) != arch.n_classes + len(extra) or genres[arch.n_classes:] != extra:
        raise ModelError(f"{meta_path}: {len(genres)} genres for {arch.n_classes} outputs"
                         + (f" and the prior-only genres {extra}" if extra else ""))
    _check_frontend_covers(frontend, arch, meta_path)
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{weights_path}: not a valid safetensors file: {exc}") from exc
    net = GenreNet(arch)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{weights_path}: weights do not fit the architecture in {META_FILE}: {exc}") from exc
    net.eval()
    if meta["format_version"] == 2 and os.path.realpath(src) not in _SAID_FORMAT_2:
        _SAID_FORMAT_2.add(os.path.realpath(src))
        log.info("%s: a round-2 model (format 2, musicnn only): served as it is, without AudioSet's genre "
                 "evidence; the next promoted retrain or a `genre-daemon train` gives a format-3 model", src)
    return GenreModel(
        net=net,
        genres=genres,
        frontend=frontend,
        patches=patches,
        train_hop_frames=hop,
        version=str(meta.get("version", "unversioned")),
        created=str(meta.get("created", "")),
        training=dict(meta.get("training", {})),
        metrics=dict(meta.get("metrics", {})),
        prior=prior,
    )


def read_metadata(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``model.json`` of a model directory, without loading any weights."""
    path = Path(directory) / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model metadata: {exc}") from exc


def check_safetensors_header(path: Path) -> None:
    """Refuse a weights file that is not safetensors (a pickle, a zip) before any parser sees it."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if len(head) < 9:
        raise ModelError(f"{path}: too short to be a safetensors file")
    header_len = int.from_bytes(head[:8], "little")
    size = path.stat().st_size
    if head[8:9] != b"{" or not 2 <= header_len <= min(size - 8, 100 * 2**20):
        raise ModelError(f"{path}: not a safetensors file (refusing to load it; pickles are never loaded)")


def parameter_count(net: nn.Module) -> int:
    return int(sum(math.prod(p.shape) for p in net.parameters()))
