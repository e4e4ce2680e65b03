"""What people know a song by, read from the file itself, and its cover.

The review page names songs by their tags (title, artist, album, year, track and disc, from
:mod:`genre_daemon.tags.read`) and their length (mutagen's stream info), and shows the album's
cover: the folder's ``cover.*``, ``folder.*`` or ``front.*`` picture, else the one embedded in the
file (ID3 ``APIC``, FLAC pictures, MP4 ``covr``, Ogg ``METADATA_BLOCK_PICTURE``).

Reading tags per request would make a long review list slow, so :class:`MediaInfo` keeps what it
read in a bounded in-memory cache keyed by the file's path, size and ns mtime (a tag edit changes
the mtime, so the next request reads the file again), and a folder's cover by the folder's ns
mtime (adding or removing a picture changes it). Files are opened with ``O_NOFOLLOW`` and covers
are served only from regular files inside the library or the review folder: a symlink pointing
out of that tree is never followed.
"""

from __future__ import annotations

import base64
import math
import os
import re
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from genre_daemon.filing.fsutil import inside
from genre_daemon.tags.read import tags_of

__all__ = ["COVER_MAX_BYTES", "COVER_NAMES", "Cover", "MediaInfo", "SongInfo", "album_artist", "image_type",
           "open_regular"]

COVER_MAX_BYTES = 10 * 1024 * 1024
COVER_NAMES = ("cover", "folder", "front")  # in this order of preference
COVER_EXTS = ("jpg", "jpeg", "png", "webp")
_DISC_FOLDER = re.compile(r"^\s*(cd|disc|disk)\s*[-_ ]?\d+\b", re.IGNORECASE)
_FRONT_COVER = 3  # the picture type "Cover (front)" of ID3 APIC and FLAC pictures
_TOLERATED = (Exception,)  # mutagen raises far more than MutagenError on a corrupt file


@dataclass(frozen=True)
class SongInfo:
    """A file's own tags and length; None where it has no such tag. ``picture``: it embeds a
    cover picture the page can serve."""

    title: str | None = None
    artist: str | None = None
    albumartist: str | None = None
    album: str | None = None
    year: int | None = None
    track: int | None = None
    disc: int | None = None
    duration: float | None = None
    picture: bool = False


@dataclass(frozen=True)
class Cover:
    """An image to serve: its bytes, Content-Type and a validator (ETag) plus mtime."""

    data: bytes
    media_type: str
    etag: str
    mtime: float


_EXT_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})


def image_type(head: bytes, claimed: str | None = None) -> str | None:
    """The Content-Type of an image from its first bytes (JPEG, PNG, WebP, GIF); when they are
    none of those, what the name or the tag ``claimed`` if it is one of them (served with
    ``nosniff``, a wrong claim is a broken picture, never a script); else None."""
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    claimed = (claimed or "").strip().lower().replace("image/jpg", "image/jpeg")
    return claimed if claimed in _IMAGE_TYPES else None


def open_regular(path: str | os.PathLike[str]) -> tuple[IO[bytes], os.stat_result]:
    """``path`` opened for reading without following a symlink in its last component, with its
    ``fstat``; OSError when it is a symlink, not a regular file, or cannot be opened."""

    def opener(name: str, flags: int) -> int:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0))

    fh = open(os.fspath(path), "rb", opener=opener)  # noqa: SIM115 (returned to the caller)
    st = os.fstat(fh.fileno())
    if not stat.S_ISREG(st.st_mode):
        fh.close()
        raise IsADirectoryError(f"{path} is not a regular file")
    return fh, st


def album_artist(infos: list[SongInfo]) -> str | None:
    """An album's artist: its album-artist tag, else the artist all its tracks share, else
    "Various artists" when they differ; None when no track names one."""
    for info in infos:
        if info.albumartist:
            return info.albumartist
    artists = {i.artist for i in infos if i.artist}
    if not artists:
        return None
    return artists.pop() if len(artists) == 1 else "Various artists"


class MediaInfo:
    """Tags, lengths and covers of files in the library and the review folder, cached; safe to
    use from any thread. Covers are looked for and served only inside ``library`` and ``review``."""

    def __init__(self, library: Path, review: Path, max_entries: int = 8192) -> None:
        self.roots = (Path(library), Path(review))
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._songs: OrderedDict[tuple[str, int, int], SongInfo] = OrderedDict()
        self._folders: OrderedDict[tuple[str, int], str | None] = OrderedDict()
        self.reads = 0  # files whose tags were read (not served from the cache): for tests, benchmarks

    # --- tags ------------------------------------------------------------------------------------

    def song(self, path: str | os.PathLike[str]) -> SongInfo:
        """The tags and length of the file at ``path`` (an empty SongInfo when it is gone, not a
        regular file, or not audio mutagen reads)."""
        name = os.fspath(path)
        try:
            st = os.lstat(name)
        except OSError:
            return SongInfo()
        key = (name, st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._songs.get(key)
            if hit is not None:
                self._songs.move_to_end(key)
                return hit
        info = _read_song(name)
        with self._lock:
            self.reads += 1
            self._songs[key] = info
            self._songs.move_to_end(key)
            while len(self._songs) > self.max_entries:
                self._songs.popitem(last=False)
        return info

    # --- covers ----------------------------------------------------------------------------------

    def cover_folders(self, path: str | os.PathLike[str], album_folder: str | os.PathLike[str] | None = None) -> list[str]:
        """The folders whose picture is the cover of the file at ``path``: its own folder (and the
        one above when that is a disc folder like ``CD1``), and ``album_folder`` when the file is
        one of its tracks; never the library, the review folder or a genre folder itself (their
        pictures belong to no album)."""
        out: list[str] = []
        parent = os.path.dirname(os.path.abspath(path))
        if self._album_like(parent):
            out.append(parent)
            if _DISC_FOLDER.match(os.path.basename(parent)):
                above = os.path.dirname(parent)
                if self._album_like(above):
                    out.append(above)
        if album_folder is not None:
            folder = os.path.abspath(album_folder)
            if folder not in out and inside(path, folder) and self._album_like(folder):
                out.append(folder)
        return out

    def folder_cover(self, folder: str | os.PathLike[str]) -> str | None:
        """The path of ``folder``'s cover picture (``cover`` before ``folder`` before ``front``;
        jpg, jpeg, png, webp; any case), or None; one that is too large, not a regular file, or
        a symlink leading out of the library and review tree does not count."""
        name = os.fspath(folder)
        try:
            mtime = os.stat(name).st_mtime_ns
        except OSError:
            return None
        key = (name, mtime)
        with self._lock:
            if key in self._folders:
                self._folders.move_to_end(key)
                return self._folders[key]
        found = self._find_cover(name)
        with self._lock:
            self._folders[key] = found
            while len(self._folders) > self.max_entries:
                self._folders.popitem(last=False)
        return found

    def has_cover(self, path: str | os.PathLike[str], album_folder: str | os.PathLike[str] | None = None) -> bool:
        """Whether :meth:`cover` finds a picture for the file at ``path``."""
        if any(self.folder_cover(f) is not None for f in self.cover_folders(path, album_folder)):
            return True
        return self.song(path).picture

    def cover(self, path: str | os.PathLike[str], album_folder: str | os.PathLike[str] | None = None) -> Cover | None:
        """The cover of the file at ``path``: its album folder's picture, else the one embedded in
        the file; None when there is neither."""
        for folder in self.cover_folders(path, album_folder):
            found = self.folder_cover(folder)
            if found is not None:
                got = self._read_folder_picture(found)
                if got is not None:
                    return got
        return _embedded_cover(os.fspath(path))

    def _album_like(self, folder: str) -> bool:
        """Inside the library or the review folder, and neither of them nor a genre folder (a
        direct child of the library)."""
        library, review = (os.path.abspath(r) for r in self.roots)
        if folder in (library, review) or os.path.dirname(folder) == library:
            return False
        return inside(folder, library) or inside(folder, review)

    def _find_cover(self, folder: str) -> str | None:
        candidates: dict[tuple[int, int], str] = {}
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    stem, dot, ext = entry.name.rpartition(".")
                    stem, ext = stem.lower(), ext.lower()
                    if dot and stem in COVER_NAMES and ext in COVER_EXTS:
                        candidates.setdefault((COVER_NAMES.index(stem), COVER_EXTS.index(ext)), entry.path)
        except OSError:
            return None
        for _, path in sorted(candidates.items()):
            if self._servable(path) is not None:
                return path
        return None

    def _servable(self, path: str) -> str | None:
        """The real path of the picture ``path`` when it may be served: a regular file of at
        most :data:`COVER_MAX_BYTES` whose real path lies inside the library or review tree."""
        real = os.path.realpath(path)
        if not any(inside(real, os.path.realpath(root)) for root in self.roots):
            return None
        try:
            st = os.lstat(real)
        except OSError:
            return None
        return real if stat.S_ISREG(st.st_mode) and st.st_size <= COVER_MAX_BYTES else None

    def _read_folder_picture(self, path: str) -> Cover | None:
        real = self._servable(path)
        if real is None:
            return None
        try:
            fh, st = open_regular(real)
        except OSError:
            return None
        with fh:
            data = fh.read(COVER_MAX_BYTES + 1)
        kind = image_type(data[:16], _EXT_TYPES.get(real.rpartition(".")[2].lower()))
        if kind is None or len(data) > COVER_MAX_BYTES:
            return None
        return Cover(data, kind, f'"f{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"', st.st_mtime)


# --- reading a file --------------------------------------------------------------------------------


def _load(path: str) -> tuple[Any, os.stat_result] | None:
    """mutagen's view of the regular file at ``path`` (never through a symlink) and its stat."""
    import mutagen

    try:
        fh, st = open_regular(path)
    except OSError:
        return None
    with fh:
        try:
            return mutagen.File(fh), st
        except _TOLERATED:
            return None


def _read_song(path: str) -> SongInfo:
    loaded = _load(path)
    if loaded is None or loaded[0] is None:
        return SongInfo()
    audio = loaded[0]
    tags = tags_of(audio.tags)
    length = getattr(getattr(audio, "info", None), "length", None)
    duration = round(float(length), 3) if isinstance(length, (int, float)) and math.isfinite(length) \
        and length > 0 else None
    return SongInfo(tags.title, tags.artist, tags.albumartist, tags.album, tags.year, tags.track, tags.disc,
                    duration, _picture_of(audio) is not None)


def _embedded_cover(path: str) -> Cover | None:
    loaded = _load(path)
    if loaded is None or loaded[0] is None:
        return None
    picture = _picture_of(loaded[0])
    if picture is None:
        return None
    st = loaded[1]
    return Cover(picture[0], picture[1], f'"e{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"', st.st_mtime)


def _picture_of(audio: Any) -> tuple[bytes, str] | None:
    """The embedded picture to show (the front cover first, else the first one) with its type,
    from whichever tag kind the file has; None when it has none mutagen can give."""
    found: list[tuple[int, bytes, str]] = []  # (picture type, bytes, the type the tag claims)
    tags = getattr(audio, "tags", None)
    try:
        if tags is not None and hasattr(tags, "getall"):  # ID3 (MP3, and ID3 in WAV/AIFF)
            found += [(int(f.type), bytes(f.data), str(f.mime)) for f in tags.getall("APIC")]
        for pic in getattr(audio, "pictures", None) or ():  # FLAC picture blocks
            found.append((int(pic.type), bytes(pic.data), str(pic.mime)))
        if tags is not None and hasattr(tags, "get") and not hasattr(tags, "getall"):
            for art in tags.get("covr", None) or ():  # MP4
                png = getattr(art, "imageformat", None) == getattr(art, "FORMAT_PNG", 14)
                found.append((_FRONT_COVER, bytes(art), "image/png" if png else "image/jpeg"))
            for text in tags.get("metadata_block_picture", None) or ():  # Ogg Vorbis / Opus
                found.append(_block_picture(text))
    except _TOLERATED:
        return None
    found.sort(key=lambda tp: tp[0] != _FRONT_COVER)  # stable: the front cover first, then file order
    for _, data, claimed in found:
        kind = image_type(data[:16], claimed)
        if kind is not None and len(data) <= COVER_MAX_BYTES:
            return data, kind
    return None


def _block_picture(text: str) -> tuple[int, bytes, str]:
    from mutagen.flac import Picture

    pic = Picture(base64.b64decode(text))
    return int(pic.type), bytes(pic.data), str(pic.mime)
