"""The genre network and the model directory format.

A model is a directory holding ``weights.safetensors`` (tensors only, never a pickle) and
``model.json`` (architecture, ordered genres, feature parameters, normalisation statistics,
window length, training summary, metrics, version, created-at). See DESIGN.md, "Model file".
"""

from __future__ import annotations

import json
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

from .atomic import atomic_write
from .errors import ModelError
from .features import FeatureParams, add_noise_floor, extract
from .mover import safe_component

FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
REHEARSAL_FILE = "rehearsal.safetensors"


@dataclass(frozen=True)
class Architecture:
    """Hyper-parameters of :class:`GenreNet`; stored verbatim in ``model.json``."""

    n_features: int = 33
    n_classes: int = 10
    conv_channels: int = 0  # 0: no convolutional front end (measured: no gain, 4x the cost)
    conv_layers: int = 2
    conv_kernel: int = 5
    pool: int = 2  # temporal downsampling after the front end
    hidden: int = 32
    lstm_layers: int = 1
    bidirectional: bool = True
    attention: bool = True  # False: mean over time
    stats_pool: bool = True  # also feed mean, std and mean |delta| of the window's features to the head
    dropout: float = 0.5

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Architecture":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(f"unknown architecture keys: {sorted(unknown)}")
        return cls(**data)


class AttentionPool(nn.Module):
    """Weighted mean over time, the weights learnt: lets salient frames count more."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, dim // 2), nn.Tanh(), nn.Linear(dim // 2, 1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.score(h), dim=1)  # (B, T, 1)
        return (w * h).sum(dim=1)


def window_statistics(x: torch.Tensor) -> torch.Tensor:
    """Mean, standard deviation and mean absolute frame-to-frame change of each feature over a
    window: ``(B, T, F) -> (B, 3F)``. Summary statistics that the LSTM alone learns poorly from
    a hundred clips (see README, "Model choices")."""
    delta = (x[:, 1:] - x[:, :-1]).abs().mean(dim=1)
    return torch.cat([x.mean(dim=1), x.std(dim=1), delta], dim=1)


class GenreNet(nn.Module):
    """Conv front end -> (Bi)LSTM -> pooling over time [+ window statistics] -> genre logits.

    Input: normalised features ``(batch, frames, n_features)``. The normalisation statistics
    live in buffers so a model directory is complete by itself.
    """

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.register_buffer("feat_mean", torch.zeros(arch.n_features))
        self.register_buffer("feat_std", torch.ones(arch.n_features))
        layers: list[nn.Module] = []
        channels = arch.n_features
        for _ in range(arch.conv_layers if arch.conv_channels else 0):
            layers += [
                nn.Conv1d(channels, arch.conv_channels, arch.conv_kernel, padding=arch.conv_kernel // 2),
                nn.BatchNorm1d(arch.conv_channels),
                nn.ReLU(),
            ]
            channels = arch.conv_channels
        if arch.pool > 1:
            layers.append(nn.AvgPool1d(arch.pool))
        self.front = nn.Sequential(*layers)
        self.lstm = nn.LSTM(
            channels,
            arch.hidden,
            num_layers=arch.lstm_layers,
            batch_first=True,
            bidirectional=arch.bidirectional,
            dropout=arch.dropout if arch.lstm_layers > 1 else 0.0,
        )
        out_dim = arch.hidden * (2 if arch.bidirectional else 1)
        self.pool = AttentionPool(out_dim) if arch.attention else None
        # Standardise the statistics (as one would before a linear model): their scales differ
        # by orders of magnitude (a mean against a mean absolute change).
        self.stats_norm = nn.BatchNorm1d(3 * arch.n_features) if arch.stats_pool else None
        head_in = out_dim + (3 * arch.n_features if arch.stats_pool else 0)
        self.head = nn.Sequential(nn.Dropout(arch.dropout), nn.Linear(head_in, arch.n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.feat_mean) / self.feat_std
        h, _ = self.lstm(self.front(x.transpose(1, 2)).transpose(1, 2))
        pooled = self.pool(h) if self.pool is not None else h.mean(dim=1)
        if self.stats_norm is not None:
            pooled = torch.cat([pooled, self.stats_norm(window_statistics(x))], dim=1)
        return self.head(pooled)


@dataclass
class GenreModel:
    """A trained network together with everything needed to use it on raw audio."""

    net: GenreNet
    genres: list[str]
    feature_params: FeatureParams
    window_frames: int
    noise_floor_db: float | None = None  # see features.add_noise_floor
    version: str = "unversioned"
    created: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def window_seconds(self) -> float:
        fp = self.feature_params
        return (self.window_frames - 1) * fp.hop_length / fp.sample_rate

    def features(self, y: np.ndarray) -> np.ndarray:
        """The model's input features of a signal: noise floor (if any), then the 33 features."""
        return extract(add_noise_floor(y, self.noise_floor_db), self.feature_params)

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.net.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.net.feat_std.copy_(torch.as_tensor(np.maximum(std, 1e-6), dtype=torch.float32))

    def metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "created": self.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "architecture": asdict(self.net.arch),
            "genres": list(self.genres),
            "features": self.feature_params.to_dict(),
            "window_frames": self.window_frames,
            "noise_floor_db": self.noise_floor_db,
            "normalisation": {
                "mean": [float(v) for v in self.net.feat_mean],
                "std": [float(v) for v in self.net.feat_std],
            },
            "training": self.training,
            "metrics": self.metrics,
        }


def check_genres(genres: object, where: str | os.PathLike[str]) -> list[str]:
    """The genre list of a model, refused with a :class:`ModelError` naming ``where`` and the
    genre unless every name is usable as it stands as ONE folder of the library.

    A genre name becomes ``<library>/<genre>/``, so it must be exactly what
    :func:`genre_daemon.mover.safe_component` leaves unchanged: not empty, ``.`` or ``..``; no
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
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    meta = model.metadata()
    model.created = meta["created"]
    tensors = {k: v.detach().contiguous().clone() for k, v in model.net.state_dict().items()}
    atomic_write(out / WEIGHTS_FILE, lambda p: save_file(tensors, p, metadata={"format": "pt"}))
    text = json.dumps(meta, indent=2, sort_keys=False) + "\n"
    atomic_write(out / META_FILE, lambda p: Path(p).write_text(text, encoding="utf-8"))
    return out


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
    _check_safetensors_header(weights_path)
    try:
        arch = Architecture.from_dict(meta["architecture"])
        genres = check_genres(meta["genres"], meta_path)
        params = FeatureParams.from_dict(meta["features"])
        window_frames = int(meta["window_frames"])
        noise_floor = meta.get("noise_floor_db")
        noise_floor_db = None if noise_floor is None else float(noise_floor)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: malformed model metadata: {exc!r}") from exc
    if len(genres) != arch.n_classes or len(set(genres)) != len(genres):
        raise ModelError(f"{meta_path}: {len(genres)} genres for {arch.n_classes} outputs, or duplicates")
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
    return GenreModel(
        net=net,
        genres=genres,
        feature_params=params,
        window_frames=window_frames,
        noise_floor_db=noise_floor_db,
        version=str(meta.get("version", "unversioned")),
        created=str(meta.get("created", "")),
        training=dict(meta.get("training", {})),
        metrics=dict(meta.get("metrics", {})),
    )


def read_metadata(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """``model.json`` of a model directory, without loading any weights."""
    path = Path(directory) / META_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable model metadata: {exc}") from exc


def _check_safetensors_header(path: Path) -> None:
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
