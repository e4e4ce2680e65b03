"""genre_daemon.audio.decode on real files: synthetic ones written with soundfile or encoded by the real
ffmpeg binary, and the GTZAN sample when it is present. No mocks.

Duration tolerances: lossless formats, Ogg Vorbis/Opus and mp3 with a LAME/Xing header decode
to the exact length (gapless, within a sample); AAC and mp3 without a length header may keep up
to one codec frame of encoder padding at the end (LOSSY_TOL, 60 ms).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import FFMPEG, ffmpeg_encode, make_tone, write_audio, write_sparse_wav, write_tone
from genre_daemon.audio import ffmpeg as audio  # the ffmpeg backend: some tests drive it directly
from genre_daemon.audio.decode import SUPPORTED_EXTENSIONS, TARGET_SR, AudioInfo, load, probe
from genre_daemon.errors import AudioDecodeError

HAVE_FFMPEG = FFMPEG is not None and shutil.which("ffprobe") is not None
needs_ffmpeg = pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg/ffprobe is not installed")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")

LOSSY_TOL = 0.06  # seconds
EXACT_TOL = 1.5 / TARGET_SR


def peak_frequency(y: np.ndarray, sr: int) -> float:
    """Frequency of the largest FFT bin (Hann window), in Hz."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spectrum) * sr / len(y))


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


def multitone(seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    """A tonal test signal, channels slightly shifted. Not noise: AAC codes noise bands with
    random noise substitution, which no two decodes reproduce alike."""
    t = np.arange(int(round(seconds * sr))) / sr
    x = sum(0.1 * np.sin(2 * np.pi * f * t + f) for f in (220.0, 331.0, 587.0, 1201.0, 2999.0))
    return np.stack([np.roll(x, 37 * c) for c in range(channels)], axis=1).astype(np.float32)


def noise(seconds: float, sr: int, channels: int, seed: int) -> np.ndarray:
    shape = (int(seconds * sr), channels)
    return np.random.default_rng(seed).uniform(-0.5, 0.5, shape).astype(np.float32)


def encoded(src: Path, ext: str, *args: str) -> Path:
    """``src`` encoded by ffmpeg into a sibling file with extension ``ext``."""
    return ffmpeg_encode(src, src.with_name(f"{src.stem}-enc.{ext}"), *args)


# --------------------------------------------------------------------------------------------
# Every format: mono float32 at 22050 Hz, right length, pitch and level; the right backend
# --------------------------------------------------------------------------------------------

SECONDS = 2.0
FREQ = 440.0


@dataclass(frozen=True)
class Fmt:
    ext: str  # of the file soundfile writes, or of the ffmpeg output when ``encode`` is set
    sr: int
    channels: int
    backend: str
    subtype: str | None = None
    encode: tuple[str, ...] | None = None  # ffmpeg arguments; the source is a wav
    tol: float = EXACT_TOL

    def build(self, d: Path, name: str) -> Path:
        if self.encode is None:
            return write_tone(d / f"{name}.{self.ext}", SECONDS, self.sr, self.channels, FREQ,
                              subtype=self.subtype)
        src = write_tone(d / f"{name}.wav", SECONDS, self.sr, self.channels, FREQ)
        return encoded(src, self.ext, *self.encode)


FORMATS = {
    "wav-pcm16-44k-stereo": Fmt("wav", 44100, 2, "soundfile", subtype="PCM_16"),
    "wav-float-48k-mono": Fmt("wav", 48000, 1, "soundfile", subtype="FLOAT"),
    "wav-pcm24-22k-mono": Fmt("wav", 22050, 1, "soundfile", subtype="PCM_24"),
    "flac-16k-stereo": Fmt("flac", 16000, 2, "soundfile"),
    "ogg-vorbis-44k-mono": Fmt("ogg", 44100, 1, "soundfile"),
    "au-8k-mono": Fmt("au", 8000, 1, "soundfile", subtype="PCM_16"),
    "mp3-128k-44k-stereo": Fmt("mp3", 44100, 2, "soundfile", encode=("-b:a", "128k")),
    # No Xing header: libsndfile would only estimate the length, so ffmpeg decodes it.
    "mp3-vbr-no-xing-header": Fmt("mp3", 44100, 1, "ffmpeg", tol=LOSSY_TOL,
                                  encode=("-q:a", "2", "-write_xing", "0")),
    "m4a-aac-48k-stereo": Fmt("m4a", 48000, 2, "ffmpeg", tol=LOSSY_TOL,
                              encode=("-c:a", "aac", "-b:a", "128k")),
    "m4a-alac-44k-stereo": Fmt("m4a", 44100, 2, "ffmpeg", encode=("-c:a", "alac")),
    "ogg-opus-48k-stereo": Fmt("ogg", 48000, 2, "soundfile", encode=("-c:a", "libopus")),
    # Issue 10: formats people drop that were left in the inbox in silence.
    "opus-48k-stereo": Fmt("opus", 48000, 2, "soundfile", encode=("-c:a", "libopus")),
    "aiff-pcm16-44k-stereo": Fmt("aiff", 44100, 2, "soundfile", encode=("-c:a", "pcm_s16be")),
    "aif-pcm24-48k-mono": Fmt("aif", 48000, 1, "soundfile", encode=("-c:a", "pcm_s24be")),
}


@pytest.fixture(scope="module")
def format_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | None]:
    """Each format's tone file, made once per module (encoding is the slow part)."""
    d = tmp_path_factory.mktemp("formats")
    return {
        name: None if fmt.encode and not HAVE_FFMPEG else fmt.build(d, name)
        for name, fmt in FORMATS.items()
    }


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_decodes_to_mono_float32_at_22050(
    name: str, format_files: dict[str, Path | None]
) -> None:
    path = format_files[name]
    if path is None:
        pytest.skip("ffmpeg is not installed")
    fmt = FORMATS[name]

    info = probe(path)
    assert isinstance(info, AudioInfo)
    assert (info.path, info.backend, info.channels) == (str(path), fmt.backend, fmt.channels)
    assert abs(info.duration - SECONDS) <= fmt.tol

    y = load(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert y.flags.c_contiguous and y.flags.writeable
    assert abs(len(y) / TARGET_SR - SECONDS) <= fmt.tol, f"{len(y) / TARGET_SR} s"
    # The tone keeps its pitch through decoding and resampling (FFT bins are 0.5 Hz here) ...
    assert abs(peak_frequency(y, TARGET_SR) - FREQ) <= 1.0
    # ... and its level: a 0.5 sine has RMS 0.354 (checks int scaling and the downmix).
    middle = y[len(y) // 4 : -len(y) // 4]
    assert rms(middle) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    assert np.abs(y).max() < 0.6


def test_public_constants() -> None:
    assert TARGET_SR == 22050
    assert set(SUPPORTED_EXTENSIONS) == {"mp3", "wav", "au", "flac", "ogg", "m4a", "opus", "aiff", "aif"}


def test_other_target_rate(tmp_path: Path) -> None:
    y = load(write_tone(tmp_path / "t.flac", 1.0, 44100, 1, 1000.0), sr=16000)
    assert len(y) == 16000
    assert abs(peak_frequency(y, 16000) - 1000.0) <= 1.0


def test_resampling_keeps_a_tone_near_the_new_nyquist(tmp_path: Path) -> None:
    """9 kHz at 48 kHz survives resampling to 22050 Hz (Nyquist 11025 Hz) at full level."""
    y = load(write_tone(tmp_path / "hi.wav", 1.0, 48000, 1, 9000.0))
    assert abs(peak_frequency(y, TARGET_SR) - 9000.0) <= 2.0
    assert rms(y[1000:-1000]) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


# --------------------------------------------------------------------------------------------
# Downmix
# --------------------------------------------------------------------------------------------


def stereo_lr(seconds: float, sr: int) -> np.ndarray:
    """Different content per channel: 300 Hz at 0.6 left, 700 Hz at 0.2 right."""
    return make_tone(seconds, sr, 2, [300.0, 700.0]) * np.array([1.2, 0.4], dtype=np.float32)


def test_stereo_downmix_is_the_mean_of_the_channels(tmp_path: Path) -> None:
    x = stereo_lr(1.0, TARGET_SR)
    y = load(write_audio(tmp_path / "lr.wav", x, TARGET_SR, subtype="FLOAT"))
    np.testing.assert_allclose(y, x.mean(axis=1), atol=1e-7)


def test_downmix_then_resample_equals_resampling_the_mean(tmp_path: Path) -> None:
    x = stereo_lr(1.0, 44100)
    y_stereo = load(write_audio(tmp_path / "lr.flac", x, 44100, subtype="PCM_24"))
    y_mono = load(write_audio(tmp_path / "m.flac", x.mean(axis=1), 44100, subtype="PCM_24"))
    np.testing.assert_allclose(y_stereo, y_mono, atol=1e-6)


@needs_ffmpeg
def test_ffmpeg_backend_downmixes_by_the_mean_too(tmp_path: Path) -> None:
    """ffmpeg's own ``-ac 1`` weights channels differently; the ffmpeg path must match ours."""
    wav = write_audio(tmp_path / "lr.wav", stereo_lr(1.0, TARGET_SR), TARGET_SR, subtype="PCM_16")
    m4a = encoded(wav, "m4a", "-c:a", "alac")  # lossless, and only ffmpeg reads it
    assert probe(m4a).backend == "ffmpeg"
    np.testing.assert_allclose(load(m4a), load(wav), atol=1e-6)


# --------------------------------------------------------------------------------------------
# Spans
# --------------------------------------------------------------------------------------------

SPAN_FILES: dict[str, Callable[[Path], Path]] = {
    # White noise is the hardest signal to match after resampling.
    "wav-22k-noise": lambda d: write_audio(d / "n22.wav", noise(6, 22050, 2, 1), 22050,
                                           subtype="FLOAT"),
    "wav-44k-noise": lambda d: write_audio(d / "n44.wav", noise(6, 44100, 2, 2), 44100,
                                           subtype="PCM_16"),
    "flac-48k-tones": lambda d: write_audio(d / "t48.flac", multitone(6, 48000, 2), 48000),
    "ogg-8k-tones": lambda d: write_audio(d / "t8.ogg", multitone(6, 8000), 8000),
    "mp3-44k-tones": lambda d: encoded(write_audio(d / "m.wav", multitone(6, 44100, 2), 44100),
                                       "mp3", "-b:a", "192k"),
    "m4a-aac-48k-tones": lambda d: encoded(write_audio(d / "a.wav", multitone(6, 48000, 2), 48000),
                                           "m4a", "-c:a", "aac", "-b:a", "192k"),
}


@pytest.fixture(scope="module")
def span_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | None]:
    d = tmp_path_factory.mktemp("spans")
    lossy = ("mp3", "m4a")
    return {
        name: None if name.startswith(lossy) and not HAVE_FFMPEG else build(d)
        for name, build in SPAN_FILES.items()
    }


@pytest.mark.parametrize("name", list(SPAN_FILES))
def test_span_is_the_matching_slice_of_the_full_decode(
    name: str, span_files: dict[str, Path | None]
) -> None:
    path = span_files[name]
    if path is None:
        pytest.skip("ffmpeg is not installed")
    full = load(path)
    aac = "aac" in name
    atol = 1e-4 if aac else 1e-6
    for offset, duration in ((0.0, 1.0), (0.5, 2.0), (1.2345, 1.5), (3.01, 2.5)):
        part = load(path, offset=offset, duration=duration)
        a = int(round(offset * TARGET_SR))
        assert len(part) == int(round(duration * TARGET_SR))
        np.testing.assert_allclose(part, full[a : a + len(part)], atol=atol,
                                   err_msg=f"{offset=} {duration=}")
    # No duration: from the offset to the end (less AAC's last, padded frame, which ffmpeg
    # trims a little differently after a seek).
    rest = load(path, offset=2.0)
    a = 2 * TARGET_SR
    assert abs(len(rest) - (len(full) - a)) <= 1
    n = min(len(rest), len(full) - a) - (int(LOSSY_TOL * TARGET_SR) if aac else 0)
    np.testing.assert_allclose(rest[:n], full[a : a + n], atol=atol)


def test_span_past_the_end_is_cut_and_an_offset_past_the_end_is_an_error(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.wav", 3.0, 44100, 2)
    assert len(load(path, offset=2.0, duration=5.0)) == TARGET_SR
    with pytest.raises(AudioDecodeError, match=r"offset 3\.000 s is at or past the end"):
        load(path, offset=3.0, duration=1.0)
    with pytest.raises(AudioDecodeError, match="past the end"):
        load(path, offset=10.0)


@needs_ffmpeg
def test_ffmpeg_span_past_the_end(tmp_path: Path) -> None:
    m4a = encoded(write_tone(tmp_path / "t.wav", 3.0, 44100), "m4a", "-c:a", "aac")
    assert abs(len(load(m4a, offset=2.0, duration=5.0)) / TARGET_SR - 1.0) <= LOSSY_TOL
    with pytest.raises(AudioDecodeError, match="past the end"):
        load(m4a, offset=4.0)


# --------------------------------------------------------------------------------------------
# Long files: bounded memory, and the max_seconds cap
# --------------------------------------------------------------------------------------------


def traced_peak(fn: Callable[[], object]) -> tuple[object, int]:
    """Run fn under tracemalloc; return its result (or exception) and its peak allocation."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        try:
            result: object = fn()
        except Exception as e:  # noqa: BLE001 - handed back to the test
            result = e
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 minutes of 44.1 kHz stereo 16-bit wav (212 MB, sparse on disk) with a 1 kHz tone
    from 1000 s to 1010 s and a 3 kHz tone in the left channel only from 1100 s to 1105 s."""
    path = tmp_path_factory.mktemp("long") / "long.wav"
    return write_sparse_wav(path, 20 * 60, 44100, 2, {
        1000.0: make_tone(10.0, 44100, 1, 1000.0)[:, 0],
        1100.0: make_tone(5.0, 44100, 2, [3000.0, 0.0], amplitude=0.8),
    })


def test_long_file_span_is_read_with_bounded_memory(long_wav: Path) -> None:
    assert long_wav.stat().st_size > 200e6
    info = probe(long_wav)
    assert (info.samplerate, info.channels, info.backend) == (44100, 2, "soundfile")
    assert info.duration == pytest.approx(1200.0)

    y, peak = traced_peak(lambda: load(long_wav, offset=1002.0, duration=6.0))
    assert isinstance(y, np.ndarray) and len(y) == 6 * TARGET_SR
    assert abs(peak_frequency(y, TARGET_SR) - 1000.0) <= 1.0
    assert rms(y) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    # The 6 s span is 1.06 MB as mono float32 at 44.1 kHz, 0.53 MB at 22050 Hz; the whole file
    # would be 212 MB as int16 or 423 MB as float32 stereo. (Measured: about 1.7 MB.)
    assert peak < 6e6, f"peak {peak / 1e6:.1f} MB"

    # Left channel only, averaged with a silent right channel: half the level.
    y = load(long_wav, offset=1100.0, duration=5.0)
    assert rms(y[100:-100]) == pytest.approx(0.8 / np.sqrt(2) / 2, rel=0.01)


@needs_ffmpeg
def test_long_file_span_through_ffmpeg_is_bounded_too(long_wav: Path) -> None:
    """The ffmpeg backend on the same file (forced: a wav normally goes through soundfile)."""
    deadline = time.monotonic() + 30
    result, peak = traced_peak(
        lambda: audio._ffmpeg_read_span(str(long_wav), 1002.0, 6.0, 600.0, TARGET_SR, deadline)
    )
    native, rate, _plan = result  # type: ignore[misc]
    assert rate == 44100
    assert 6 * 44100 <= len(native) <= 7 * 44100  # the span plus its pre- and post-roll
    assert peak < 6e6, f"peak {peak / 1e6:.1f} MB"


def test_whole_long_file_is_refused_without_loading_it(long_wav: Path) -> None:
    err, peak = traced_peak(lambda: load(long_wav))
    assert isinstance(err, AudioDecodeError)
    assert re.search(r"1200\.0 s long, longer than the 600\.0 s limit .*read a span", err.reason)
    assert "long.wav" in str(err)
    assert peak < 1e6
    with pytest.raises(AudioDecodeError, match="longer than"):
        load(long_wav, offset=100.0)  # 1100 s from there: still too long
    assert len(load(long_wav, offset=1195.0)) == 5 * TARGET_SR  # the last 5 s are fine


def test_max_seconds_caps_any_single_read(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.flac", 3.0, 22050)
    with pytest.raises(AudioDecodeError, match=r"span of 700\.0 s is longer than the 600\.0 s"):
        load(path, duration=700.0)
    with pytest.raises(AudioDecodeError, match=r"3\.0 s long, longer than the 2\.0 s.*read a span"):
        load(path, max_seconds=2.0)
    with pytest.raises(AudioDecodeError, match="longer than"):
        load(path, duration=2.5, max_seconds=2.0)
    assert len(load(path, duration=1.5, max_seconds=2.0)) == int(1.5 * TARGET_SR)
    assert len(load(path, offset=1.5, max_seconds=2.0)) == int(1.5 * TARGET_SR)


@needs_ffmpeg
def test_max_seconds_on_the_ffmpeg_backend(tmp_path: Path) -> None:
    m4a = encoded(write_tone(tmp_path / "t.wav", 3.0, 44100), "m4a", "-c:a", "aac")
    with pytest.raises(AudioDecodeError, match=r"longer than the 2\.0 s limit"):
        load(m4a, max_seconds=2.0)
    assert len(load(m4a, duration=1.5, max_seconds=2.0)) == int(1.5 * TARGET_SR)


def test_min_seconds(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "one.wav", 1.0, 44100)
    assert len(load(path, min_seconds=1.0)) == TARGET_SR
    with pytest.raises(AudioDecodeError, match=r"too short: only 1\.000 s of audio, need at le"):
        load(path, min_seconds=2.0)
    with pytest.raises(AudioDecodeError, match=r"too short.*at offset 0\.980 s"):
        load(path, offset=0.98)  # 0.02 s left, fewer than the default 2048 samples


def test_invalid_arguments_are_value_errors(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.wav", 1.0)
    bad = ({"offset": -1.0}, {"duration": -1.0}, {"offset": float("nan")}, {"sr": 0},
           {"max_seconds": 0})
    for kwargs in bad:
        with pytest.raises(ValueError):
            load(path, **kwargs)


# --------------------------------------------------------------------------------------------
# Broken files: AudioDecodeError naming the file and the reason
# --------------------------------------------------------------------------------------------

# name -> (builder(dir) -> path, regex the reason must match, whether probe() raises too)
BROKEN: dict[str, tuple[Callable[[Path], Path], str, bool]] = {}


def broken(name: str, reason: str, *, probe_raises: bool = True):
    """Register a builder of a broken file under ``name``."""
    def register(build: Callable[[Path], Path]) -> Callable[[Path], Path]:
        BROKEN[name] = (build, reason, probe_raises)
        return build
    return register


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def valid_wav(d: Path) -> bytes:
    """3 s of 44.1 kHz stereo 16-bit wav, as bytes (a 44-byte header, then data)."""
    return write_tone(d / "valid.wav", 3.0, 44100, 2, subtype="PCM_16").read_bytes()


def head(data: bytes, fraction: float) -> bytes:
    return data[: int(len(data) * fraction)]


def needs_ffmpeg_here() -> None:
    if not HAVE_FFMPEG:
        pytest.skip("ffmpeg is not installed")


@broken("empty", r"empty \(0 bytes\)")
def _(d: Path) -> Path:
    return write_bytes(d / "empty.mp3", b"")


@broken("text-named-mp3", r"not an audio file \(it looks like a text file\)")
def _(d: Path) -> Path:
    return write_bytes(d / "notes.mp3", b"just some text\n" * 50)


@broken("zip-renamed-mp3", r"not an audio file \(it looks like a ZIP archive\)")
def _(d: Path) -> Path:
    with zipfile.ZipFile(d / "archive.mp3", "w") as z:
        z.writestr("notes.txt", "not audio " * 500)
    return d / "archive.mp3"


@broken("random-bytes-mp3", r"not an audio file")
def _(d: Path) -> Path:
    needs_ffmpeg_here()
    return write_bytes(d / "noise.mp3", np.random.default_rng(7).bytes(50_000))


@broken("truncated-wav", r"truncated: the header declares 3\.00 s of audio but the file holds "
                         r"only 1\.80 s")
def _(d: Path) -> Path:
    return write_bytes(d / "cut.wav", head(valid_wav(d), 0.6))


@broken("truncated-au", r"truncated: the header declares 3\.00 s")
def _(d: Path) -> Path:
    data = write_tone(d / "v.au", 3.0, 8000, subtype="PCM_16").read_bytes()
    return write_bytes(d / "cut.au", head(data, 0.5))


@broken("truncated-flac", r"truncated or corrupt", probe_raises=False)
def _(d: Path) -> Path:
    data = write_audio(d / "v.flac", multitone(3.0, 44100), 44100).read_bytes()
    return write_bytes(d / "cut.flac", head(data, 0.5))


@broken("truncated-ogg", r"truncated or corrupt OGG file")
def _(d: Path) -> Path:
    needs_ffmpeg_here()
    data = write_audio(d / "v.ogg", multitone(3.0, 44100), 44100).read_bytes()
    return write_bytes(d / "cut.ogg", head(data, 0.5))


@broken("wav-header-only", r"truncated: the header promises audio data but the file holds none")
def _(d: Path) -> Path:
    return write_bytes(d / "header.wav", valid_wav(d)[:44])


@broken("wav-zero-channels", r"(?i)channel count is zero")
def _(d: Path) -> Path:
    needs_ffmpeg_here()
    data = bytearray(valid_wav(d))
    data[22:24] = struct.pack("<H", 0)
    return write_bytes(d / "zero-channels.wav", bytes(data))


@broken("wav-zero-rate", r"(?i)sample rate: 0")
def _(d: Path) -> Path:
    needs_ffmpeg_here()
    data = bytearray(valid_wav(d))
    data[24:28] = struct.pack("<I", 0)
    return write_bytes(d / "zero-rate.wav", bytes(data))


@broken("too-short", r"too short: only 0\.050 s of audio, need at least 0\.093 s",
        probe_raises=False)
def _(d: Path) -> Path:
    return write_tone(d / "blip.wav", 0.05, 44100)


@broken("nan-float-wav", r"non-finite samples \(NaN or infinity\)", probe_raises=False)
def _(d: Path) -> Path:
    x = make_tone(1.0, 22050)[:, 0]
    x[5000] = np.nan
    return write_audio(d / "nan.wav", x, 22050, subtype="FLOAT")


@broken("inf-float-wav", r"non-finite samples", probe_raises=False)
def _(d: Path) -> Path:
    x = make_tone(1.0, 22050)[:, 0]
    x[5000] = np.inf
    return write_audio(d / "inf.wav", x, 22050, subtype="FLOAT")


@broken("directory", r"not a regular file \(a directory\)")
def _(d: Path) -> Path:
    (d / "album.mp3").mkdir()
    return d / "album.mp3"


@broken("missing", r"no such file")
def _(d: Path) -> Path:
    return d / "gone.mp3"


@broken("fifo-named-m4a", r"not a regular file \(a named pipe \(FIFO\)\)")
def _(d: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(d / "pipe.m4a")
    return d / "pipe.m4a"


@broken("truncated-mp3", r"truncated: the header declares 3\.00 s of audio but decoding "
                         r"stopped at 1\.", probe_raises=False)
def _(d: Path) -> Path:
    needs_ffmpeg_here()
    mp3 = encoded(write_tone(d / "src.wav", 3.0, 44100, 2), "mp3", "-b:a", "128k")
    return write_bytes(d / "cut.mp3", head(mp3.read_bytes(), 0.5))


@broken("truncated-m4a-index-first", r"truncated: the header declares 3\.\d\d s of audio but "
                                     r"decoding stopped at 1\.", probe_raises=False)
def _(d: Path) -> Path:
    needs_ffmpeg_here()
    src = write_tone(d / "src.wav", 3.0, 44100, 2)
    m4a = encoded(src, "m4a", "-c:a", "aac", "-movflags", "+faststart")
    return write_bytes(d / "cut.m4a", head(m4a.read_bytes(), 0.5))


@broken("truncated-m4a-index-last", r"truncated or incomplete MP4/M4A file")
def _(d: Path) -> Path:
    needs_ffmpeg_here()  # ffmpeg writes the index (moov) last unless told otherwise
    m4a = encoded(write_tone(d / "src.wav", 3.0, 44100, 2), "m4a", "-c:a", "aac")
    return write_bytes(d / "cut.m4a", head(m4a.read_bytes(), 0.5))


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_file_raises_audio_decode_error_with_name_and_reason(
    name: str, tmp_path: Path
) -> None:
    build, reason, probe_raises = BROKEN[name]
    path = build(tmp_path)
    with pytest.raises(AudioDecodeError) as exc:
        load(path, timeout=20)
    assert exc.value.path == str(path)
    assert str(exc.value).startswith(str(path)) and path.name in str(exc.value)
    assert re.search(reason, exc.value.reason), exc.value.reason
    if probe_raises:
        with pytest.raises(AudioDecodeError) as exc:
            probe(path, timeout=20)
        assert exc.value.path == str(path)
        assert re.search(reason, exc.value.reason), exc.value.reason
    else:
        probe(path, timeout=20)  # the header alone is fine; only decoding finds the problem


def test_streamed_wav_with_unknown_data_size_is_not_truncated(tmp_path: Path) -> None:
    """Writers that stream a wav put 0xFFFFFFFF in the size fields; that is not truncation."""
    data = bytearray(valid_wav(tmp_path))
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)  # the data chunk's size
    assert len(load(write_bytes(tmp_path / "streamed.wav", bytes(data)))) == 3 * TARGET_SR


def test_wav_short_by_a_few_frames_is_not_called_truncated(tmp_path: Path) -> None:
    """"Materially" fewer frames: a few missing at the end is not a broken file."""
    y = load(write_bytes(tmp_path / "nearly.wav", valid_wav(tmp_path)[:-40]))
    assert abs(len(y) - 3 * TARGET_SR) <= 10


# --------------------------------------------------------------------------------------------
# Never hang: FIFOs are never opened, ffmpeg is killed at the timeout
# --------------------------------------------------------------------------------------------


def run_bounded(fn: Callable[[], object], limit: float) -> BaseException | None:
    """Run fn in a daemon thread; fail the test instead of hanging it if it takes > limit s."""
    box: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
            box.append(None)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(limit)
    if t.is_alive():
        pytest.fail(f"still blocked after {limit} s")
    return box[0]


def release_fifo(fifo: Path) -> None:
    """If something did open the FIFO for reading, a non-blocking writer releases it."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@needs_fifo
def test_fifo_with_no_writer_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.m4a"
    os.mkfifo(fifo)
    try:
        for fn in (lambda: probe(fifo, timeout=2), lambda: load(fifo, timeout=2)):
            t0 = time.monotonic()
            err = run_bounded(fn, 10)
            assert isinstance(err, AudioDecodeError) and "named pipe" in err.reason
            assert time.monotonic() - t0 < 1.0  # refused by stat, not saved by the timeout
    finally:
        release_fifo(fifo)


@needs_ffmpeg
@needs_fifo
def test_ffmpeg_that_would_hang_is_killed_at_the_timeout(tmp_path: Path) -> None:
    """Given a FIFO with no writer (which a swap after the regular-file check could do), ffprobe
    and ffmpeg block in open() forever; the timeout kills them and says so."""
    fifo = tmp_path / "x.m4a"
    os.mkfifo(fifo)
    calls = {
        "ffprobe": lambda: audio._ffprobe(str(fifo), time.monotonic() + 0.5),
        "ffmpeg": lambda: audio._ffmpeg_decode(str(fifo), 44100, 2, 0.0, 1.0,
                                               time.monotonic() + 0.5),
    }
    try:
        for what, fn in calls.items():
            t0 = time.monotonic()
            err = run_bounded(fn, 10)
            elapsed = time.monotonic() - t0
            assert isinstance(err, AudioDecodeError), f"{what}: {err!r}"
            assert f"{what} timed out" in err.reason and "x.m4a" in str(err)
            assert elapsed < 3.0, f"{what} took {elapsed:.1f} s"
    finally:
        release_fifo(fifo)


@needs_ffmpeg
def test_timeout_parameter_bounds_the_ffmpeg_backend(tmp_path: Path) -> None:
    m4a = encoded(write_tone(tmp_path / "t.wav", 2.0, 44100), "m4a", "-c:a", "aac")
    # No ffprobe starts, let alone finishes, within 1 ms. (Before anything is cached.)
    with pytest.raises(AudioDecodeError, match="timed out"):
        probe(m4a, timeout=1e-3)
    with pytest.raises(AudioDecodeError, match="timed out"):
        load(m4a, timeout=1e-3)
    assert len(load(m4a, timeout=30)) > 0


# --------------------------------------------------------------------------------------------
# ffmpeg invocation details
# --------------------------------------------------------------------------------------------


@needs_ffmpeg
def test_file_names_ffmpeg_could_misread(tmp_path: Path) -> None:
    """A name that looks like a protocol or an option is still just a file."""
    m4a = encoded(write_tone(tmp_path / "t.wav", 1.0, 44100), "m4a", "-c:a", "aac")
    for name in ("http:x.m4a", "-y.m4a", "concat:a|b.m4a", "spaces and ünïcode.m4a"):
        path = tmp_path / name
        shutil.copyfile(m4a, path)
        assert abs(len(load(path)) / TARGET_SR - 1.0) <= LOSSY_TOL, name


@needs_ffmpeg
def test_ffmpeg_results_are_the_same_when_probed_again(tmp_path: Path) -> None:
    """The ffprobe cache is keyed by the file's identity and mtime: a replaced file is re-read."""
    path = tmp_path / "song.m4a"
    shutil.copyfile(encoded(write_tone(tmp_path / "a.wav", 1.0, 44100), "m4a", "-c:a", "aac"), path)
    assert probe(path).duration == pytest.approx(1.0, abs=LOSSY_TOL)
    assert probe(path).duration == pytest.approx(1.0, abs=LOSSY_TOL)
    longer = encoded(write_tone(tmp_path / "b.wav", 3.0, 48000), "m4a", "-c:a", "aac")
    os.replace(longer, path)
    info = probe(path)
    assert (info.samplerate, info.duration) == (48000, pytest.approx(3.0, abs=LOSSY_TOL))


@needs_ffmpeg
def test_binaries_are_found() -> None:
    ffmpeg, ffprobe = audio._find_binaries()
    assert ffmpeg and os.access(ffmpeg, os.X_OK)
    assert ffprobe and os.access(ffprobe, os.X_OK)


# --------------------------------------------------------------------------------------------
# Real music: the GTZAN sample
# --------------------------------------------------------------------------------------------


def test_gtzan_files_decode(gtzan_files: list[Path]) -> None:
    assert gtzan_files
    for path in gtzan_files:
        info = probe(path)
        assert (info.backend, info.samplerate, info.channels) == ("soundfile", 22050, 1)
        assert 29.0 < info.duration < 31.0
        y = load(path)
        assert y.dtype == np.float32 and y.ndim == 1
        assert len(y) == round(info.duration * TARGET_SR)
        assert 0.01 < rms(y) < 0.7 and np.abs(y).max() <= 1.0, path.name
        part = load(path, offset=10.0, duration=6.0)
        np.testing.assert_array_equal(part, y[10 * TARGET_SR : 16 * TARGET_SR])


@needs_ffmpeg
def test_gtzan_music_survives_lossy_encoding(gtzan_files: list[Path], tmp_path: Path) -> None:
    """The same song as mp3 and as m4a decodes to nearly the same, time-aligned samples (the
    encoders' delay is compensated), so a model hears the same music whatever the format."""
    src = gtzan_files[0]
    ref = load(src)
    for ext, args in (("mp3", ("-b:a", "192k")), ("m4a", ("-c:a", "aac", "-b:a", "192k"))):
        y = load(ffmpeg_encode(src, tmp_path / f"song.{ext}", *args))
        assert abs(len(y) - len(ref)) / TARGET_SR <= LOSSY_TOL
        n = min(len(y), len(ref))
        corr = float(np.corrcoef(y[:n], ref[:n])[0, 1])
        assert corr > 0.95, f"{ext}: correlation {corr:.3f}"
