"""The EfficientAT front end as a caller sees it: 32 kHz mono audio -> per-10-s-window logits and embeddings.

Why this shape: mn04_as was trained on 10 s AudioSet clips, so a song is judged on a bounded
number of 10 s windows spread over it (as musicnn's patches are, :mod:`genre_daemon.model.inference`),
each window a signal of its own (its pre-emphasis and STFT padding at its own edges). A window
therefore gives the same input whether it is sliced from one decode of the whole song at 32 kHz
or decoded on its own (a long file: one seek per window): :func:`window_starts` says where the
windows are, :meth:`EfficientAT.clips` runs any list of clips, :meth:`EfficientAT.windows` does
both for audio already decoded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genre_daemon.model.efficientat import melspec
from genre_daemon.model.efficientat.network import EMBED_DIM, N_CLASSES, MN04
from genre_daemon.model.efficientat.weights import GENRE_ROWS, load_mn04

__all__ = ["SAMPLE_RATE", "WINDOW_SECONDS", "WINDOW_SAMPLES", "MAX_WINDOWS", "Windows", "window_starts", "EfficientAT"]

SAMPLE_RATE = melspec.SR
WINDOW_SECONDS = 10.0
WINDOW_SAMPLES = int(WINDOW_SECONDS * SAMPLE_RATE)  # 320,000 samples: 1000 log-mel frames
MAX_WINDOWS = 3  # per song by default: 30 s of audio looked at, about 0.1-0.25 s on one core


@dataclass(frozen=True)
class Windows:
    """mn04_as's outputs for each window of a song: ``logits (n, 527)`` (sigmoid gives the
    per-class probabilities, several may be high at once) and ``embedding (n, 384)``, float32;
    ``starts`` the first sample of each window (0 for a clip given on its own)."""

    starts: tuple[int, ...]
    logits: np.ndarray
    embedding: np.ndarray

    def genre_logits(self) -> np.ndarray:
        """``(n, 50)``: the logits of AudioSet's music-genre classes (:data:`GENRE_ROWS`)."""
        return self.logits[:, GENRE_ROWS.start:GENRE_ROWS.stop]


def window_starts(n_samples: int, count: int = MAX_WINDOWS) -> list[int]:
    """First samples of up to ``count`` 10 s windows spread evenly over ``n_samples``: the first at
    0, the last ending at the end; fewer when they would overlap by more than half (one window
    is the middle one); ``[0]`` (the whole audio) when it is no longer than a window."""
    last = n_samples - WINDOW_SAMPLES
    count = min(count, last // (WINDOW_SAMPLES // 2) + 1) if last > 0 else 1
    if count <= 1:
        return [max(0, last // 2)]  # one window: the middle of the song
    return sorted({int(round(v)) for v in np.linspace(0, last, count)})


class EfficientAT:
    """mn04_as with its log-mel front end; reusable for many songs (inference only, no autograd).

    ``genres``: the 50 (output index, AudioSet name) pairs of the music-genre classes;
    ``labels``: all 527 class names in output order.
    """

    def __init__(self, net: MN04, labels: Sequence[str]) -> None:
        self.net = net
        self.labels = list(labels)
        self.genres = [(i, self.labels[i]) for i in GENRE_ROWS]

    @classmethod
    def load(cls, directory: str | os.PathLike[str] | None = None) -> "EfficientAT":
        """The shipped weights (or those in ``directory``), refused (ModelError naming the file)
        unless their sha256 is the one in the folder's ``provenance.json``."""
        net, labels = load_mn04(directory)
        return cls(net, labels)

    def clips(self, clips: Sequence[np.ndarray], batch: int = 4) -> Windows:
        """Logits and embedding of each 32 kHz mono clip (10 s each, as trained; other lengths
        work: the network pools over time). Equal-length clips go through ``batch`` at a time.
        ValueError for a clip shorter than :data:`melspec.MIN_SAMPLES` or with non-finite samples."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        n = len(clips)
        logits = np.empty((n, N_CLASSES), dtype=np.float32)
        emb = np.empty((n, EMBED_DIM), dtype=np.float32)
        i = 0
        with torch.inference_mode():
            while i < n:
                j = i + 1
                while j < n and j - i < batch and len(clips[j]) == len(clips[i]):
                    j += 1
                x = np.stack([np.asarray(c, dtype=np.float32) for c in clips[i:j]])
                if not np.isfinite(x).all():
                    raise ValueError("audio has non-finite samples")
                out, e = self.net(melspec.log_mel(x).unsqueeze(1))
                logits[i:j], emb[i:j] = out.numpy(), e.numpy()
                i = j
        return Windows(tuple(0 for _ in range(n)), logits, emb)

    def windows(self, y: np.ndarray, max_windows: int = MAX_WINDOWS, batch: int = 4) -> Windows:
        """Up to ``max_windows`` 10 s windows of a song decoded whole at 32 kHz (mono float32),
        spread over it by :func:`window_starts`; a song shorter than a window is one window."""
        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1:
            raise ValueError(f"expected mono audio (1-D), got shape {y.shape}")
        starts = window_starts(len(y), max_windows)
        out = self.clips([y[s:s + WINDOW_SAMPLES] for s in starts], batch)
        return Windows(tuple(starts), out.logits, out.embedding)
