"""AudioSet's tagger as inference and training use it: a file or decoded audio -> window logits.

Why a module of its own: :mod:`genre_daemon.model.efficientat` is the port (network, mel, weights);
this is where a song becomes a bounded number of 10 s windows read from the file (a short track
decoded whole at 32 kHz, a long one one seek per window, so a one-hour file costs what a
four-minute one does) and where a model's ``prior`` is matched to the shipped weights by sha256.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from genre_daemon.audio import decode as audio
from genre_daemon.errors import AudioDecodeError, ModelError
from genre_daemon.model.efficientat import melspec
from genre_daemon.model.efficientat.tagger import SAMPLE_RATE, WINDOW_SAMPLES, WINDOW_SECONDS, EfficientAT, window_starts
from genre_daemon.model.efficientat.weights import model_dir, read_provenance

if TYPE_CHECKING:
    from genre_daemon.model.prior import AudioSetPrior

WHOLE_SECONDS = 45.0  # tracks up to this long are decoded whole (as musicnn's patches are)


class Tagger:
    """mn04_as over a song's spread 10 s windows; reusable across files and threads."""

    def __init__(self, net: EfficientAT, identity: dict[str, Any]) -> None:
        self.net = net
        self.identity = identity
        self.labels = net.labels

    def audio_logits(self, y32k: np.ndarray, windows: int) -> np.ndarray | None:
        """``(n, 527)`` logits of up to ``windows`` windows spread over 32 kHz mono audio; None
        when the audio is too short for the tagger's mel front end."""
        if len(y32k) < melspec.MIN_SAMPLES:
            return None
        try:
            return self.net.windows(y32k, max_windows=windows).logits
        except ValueError:
            return None

    def file_logits(self, path: str | os.PathLike[str], duration: float, windows: int, timeout: float) -> np.ndarray | None:
        """The window logits of an audio file of ``duration`` seconds (decoding only the windows of
        a long file); AudioDecodeError when the audio gives non-finite outputs."""
        return self.read_logits(path, duration, windows,
                                audio.load_spans(path, window_reads(duration, windows), timeout=timeout))

    def read_logits(self, path: str | os.PathLike[str], duration: float, windows: int,
                    audio_read: list[np.ndarray]) -> np.ndarray | None:
        """:meth:`file_logits` from the audio of :func:`window_reads` already decoded (a caller
        reading other spans of the file too decodes them all in one opening of it)."""
        if duration <= WHOLE_SECONDS:
            out = self.audio_logits(audio_read[0], windows)
        else:
            clips = [y[:WINDOW_SAMPLES] for y in audio_read if len(y) >= melspec.MIN_SAMPLES]
            out = self.net.clips(clips).logits if clips else None
        if out is not None and not np.isfinite(out).all():
            raise AudioDecodeError(path, "the audio gives non-finite AudioSet outputs (pathological samples)")
        return out


def window_reads(duration: float, windows: int) -> list[audio.Read]:
    """What to decode of a file of ``duration`` seconds for up to ``windows`` windows: the whole
    file at 32 kHz up to :data:`WHOLE_SECONDS`, else one 10 s span per window (one seek each)."""
    if duration <= WHOLE_SECONDS:
        return [audio.Read(0.0, None, SAMPLE_RATE, 0.0)]
    return [audio.Read(start / SAMPLE_RATE, WINDOW_SECONDS, SAMPLE_RATE, 0.0)
            for start in window_starts(int(duration * SAMPLE_RATE), windows)]


def tagger_identity(directory: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What a model's ``prior.frontend`` records of the shipped tagger: the sha256 of its weights
    and class list, source, licence and the audio it reads."""
    prov = read_provenance(directory if directory is not None else model_dir())
    return {"name": "efficientat-mn04", "weights_sha256": prov["weights"]["sha256"],
            "labels_sha256": prov["labels"]["sha256"], "source": prov.get("source", ""),
            "licence": prov.get("licence", ""), "sample_rate": SAMPLE_RATE, "window_seconds": WINDOW_SECONDS}


_TAGGERS: dict[str, Tagger] = {}
_LOCK = threading.Lock()


def load_tagger(prior: "AudioSetPrior | None" = None, directory: str | os.PathLike[str] | None = None) -> Tagger:
    """The shipped tagger (loaded once per process), refused with a ModelError unless its weights
    are the ones ``prior`` was fitted with."""
    root = os.path.realpath(directory if directory is not None else model_dir())
    with _LOCK:
        tagger = _TAGGERS.get(root)
        if tagger is None:
            tagger = _TAGGERS[root] = Tagger(EfficientAT.load(root), tagger_identity(root))
    if prior is not None:
        want = prior.frontend.get("weights_sha256")
        if want != tagger.identity["weights_sha256"]:
            raise ModelError(f"{root}: the EfficientAT weights (sha256 {tagger.identity['weights_sha256'][:16]}...) are "
                             f"not those this model's prior was fitted with ({str(want)[:16]}...); use the weights "
                             "shipped with the model, or retrain it")
    return tagger
