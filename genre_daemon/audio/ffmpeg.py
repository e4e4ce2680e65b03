"""The ffmpeg backend: ffprobe and ffmpeg as bounded subprocesses, for what libsndfile cannot read.

It handles m4a/aac, wma, odd wavs and mp3 without a length header. The design asks for "ffmpeg
through pydub", but ``AudioSegment.from_file`` runs ffmpeg with no timeout and loads the whole
file into memory, which would break the two promises of :mod:`genre_daemon.audio.decode`:
*decoding never hangs* and *memory is bounded by the span asked for*. So pydub is used only to
find the binaries (``AudioSegment.converter`` when the user has pointed pydub at a particular
ffmpeg), and ffprobe/ffmpeg are run here with ``subprocess.run([...], timeout=...,
capture_output=True)``: list arguments (never a shell), ``-nostdin``, ``-v error``, input as
``file:<absolute path>`` (so names with ``:`` or a leading ``-`` are not read as protocols or
options) and only the ``file`` protocol allowed (a playlist renamed .m4a cannot make ffmpeg open
URLs). ffmpeg decodes straight to raw ``f32le`` on stdout, with ``-ss``/``-t`` limiting it to
the span, so its output is bounded too.

ffprobe results are cached per (path, inode, size, mtime), so reading several spans of one m4a
costs one ffprobe run and one short ffmpeg run per span.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from genre_daemon.audio.common import (
    _DECODER_PREROLL,
    _RESAMPLER_PAD,
    AudioInfo,
    _check_format,
    _material,
    _oserror_text,
    _Plan,
    _plan,
    _SfHint,
    _span_too_long,
)
from genre_daemon.errors import AudioDecodeError


_binaries_lock = threading.Lock()
_binaries: tuple[str | None, str | None] | None = None


def _find_binaries() -> tuple[str | None, str | None]:
    """Locate ffmpeg and ffprobe, honouring pydub's configuration.

    ``pydub.AudioSegment.converter`` is how pydub users point it at a particular ffmpeg; if it
    names a path, it (and the ffprobe beside it) is used. Otherwise the binaries come from PATH
    via ``shutil.which``, deliberately not ``pydub.utils.which``, which looks in the current
    directory first (a daemon must not run ``./ffmpeg`` from wherever it was started).
    """
    global _binaries
    with _binaries_lock:
        if _binaries is not None:
            return _binaries
        converter = None
        try:
            with warnings.catch_warnings():  # pydub warns about audioop and a missing ffmpeg
                warnings.simplefilter("ignore")
                from pydub import AudioSegment

            converter = getattr(AudioSegment, "converter", None)
        except Exception:
            converter = None
        ffmpeg = ffprobe = None
        if isinstance(converter, str) and os.sep in converter and os.access(converter, os.X_OK):
            ffmpeg = converter
            exe = ".exe" if os.name == "nt" else ""
            sibling = os.path.join(os.path.dirname(converter), "ffprobe" + exe)
            if os.access(sibling, os.X_OK):
                ffprobe = sibling
        ffmpeg = ffmpeg or shutil.which("ffmpeg")
        ffprobe = ffprobe or shutil.which("ffprobe")
        _binaries = (ffmpeg, ffprobe)
        return _binaries


def _ffmpeg_input(path: str) -> str:
    """An input URL ffmpeg cannot mistake for a protocol (``http:``) or an option (``-x``)."""
    return "file:" + os.path.abspath(path)


@dataclass(frozen=True)
class _Probed:
    info: AudioInfo
    exact: bool  # duration comes from the container, not from a bitrate guess


def _run(
    path: str, args: list[str], deadline: float, what: str
) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg/ffprobe with the time left before ``deadline``; never hangs, never raises raw."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise AudioDecodeError(path, f"{what} timed out (decoding took too long)")
    try:
        return subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, timeout=remaining, check=False
        )
    except subprocess.TimeoutExpired:
        raise AudioDecodeError(
            path, f"{what} timed out after {remaining:.3g} s (the file may be a pipe, on a stalled "
            "mount, or pathological)"
        ) from None
    except OSError as e:
        raise AudioDecodeError(path, f"cannot run {what}: {_oserror_text(e)}") from None


# "[mp3 @ 0x55aae8f2fd00] " before ffmpeg's log lines: noise in a user-facing reason.
_FFMPEG_PREFIX = re.compile(r"^\[[^\]]* @ 0x[0-9a-fA-F]+\]\s*")


def _stderr_text(path: str, stderr: bytes, limit: int = 300) -> str:
    """The last meaningful line ffmpeg wrote, without the file name it repeats."""
    text = stderr.decode("utf-8", "replace")
    url = _ffmpeg_input(path)
    full = os.path.abspath(path)
    lines = [
        _FFMPEG_PREFIX.sub("", ln.strip()).replace(url, "").replace(full, "").lstrip(": ")
        for ln in text.splitlines()
    ]
    lines = [ln for ln in lines if ln and not ln.startswith("Last message repeated")]
    last: list[str] = []
    for ln in reversed(lines):  # the last two distinct messages: the cause, then the effect
        if ln not in last:
            last.insert(0, ln)
        if len(last) == 2:
            break
    line = "; ".join(last) or "no error message"
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ffprobe results by (path, device, inode, size, mtime): the pipeline reads several spans of a
# file, and each load() would otherwise start ffprobe (and maybe a demux pass) again.
_PROBE_CACHE: OrderedDict[tuple[object, ...], _Probed] = OrderedDict()
_PROBE_CACHE_SIZE = 64
_probe_cache_lock = threading.Lock()


def _ffprobe(path: str, deadline: float, hint: _SfHint | None = None) -> _Probed:
    """Header of a file libsndfile cannot read, from ffprobe's JSON; raises AudioDecodeError.

    ``hint`` is what libsndfile made of the file: if it recognised the format and ffprobe then
    fails, the file is audio but damaged; if it refused the header for a specific reason
    ("Channel count is zero"), that reason goes into the message. Successful results are cached
    for as long as the file's identity, size and mtime stay the same.
    """
    try:
        st = os.stat(path)
        key: tuple[object, ...] | None = (
            os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
        )
    except OSError:
        key = None
    if key is not None:
        with _probe_cache_lock:
            cached = _PROBE_CACHE.get(key)
            if cached is not None:
                _PROBE_CACHE.move_to_end(key)
                return _Probed(
                    AudioInfo(path, cached.info.duration, cached.info.samplerate,
                              cached.info.channels, "ffmpeg"),
                    cached.exact,
                )
    probed = _ffprobe_uncached(path, deadline, hint)
    if key is not None:
        with _probe_cache_lock:
            _PROBE_CACHE[key] = probed
            while len(_PROBE_CACHE) > _PROBE_CACHE_SIZE:
                _PROBE_CACHE.popitem(last=False)
    return probed


def _ffprobe_uncached(path: str, deadline: float, hint: _SfHint | None) -> _Probed:
    """One ffprobe run (plus a demux pass when the header's duration is only an estimate)."""
    hint = hint or _SfHint()
    if hint.non_audio is not None:
        raise AudioDecodeError(path, f"not an audio file (it looks like {hint.non_audio})")
    ffmpeg, ffprobe = _find_binaries()
    if ffprobe is None or ffmpeg is None:
        raise AudioDecodeError(
            path,
            "cannot decode this format: ffmpeg/ffprobe is not installed (needed for m4a/aac "
            "and anything libsndfile cannot read)",
        )
    proc = _run(
        path,
        [ffprobe, "-hide_banner", "-v", "warning", "-protocol_whitelist", "file",
         "-select_streams", "a:0", "-show_format", "-show_streams", "-of", "json",
         _ffmpeg_input(path)],
        deadline,
        "ffprobe",
    )
    if proc.returncode != 0:
        detail = _stderr_text(path, proc.stderr)
        if b"moov atom not found" in proc.stderr:
            raise AudioDecodeError(
                path, f"truncated or incomplete MP4/M4A file: its index is missing ({detail})"
            )
        if hint.format:
            raise AudioDecodeError(path, f"truncated or corrupt {hint.format} file ({detail})")
        if hint.error:
            detail += f"; libsndfile: {hint.error}"
        raise AudioDecodeError(
            path, f"not an audio file, or not one that can be decoded ({detail})"
        )
    try:
        meta = json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
    except ValueError:
        raise AudioDecodeError(path, "ffprobe returned unreadable output") from None
    streams = [s for s in meta.get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioDecodeError(path, "not an audio file (it has no audio stream)")
    stream = streams[0]
    rate = _as_int(stream.get("sample_rate"))
    channels = _as_int(stream.get("channels"))
    if rate <= 0 or channels <= 0:
        raise AudioDecodeError(
            path,
            f"not an audio file, or a damaged one: its audio stream has {channels} channels "
            f"at {rate} Hz",
        )
    _check_format(path, rate, channels)
    duration = _as_float(stream.get("duration"))
    if duration is None:
        duration = _as_float(meta.get("format", {}).get("duration"))
    estimated = b"Estimating duration from bitrate" in proc.stderr
    exact = duration is not None and not estimated
    if not exact:
        # No trustworthy length in the header (mp3 without a Xing header, raw aac, ...): count it
        # by demuxing without decoding, which is fast and exact to a packet.
        duration = _ffmpeg_demux_duration(path, ffmpeg, deadline)
    if duration is None or duration <= 0:
        raise AudioDecodeError(path, "no audio data: the file holds an audio header but no samples")
    return _Probed(AudioInfo(path, duration, rate, channels, "ffmpeg"), exact)


def _as_int(v: object) -> int:
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _as_float(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _ffmpeg_demux_duration(path: str, ffmpeg: str, deadline: float) -> float | None:
    """Length of the first audio stream by stream-copying it to nowhere (no decoding)."""
    proc = _run(
        path,
        [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-protocol_whitelist", "file",
         "-i", _ffmpeg_input(path), "-map", "0:a:0", "-c", "copy", "-f", "null",
         "-progress", "pipe:1", "-nostats", "-"],
        deadline,
        "ffmpeg",
    )
    found = re.findall(rb"^out_time_us=(\d+)\s*$", proc.stdout, re.M)
    if not found:
        if proc.returncode != 0:
            detail = _stderr_text(path, proc.stderr)
            raise AudioDecodeError(
                path, f"not an audio file, or not one that can be decoded ({detail})"
            )
        return None
    return int(found[-1]) / 1e6


def _ffmpeg_read_span(
    path: str,
    offset: float,
    duration: float | None,
    max_seconds: float,
    sr_out: int,
    deadline: float,
    hint: _SfHint | None = None,
) -> tuple[np.ndarray, int, _Plan]:
    """Probe, then decode the planned frames to mono float32 at the native rate.

    Returns like :func:`genre_daemon.audio.sndfile._sf_read_span`. A read to the end goes to the
    real end of the stream, not the header's idea of it, but never past ``max_seconds`` (in case
    the header under-states the length).
    """
    probed = _ffprobe(path, deadline, hint)
    info = probed.info
    rate = info.samplerate
    frames = max(1, int(round(info.duration * rate)))
    plan = _plan(
        path, rate, frames, offset, duration, max_seconds, sr_out, _DECODER_PREROLL, _RESAMPLER_PAD
    )
    lead = plan.start - plan.first
    if plan.count is None:
        limit = lead + int(math.ceil((max_seconds + 1.0) * rate))
    else:
        limit = plan.count
    y = _ffmpeg_decode(path, rate, info.channels, plan.first / rate, limit / rate, deadline)
    y = y[:limit]
    core = len(y) - lead  # frames decoded from the span's start on
    if plan.count is None and core > max_seconds * rate:
        raise _span_too_long(path, core / rate, offset, max_seconds)
    if probed.exact and _material(plan.frames - core, frames, rate):
        raise AudioDecodeError(
            path,
            f"truncated: the header declares {info.duration:.2f} s of audio but decoding "
            f"stopped at {(plan.start + max(core, 0)) / rate:.2f} s",
        )
    return y, rate, plan


def _ffmpeg_decode(
    path: str, rate: int, channels: int, offset: float, span: float, deadline: float
) -> np.ndarray:
    """Run ffmpeg to decode the span: first audio stream, mean downmix, raw f32le on stdout."""
    ffmpeg, _ = _find_binaries()
    if ffmpeg is None:
        raise AudioDecodeError(path, "cannot decode this format: ffmpeg is not installed")
    args = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-protocol_whitelist", "file"]
    if offset > 0:
        args += ["-ss", f"{offset:.9f}"]
    args += ["-i", _ffmpeg_input(path), "-t", f"{span:.6f}", "-map", "0:a:0", "-vn", "-sn", "-dn"]
    if channels > 1:
        # The same mean downmix as the soundfile path (ffmpeg's own -ac 1 weights differently).
        weight = repr(1.0 / channels)
        # Converted to float first: on integer input pan would round the mean to an integer.
        mix = "+".join(f"{weight}*c{i}" for i in range(channels))
        args += ["-af", f"aformat=sample_fmts=flt|fltp|dbl|dblp,pan=mono|c0={mix}"]
    args += ["-ac", "1", "-ar", str(rate), "-f", "f32le", "-c:a", "pcm_f32le", "-"]
    proc = _run(path, args, deadline, "ffmpeg")
    usable = len(proc.stdout) - len(proc.stdout) % 4
    y = np.frombuffer(proc.stdout, dtype="<f4", count=usable // 4).astype(np.float32, copy=True)
    if proc.returncode != 0 and len(y) == 0:
        detail = _stderr_text(path, proc.stderr)
        raise AudioDecodeError(path, f"ffmpeg could not decode it ({detail})")
    return y
