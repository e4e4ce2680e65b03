"""Path -> :class:`Prediction`: plan patches, decode only them (16 kHz), embed, one LSTM pass;
with a format-3 model also AudioSet's genre evidence from a few 10 s windows (32 kHz), fused late
(:mod:`genre_daemon.model.prior`).

Cost per file is bounded whatever its length: a song gives at most ``model.patches`` 3-second
patches spread evenly over it. A track up to :data:`WHOLE_SECONDS` is decoded whole (one
decode is cheaper than several seeks); a longer one is read as one short span per patch, each
by seeking, so a one-hour file costs what a four-minute one does. A span's patch is exactly the
patch a whole decode would give at that place (spans start on the log-mel frame grid, with one
hop of context each side), so where a file is cut does not change its genre. Both front ends
read the file in one opening (:func:`genre_daemon.audio.decode.load_spans`): a short track is
decoded once for both rates, a long one's patches and windows share one seeking handle; the
audio each gets is exactly what a read of its own would give.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from genre_daemon.audio import decode as audio
from genre_daemon.errors import AudioDecodeError
from genre_daemon.model.frontend import HOP_LENGTH, PATCH_FRAMES, PATCH_SECONDS, SAMPLE_RATE, Embedder, cut_patches, load_embedder, spread_starts
from genre_daemon.model.files import GenreModel, load_model
from genre_daemon.model.musicnn import melspec
from genre_daemon.model.tagging import Tagger, load_tagger, window_reads

WHOLE_SECONDS = 45.0  # tracks up to this long are decoded whole
# One patch read on its own: one hop of context before its first frame and after its last, so
# its frames are centred where a whole decode's would be and see the same samples.
SPAN_SAMPLES = (PATCH_FRAMES + 2) * HOP_LENGTH


@dataclass(frozen=True)
class Prediction:
    """A song-level result: top genre, its probability, and every genre's score."""

    path: str
    genre: str
    confidence: float
    scores: dict[str, float]
    model_version: str
    windows: int = 0  # patches the song was judged on
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
    """A part of a file to decode: ``offset`` seconds, ``duration`` seconds (None: to the end),
    and the log-mel frame (of the span's own log-mel) at which each wanted patch starts."""

    offset: float
    duration: float | None
    starts: tuple[int, ...]


def file_frames(duration: float) -> int:
    """Log-mel frames a whole decode of ``duration`` seconds gives (centred frames, hop 256)."""
    return 1 + int(round(duration * SAMPLE_RATE)) // HOP_LENGTH


def plan_spans(duration: float, max_patches: int) -> list[Span]:
    """Which parts of a track of ``duration`` seconds to decode, and the patches in each.

    Up to ``max_patches`` patches, spread evenly from the start to the end (intro and fade-out
    weigh no more than the rest); short tracks in one decode, long ones one span per patch.
    """
    starts = spread_starts(file_frames(duration), max_patches)
    if duration <= WHOLE_SECONDS:
        return [Span(0.0, None, tuple(starts))]
    spans = []
    for f0 in starts:
        if f0 == 0:
            spans.append(Span(0.0, SPAN_SAMPLES / SAMPLE_RATE, (0,)))
        else:
            spans.append(Span((f0 - 1) * HOP_LENGTH / SAMPLE_RATE, SPAN_SAMPLES / SAMPLE_RATE, (1,)))
    return spans


@dataclass
class Classifier:
    """Classifies audio files with one loaded model; safe to reuse for many files (and threads)."""

    model: GenreModel
    embedder: Embedder
    max_patches: int = 0  # 0: the model's own patches per song
    timeout: float = 60.0
    tagger: Tagger | None = None  # AudioSet's tagger, for a model with a prior
    _threads_set: bool = field(default=False, repr=False)

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str], **kwargs: object) -> "Classifier":
        """The model in ``directory`` and the front ends it names (ModelError if any is unusable)."""
        model = load_model(directory)
        tagger = load_tagger(model.prior) if model.prior is not None else None
        return cls(model, load_embedder(model.frontend, model.inputs), tagger=tagger, **kwargs)  # type: ignore[arg-type]

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def patches(self) -> int:
        return self.max_patches or self.model.patches

    def _single_thread(self) -> None:
        """Torch runs single-threaded in a process that classifies: intra-op threads only spin
        and fight other processes for the cores (measured on the round-1 model: ``classify``
        7-20x slower on a busy 2-core machine, no faster on an idle one; musicnn's convolutions
        on 187x96 patches gain little from a second thread). The daemon's parallelism is its
        workers. numpy's BLAS too (musicnn's mel filterbank product): OpenBLAS's threads spin
        on a busy machine (a 3 s patch's log-mel took 12 ms there against 1.9 ms on one thread),
        and its last bits depend on the thread count (probabilities moved by up to 2e-7), so with
        one thread every process on every machine gives the same scores."""
        if not self._threads_set:
            from threadpoolctl import threadpool_limits

            torch.set_num_threads(1)
            threadpool_limits(1, user_api="blas")
            self._threads_set = True

    def features(self, path: str | os.PathLike[str], prior: bool = True) -> tuple[np.ndarray, np.ndarray | None, float]:
        """``(n_patches, n_inputs)`` patch vectors of ``path``, AudioSet's ``(windows, 527)`` logits
        (None without a tagger, with ``prior`` False, or for audio too short for one window) and the
        duration in seconds; raises AudioDecodeError (too short, undecodable, pathological samples).

        Both front ends' audio comes from one opening of the file (:func:`audio.load_spans`): a
        short track is decoded once and resampled to each front end's rate, a long one's patch
        spans and windows are read through one handle, each seek starting from the last."""
        self._single_thread()
        info = audio.probe(path, timeout=self.timeout)
        spans, reads, windows = self.plan_reads(info.duration, prior)
        decoded = audio.load_spans(path, reads, timeout=self.timeout)
        vectors = self._vectors(path, spans, decoded[:len(spans)])
        logits = None
        if windows:
            assert self.tagger is not None
            logits = self.tagger.read_logits(path, info.duration, windows, decoded[len(spans):])
        return vectors, logits, info.duration

    def plan_reads(self, duration: float, prior: bool = True) -> tuple[list[Span], list[audio.Read], int]:
        """What :meth:`features` decodes of a file of ``duration`` seconds: musicnn's spans, every
        read (the spans at 16 kHz, then the tagger's windows at 32 kHz) and the windows asked
        for (0: no AudioSet evidence)."""
        spans = plan_spans(duration, self.patches)
        reads = [audio.Read(s.offset, s.duration, SAMPLE_RATE, PATCH_SECONDS if s.duration is None else 0.0)
                 for s in spans]
        windows = self.model.prior.windows if prior and self.tagger is not None and self.model.prior else 0
        if windows:
            reads += window_reads(duration, windows)
        return spans, reads, windows

    def patch_vectors(self, path: str | os.PathLike[str]) -> tuple[np.ndarray, float]:
        """``(n_patches, n_inputs)`` patch vectors of ``path`` and its duration in seconds;
        raises AudioDecodeError (too short, undecodable, pathological samples)."""
        vectors, _, duration = self.features(path, prior=False)
        return vectors, duration

    def _vectors(self, path: str | os.PathLike[str], spans: list[Span], decoded: list[np.ndarray]) -> np.ndarray:
        """The patch vectors of ``spans`` from their decoded 16 kHz audio."""
        patches = []
        for span, y in zip(spans, decoded):
            logmel = melspec.log_mel(y)
            usable = [s for s in span.starts if s + PATCH_FRAMES <= logmel.shape[0]]
            if span.duration is None and not usable:
                usable = [0]  # whole decode a little shorter than probed: tile what there is
            if usable:
                patches.append(cut_patches(logmel, usable))
        if not patches:
            raise AudioDecodeError(path, f"no decodable audio of at least {PATCH_SECONDS:.1f} s")
        vectors = self.embedder.patch_vectors(np.concatenate(patches))
        if not np.isfinite(vectors).all():
            # Finite samples can still overflow a spectrum; a NaN score must never place a file.
            raise AudioDecodeError(path, "the audio gives non-finite features (pathological samples)")
        return vectors

    def window_logits(self, path: str | os.PathLike[str], duration: float) -> np.ndarray | None:
        """AudioSet's ``(windows, 527)`` logits of ``path`` (None without a tagger, or for audio
        too short for one window); raises AudioDecodeError as :meth:`patch_vectors` does."""
        if self.tagger is None or self.model.prior is None:
            return None
        self._single_thread()
        return self.tagger.file_logits(path, duration, self.model.prior.windows, self.timeout)

    def warm_up(self) -> None:
        """Run the front ends and the network once now, so that the first real file does not pay
        for lazy initialisation (a long-running daemon calls this once at start)."""
        self._single_thread()
        rng = np.random.default_rng(0)
        y = (0.1 * rng.standard_normal(SPAN_SAMPLES)).astype(np.float32)
        logits = self.tagger.audio_logits(np.repeat(y, 2), 1) if self.tagger is not None else None
        self.scores(self.embedder.patch_vectors(cut_patches(melspec.log_mel(y), [0])), logits)

    def scores(self, vectors: np.ndarray, window_logits: np.ndarray | None = None) -> np.ndarray:
        """Genre probabilities of one song (over :attr:`GenreModel.genres`) from its patch vectors
        ``(n, n_inputs)`` and, for a model with a prior, AudioSet's window logits: the LSTM runs
        over the sequence, so the song is judged as a whole, not patch by patch."""
        self._single_thread()
        with torch.inference_mode():
            logits = self.model.net(torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))[None])[0]
        if self.model.prior is None:
            return torch.softmax(logits, dim=-1).numpy()
        return self.model.prior.combine(self.model.learned, logits.numpy(), window_logits)

    def classify(self, path: str | os.PathLike[str]) -> Prediction:
        vectors, logits, duration = self.features(path)
        probs = self.scores(vectors, logits)
        if not np.isfinite(probs).all():
            raise AudioDecodeError(path, "the model gave non-finite scores for this audio")
        best = int(np.argmax(probs))
        return Prediction(
            path=os.fspath(path),
            genre=self.model.genres[best],
            confidence=float(probs[best]),
            scores={g: float(p) for g, p in zip(self.model.genres, probs)},
            model_version=self.model.version,
            windows=len(vectors),
            duration=duration,
        )

    def classify_many(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Prediction | AudioDecodeError]:
        """One result per path, in order; a file that fails yields its AudioDecodeError."""
        for path in paths:
            try:
                yield self.classify(path)
            except AudioDecodeError as exc:
                yield exc
