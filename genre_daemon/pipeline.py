"""Path -> :class:`Prediction`: decode, segment, features, batched inference, song-level mean.

Cost per file is bounded whatever its length: a track longer than :data:`WHOLE_SECONDS` is not
decoded whole; a few segments spread over it are read (each by seeking), and a bounded number of
windows is taken from them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from . import audio
from .errors import AudioDecodeError
from .model import GenreModel, load_model
from .training import clip_windows

WHOLE_SECONDS = 45.0  # tracks up to this long are decoded whole
SEGMENT_SECONDS = 20.0  # length of each segment read from a longer track
MAX_SEGMENTS = 3
MAX_WINDOWS = 12


@dataclass(frozen=True)
class Prediction:
    """A song-level result: top genre, its mean probability, and every genre's score."""

    path: str
    genre: str
    confidence: float
    scores: dict[str, float]
    model_version: str
    windows: int = 0
    duration: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "genre": self.genre,
            "confidence": round(self.confidence, 4),
            "scores": {g: round(p, 4) for g, p in self.scores.items()},
            "model": self.model_version,
        }


@dataclass(frozen=True)
class Span:
    offset: float
    duration: float | None  # None: to the end
    windows: int


def plan_spans(duration: float, max_windows: int = MAX_WINDOWS) -> list[Span]:
    """Which parts of a track of ``duration`` seconds to decode, and how many windows from each.

    Short tracks are read whole; long ones as :data:`MAX_SEGMENTS` segments centred evenly over
    the track, so the intro and the fade-out do not dominate and the cost does not grow with
    length.
    """
    if duration <= WHOLE_SECONDS:
        return [Span(0.0, None, max_windows)]
    n = min(MAX_SEGMENTS, max(1, int(duration // SEGMENT_SECONDS)))
    per = math.ceil(max_windows / n)
    spans = []
    for i in range(n):
        centre = duration * (i + 0.5) / n
        start = min(max(0.0, centre - SEGMENT_SECONDS / 2), max(0.0, duration - SEGMENT_SECONDS))
        spans.append(Span(round(start, 3), SEGMENT_SECONDS, per))
    return spans


@dataclass
class Classifier:
    """Classifies audio files with one loaded model; safe to reuse for many files."""

    model: GenreModel
    max_windows: int = MAX_WINDOWS
    timeout: float = 60.0
    _threads_set: bool = field(default=False, repr=False)

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str], **kwargs: object) -> "Classifier":
        return cls(load_model(directory), **kwargs)  # type: ignore[arg-type]

    @property
    def version(self) -> str:
        return self.model.version

    def windows_for(self, path: str | os.PathLike[str]) -> np.ndarray:
        """``(n, window_frames, F)`` feature windows of ``path``; raises AudioDecodeError."""
        model = self.model
        params = model.feature_params
        min_seconds = model.window_seconds
        info = audio.probe(path, timeout=self.timeout)
        chunks = []
        for span in plan_spans(info.duration, self.max_windows):
            y = audio.load(
                path,
                offset=span.offset,
                duration=span.duration,
                sr=params.sample_rate,
                min_seconds=min_seconds if span.duration is None else 0.0,
                timeout=self.timeout,
            )
            if len(y) < params.n_fft:
                continue
            chunks.append(clip_windows(model.features(y), model.window_frames, span.windows))
        if not chunks:
            raise AudioDecodeError(path, f"no decodable audio of at least {min_seconds:.1f} s")
        windows = np.concatenate(chunks)
        if not np.isfinite(windows).all():
            # Finite samples can still overflow a spectrum; a NaN score must never place a file.
            raise AudioDecodeError(path, "the audio gives non-finite features (pathological samples)")
        return windows

    def warm_up(self) -> None:
        """Build the feature filterbanks and run one forward pass now, so that the first real
        file does not pay for them (a long-running daemon calls this once at start)."""
        rng = np.random.default_rng(0)
        seconds = self.model.window_seconds + 0.1
        y = (0.1 * rng.standard_normal(int(seconds * self.model.feature_params.sample_rate))).astype(np.float32)
        self.scores(clip_windows(self.model.features(y), self.model.window_frames, self.max_windows))

    def scores(self, windows: np.ndarray) -> np.ndarray:
        """Mean window probability per genre (one batched forward pass).

        Torch runs single-threaded in a process that classifies: the model is tiny (21k
        parameters), so intra-op threads only spin and fight other processes for the cores
        (measured: ``classify`` 7-20x slower on a busy 2-core machine with torch's default of one
        thread per core, and no faster on an idle one). The daemon's parallelism is its workers."""
        if not self._threads_set:
            torch.set_num_threads(1)
            self._threads_set = True
        with torch.inference_mode():
            probs = torch.softmax(self.model.net(torch.from_numpy(np.ascontiguousarray(windows))), dim=-1)
        return probs.mean(dim=0).numpy()

    def classify(self, path: str | os.PathLike[str]) -> Prediction:
        windows = self.windows_for(path)
        probs = self.scores(windows)
        if not np.isfinite(probs).all():
            raise AudioDecodeError(path, "the model gave non-finite scores for this audio")
        best = int(np.argmax(probs))
        return Prediction(
            path=os.fspath(path),
            genre=self.model.genres[best],
            confidence=float(probs[best]),
            scores={g: float(p) for g, p in zip(self.model.genres, probs)},
            model_version=self.model.version,
            windows=len(windows),
        )

    def classify_many(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Prediction | AudioDecodeError]:
        """One result per path, in order; a file that fails yields its AudioDecodeError."""
        for path in paths:
            try:
                yield self.classify(path)
            except AudioDecodeError as exc:
                yield exc
