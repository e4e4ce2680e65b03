"""Shared test helpers: real audio files made on the fly, and the GTZAN sample when present.

Plain functions (``make_tone``, ``write_tone``, ``write_audio``, ``ffmpeg_encode``,
``write_sparse_wav``) can be imported by any test module (``from conftest import write_tone``);
the fixtures wrap them for tests that prefer injection (``audio_factory``, ``ffmpeg_bin``,
``gtzan_dir``, ``gtzan_files``). Nothing here mocks a decoder: files are written with
soundfile/libsndfile or encoded by the real ffmpeg binary.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The shared GTZAN sample: <genre>/<name>.flac, ../shared/data/gtzan relative to the project.
GTZAN_DIR = (PROJECT_ROOT / ".." / "shared" / "data" / "gtzan").resolve()
FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")


def make_tone(
    seconds: float,
    sr: int,
    channels: int = 1,
    freq: float | Sequence[float] = 440.0,
    *,
    amplitude: float = 0.5,
) -> np.ndarray:
    """A sine of ``freq`` Hz as float32 of shape (frames, channels).

    ``freq`` may be one frequency for every channel or one per channel (for downmix tests).
    """
    freqs = [float(freq)] * channels if np.isscalar(freq) else [float(f) for f in freq]
    if len(freqs) != channels:
        raise ValueError(f"{len(freqs)} frequencies for {channels} channels")
    t = np.arange(int(round(seconds * sr)), dtype=np.float64) / sr
    waves = [amplitude * np.sin(2 * np.pi * f * t) for f in freqs]
    return np.stack(waves, axis=1).astype(np.float32)


def write_audio(
    path: str | os.PathLike[str],
    data: np.ndarray,
    sr: int,
    *,
    subtype: str | None = None,
    format: str | None = None,
) -> Path:
    """Write samples with soundfile (format from the extension unless given); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype, format=format)
    return path


def write_tone(
    path: str | os.PathLike[str],
    seconds: float = 2.0,
    sr: int = 22050,
    channels: int = 1,
    freq: float | Sequence[float] = 440.0,
    *,
    amplitude: float = 0.5,
    subtype: str | None = None,
    format: str | None = None,
) -> Path:
    """Write a sine tone file (wav/flac/ogg/au/... by extension); returns the path."""
    data = make_tone(seconds, sr, channels, freq, amplitude=amplitude)
    return write_audio(path, data, sr, subtype=subtype, format=format)


def ffmpeg_encode(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], *args: str, timeout: float = 120.0
) -> Path:
    """Encode ``src`` to ``dst`` with the real ffmpeg binary; ``args`` are output options,
    e.g. ``"-c:a", "aac", "-b:a", "128k"`` (by default ffmpeg picks the codec by extension).

    Skips the calling test when ffmpeg is not installed.
    """
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src), *args, str(dst)]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}\n{stderr}")
    return dst


def write_sparse_wav(
    path: str | os.PathLike[str],
    seconds: float,
    sr: int = 44100,
    channels: int = 2,
    inserts: Mapping[float, np.ndarray] | None = None,
) -> Path:
    """A long 16-bit PCM wav that costs almost nothing to make: silence as a sparse file.

    ``inserts`` maps a time in seconds to float samples, shape (frames,) or (frames, channels),
    written at that point, so a long file can still carry a recognisable signal.
    """
    path = Path(path)
    frames = int(round(seconds * sr))
    block_align = 2 * channels
    data_bytes = frames * block_align
    if data_bytes + 36 > 0xFFFFFFFF:
        raise ValueError("too long for a RIFF wav")
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * block_align, block_align, 16)
    header += b"fmt " + fmt
    header += b"data" + struct.pack("<I", data_bytes)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + data_bytes)
        for at, samples in (inserts or {}).items():
            samples = np.asarray(samples, dtype=np.float64)
            if samples.ndim == 1:
                samples = np.repeat(samples[:, None], channels, axis=1)
            pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
            f.seek(len(header) + int(round(at * sr)) * block_align)
            f.write(pcm.tobytes())
    return path


class AudioFactory:
    """The helpers above, bound to one test's ``tmp_path`` (file names are relative to it)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name

    def tone(self, name: str, seconds: float = 2.0, sr: int = 22050, channels: int = 1,
             freq: float | Sequence[float] = 440.0, **kw) -> Path:
        return write_tone(self.root / name, seconds, sr, channels, freq, **kw)

    def audio(self, name: str, data: np.ndarray, sr: int, **kw) -> Path:
        return write_audio(self.root / name, data, sr, **kw)

    def encode(self, src: Path, name: str, *args: str) -> Path:
        return ffmpeg_encode(src, self.root / name, *args)

    def sparse_wav(self, name: str, seconds: float, sr: int = 44100, channels: int = 2,
                   inserts: Mapping[float, np.ndarray] | None = None) -> Path:
        return write_sparse_wav(self.root / name, seconds, sr, channels, inserts)


@pytest.fixture
def audio_factory(tmp_path: Path) -> AudioFactory:
    """Make audio files in this test's tmp_path: tone / audio / encode / sparse_wav."""
    return AudioFactory(tmp_path)


@pytest.fixture
def ffmpeg_bin() -> str:
    """Path of the ffmpeg binary; skips the test when it is not installed."""
    if FFMPEG is None or FFPROBE is None:
        pytest.skip("ffmpeg/ffprobe is not installed")
    return FFMPEG


@pytest.fixture(scope="session")
def gtzan_dir() -> Path:
    """The GTZAN sample (``<genre>/*.flac``); skips when it is absent."""
    if not GTZAN_DIR.is_dir():
        pytest.skip(f"GTZAN sample not found at {GTZAN_DIR}")
    if not any(GTZAN_DIR.glob("*/*.flac")):
        pytest.skip(f"GTZAN sample at {GTZAN_DIR} holds no <genre>/*.flac files")
    return GTZAN_DIR


@pytest.fixture(scope="session")
def gtzan_files(gtzan_dir: Path) -> list[Path]:
    """One GTZAN file per genre (the first by name), sorted by genre."""
    files = []
    for genre in sorted(p for p in gtzan_dir.iterdir() if p.is_dir()):
        flacs = sorted(genre.glob("*.flac"))
        if flacs:
            files.append(flacs[0])
    return files


@pytest.fixture
def shm(tmp_path: Path) -> Iterator[Path]:
    """A folder on another filesystem than tmp_path (/dev/shm), for moves that copy."""
    try:
        folder = Path(tempfile.mkdtemp(dir="/dev/shm"))
    except OSError:
        pytest.skip("/dev/shm is missing or read-only")
    if os.stat(folder).st_dev == os.stat(tmp_path).st_dev:
        shutil.rmtree(folder)
        pytest.skip("/dev/shm is on the same filesystem as tmp_path")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
