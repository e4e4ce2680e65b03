"""What both decoding backends share: the records, the limits, the file and header checks, the
span plan and the wording of their failures.

The soundfile and ffmpeg backends (:mod:`genre_daemon.audio.sndfile`,
:mod:`genre_daemon.audio.ffmpeg`) apply the same rules, so they live here once: a path is
stat'ed (never opened) before anything else, so FIFOs and devices are refused without blocking;
a header's rate and channel count must be ones real audio uses; a span becomes native frames on
the full decode's output grid; and a shortfall is "truncated" only when it is more than codec
padding. Every failure is an :class:`~genre_daemon.errors.AudioDecodeError` naming the file.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass

from genre_daemon.errors import AudioDecodeError


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


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: enough to plan which spans to read, without decoding."""

    path: str
    duration: float  # seconds
    samplerate: int
    channels: int
    backend: str  # "soundfile" | "ffmpeg"


@dataclass(frozen=True)
class _SfHint:
    """What libsndfile learnt about a file it handed over to ffmpeg, for sharper messages."""

    format: str | None = None  # it recognised the format but could not give a length
    error: str | None = None  # it refused the header, and said something specific why
    non_audio: str | None = None  # what the first bytes say the file is instead ("a ZIP archive")


# --------------------------------------------------------------------------------------------
# File checks: before anything opens the file for decoding
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Header checks and span planning
# --------------------------------------------------------------------------------------------


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


def _material(missing: float, declared: float, rate: float) -> bool:
    """Whether ``missing`` of ``declared`` frames is more than padding noise.

    Material means more than 1 % of the declared length or more than 1 s, whichever is less,
    and in any case more than 0.15 s: codec frame rounding and encoder padding (an AAC frame is
    1024 samples, 128 ms at 8 kHz) stay below it, a cut-off download does not.
    """
    return missing > max(0.15 * rate, min(0.01 * declared, rate))


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
