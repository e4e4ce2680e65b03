"""The only decoder in genre-daemon: a path in, mono float32 samples at 22050 Hz out.

Two backends, chosen per file:

* **soundfile** (libsndfile >= 1.1) is the fast path. It reads wav, au, aiff, flac, ogg
  (vorbis/opus) and mp3 in-process, and it can seek, so a span of a long file is read in blocks
  without loading the rest. mp3 files take this path only when they carry a Xing/Info/VBRI length
  header: without one libsndfile only *estimates* the length and silently stops reading there.
* **ffmpeg** handles everything libsndfile cannot (m4a/aac, wma, odd wavs, mp3 without a length
  header). The design asks for "ffmpeg through pydub", but ``AudioSegment.from_file`` runs ffmpeg
  with no timeout and loads the whole file into memory, which would break the two promises this
  module makes: *decoding never hangs* and *memory is bounded by the span asked for*. So pydub is
  used only to find the binaries (``AudioSegment.converter`` when the user has pointed pydub at a
  particular ffmpeg), and ffprobe/ffmpeg are run here with ``subprocess.run([...],
  timeout=..., capture_output=True)``: list arguments (never a shell), ``-nostdin``,
  ``-v error``, input as ``file:<absolute path>`` (so names with ``:`` or a leading ``-`` are not
  read as protocols or options) and only the ``file`` protocol allowed (a playlist renamed .m4a
  cannot make ffmpeg open URLs). ffmpeg decodes straight to raw ``f32le`` on stdout, with
  ``-ss``/``-t`` limiting it to the span, so its output is bounded too.

Both backends downmix by the mean over channels and resample with ``soxr`` quality "HQ" (what
librosa uses by default), so features do not depend on which backend decoded a file. ffprobe
results are cached per (path, inode, size, mtime), so reading several spans of one m4a costs one
ffprobe run and one short ffmpeg run per span.

Every failure is an :class:`~genre_daemon.errors.AudioDecodeError` naming the file and a human
reason (missing, not a regular file, empty, not audio, truncated, too short, too long for one
read, non-finite or impossibly large samples, a sample rate or channel count outside what audio
uses, ffmpeg missing or timed out). No libsndfile or subprocess exception
escapes. Invalid *arguments* (a negative offset, say) are caller bugs and raise ``ValueError``.

Non-regular files (directories, FIFOs, devices) are rejected before anything opens them for
decoding: a FIFO with no writer would otherwise block ``open()`` forever.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import subprocess
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from genre_daemon.errors import AudioDecodeError

__all__ = ["TARGET_SR", "SUPPORTED_EXTENSIONS", "AudioInfo", "probe", "load"]

TARGET_SR = 22050
SUPPORTED_EXTENSIONS = ("mp3", "wav", "au", "flac", "ogg", "m4a", "opus", "aiff", "aif")

# Samples (frames x channels) read per block on the soundfile path: bounds the scratch buffer
# to 1 MiB of float32 whatever the channel count (64 Ki frames of stereo).
_BLOCK_SAMPLES = 1 << 17
# What a header may declare and still be decoded: anything outside is a damaged or hostile file,
# not music. The rate range covers 1 kHz voice recorders to 768 kHz studio formats; 256
# channels is 15th-order ambisonics. These caps, with ``max_seconds``, bound every read (see
# :func:`_check_format`).
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 256
# Largest sample magnitude accepted (+60 dB over full scale). Integer formats decode to [-1, 1];
# only float data can go beyond, and a float file with samples like 1e31 is damaged (or hostile):
# its power spectrum overflows float32 and every feature becomes NaN.
MAX_AMPLITUDE = 1000.0
# libsndfile reports an unknown length as a huge count; treat anything this big as unknown.
_UNKNOWN_FRAMES = 1 << 62
# Data-size values that writers of streamed wav/au files use to mean "unknown length".
_SIZE_SENTINELS = {0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF - 1}
# Signatures of common non-audio files, for a precise reason instead of a codec error.
_NON_AUDIO_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable"),
)


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: enough to plan which spans to read, without decoding."""

    path: str
    duration: float  # seconds
    samplerate: int
    channels: int
    backend: str  # "soundfile" | "ffmpeg"


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
    p = os.fspath(path)
    if not (math.isfinite(offset) and offset >= 0):
        raise ValueError(f"offset must be a finite number >= 0, not {offset!r}")
    if duration is not None and not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be None or a finite number >= 0, not {duration!r}")
    if int(sr) != sr or sr <= 0:
        raise ValueError(f"sr must be a positive integer, not {sr!r}")
    if not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0, not {max_seconds!r}")
    sr = int(sr)
    if duration is not None and duration > max_seconds:
        raise AudioDecodeError(
            p,
            f"the requested span of {duration:.1f} s is longer than the {max_seconds:.1f} s limit "
            "for one read; read a shorter span",
        )

    _check_regular(p)
    deadline = time.monotonic() + timeout
    opened, hint = _sf_open(p)
    if opened is not None:
        fd, snd = opened
        try:
            native, sr_in, plan = _sf_read_span(p, snd, offset, duration, max_seconds, sr)
        finally:
            snd.close()
            os.close(fd)
    else:
        native, sr_in, plan = _ffmpeg_read_span(
            p, offset, duration, max_seconds, sr, deadline, hint
        )

    if not np.isfinite(native).all():
        raise AudioDecodeError(p, "the audio contains non-finite samples (NaN or infinity)")
    peak = float(np.max(np.abs(native))) if len(native) else 0.0
    if peak > MAX_AMPLITUDE:
        raise AudioDecodeError(
            p,
            f"the audio contains samples of impossible magnitude ({peak:.3g}, more than "
            f"{MAX_AMPLITUDE:g} times full scale): damaged float data",
        )
    y = _resample(native, sr_in, sr)
    del native
    if plan.skip or plan.n_out is not None:
        # Drop the pre-/post-roll decoded around the span (see _plan).
        end = None if plan.n_out is None else plan.skip + plan.n_out
        y = y[plan.skip : end].copy()
    need = min_seconds * sr
    if len(y) + 1e-6 < need:
        where = f" at offset {offset:.3f} s" if offset else ""
        raise AudioDecodeError(
            p,
            f"too short: only {len(y) / sr:.3f} s of audio{where}, "
            f"need at least {min_seconds:.3f} s",
        )
    return y


# --------------------------------------------------------------------------------------------
# Checks shared by both backends
# --------------------------------------------------------------------------------------------


def _describe_mode(mode: int) -> str:
    """Name a non-regular file kind for an error message."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _check_stat(path: str, st: os.stat_result) -> None:
    """Reject anything but a non-empty regular file, from a stat result."""
    if not stat.S_ISREG(st.st_mode):
        raise AudioDecodeError(path, f"not a regular file ({_describe_mode(st.st_mode)})")
    if st.st_size == 0:
        raise AudioDecodeError(path, "the file is empty (0 bytes)")


def _check_regular(path: str) -> None:
    """stat (never open) the path first, so FIFOs and devices are never opened at all."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioDecodeError(path, "no such file") from None
    except NotADirectoryError:
        raise AudioDecodeError(path, "no such file (a parent is not a directory)") from None
    except PermissionError:
        raise AudioDecodeError(path, "permission denied") from None
    except (OSError, ValueError) as e:
        raise AudioDecodeError(path, f"cannot stat the file: {_oserror_text(e)}") from None
    _check_stat(path, st)


def _open_fd(path: str) -> int:
    """Open read-only without blocking, then re-check with fstat (closes the stat/open race)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise AudioDecodeError(path, "no such file") from None
    except PermissionError:
        raise AudioDecodeError(path, "permission denied") from None
    except OSError as e:
        raise AudioDecodeError(path, f"cannot open the file: {_oserror_text(e)}") from None
    try:
        _check_stat(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _oserror_text(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _pread(fd: int, n: int, pos: int) -> bytes:
    """Read ``n`` bytes at ``pos`` (os.pread where there is one)."""
    if hasattr(os, "pread"):
        return os.pread(fd, n, pos)
    os.lseek(fd, pos, os.SEEK_SET)
    return os.read(fd, n)


def _non_audio_kind(fd: int) -> str | None:
    """Recognise an obviously non-audio file (archive, image, text) from its first bytes."""
    try:
        head = _pread(fd, 512, 0)
    except OSError:
        return None
    for magic, kind in _NON_AUDIO_MAGIC:
        if head.startswith(magic):
            return kind
    if head and b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as e:  # a multi-byte character cut at the 512-byte edge
            text = head[: e.start].decode("utf-8", "ignore") if e.start >= len(head) - 3 else None
        if text is not None and all(c.isprintable() or c in "\t\r\n\f" for c in text):
            return "a text file"
    return None


def _material(missing: float, declared: float, rate: float) -> bool:
    """Whether ``missing`` of ``declared`` frames is more than padding noise.

    Material means more than 1 % of the declared length or more than 1 s, whichever is less,
    and in any case more than 0.15 s: codec frame rounding and encoder padding (an AAC frame is
    1024 samples, 128 ms at 8 kHz) stay below it, a cut-off download does not.
    """
    return missing > max(0.15 * rate, min(0.01 * declared, rate))


def _resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """soxr HQ resampling (librosa's default), returning contiguous float32."""
    if sr_in != sr_out and len(y):
        y = soxr.resample(y, sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(y, dtype=np.float32)


# Audio decoded around a span and cut off after resampling, so the span's edges are not
# distorted by the resampler starting from silence (soundfile) or by a decoder starting cold
# after a seek (ffmpeg: the AAC overlap, the mp3 bit reservoir, the Opus pre-skip).
_RESAMPLER_PAD = 0.05
_DECODER_PREROLL = 0.3


@dataclass(frozen=True)
class _Plan:
    """How to read a span: which native frames to decode, and which output samples to keep."""

    first: int  # first native frame to decode; a whole number of output samples from 0
    count: int | None  # native frames to decode from ``first`` (None: to the end, within the cap)
    start: int  # native frame where the span itself starts
    frames: int  # native frames in the span itself, clamped to the declared end
    skip: int  # output samples (after resampling) to drop before the span
    n_out: int | None  # output samples in the span (None: all that follow)


def _plan(
    path: str,
    rate: int,
    frames: int,
    offset: float,
    duration: float | None,
    max_seconds: float,
    sr_out: int,
    lead_seconds: float,
    tail_seconds: float,
) -> _Plan:
    """Turn offset/duration into native frames, enforcing the end of the file and ``max_seconds``.

    The span is defined on the output grid (sample ``round(offset * sr_out)`` onwards). Decoding
    starts up to ``lead_seconds`` earlier, at a native frame that is itself a whole number of
    output samples from 0 (a multiple of ``rate / gcd(rate, sr_out)`` frames), so the resampled
    span is sample-aligned with a full decode whatever the two rates are.
    """
    total = frames / rate
    j0 = int(round(offset * sr_out))
    start = j0 * rate // sr_out
    if start >= frames:
        raise _past_end(path, offset, total)
    available = frames - start
    if duration is None:
        if available / rate > max_seconds:
            raise _span_too_long(path, available / rate, offset, max_seconds)
        span, n_out = available, None
    else:
        span = min(int(math.ceil(duration * rate)), available)
        n_out = int(round(duration * sr_out))
    if start == 0 and duration is None:
        return _Plan(0, None, 0, span, 0, None)  # the whole file: nothing to trim
    step = rate // math.gcd(rate, sr_out)
    first = max(0, start - int(lead_seconds * rate))
    first -= first % step
    end = min(frames, start + span + step + int(tail_seconds * rate))
    count = None if duration is None else end - first
    return _Plan(first, count, start, span, j0 - first * sr_out // rate, n_out)


def _span_too_long(
    path: str, available: float, offset: float, max_seconds: float
) -> AudioDecodeError:
    where = f" from offset {offset:.1f} s" if offset else ""
    return AudioDecodeError(
        path,
        f"the audio is {available:.1f} s long{where}, longer than the {max_seconds:.1f} s limit "
        "for one read; read a span (offset/duration)",
    )


def _past_end(path: str, offset: float, total: float) -> AudioDecodeError:
    return AudioDecodeError(
        path, f"offset {offset:.3f} s is at or past the end of the audio ({total:.3f} s)"
    )


# --------------------------------------------------------------------------------------------
# soundfile backend
# --------------------------------------------------------------------------------------------

_LOG_SIZE = re.compile(r"^\s*(data|data size|ssnd)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.I | re.M)


@dataclass(frozen=True)
class _SfHint:
    """What libsndfile learnt about a file it handed over to ffmpeg, for sharper messages."""

    format: str | None = None  # it recognised the format but could not give a length
    error: str | None = None  # it refused the header, and said something specific why
    non_audio: str | None = None  # what the first bytes say the file is instead ("a ZIP archive")


# libsndfile open errors that say nothing about the file beyond "not mine".
_SF_VAGUE = ("format not recognised", "not a regular file", "internal error", "unspecified")


def _sf_open(path: str) -> tuple[tuple[int, sf.SoundFile] | None, _SfHint]:
    """Open with libsndfile if it can read this file reliably.

    Returns ``((fd, soundfile), hint)``, or ``(None, hint)`` when ffmpeg should decode it.
    Raises for problems libsndfile sees in the header that ffmpeg could not fix: a data chunk
    declared longer than the file (truncated / header only), zero channels or rate.
    """
    fd = _open_fd(path)
    try:
        snd = sf.SoundFile(fd, closefd=False)
    except Exception as e:  # LibsndfileError or anything else libsndfile trips on: ffmpeg's turn
        kind = _non_audio_kind(fd)
        os.close(fd)
        text = re.sub(r"^Error opening [^:]*:\s*", "", str(e)).strip().rstrip(".")
        vague = not text or any(v in text.lower() for v in _SF_VAGUE)
        return None, _SfHint(error=None if vague else text, non_audio=kind)
    try:
        _sf_check_header(path, snd)
        if snd.frames <= 0 or snd.frames >= _UNKNOWN_FRAMES:
            raise _Fallback  # unknown length (streamed flac, cut ogg): ffmpeg knows better
        if snd.format == "MP3" and not _mp3_has_length_header(fd):
            raise _Fallback  # libsndfile would stop at its length *estimate*
    except _Fallback:
        fmt = snd.format
        snd.close()
        os.close(fd)
        return None, _SfHint(format=fmt)
    except BaseException:
        snd.close()
        os.close(fd)
        raise
    return (fd, snd), _SfHint(format=snd.format)


class _Fallback(Exception):
    """Internal: this file is better decoded by ffmpeg."""


def _check_format(path: str, rate: int, channels: int) -> None:
    """Refuse a header whose rate or channel count is outside what real audio uses.

    Together with ``max_seconds`` this is what bounds a read by construction: at most
    ``(max_seconds + ~1 s) * MAX_SAMPLE_RATE`` mono frames are kept (4 bytes each), the scratch
    block holds ``_BLOCK_SAMPLES`` samples whatever the channel count, and the resampler's
    ratio stays within ``[22050 / 768000, 22050 / 1000]``, so a header claiming 1 Hz cannot turn
    a few kilobytes into hours of upsampled "audio", nor 65535 channels into a 17 GB buffer.
    """
    if channels <= 0 or rate <= 0:
        raise AudioDecodeError(
            path,
            f"not decodable audio: the header declares {channels} channels at {rate} Hz",
        )
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioDecodeError(
            path,
            f"not decodable audio: the header declares a sample rate of {rate} Hz, outside "
            f"{MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz",
        )
    if channels > MAX_CHANNELS:
        raise AudioDecodeError(
            path,
            f"not decodable audio: the header declares {channels} channels, more than "
            f"{MAX_CHANNELS}",
        )


def _sf_check_header(path: str, snd: sf.SoundFile) -> None:
    """Header sanity: channels, rate, and a declared data size the file actually holds."""
    _check_format(path, snd.samplerate, snd.channels)
    try:
        log = snd.extra_info
    except Exception:
        return
    # libsndfile clamps a too-large data chunk to what the file holds and notes it in its log as
    # "data : <declared> (should be <actual>)"; a clamped file is a truncated file.
    for _label, declared_s, actual_s in _LOG_SIZE.findall(log):
        declared, actual = int(declared_s), int(actual_s)
        if declared in _SIZE_SENTINELS or actual >= declared:
            continue
        if snd.frames <= 0 or actual == 0:
            raise AudioDecodeError(
                path, "truncated: the header promises audio data but the file holds none"
            )
        bytes_per_frame = actual / snd.frames
        declared_frames = declared / bytes_per_frame
        if _material(declared_frames - snd.frames, declared_frames, snd.samplerate):
            raise AudioDecodeError(
                path,
                f"truncated: the header declares {declared_frames / snd.samplerate:.2f} s of "
                f"audio but the file holds only {snd.frames / snd.samplerate:.2f} s",
            )


def _mp3_has_length_header(fd: int) -> bool:
    """Whether the first mp3 frame carries a Xing/Info/VBRI header (an exact frame count)."""
    try:
        head = _pread(fd, 10, 0)
        pos = 0
        if len(head) == 10 and head[:3] == b"ID3":  # skip an ID3v2 tag (synchsafe size)
            size = 0
            for b in head[6:10]:
                size = size << 7 | (b & 0x7F)
            pos = 10 + size + (10 if head[5] & 0x10 else 0)
        buf = _pread(fd, 16384, pos)
    except OSError:
        return False
    for i in range(len(buf) - 1):
        if buf[i] == 0xFF and buf[i + 1] & 0xE0 == 0xE0:
            frame_start = buf[i : i + 200]
            return any(tag in frame_start for tag in (b"Xing", b"Info", b"VBRI"))
    return False


def _sf_read_span(
    path: str,
    snd: sf.SoundFile,
    offset: float,
    duration: float | None,
    max_seconds: float,
    sr_out: int,
) -> tuple[np.ndarray, int, _Plan]:
    """Seek and read the planned frames block by block, downmixing each block as it arrives.

    Returns mono samples at the native rate, the rate, and the plan to trim them by. Peak
    memory is the mono span at the native rate plus one block, never the whole file.

    This in-process path has no timeout, so its work is bounded by construction instead: the
    header was checked first (:func:`_check_format`: rate, channels), the plan asks for at most
    ``max_seconds`` (plus a second of alignment and padding) of frames, whatever length the
    header claims; the loop makes one ``read`` per block and stops at the first empty one; it
    seeks at most once; and each read consumes the file forwards, so a corrupt stream costs at
    most one pass over a file that is finite and regular (checked before opening). A header
    claiming 10 hours allocates nothing for them: a whole read that long is refused before
    reading, and the output buffer is sized by the plan, not the claim (``np.empty`` only takes
    pages as samples arrive, so a claim larger than the data costs no memory either).
    """
    rate, frames, channels = snd.samplerate, snd.frames, snd.channels
    plan = _plan(
        path, rate, frames, offset, duration, max_seconds, sr_out, _RESAMPLER_PAD, _RESAMPLER_PAD
    )
    want = frames - plan.first if plan.count is None else plan.count
    out = np.empty(want, dtype=np.float32)
    block_frames = max(1, _BLOCK_SAMPLES // channels)
    block = np.empty((min(block_frames, max(want, 1)), channels), dtype=np.float32)
    got = 0
    try:
        if plan.first:
            snd.seek(plan.first)
        while got < want:
            n = min(len(block), want - got)
            chunk = snd.read(n, dtype="float32", always_2d=True, out=block[:n])
            k = len(chunk)
            if k == 0:
                break
            if channels == 1:
                out[got : got + k] = chunk[:, 0]
            else:
                np.mean(chunk, axis=1, out=out[got : got + k])
            got += k
    except Exception as e:  # LibsndfileError mid-stream: lost sync, short read, ...
        raise AudioDecodeError(
            path,
            f"truncated or corrupt: decoding failed after {(plan.first + got) / rate:.2f} s of "
            f"{frames / rate:.2f} s ({_sf_error_text(e)})",
        ) from None
    if got < want and _material(want - got, frames, rate):
        raise AudioDecodeError(
            path,
            f"truncated: the header declares {frames / rate:.2f} s of audio but decoding stopped "
            f"at {(plan.first + got) / rate:.2f} s",
        )
    return out[:got], rate, plan


def _sf_error_text(e: BaseException) -> str:
    text = str(e).strip()
    return re.sub(r"^Error\s*:?\s*", "", text) or type(e).__name__


# --------------------------------------------------------------------------------------------
# ffmpeg backend
# --------------------------------------------------------------------------------------------

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

    Returns like :func:`_sf_read_span`. A read to the end goes to the real end of the stream,
    not the header's idea of it, but never past ``max_seconds`` (in case the header
    under-states the length).
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
