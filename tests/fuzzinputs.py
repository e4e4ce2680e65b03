"""Hostile audio inputs for the fuzzer: valid seeds, mutations, and hypothesis strategies.

Shared by ``tests/daemon/test_fuzz.py`` and ``benchmarks/fuzz.py`` (which imports it by path). An
input is a :class:`Recipe`: a seed name, the extension the file is given, and a tuple of
mutation operations. Recipes are plain data, so any failing input is printed as a recipe that
rebuilds the same bytes (``build(recipe, seeds)``). Seeds are real encodings: a short tone
written by libsndfile and encoded by the real ffmpeg, and excerpts of real GTZAN clips when the
sample is present; they are made once per :class:`Seeds` object (the ffmpeg runs are the slow
part) and kept in memory (a few hundred KB).

This module has no pytest dependency, so the benchmark can use it outside a test run.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import strategies as st

PROJECT_ROOT = Path(__file__).resolve().parents[1]
GTZAN_DIR = (PROJECT_ROOT / ".." / "shared" / "data" / "gtzan").resolve()
FFMPEG = shutil.which("ffmpeg")

TONE_SECONDS = 3.5  # longer than the shipped model's ~3 s window, so a clean tone classifies
CLIP_SECONDS = 5.0
TEN_HOURS = 36000


# --------------------------------------------------------------------------------------------
# Recipes
# --------------------------------------------------------------------------------------------

Op = tuple  # ("name", *args): see _apply for the list


@dataclass(frozen=True)
class Recipe:
    """How to build one input: ``ops`` applied in order to the bytes of seed ``seed``."""

    seed: str
    ext: str
    ops: tuple[Op, ...] = ()

    def __str__(self) -> str:
        return f"Recipe({self.seed!r}, {self.ext!r}, {self.ops!r})"


# --------------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------------


def _tone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    y = 0.4 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 1250.0 * t)
    return np.repeat(y[:, None], channels, axis=1).astype(np.float32)


def _sf_bytes(data: np.ndarray, sr: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, data, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _ffmpeg(src: bytes, ext: str, *args: str) -> bytes | None:
    """Encode WAV bytes with the real ffmpeg; None when ffmpeg is not installed."""
    if FFMPEG is None:
        return None
    with tempfile.TemporaryDirectory(prefix="fuzzseed-") as d:
        inp, out = os.path.join(d, "in.wav"), os.path.join(d, "out." + ext)
        Path(inp).write_bytes(src)
        subprocess.run([FFMPEG, "-nostdin", "-v", "error", "-y", "-i", inp, *args, out],
                       check=True, capture_output=True, timeout=120)
        return Path(out).read_bytes()


def _id3_only() -> bytes:
    """An ID3v2.3 tag (one title frame and padding) with no audio after it."""
    frame = b"TIT2" + struct.pack(">I", 6) + b"\x00\x00" + b"\x00title"
    body = frame + b"\x00" * 200
    size = len(body)
    synchsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x03\x00\x00" + synchsafe + body


def _zip_of(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return buf.getvalue()


@dataclass
class Seeds:
    """The valid (and a few special) seed files, by name; built once per object."""

    use_clips: bool = True
    data: dict[str, bytes] = field(default_factory=dict)
    ext: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sr = 22050
        mono = _tone(TONE_SECONDS, sr)
        wav16 = _sf_bytes(mono, sr, "WAV", "PCM_16")
        self._add("tone_wav16", "wav", wav16)
        self._add("tone_wavf32", "wav", _sf_bytes(mono, sr, "WAV", "FLOAT"))
        self._add("tone_wav16_44k_stereo", "wav", _sf_bytes(_tone(TONE_SECONDS, 44100, 2), 44100, "WAV", "PCM_16"))
        self._add("tone_flac", "flac", _sf_bytes(mono, sr, "FLAC", "PCM_16"))
        self._add("tone_ogg", "ogg", _sf_bytes(mono, sr, "OGG", "VORBIS"))
        self._add("tone_au", "au", _sf_bytes(mono, sr, "AU", "PCM_16"))
        self._add("tone_mp3", "mp3", _ffmpeg(wav16, "mp3", "-b:a", "96k"))
        self._add("tone_mp3_noxing", "mp3", _ffmpeg(wav16, "mp3", "-b:a", "96k", "-write_xing", "0"))
        self._add("tone_m4a", "m4a", _ffmpeg(wav16, "m4a", "-c:a", "aac", "-b:a", "96k"))
        clips = sorted(GTZAN_DIR.glob("*/*.flac")) if self.use_clips and GTZAN_DIR.is_dir() else []
        if clips:
            y, csr = sf.read(str(clips[0]), frames=int(CLIP_SECONDS * 22050), dtype="float32", always_2d=True)
            clip = _sf_bytes(y, csr, "WAV", "PCM_16")
            self._add("clip_wav", "wav", clip)
            self._add("clip_flac", "flac", _sf_bytes(y, csr, "FLAC", "PCM_16"))
            self._add("clip_mp3", "mp3", _ffmpeg(clip, "mp3", "-ar", "44100", "-ac", "2", "-b:a", "128k"))
            self._add("clip_m4a", "m4a", _ffmpeg(clip, "m4a", "-c:a", "aac", "-b:a", "128k"))
        self.valid = sorted(self.data)
        # Special seeds: not audio, or audio that is invalid by construction.
        nan = mono.copy()
        nan[::2] = np.nan
        self._add("nan_wav", "wav", _sf_bytes(np.full_like(mono, np.nan), sr, "WAV", "FLOAT"))
        self._add("some_nan_wav", "wav", _sf_bytes(nan, sr, "WAV", "FLOAT"))
        self._add("inf_wav", "wav", _sf_bytes(np.full_like(mono, np.inf), sr, "WAV", "FLOAT"))
        self._add("zip", "mp3", _zip_of("song.wav", wav16))
        self._add("id3_only", "mp3", _id3_only())
        self._add("empty", "mp3", b"")
        self._add("text", "mp3", b"this is not audio\n" * 50)

    def _add(self, name: str, ext: str, data: bytes | None) -> None:
        if data is not None:
            self.data[name], self.ext[name] = data, ext

    def __contains__(self, name: str) -> bool:
        return name in self.data


_SEEDS: dict[bool, Seeds] = {}


def seeds(use_clips: bool = True) -> Seeds:
    """The process-wide seeds (built on first use: a few ffmpeg runs, under a second)."""
    if use_clips not in _SEEDS:
        _SEEDS[use_clips] = Seeds(use_clips)
    return _SEEDS[use_clips]


# --------------------------------------------------------------------------------------------
# Mutations (pure bytes -> bytes)
# --------------------------------------------------------------------------------------------

_WAV_FIELDS = {"format": (0, "<H"), "channels": (2, "<H"), "rate": (4, "<I"),
               "byte_rate": (8, "<I"), "block_align": (12, "<H"), "bits": (14, "<H")}
_AU_FIELDS = {"offset": (4, ">I"), "size": (8, ">I"), "encoding": (12, ">I"),
              "rate": (16, ">I"), "channels": (20, ">I")}


def _put(data: bytearray, pos: int, fmt: str, value: int) -> None:
    size = struct.calcsize(fmt)
    if 0 <= pos and pos + size <= len(data):
        mask = (1 << (8 * size)) - 1
        struct.pack_into(fmt, data, pos, value & mask)


def _wav_chunk(data: bytes | bytearray, tag: bytes) -> int:
    """Offset of chunk ``tag``'s header in a RIFF file, or -1."""
    pos = 12
    while pos + 8 <= len(data):
        if data[pos : pos + 4] == tag:
            return pos
        size = struct.unpack_from("<I", data, pos + 4)[0]
        pos += 8 + size + (size & 1)
    return -1


def _audio_start(data: bytes) -> int:
    """Where the audio data of a seed begins (after the header), as best known per format."""
    if data[:4] == b"RIFF":
        pos = _wav_chunk(data, b"data")
        return pos + 8 if pos >= 0 else min(44, len(data))
    if data[:4] == b".snd" and len(data) >= 8:
        return min(struct.unpack_from(">I", data, 4)[0], len(data))
    if data[:4] == b"fLaC":
        pos = 4
        while pos + 4 <= len(data):
            last, length = data[pos] & 0x80, int.from_bytes(data[pos + 1 : pos + 4], "big")
            pos += 4 + length
            if last:
                break
        return min(pos, len(data))
    if data[:4] == b"OggS":  # after the first two pages (identification and comments)
        second = data.find(b"OggS", 4)
        third = data.find(b"OggS", second + 4) if second >= 0 else -1
        return third if third >= 0 else len(data)
    if data[4:8] == b"ftyp":
        pos = data.find(b"mdat")
        return pos + 4 if pos >= 0 else len(data)
    if data[:3] == b"ID3" and len(data) >= 10:
        size = 0
        for b in data[6:10]:
            size = size << 7 | (b & 0x7F)
        start = 10 + size
    else:
        start = 0
    frame = data.find(b"\xff", start)  # the first mp3 frame (its header, Xing frame included)
    return min(frame + 4 if frame >= 0 else 64, len(data))


def _flac_streaminfo(data: bytearray, rate: int | None = None, channels: int | None = None,
                     bits: int | None = None, total: int | None = None) -> None:
    """Rewrite STREAMINFO's packed fields: rate (20 bits), channels-1 (3), bits-1 (5), total (36)."""
    if data[:4] != b"fLaC" or len(data) < 8 + 18:
        return
    packed = int.from_bytes(data[18:26], "big")
    r, c, b, t = packed >> 44, (packed >> 41) & 7, (packed >> 36) & 31, packed & ((1 << 36) - 1)
    r = r if rate is None else rate & 0xFFFFF
    c = c if channels is None else (channels - 1) & 7
    b = b if bits is None else (bits - 1) & 31
    t = t if total is None else total & ((1 << 36) - 1)
    data[18:26] = ((r << 44) | (c << 41) | (b << 36) | t).to_bytes(8, "big")


def _set_duration(data: bytearray, seconds: int) -> None:
    """Make the header claim ``seconds`` of audio, whatever the format (the body is unchanged)."""
    if data[:4] == b"RIFF":
        fmt = _wav_chunk(data, b"fmt ")
        pos = _wav_chunk(data, b"data")
        if fmt >= 0 and pos >= 0:
            byte_rate = struct.unpack_from("<I", data, fmt + 8 + 8)[0]
            _put(data, pos + 4, "<I", min(seconds * byte_rate, 0xFFFFFFF0))
            _put(data, 4, "<I", min(seconds * byte_rate + 36, 0xFFFFFFF0))
    elif data[:4] == b".snd":
        rate, ch = struct.unpack_from(">I", data, 16)[0], struct.unpack_from(">I", data, 20)[0]
        _put(data, 8, ">I", min(seconds * rate * ch * 2, 0xFFFFFFF0))
    elif data[:4] == b"fLaC":
        rate = int.from_bytes(data[18:21], "big") >> 4
        _flac_streaminfo(data, total=seconds * max(rate, 1))
    elif data[4:8] == b"ftyp":
        for box in (b"mvhd", b"mdhd"):
            at = data.find(box)
            while at >= 0:
                version = data[at + 4]
                if version == 0:
                    scale = struct.unpack_from(">I", data, at + 16)[0]
                    _put(data, at + 20, ">I", min(seconds * scale, 0xFFFFFFFF))
                at = data.find(box, at + 4)
    elif data[:4] == b"OggS":
        last = data.rfind(b"OggS")
        _put(data, last + 6, "<Q", seconds * 48000)
    else:  # mp3: the Xing/Info frame count (1152 samples per frame)
        for tag in (b"Xing", b"Info"):
            at = data.find(tag)
            if at >= 0 and struct.unpack_from(">I", data, at + 4)[0] & 1:
                _put(data, at + 8, ">I", seconds * 44100 // 1152)


def _set_field(data: bytearray, name: str, value: int) -> None:
    """Set a header field (channels, rate, bits, sizes) in a wav, au or flac seed."""
    if data[:4] == b"RIFF":
        if name == "riff_size":
            _put(data, 4, "<I", value)
        elif name == "data_size":
            pos = _wav_chunk(data, b"data")
            if pos >= 0:
                _put(data, pos + 4, "<I", value)
        elif name in _WAV_FIELDS:
            fmt = _wav_chunk(data, b"fmt ")
            if fmt >= 0:
                off, code = _WAV_FIELDS[name]
                _put(data, fmt + 8 + off, code, value)
    elif data[:4] == b".snd":
        key = {"data_size": "size", "riff_size": "offset"}.get(name, name)
        if key in _AU_FIELDS:
            off, code = _AU_FIELDS[key]
            _put(data, off, code, value)
    elif data[:4] == b"fLaC":
        if name in ("rate", "channels", "bits"):
            _flac_streaminfo(data, **{name: value})
        elif name == "data_size":
            _flac_streaminfo(data, total=value)


def _random_bytes(seed: int, n: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _apply(data: bytes, op: Op, pool: Seeds) -> bytes:
    """One mutation. Positions are taken modulo the length, so any int is a valid argument."""
    kind, args = op[0], op[1:]
    if kind == "truncate":  # cut at any byte, mid-frame included
        return data[: args[0] % (len(data) + 1)]
    if kind == "header_only":  # the header and nothing after it
        return data[: _audio_start(data)]
    if kind == "flip":  # flip one bit in the first ``window`` bytes (the header region)
        pos, bit = args
        if not data:
            return data
        out = bytearray(data)
        out[pos % min(len(out), 1024)] ^= 1 << (bit % 8)
        return bytes(out)
    if kind == "overwrite":  # overwrite bytes in the header region
        pos, chunk = args
        if not data:
            return data
        out = bytearray(data)
        start = pos % min(len(out), 1024)
        out[start : start + len(chunk)] = chunk
        return bytes(out[: max(len(data), start + len(chunk))])
    if kind == "field":  # a named header field set to a value (channels 0, rate 4e9, sizes 4 GB)
        out = bytearray(data)
        try:
            _set_field(out, args[0], args[1])
        except (struct.error, IndexError):  # a header cut too short to hold the field: unchanged
            return data
        return bytes(out)
    if kind == "duration":  # the header claims ``seconds`` of audio
        out = bytearray(data)
        try:
            _set_duration(out, args[0])
        except (struct.error, IndexError):  # a header cut too short to hold the field: unchanged
            return data
        return bytes(out)
    if kind == "append":  # concatenated garbage after, or another seed after
        return data + (pool.data[args[0]] if isinstance(args[0], str) else _random_bytes(*args))
    if kind == "prepend":
        return (pool.data[args[0]] if isinstance(args[0], str) else _random_bytes(*args)) + data
    if kind == "random":  # replace everything with random bytes
        return _random_bytes(*args)
    if kind == "zip":  # the whole thing zipped (a real zipfile), keeping the extension
        return _zip_of("song." + args[0], data)
    raise ValueError(f"unknown mutation {op!r}")


def build(recipe: Recipe, pool: Seeds) -> bytes:
    """The bytes of ``recipe``: its seed with every op applied in order."""
    data = pool.data[recipe.seed]
    for op in recipe.ops:
        data = _apply(data, op, pool)
    return data


def write(recipe: Recipe, pool: Seeds, directory: str | os.PathLike[str], name: str) -> Path:
    """Write the input as ``<directory>/<name>.<ext>``; returns the path."""
    path = Path(directory) / f"{name}.{recipe.ext}"
    path.write_bytes(build(recipe, pool))
    return path


# --------------------------------------------------------------------------------------------
# One explicit example of every hostile kind (always run by the tests, dropped on the daemon)
# --------------------------------------------------------------------------------------------

HOSTILE: dict[str, Recipe] = {
    "truncated_mid_frame_wav": Recipe("tone_wav16", "wav", (("truncate", 60_001),)),
    "truncated_mid_frame_flac": Recipe("tone_flac", "flac", (("truncate", 9_001),)),
    "truncated_mid_frame_mp3": Recipe("tone_mp3", "mp3", (("truncate", 20_001),)),
    "truncated_m4a": Recipe("tone_m4a", "m4a", (("truncate", 20_001),)),
    "truncated_ogg": Recipe("tone_ogg", "ogg", (("truncate", 3_001),)),
    "header_flipped_bits_wav": Recipe("tone_wav16", "wav", (("flip", 22, 7), ("flip", 23, 7))),
    "riff_and_data_claim_4gb": Recipe("tone_wav16", "wav", (("field", "riff_size", 0xFFFFFFF0),
                                                            ("field", "data_size", 0xFFFFFFE0))),
    "wav_claims_10_hours": Recipe("tone_wav16", "wav", (("duration", TEN_HOURS),)),
    "flac_claims_10_hours": Recipe("tone_flac", "flac", (("duration", TEN_HOURS),)),
    "mp3_claims_10_hours": Recipe("tone_mp3", "mp3", (("duration", TEN_HOURS),)),
    "m4a_claims_10_hours": Recipe("tone_m4a", "m4a", (("duration", TEN_HOURS),)),
    "zero_channels_wav": Recipe("tone_wav16", "wav", (("field", "channels", 0),)),
    "zero_channels_au": Recipe("tone_au", "au", (("field", "channels", 0),)),
    "channels_65535_wav": Recipe("tone_wav16", "wav", (("field", "channels", 65535),
                                                       ("field", "block_align", 65535 * 2))),
    "channels_65535_au": Recipe("tone_au", "au", (("field", "channels", 65535),)),
    "rate_0_wav": Recipe("tone_wav16", "wav", (("field", "rate", 0),)),
    "rate_1_wav": Recipe("tone_wav16", "wav", (("field", "rate", 1), ("field", "byte_rate", 2))),
    "rate_4e9_wav": Recipe("tone_wav16", "wav", (("field", "rate", 4_000_000_000),)),
    "rate_1_au": Recipe("tone_au", "au", (("field", "rate", 1),)),
    "nan_float_wav": Recipe("nan_wav", "wav"),
    "inf_float_wav": Recipe("inf_wav", "wav"),
    "some_nan_float_wav": Recipe("some_nan_wav", "wav"),
    # Found by the fuzzer: the body of a second float wav read as samples (its header bytes are
    # floats up to 7e31), finite but overflowing the power spectrum into NaN scores.
    "float_wav_samples_1e31": Recipe("tone_wavf32", "wav", (("header_only",), ("append", "tone_wavf32"))),
    "zip_renamed_mp3": Recipe("zip", "mp3"),
    "random_bytes_mp3": Recipe("empty", "mp3", (("random", 1, 50_000),)),
    "empty_file": Recipe("empty", "mp3"),
    "wav_header_only": Recipe("tone_wav16", "wav", (("header_only",),)),
    "flac_header_only": Recipe("tone_flac", "flac", (("header_only",),)),
    "m4a_header_only": Recipe("tone_m4a", "m4a", (("truncate", 40),)),
    "id3_tag_only": Recipe("id3_only", "mp3"),
    "garbage_then_wav": Recipe("tone_wav16", "wav", (("prepend", 2, 4_000),)),
    "garbage_then_mp3": Recipe("tone_mp3_noxing", "mp3", (("prepend", 3, 4_000),)),
    "text_named_mp3": Recipe("text", "mp3"),
}


# --------------------------------------------------------------------------------------------
# Hypothesis strategies
# --------------------------------------------------------------------------------------------

_INTERESTING = [0, 1, 2, 3, 7, 255, 256, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                0xFFFFFFFE, 0xFFFFFFFF, 4_000_000_000, 44100, 22050, 8]
_EXTS = ["mp3", "wav", "au", "flac", "ogg", "m4a"]


def _values() -> st.SearchStrategy[int]:
    return st.sampled_from(_INTERESTING) | st.integers(0, 2**32 - 1)


def ops(pool: Seeds) -> st.SearchStrategy[Op]:
    """One mutation: truncation, bit flips/overwrites in the header, lying header fields, ..."""
    anywhere = st.integers(0, 2**20)
    header = st.integers(0, 600)
    return st.one_of(
        st.tuples(st.just("truncate"), anywhere | header),
        st.tuples(st.just("header_only")),
        st.tuples(st.just("flip"), header, st.integers(0, 7)),
        st.tuples(st.just("overwrite"), header,
                  st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff" * 4, b"\x00" * 4])),
        st.tuples(st.just("field"),
                  st.sampled_from(["channels", "rate", "bits", "block_align", "byte_rate", "format",
                                   "riff_size", "data_size"]), _values()),
        st.tuples(st.just("duration"), st.sampled_from([TEN_HOURS, 600, 601, 3600, 1, 0])),
        st.tuples(st.just("append"), st.integers(0, 2**31), st.integers(1, 20_000)),
        st.tuples(st.just("append"), st.sampled_from(pool.valid)),
        st.tuples(st.just("prepend"), st.integers(0, 2**31), st.integers(1, 5_000)),
        st.tuples(st.just("zip"), st.sampled_from(_EXTS)),
    )


def recipes(pool: Seeds) -> st.SearchStrategy[Recipe]:
    """Any input: a mutated valid seed (sometimes under another extension), a special seed, or
    random bytes of any length."""
    mutated = st.builds(
        lambda seed, ext, o: Recipe(seed, ext or pool.ext[seed], tuple(o)),
        st.sampled_from(pool.valid),
        st.none() | st.none() | st.sampled_from(_EXTS),
        st.lists(ops(pool), min_size=1, max_size=3),
    )
    special = st.builds(
        lambda seed, o: Recipe(seed, pool.ext[seed], tuple(o)),
        st.sampled_from(sorted(set(pool.data) - set(pool.valid))),
        st.lists(ops(pool), max_size=1),
    )
    noise = st.builds(
        lambda s, n, ext: Recipe("empty", ext, (("random", s, n),)),
        st.integers(0, 2**31), st.integers(0, 70_000), st.sampled_from(_EXTS),
    )
    return st.one_of(mutated, mutated, mutated, special, noise)


# --------------------------------------------------------------------------------------------
# The property
# --------------------------------------------------------------------------------------------


class PropertyViolation(AssertionError):
    """An input broke the contract: another exception, a bad result, or a vague error."""


def check_input(path: str | os.PathLike[str], classifier: object) -> list[str]:
    """Run ``audio.load`` and ``classifier.classify`` on ``path``; return each one's outcome.

    An outcome is ``"ok"`` (a valid result: finite float32 mono samples; finite probabilities
    over the model's genres that sum to 1) or ``"error: <reason>"`` (an AudioDecodeError whose
    message starts with the file's path and carries a non-empty reason). Anything else raises
    :class:`PropertyViolation` (with the original exception chained).
    """
    from genre_daemon.audio import decode as audio
    from genre_daemon.errors import AudioDecodeError

    p = os.fspath(path)
    outcomes = []
    for step in ("load", "classify"):
        try:
            if step == "load":
                y = audio.load(p)
                if not (isinstance(y, np.ndarray) and y.dtype == np.float32 and y.ndim == 1
                        and len(y) > 0 and np.isfinite(y).all()):
                    raise PropertyViolation(f"load returned a bad array: {getattr(y, 'shape', y)!r}")
            else:
                pred = classifier.classify(p)  # type: ignore[attr-defined]
                scores = np.array(list(pred.scores.values()), dtype=np.float64)
                genres = list(classifier.model.genres)  # type: ignore[attr-defined]
                if not (list(pred.scores) == genres and np.isfinite(scores).all()
                        and (scores >= 0).all() and abs(scores.sum() - 1.0) < 1e-4
                        and pred.genre in genres and np.isfinite(pred.confidence)):
                    raise PropertyViolation(f"classify returned a bad prediction: {pred!r}")
            outcomes.append("ok")
        except AudioDecodeError as e:
            if e.path != p or not str(e).startswith(p) or not e.reason.strip():
                raise PropertyViolation(f"{step}: AudioDecodeError without file and reason: {e!r}") from e
            outcomes.append("error: " + e.reason)
        except PropertyViolation:
            raise
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            raise PropertyViolation(f"{step} raised {type(e).__name__}: {e}") from e
    return outcomes
