"""The soundfile (libsndfile >= 1.1) backend: the fast, in-process, seeking path.

It reads wav, au, aiff, flac, ogg (vorbis/opus) and mp3 in-process, and it can seek, so a span
of a long file is read in blocks without loading the rest. mp3 files take this path only when
they carry a Xing/Info/VBRI length header: without one libsndfile only *estimates* the length
and silently stops reading there. A file it cannot read reliably is handed to the ffmpeg
backend, with a :class:`~genre_daemon.audio.common._SfHint` of what libsndfile made of it.
"""

from __future__ import annotations

import os
import re

import numpy as np
import soundfile as sf

from genre_daemon.audio.common import (
    _RESAMPLER_PAD,
    _check_format,
    _material,
    _non_audio_kind,
    _open_fd,
    _Plan,
    _plan,
    _pread,
    _SfHint,
)
from genre_daemon.errors import AudioDecodeError


# Samples (frames x channels) read per block on the soundfile path: bounds the scratch buffer
# to 1 MiB of float32 whatever the channel count (64 Ki frames of stereo).
_BLOCK_SAMPLES = 1 << 17
# libsndfile reports an unknown length as a huge count; treat anything this big as unknown.
_UNKNOWN_FRAMES = 1 << 62
# Data-size values that writers of streamed wav/au files use to mean "unknown length".
_SIZE_SENTINELS = {0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF - 1}
_LOG_SIZE = re.compile(r"^\s*(data|data size|ssnd)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.I | re.M)


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
            elif channels == 2:  # np.mean's (l + r) / 2 bit for bit, ~20x faster than over axis 1
                np.add(chunk[:, 0], chunk[:, 1], out=out[got : got + k])
                out[got : got + k] *= np.float32(0.5)
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
