"""Real tagged files for the tag tests, and the outside views used to check them.

Files are encoded once a session by the real ffmpeg with ffmpeg's own ``-metadata`` tags and
copied into each test's folder. Checks read the result three ways, none of them the code under
test: mutagen's raw tag objects, ffprobe's tags, and the decoded PCM (ffmpeg to s16le, hashed).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import mutagen
import numpy as np
import pytest
from mutagen.id3 import ID3, TCON
from mutagen.mp4 import MP4Tags

from conftest import FFMPEG, FFPROBE, PROJECT_ROOT, ffmpeg_encode, write_audio, write_tone

# What ffmpeg is asked to write, and what read_tags must give back for it.
METADATA: dict[str, str] = {
    "artist": "Björk Guðmundsdóttir",
    "album_artist": "Various Ärtists",
    "album": "Ünicode Album",
    "title": "Привет мир",
    "track": "3/12",
    "disc": "1/2",
    "date": "1999",
    "genre": "Rock",
}
# Dates, tracks and discs in their other forms.
DATED: dict[str, str] = {**METADATA, "date": "1999-05-01", "track": "07", "disc": "2"}
EXPECTED = {
    "artist": "Björk Guðmundsdóttir",
    "albumartist": "Various Ärtists",
    "album": "Ünicode Album",
    "title": "Привет мир",
    "track": 3,
    "disc": 1,
    "year": 1999,
    "genre": "Rock",
}

# kind -> (extension, ffmpeg output options)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mp3": (".mp3", ("-c:a", "libmp3lame", "-b:a", "128k")),
    "mp3-v23": (".mp3", ("-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3")),
    "flac": (".flac", ("-c:a", "flac")),
    "ogg": (".ogg", ("-c:a", "libvorbis")),
    "opus": (".opus", ("-c:a", "libopus", "-b:a", "64k")),
    "m4a": (".m4a", ("-c:a", "aac", "-b:a", "128k")),
    "aiff": (".aiff", ("-c:a", "pcm_s16be", "-write_id3v2", "1")),
}
UNTAGGED = ("-map_metadata", "-1", "-fflags", "+bitexact")  # ffmpeg options for a file without tags
UNTAGGED_MP3 = (*UNTAGGED, "-id3v2_version", "0")
FFMPEG_KINDS = ["mp3", "mp3-v23", "flac", "ogg", "opus", "m4a"]  # the formats every test covers
GENRES = TCON.GENRES  # the ID3v1 genre list
GENRE_KEYS = {"TCON", "genre", "\xa9gen", "gnre"}


class Sources:
    """Encodes a tagged file once per (kind, metadata, extra options) and hands out copies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tone = write_tone(root / "tone.wav", seconds=2.0, sr=44100, channels=2, freq=(440.0, 660.0))
        self._made: dict[tuple, Path] = {}
        self._probed: dict[tuple, dict[str, str]] = {}

    def path(self, kind: str, metadata: Mapping[str, str] | None = None, extra: tuple[str, ...] = (),
             source: Path | None = None) -> Path:
        metadata = METADATA if metadata is None else metadata
        key = (kind, tuple(sorted(metadata.items())), extra, source)
        if key not in self._made:
            ext, options = KINDS[kind]
            tags = [arg for name, value in metadata.items() for arg in ("-metadata", f"{name}={value}")]
            dst = self.root / f"src{len(self._made)}{ext}"
            self._made[key] = ffmpeg_encode(source or self.tone, dst, *options, *tags, *extra)
        return self._made[key]

    def copy(self, kind: str, folder: Path, name: str | None = None, **kw) -> Path:
        src = self.path(kind, **kw)
        dst = folder / (name or f"song{src.suffix}")
        shutil.copyfile(src, dst)
        return dst

    def probe(self, kind: str) -> dict[str, str]:
        """ffprobe's tags of the default source of ``kind`` (asked once: ffprobe is slow to start)."""
        key = ("probe", kind)
        if key not in self._probed:
            self._probed[key] = ffprobe_tags(self.path(kind))
        return dict(self._probed[key])

    def gnre_m4a(self) -> Path:
        """An m4a whose genre is a numeric ID3v1-style ``gnre`` atom (Rock), not ``\xa9gen`` text:
        ffmpeg writes a two-letter ``\xa9gen``, patched in place (same sizes) into a ``gnre``."""
        path = self.root / "gnre.m4a"
        if not path.exists():
            data = self.path("m4a", metadata={**METADATA, "genre": "XX"}).read_bytes()
            text_atom = struct.pack(">I4sI4sII", 26, b"\xa9gen", 18, b"data", 1, 0) + b"XX"
            assert data.count(text_atom) == 1
            number = GENRES.index("Rock") + 1  # gnre counts from 1
            patched = data.replace(text_atom, struct.pack(">I4sI4sIIH", 26, b"gnre", 18, b"data", 0, 0, number))
            path.write_bytes(patched)
            assert ffprobe_tags(path)["genre"] == "Rock"
        return path


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    if FFMPEG is None or FFPROBE is None:
        pytest.skip("ffmpeg/ffprobe is not installed")
    return Sources(tmp_path_factory.mktemp("tag-sources"))


@pytest.fixture
def tagged(sources: Sources, tmp_path: Path) -> Callable[..., Path]:
    """``tagged(kind, name=None, metadata=None, extra=())``: a fresh tagged file in tmp_path."""
    return lambda kind, **kw: sources.copy(kind, tmp_path, **kw)


def ffprobe_tags(path: Path) -> dict[str, str]:
    """ffprobe's tags, keys lowercased: the container's (format) tags, plus the first audio
    stream's (Ogg and Opus keep their Vorbis comments there)."""
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_format", "-show_streams", "-select_streams", "a:0",
         "-print_format", "json", str(path)],
        capture_output=True, check=True, timeout=60,
    ).stdout
    info = json.loads(out)
    tags = {k.lower(): v for k, v in info["format"].get("tags", {}).items()}
    for stream in info.get("streams", []):
        tags.update({k.lower(): v for k, v in stream.get("tags", {}).items()})
    return tags


def pcm_digests(*paths: Path) -> list[str]:
    """sha256 of each file's audio decoded by ffmpeg to 16-bit PCM (one ffmpeg run for all):
    equal before and after means the audio data was not touched."""
    with tempfile.TemporaryDirectory() as out_dir:
        cmd = [FFMPEG, "-nostdin", "-v", "error"]
        for path in paths:
            cmd += ["-i", str(path)]
        outs = [Path(out_dir) / f"{i}.pcm" for i in range(len(paths))]
        for i, out in enumerate(outs):
            cmd += ["-map", f"{i}:a:0", "-f", "s16le", str(out)]
        subprocess.run(cmd, capture_output=True, check=True, timeout=120)
        digests = []
        for path, out in zip(paths, outs):
            pcm = out.read_bytes()
            assert len(pcm) > 44100, f"{path} decoded to almost nothing"
            digests.append(hashlib.sha256(pcm).hexdigest())
        return digests


def raw_tags(path: Path) -> dict[str, object]:
    """Every tag as mutagen stores it (ID3 frames untranslated, in the file's own version;
    Vorbis comments in order), as comparable values."""
    audio = mutagen.File(path)
    assert audio is not None, f"mutagen cannot read {path}"
    if isinstance(audio.tags, ID3):
        tags = type(audio)(path, translate=False).tags
        return {"version": tags.version, **{key: repr(frame) for key, frame in tags.items()}}
    if isinstance(audio.tags, MP4Tags):
        return {key: repr(value) for key, value in audio.tags.items()}
    if audio.tags is None:
        return {}
    return {"comments": [(key.lower(), value) for key, value in audio.tags]}


def genre_values(path: Path) -> list[str] | None:
    """The genre values mutagen reads from the file, None without a genre tag."""
    tags = mutagen.File(path).tags
    if tags is None:
        return None
    if isinstance(tags, ID3):
        frame = tags.get("TCON")
        return list(frame.text) if frame is not None else None
    if isinstance(tags, MP4Tags):
        return list(tags["\xa9gen"]) if "\xa9gen" in tags else None
    return list(tags["genre"]) if "genre" in tags else None


def without_genre(tags: Mapping[str, object]) -> dict[str, object]:
    """``raw_tags`` or ``ffprobe_tags`` less the genre tag."""
    out = {k: v for k, v in tags.items() if k not in GENRE_KEYS}
    if "comments" in out:
        out["comments"] = [(k, v) for k, v in out["comments"] if k != "genre"]
    return out


def make_noise_flac(folder: Path, seconds: float, metadata: Mapping[str, str] = METADATA) -> Path:
    """A FLAC of white noise (it does not compress: about 3.5 MB for 20 s of stereo)."""
    noise = np.random.default_rng(7).uniform(-0.5, 0.5, size=(int(seconds * 44100), 2)).astype(np.float32)
    wav = write_audio(folder / "noise.wav", noise, 44100, subtype="PCM_16")
    tags = [arg for name, value in metadata.items() for arg in ("-metadata", f"{name}={value}")]
    flac = ffmpeg_encode(wav, folder / "noise.flac", "-c:a", "flac", *tags)
    wav.unlink()
    return flac


@pytest.fixture
def gnre_m4a(sources: Sources, tmp_path: Path) -> Path:
    """A fresh copy of :meth:`Sources.gnre_m4a` in tmp_path."""
    return Path(shutil.copyfile(sources.gnre_m4a(), tmp_path / "gnre.m4a"))


Staged = dict[str, tuple[Path, dict[str, object], dict[str, str], str]]


def drop_every_format(tree, sources: Sources, tmp_path: Path) -> Staged:
    """Start ``tree``'s daemon, drop one 6 s file of each of FFMPEG_KINDS (genre Rock and ffmpeg's
    other tags) into its inbox and wait until all are placed. Returns, per kind, the source and
    its mutagen tags, ffprobe tags and PCM digest as they were before the daemon saw it."""
    from support import wait_for

    long_tone = write_tone(tmp_path / "long.wav", seconds=6.0, sr=44100, channels=2, freq=(330.0, 550.0))
    staged: Staged = {}
    for kind in FFMPEG_KINDS:
        src = sources.path(kind, source=long_tone)
        staged[kind] = (src, raw_tags(src), ffprobe_tags(src), pcm_digests(src)[0])
    tree.start()
    for kind, (src, *_rest) in staged.items():
        (tree.inbox / f"{kind}{src.suffix}").write_bytes(src.read_bytes())
    wait_for(lambda: len(tree.placed()) == len(staged) and not tree.in_inbox(), 120, "every file to be placed")
    return staged


def killed_child_placed(tree, src: Path, script: str, *args: str) -> tuple[Path, Path]:
    """A copy of ``src`` in ``tree``'s inbox, taken to ``library/jazz/`` by ``script``: a child
    that does the daemon's steps with the real journal, mover and tagging code and SIGKILLs
    itself (argv: the journal, the inbox file, its destination, then ``args``). Returns the
    inbox file's path and the destination."""
    import signal
    import sys

    inbox_file = tree.inbox / f"song{src.suffix}"
    inbox_file.write_bytes(src.read_bytes())
    dest = tree.library / "jazz" / inbox_file.name
    dest.parent.mkdir(parents=True)
    tree.state.mkdir(parents=True, exist_ok=True)
    child = subprocess.run([sys.executable, "-c", script, str(tree.state / "journal.sqlite3"), str(inbox_file),
                            str(dest), *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    return inbox_file, dest
