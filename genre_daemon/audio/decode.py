"""The only decoder in genre-daemon: a path in, mono float32 samples at 22050 Hz out.

This is the front callers import: :func:`probe` and :func:`load` pick one of two backends per
file, check the samples and resample them (:func:`load_spans`: several spans of one file, for
one or more rates, through one opening of it).

* **soundfile** (:mod:`genre_daemon.audio.sndfile`, libsndfile >= 1.1) is the fast path: wav,
  au, aiff, flac, ogg (vorbis/opus) and mp3 with a length header, read in-process and seeking,
  so a span of a long file is read in blocks without loading the rest.
* **ffmpeg** (:mod:`genre_daemon.audio.ffmpeg`) handles everything libsndfile cannot (m4a/aac,
  wma, odd wavs, mp3 without a length header): ffprobe and ffmpeg run as subprocesses with a
  timeout, decoding only the span asked for.

The two promises this module makes hold on both paths: *decoding never hangs* and *memory is
bounded by the span asked for*. Both backends downmix by the mean over channels, and the result
is resampled here with ``soxr`` quality "HQ" (what librosa uses by default), so features do not
depend on which backend decoded a file.

Every failure is an :class:`~genre_daemon.errors.AudioDecodeError` naming the file and a human
reason (missing, not a regular file, empty, not audio, truncated, too short, too long for one
read, non-finite or impossibly large samples, a sample rate or channel count outside what audio
uses, ffmpeg missing or timed out). No libsndfile or subprocess exception
escapes. Invalid *arguments* (a negative offset, say) are caller bugs and raise ``ValueError``.

Non-regular files (directories, FIFOs, devices) are rejected before anything opens them for
decoding: a FIFO with no writer would otherwise block ``open()`` forever
(:mod:`genre_daemon.audio.common` holds those checks, the limits and the span plan both
backends share).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soxr

from genre_daemon.audio.common import MAX_AMPLITUDE, AudioInfo, _check_regular, _Plan
# The limits a header must respect live beside the checks that enforce them; callers read them here.
from genre_daemon.audio.common import MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE  # noqa: F401
from genre_daemon.audio.ffmpeg import _ffmpeg_read_span, _ffprobe
from genre_daemon.audio.sndfile import _sf_open, _sf_read_span
from genre_daemon.errors import AudioDecodeError

__all__ = ["TARGET_SR", "SUPPORTED_EXTENSIONS", "AudioInfo", "Read", "probe", "load", "load_spans"]

TARGET_SR = 22050
SUPPORTED_EXTENSIONS = ("mp3", "wav", "au", "flac", "ogg", "m4a", "opus", "aiff", "aif")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def probe(path: str | os.PathLike[str], *, timeout: float = 30.0) -> AudioInfo:
    """Read only the header of ``path``: duration, native rate, channels and which backend.

    Cheap (libsndfile header, else one ffprobe run) and strict: a file that is missing, empty,
    not audio, header-only or visibly truncated raises :class:`AudioDecodeError` here already.
    """
    p = os.fspath(path)
    _check_regular(p)
    deadline = time.monotonic() + timeout
    opened, hint = _sf_open(p)
    if opened is not None:
        fd, snd = opened
        try:
            rate = snd.samplerate
            return AudioInfo(p, snd.frames / rate, rate, snd.channels, "soundfile")
        finally:
            snd.close()
            os.close(fd)
    return _ffprobe(p, deadline, hint).info


def load(
    path: str | os.PathLike[str],
    *,
    offset: float = 0.0,
    duration: float | None = None,
    sr: int = TARGET_SR,
    min_seconds: float = 2048 / 22050,
    max_seconds: float = 600.0,
    timeout: float = 60.0,
) -> np.ndarray:
    """Decode ``path`` (or the span ``[offset, offset + duration)`` seconds of it) to mono float32.

    The result is resampled to ``sr`` Hz. A span running past the end is cut at the end; an
    ``offset`` at or past the end is an error. A span is the matching slice of the full decode,
    ``load(p)[round(offset * sr):][:round(duration * sr)]``: a little audio around it is decoded
    and dropped, so neither the resampler nor a codec starts cold at its edges, and the slice is
    cut on the full decode's sample grid. Memory is bounded by the span: at most
    ``max_seconds`` of audio is decoded by one call, and asking for more (or for a whole file
    longer than that) raises instead of loading it. ``min_seconds`` is the shortest result the
    caller can use (the pipeline passes its analysis window). ``timeout`` bounds the ffmpeg
    backend (probe plus decode); the soundfile backend runs in-process on a regular file.
    """
    return load_spans(path, [Read(offset, duration, sr, min_seconds)], max_seconds=max_seconds, timeout=timeout)[0]


@dataclass(frozen=True)
class Read:
    """One span for :func:`load_spans`, with :func:`load`'s meaning of each argument."""

    offset: float = 0.0
    duration: float | None = None
    sr: int = TARGET_SR
    min_seconds: float = 2048 / 22050


def load_spans(
    path: str | os.PathLike[str], reads: Sequence[Read], *, max_seconds: float = 600.0, timeout: float = 60.0
) -> list[np.ndarray]:
    """:func:`load` of each of ``reads`` of ``path`` (each result exactly what :func:`load` gives),
    with the file opened once.

    Why: a caller that reads several spans of one file (a song's patches, and its 10 s windows
    for a second model at another rate) would otherwise open it for each, and a compressed file
    opened afresh seeks by scanning from its start (mp3: ~30 ms per span of a 4-minute song);
    through one soundfile handle each seek starts from what the previous ones learnt. Reads of
    the whole file at several rates decode it once and resample it for each. ``timeout`` bounds
    each read on the ffmpeg backend.
    """
    p = os.fspath(path)
    if not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0, not {max_seconds!r}")
    for r in reads:
        _check_read(p, r, max_seconds)
    _check_regular(p)
    deadline = time.monotonic() + timeout
    opened, hint = _sf_open(p)
    wholes = sum(1 for r in reads if r.offset == 0 and r.duration is None)
    whole: tuple[np.ndarray, int, _Plan] | None = None
    out = []
    try:
        for i, r in enumerate(reads):
            sr = int(r.sr)
            is_whole = r.offset == 0 and r.duration is None
            if is_whole and whole is not None:
                native, sr_in, plan = whole
            elif opened is not None:
                if i:
                    opened[1].seek(0)  # the handle is wherever the last read left it
                native, sr_in, plan = _sf_read_span(p, opened[1], r.offset, r.duration, max_seconds, sr)
                _check_samples(p, native)
            else:
                if i:
                    deadline = time.monotonic() + timeout
                native, sr_in, plan = _ffmpeg_read_span(p, r.offset, r.duration, max_seconds, sr, deadline, hint)
                _check_samples(p, native)
            if is_whole:
                wholes -= 1
                whole = (native, sr_in, plan) if wholes else None  # kept only for a whole read to come
            out.append(_cut(p, _resample(native, sr_in, sr), plan, sr, r))
            del native
    finally:
        if opened is not None:
            opened[1].close()
            os.close(opened[0])
    return out


def _check_read(path: str, r: Read, max_seconds: float) -> None:
    """ValueError for arguments no file could satisfy; AudioDecodeError for a span over the cap."""
    if not (math.isfinite(r.offset) and r.offset >= 0):
        raise ValueError(f"offset must be a finite number >= 0, not {r.offset!r}")
    if r.duration is not None and not (math.isfinite(r.duration) and r.duration >= 0):
        raise ValueError(f"duration must be None or a finite number >= 0, not {r.duration!r}")
    if int(r.sr) != r.sr or r.sr <= 0:
        raise ValueError(f"sr must be a positive integer, not {r.sr!r}")
    if r.duration is not None and r.duration > max_seconds:
        raise AudioDecodeError(
            path,
            f"the requested span of {r.duration:.1f} s is longer than the {max_seconds:.1f} s limit "
            "for one read; read a shorter span",
        )


def _check_samples(path: str, native: np.ndarray) -> None:
    """AudioDecodeError for samples no real audio has (NaN, infinity, beyond :data:`MAX_AMPLITUDE`)."""
    if not np.isfinite(native).all():
        raise AudioDecodeError(path, "the audio contains non-finite samples (NaN or infinity)")
    peak = float(np.max(np.abs(native))) if len(native) else 0.0
    if peak > MAX_AMPLITUDE:
        raise AudioDecodeError(
            path,
            f"the audio contains samples of impossible magnitude ({peak:.3g}, more than "
            f"{MAX_AMPLITUDE:g} times full scale): damaged float data",
        )


def _cut(path: str, y: np.ndarray, plan: _Plan, sr: int, r: Read) -> np.ndarray:
    """The span itself out of the resampled decode (the pre-/post-roll dropped, see ``_plan``),
    AudioDecodeError when it is shorter than ``r.min_seconds``."""
    if plan.skip or plan.n_out is not None:
        end = None if plan.n_out is None else plan.skip + plan.n_out
        y = y[plan.skip : end].copy()
    need = r.min_seconds * sr
    if len(y) + 1e-6 < need:
        where = f" at offset {r.offset:.3f} s" if r.offset else ""
        raise AudioDecodeError(
            path,
            f"too short: only {len(y) / sr:.3f} s of audio{where}, "
            f"need at least {r.min_seconds:.3f} s",
        )
    return y


# --------------------------------------------------------------------------------------------
# Sample-rate conversion, the same whichever backend decoded
# --------------------------------------------------------------------------------------------


def _resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """soxr HQ resampling (librosa's default), returning contiguous float32."""
    if sr_in != sr_out and len(y):
        y = soxr.resample(y, sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32)
