"""Put a genre into an audio file's own tags, crash-safely, and put the original back on undo.

Every write goes through a copy: the file is copied to a hidden temporary name in its own folder
(``.<name>.genre-daemon-tag.tmp``), mutagen changes the copy, the copy is fsynced and renamed
over the original, then the folder is fsynced. A kill at any moment leaves the original path
holding either the old bytes or the tagged file, never a torn one; at worst a temporary file is
left behind, which :func:`clean_leftovers` recognises by its name and removes.

Only the genre tag changes: ID3 ``TCON`` (a v2.3 tag is saved as v2.3), Vorbis ``GENRE`` (FLAC,
Ogg Vorbis, Opus), MP4 ``\\xa9gen`` (a numeric ``gnre`` atom is dropped). Every other tag and the
audio data stay as they were.

Several genres are one real multi-valued tag: ID3v2.4 ``TCON`` with several texts (NUL-separated),
one repeated ``GENRE`` comment per value, one ``\\xa9gen`` atom holding a data item per value. ID3v2.3
has no multi-valued text: the values are joined with "/" into one text (mutagen's ``v23_sep``
default, and Picard's), unless the file's own frame already holds several NUL-separated texts (as
Mp3tag writes them), whose convention is kept. ``mode`` says how ours meet the file's own genre
(:data:`TAG_MODES`): ``replace`` (ours only), ``fill`` (only a file with no genre; one with a genre
is left untouched), ``append`` (theirs kept, ours added after them unless already there, compared
without case; in a v2.3 text "/" separates values). An ID3v1 tag keeps its bytes (title, comment, track...): only its
genre byte follows, to the genre's number where the name is in the ID3v1 list (compared without
case and punctuation: "hiphop" is Hip-Hop), else it keeps its old number; undo puts its exact
bytes back. The mode bits are kept; the mtime becomes the time of the write
(the content did change, and backup tools compare size and mtime) unless ``keep_mtime=True``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, get_args

import mutagen
from mutagen._vorbis import VCommentDict
from mutagen.id3 import ID3, TCON, ID3FileType
from mutagen.id3._id3v1 import find_id3v1
from mutagen.mp4 import MP4Tags

from genre_daemon.errors import GenreDaemonError
from genre_daemon.tags.read import load_audio

__all__ = ["GenreSnapshot", "TAG_MODES", "TagMode", "TagWriteError", "TEMP_SUFFIX", "clean_leftovers",
           "merge_genres", "restore_genre", "write_genre"]

TagMode = Literal["replace", "fill", "append"]
TAG_MODES: tuple[str, ...] = get_args(TagMode)
V23_SEP = "/"  # ID3v2.3's several values in one text: mutagen's v23_sep default, Picard's join

TEMP_SUFFIX = ".genre-daemon-tag.tmp"
_NAME_MAX = 255  # bytes in one file name on every file system the daemon expects
_ABSENT = "absent"


class _Refused(Exception):
    """Internal: the tags cannot be written, for this reason (raised as TagWriteError with the path)."""


class TagWriteError(GenreDaemonError):
    """A file's tags could not be written; the file is left exactly as it was.

    Names the file and the reason (unsupported format, read-only, corrupt header, ...): the caller
    logs it and places the file anyway.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: cannot write tags: {reason}")


@dataclass(frozen=True)
class GenreSnapshot:
    """The genre tag as it was before :func:`write_genre` changed it: what undo needs to put it back.

    ``format``: "id3", "vorbis" or "mp4"; ``version``: the ID3 version the file had ("2.3", "2.4",
    "1.1" for ID3v1 only), None for the other formats and for a file that had no tag block;
    ``had_tags``: whether the file had a tag block at all; ``values``: the original genre values,
    in their order, None when there was no genre tag; ``written``: the genre values write_genre
    left in the file (one value as a str, the journal's older form; several as a tuple), what undo
    compares the file with; ``id3v1``: the file's ID3v1 tag, its exact bytes, None when it had none;
    ``encoding``: the text encoding of the ID3 genre frame it had (0 Latin-1 ... 3 UTF-8), so undo
    writes the frame back byte for byte (None: no frame, or not ID3; not compared: it is how the
    genre was stored, not what it was).
    """

    format: str
    version: str | None
    had_tags: bool
    values: tuple[str, ...] | None
    written: str | tuple[str, ...] | None = None
    id3v1: bytes | None = None
    encoding: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.written, (list, tuple)):  # one value is kept as a str: one form for one value
            written = tuple(self.written)
            object.__setattr__(self, "written", written[0] if len(written) == 1 else written or None)

    @property
    def written_values(self) -> tuple[str, ...] | None:
        """The genre values the write left in the file, None when unknown (a snapshot without them)."""
        if self.written is None:
            return None
        return (self.written,) if isinstance(self.written, str) else self.written

    @property
    def changed(self) -> bool:
        """Whether the write changed the genre tag (False: the file was left as it was)."""
        return self.written_values != self.values

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the journal); the genre is a list of values or "absent", the
        written genre a str (one value) or a list, the ID3v1 tag hex, left out when there is none."""
        out: dict[str, Any] = {
            "format": self.format,
            "version": self.version,
            "had_tags": self.had_tags,
            "genre": list(self.values) if self.values is not None else _ABSENT,
            "written": list(self.written) if isinstance(self.written, tuple) else self.written,
        }
        if self.id3v1 is not None:
            out["id3v1"] = self.id3v1.hex()
        if self.encoding is not None:
            out["encoding"] = self.encoding
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GenreSnapshot:
        """The snapshot :meth:`to_json` made; ValueError when ``data`` is not one."""
        try:
            fmt, version, had_tags = data["format"], data["version"], data["had_tags"]
            genre, written, v1 = data["genre"], data.get("written"), data.get("id3v1")
            id3v1 = bytes.fromhex(v1) if v1 is not None else None  # older journals have no "id3v1"
            encoding = data.get("encoding")  # nor "encoding"
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a genre snapshot: {data!r}") from exc
        values: tuple[str, ...] | None = None
        if genre != _ABSENT:
            if not isinstance(genre, list) or not all(isinstance(v, str) for v in genre):
                raise ValueError(f"bad genre values in snapshot: {genre!r}")
            values = tuple(genre)
        if isinstance(written, list) and written and all(isinstance(v, str) for v in written):
            written = tuple(written)
        if (not isinstance(fmt, str) or not isinstance(had_tags, bool)
                or not isinstance(version, (str, type(None))) or not isinstance(written, (str, tuple, type(None)))
                or encoding not in (None, 0, 1, 2, 3) or isinstance(encoding, bool)):
            raise ValueError(f"not a genre snapshot: {data!r}")
        return cls(fmt, version, had_tags, values, written, id3v1, encoding)


def write_genre(path: str | os.PathLike[str], genres: str | Sequence[str], *, mode: TagMode | str = "replace",
                keep_mtime: bool = False, before_change: Callable[[GenreSnapshot], None] | None = None,
                earlier: GenreSnapshot | None = None) -> GenreSnapshot:
    """Put ``genres`` (one genre, or several, best first) into the file's genre tag as ``mode``
    says (see the module docstring: replace, fill, append), crash-safely.

    Returns the genre tag's original state for undo (its ``written``: what the file carries now).
    A file whose genre would not change is not rewritten (``fill`` on a file with a genre, a file
    that already carries exactly these). ``before_change`` is given that state once the tagged
    copy is ready, just before it replaces the file (not called when nothing changes): a caller
    that records it there can undo a write that a kill interrupts right after the rename. Raises
    FileNotFoundError when the file is gone, :class:`TagWriteError` when its tags cannot be
    written, ValueError for no genre, an empty one or an unknown mode; whatever ``before_change``
    raises leaves the file as it was. ``earlier``: a write of ours that this one corrects (the
    user's choice over the daemon's); while the file still carries what that write left, ``fill``
    and ``append`` start from the genre the file had before it, so the corrected genre goes.
    """
    ours = _clean_genres(genres)
    if mode not in TAG_MODES:
        raise ValueError(f"not a tag mode: {mode!r} (expected one of {', '.join(TAG_MODES)})")
    snapshot: GenreSnapshot | None = None

    def edit(audio: mutagen.FileType, copy: BinaryIO) -> bool:
        nonlocal snapshot
        had_tags = audio.tags is not None
        tags, family = _tags_for_edit(audio)
        old = _get_genre(tags, family)
        version = _id3_version(tags) if family == "id3" and had_tags else None
        v1 = _id3v1_block(audio, copy)
        base = old
        if earlier is not None and earlier.written_values is not None and old == list(earlier.written_values):
            base = list(earlier.values) if earlier.values else None  # ours corrected: from theirs again
        v23 = family == "id3" and _save_version(tags) == 3
        new = merge_genres(base, ours, mode, sep=V23_SEP if v23 else None)
        if v23 and len(new) > 1 and not (base and len(base) > 1):  # v2.3: one text, unless it had several
            new = [V23_SEP.join(new)]
        snapshot = GenreSnapshot(family, version, had_tags, tuple(old) if old else None, tuple(new), v1,
                                 _genre_encoding(tags, family))
        if old == new:
            return False
        _set_genre(tags, family, new)
        _save(audio, copy, _id3v1_with_genre(v1, new))
        return True

    def ready() -> None:
        if before_change is not None and snapshot is not None:
            before_change(snapshot)

    _rewrite(path, edit, keep_mtime=keep_mtime, before_replace=ready)
    assert snapshot is not None  # _rewrite either calls edit or raises
    return snapshot


def merge_genres(old: Sequence[str] | None, ours: Sequence[str], mode: TagMode | str,
                 *, sep: str | None = None) -> list[str]:
    """The genre values a file gets (pure): ``ours`` in place of ``old`` (replace), ``old`` when it
    holds a genre else ``ours`` (fill), or ``old`` followed by those of ``ours`` it lacks, compared
    without case or surrounding space (append). ``sep``: a separator that also splits an old value
    (ID3v2.3's "/") when comparing."""
    theirs = list(old or [])
    if mode == "replace":
        return list(ours)
    if mode == "fill":
        return theirs if any(v.strip() for v in theirs) else list(ours)
    if mode != "append":
        raise ValueError(f"not a tag mode: {mode!r} (expected one of {', '.join(TAG_MODES)})")
    have = {_same(part) for value in theirs for part in ([value, *value.split(sep)] if sep else [value])}
    added = []
    for genre in ours:
        if _same(genre) not in have:
            have.add(_same(genre))
            added.append(genre)
    return theirs + added


def _same(value: str) -> str:
    """A genre value as compared for duplicates: without case or surrounding space."""
    return value.strip().casefold()


def _clean_genres(genres: str | Sequence[str]) -> list[str]:
    """The genres to write, stripped, duplicates (without case) dropped, in order; ValueError for
    none or a blank or NUL-holding one."""
    listed = [genres] if isinstance(genres, str) else list(genres)
    out: list[str] = []
    for genre in listed:
        if not isinstance(genre, str) or not genre.strip() or "\x00" in genre:
            raise ValueError(f"not a genre: {genre!r}")
        if _same(genre) not in {_same(g) for g in out}:
            out.append(genre.strip())
    if not out:
        raise ValueError("no genre to write")
    return out


def restore_genre(path: str | os.PathLike[str], snapshot: GenreSnapshot, *,
                  only_if_ours: bool = True, keep_mtime: bool = False) -> bool:
    """Put the genre tag back as ``snapshot`` recorded it (removing it when it was absent, and
    removing the whole tag block when the file had none and nothing else is in it now).

    With ``only_if_ours`` (the default) a file whose genre is no longer the one write_genre put
    there is left alone: the user changed it since (a snapshot without ``written`` is always
    restored). Returns True when the file now carries the
    original genre state, False when it was left alone for that reason. Errors as write_genre.
    """
    original = list(snapshot.values) if snapshot.values else None
    restored = True

    def edit(audio: mutagen.FileType, copy: BinaryIO) -> bool:
        nonlocal restored
        current = _get_genre(audio.tags, _family(audio.tags)) if audio.tags is not None else None
        if current == original:
            return False
        if only_if_ours and snapshot.written_values is not None and current != list(snapshot.written_values):
            restored = False
            return False
        v1 = _id3v1_block(audio, copy)
        if v1 is not None and snapshot.id3v1 is not None and v1 == _id3v1_with_genre(snapshot.id3v1, current):
            v1 = snapshot.id3v1  # the ID3v1 tag as write_genre left it: its exact old bytes
        else:
            v1 = _id3v1_with_genre(v1, original)  # gone or changed since: keep it, genre follows
        tags, family = _tags_for_edit(audio)
        _set_genre(tags, family, original, snapshot.encoding)
        if not snapshot.had_tags and len(tags) == 0:
            copy.seek(0)
            audio.delete(copy)  # the file had no tag block: leave none behind
            _append(copy, v1)
        else:
            _save(audio, copy, v1)
        return True

    _rewrite(path, edit, keep_mtime=keep_mtime)
    return restored


def clean_leftovers(folder: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """Remove the temporary files killed tag writes left in ``folder`` (and below); returns them.

    Cheap: one directory listing per folder, nothing is opened. Call it at start, before any
    write: a write still running would lose its temporary file and fail cleanly.
    """
    removed: list[Path] = []
    folders = [Path(folder)]
    while folders:
        current = folders.pop()
        try:
            entries = list(os.scandir(current))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    folders.append(Path(entry.path))
            elif is_leftover(entry.name) and entry.is_file(follow_symlinks=False):
                with suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return sorted(removed)


def is_leftover(name: str) -> bool:
    """Whether a file name is one of this module's temporary files."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def temp_path(target: Path) -> Path:
    """The temporary file a write of ``target`` uses: hidden, next to it, named after it
    (shortened with a hash when the name would not fit in a file name)."""
    name = os.fsencode(target.name)
    room = _NAME_MAX - 1 - len(TEMP_SUFFIX)
    if len(name) > room:
        digest = hashlib.sha1(name).hexdigest()[:12].encode()
        name = name[: room - len(digest) - 1] + b"~" + digest
    return target.with_name("." + os.fsdecode(name) + TEMP_SUFFIX)


def _rewrite(path: str | os.PathLike[str], edit: Callable[[mutagen.FileType, BinaryIO], bool], *,
             keep_mtime: bool, before_replace: Callable[[], None] = lambda: None) -> None:
    """Copy the file, let ``edit`` change the copy with mutagen (it returns False to change
    nothing), fsync the copy, call ``before_replace`` and rename the copy over the file, then
    fsync the folder. Everything goes
    through one handle on the folder and one on the copy, so a folder renamed meanwhile does not
    matter. Symlinks are followed: the file they point to is rewritten and the link stays."""
    target = Path(os.path.realpath(path))
    try:
        before = os.stat(target)
    except FileNotFoundError:
        raise
    except OSError as exc:  # e.g. a folder we may not search
        raise TagWriteError(path, exc.strerror or str(exc)) from exc
    if not stat.S_ISREG(before.st_mode):
        raise TagWriteError(path, "not a regular file")
    if not before.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise TagWriteError(path, "the file is read-only")
    kind, options = _probe(path, target)
    name, tmp = target.name, temp_path(target).name
    try:
        folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise TagWriteError(path, f"cannot open its folder: {exc.strerror or exc}") from exc
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=folder)
    except OSError as exc:
        os.close(folder)
        if isinstance(exc, FileExistsError):  # not ours: leave it
            raise TagWriteError(path, f"{tmp} exists: another tag write is under way, or a killed one "
                                      "left it behind (clean_leftovers removes it)") from None
        raise TagWriteError(path, f"cannot create a temporary file next to it: {exc.strerror or exc}") from exc
    replaced = False
    try:
        with open(fd, "r+b") as copy:
            src = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder)
            with open(src, "rb") as original:
                shutil.copyfileobj(original, copy, 1 << 20)
            copy.seek(0)
            try:
                changed = edit(kind(copy, **options), copy)
            except _Refused as exc:
                raise TagWriteError(path, str(exc)) from None
            except Exception as exc:  # mutagen: MutagenError and, on corrupt data, more
                raise TagWriteError(path, f"mutagen could not rewrite its tags: {exc}") from exc
            if not changed:
                return
            copy.flush()
            os.fchmod(copy.fileno(), stat.S_IMODE(before.st_mode))
            _chown_like(copy.fileno(), before)
            if keep_mtime:
                os.utime(copy.fileno(), ns=(before.st_atime_ns, before.st_mtime_ns))
            os.fsync(copy.fileno())
        now = os.stat(name, dir_fd=folder)
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns):
            raise TagWriteError(path, "the file changed while its tags were being written; it was left as it is")
        before_replace()
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        replaced = True
        os.fsync(folder)
    except OSError as exc:
        if replaced:  # the new file is in place; only the folder's fsync failed
            raise
        raise TagWriteError(path, exc.strerror or str(exc)) from exc
    finally:
        if not replaced:
            with suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
        os.close(folder)


def _probe(path: str | os.PathLike[str], target: Path) -> tuple[type[mutagen.FileType], dict[str, Any]]:
    """The mutagen class that reads ``target`` and the load options to edit it with.

    ID3 tags are loaded untranslated and brought up to their own version (v2.3 stays v2.3 with
    its v2.3-only frames) rather than mutagen's default in-memory upgrade to v2.4."""
    try:
        audio = load_audio(target)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise TagWriteError(path, exc.strerror or str(exc)) from exc
    if audio is None:
        raise TagWriteError(path, "not an audio format mutagen can read (unknown type or corrupt header)")
    options: dict[str, Any] = {"translate": False} if isinstance(audio.tags, ID3) else {}
    try:  # an unsupported format fails here, before any copy (add_tags only builds an object)
        _tags_for_edit(audio)
    except _Refused as exc:
        raise TagWriteError(path, str(exc)) from None
    return type(audio), options


def _family(tags: object) -> str:
    """Which genre tag this kind of tag block has: "id3", "vorbis" or "mp4"."""
    if isinstance(tags, ID3):
        return "id3"
    if isinstance(tags, VCommentDict):
        return "vorbis"
    if isinstance(tags, MP4Tags):
        return "mp4"
    raise _Refused(f"{type(tags).__name__} tags are not supported (only ID3, Vorbis comments, MP4)")


def _tags_for_edit(audio: mutagen.FileType) -> tuple[Any, str]:
    """The file's tag block, added when it has none, ready to edit, and its family."""
    if audio.tags is None:
        try:
            audio.add_tags()
        except (NotImplementedError, mutagen.MutagenError) as exc:
            raise _Refused(f"{type(audio).__name__} files cannot carry tags") from exc
    tags: Any = audio.tags
    family = _family(tags)
    if family == "id3":  # loaded untranslated: bring the frames to the version they are saved as
        if _save_version(tags) == 3:
            tags.update_to_v23()
        else:
            tags.update_to_v24()
    return tags, family


def _get_genre(tags: Any, family: str) -> list[str] | None:
    """The genre values as stored (ID3 text as is, e.g. "(17)"), None when there are none."""
    if family == "id3":
        frame = tags.get("TCON")
        values = [str(v) for v in frame.text] if frame is not None else []
    elif family == "vorbis":
        values = [v for k, v in tags if k.lower() == "genre"]
    else:
        values = list(tags.get("\xa9gen", []))
    return values or None


def _set_genre(tags: Any, family: str, values: list[str] | None, encoding: int | None = None) -> None:
    """Replace every genre value with ``values`` (None: no genre tag at all); an ID3 frame in
    ``encoding`` where given and its version has it, else UTF-16 where v2.3 allows nothing
    better, else UTF-8."""
    if family == "id3":
        tags.delall("TCON")
        v23 = _save_version(tags) == 3
        if encoding is None or (v23 and encoding > 1):
            encoding = 1 if v23 else 3
        if values:
            tags.add(TCON(encoding=encoding, text=values))
    elif family == "vorbis":
        _set_vorbis_genre(tags, values or [])
    else:
        if values:
            tags["\xa9gen"] = values
        else:
            tags.pop("\xa9gen", None)
        # mutagen reads a valid numeric 'gnre' as '\xa9gen' (so it is not written back); one it
        # could not read is kept aside and would be written back: drop it, players prefer it.
        failed = getattr(tags, "_failed_atoms", None)
        if isinstance(failed, dict):
            failed.pop("gnre", None)


def _genre_encoding(tags: Any, family: str) -> int | None:
    """The text encoding of the ID3 genre frame, None without one (or for other formats)."""
    frame = tags.get("TCON") if family == "id3" else None
    return int(frame.encoding) if frame is not None else None


def _set_vorbis_genre(tags: VCommentDict, values: list[str]) -> None:
    """Put ``values`` where the first genre comment was (keeping its key's spelling), drop the
    other genre comments; append "GENRE" comments when there were none. Other comments keep
    their order."""
    items = list(tags)
    spots = [i for i, (key, _) in enumerate(items) if key.lower() == "genre"]
    key = items[spots[0]][0] if spots else "GENRE"
    at = spots[0] if spots else len(items)
    kept = [item for i, item in enumerate(items) if i not in spots]
    at -= sum(1 for i in spots if i < at)
    kept[at:at] = [(key, value) for value in values]
    del tags[:]
    tags.extend(kept)


def _id3_version(tags: ID3) -> str:
    major, minor = tags.version[:2]
    return f"{major}.{minor}"


def _save_version(tags: ID3) -> int:
    """3 for a tag that was v2.2 or v2.3 (v2.2 cannot be written, v2.3 is its nearest), else 4
    (v2.4 also for a new tag and for an ID3v1-only file)."""
    return 3 if (2, 2) <= tuple(tags.version[:2]) <= (2, 3) else 4


def _save(audio: mutagen.FileType, copy: BinaryIO, id3v1: bytes | None = None) -> None:
    """Save the edited tags into ``copy`` in their own format (ID3 in its version, several values
    of a v2.3 frame separated by NUL as they were read), ending with the ID3v1 tag ``id3v1``
    (exact bytes; none when None) where the format has one: mutagen would rebuild it from the
    v2 frames, blanking its comment and any field the v2 tag lacks."""
    copy.seek(0)
    if isinstance(audio, ID3FileType) and isinstance(audio.tags, ID3):
        audio.save(copy, v1=0, v2_version=_save_version(audio.tags), v23_sep=None)
        _append(copy, id3v1)
    elif isinstance(audio.tags, ID3):  # AIFF, WAVE: ID3 in a chunk, no ID3v1
        audio.save(copy, v2_version=_save_version(audio.tags), v23_sep=None)
    else:
        audio.save(copy)


def _append(copy: BinaryIO, block: bytes | None) -> None:
    """Put ``block`` (an ID3v1 tag) at the end of ``copy``, if there is one."""
    if block:
        copy.seek(0, os.SEEK_END)
        copy.write(block)


def _id3v1_block(audio: mutagen.FileType, copy: BinaryIO) -> bytes | None:
    """The ID3v1 tag at the end of ``copy``, its exact bytes (None without one, and for formats
    that have none)."""
    if not isinstance(audio, ID3FileType):
        return None
    copy.seek(0)
    tag, offset = find_id3v1(copy)
    if tag is None or offset >= 0:
        return None
    copy.seek(offset, os.SEEK_END)
    return copy.read()


def _id3v1_with_genre(block: bytes | None, values: list[str] | None) -> bytes | None:
    """``block`` with its genre byte set to the number of the first genre in ``values``, where
    the ID3v1 list has that name; otherwise (no genre, a name the list lacks, a short tag)
    unchanged."""
    if block is None or len(block) != 128 or not values:
        return block
    number = _id3v1_number(values[0])
    return block if number is None else block[:127] + bytes([number])


def _id3v1_number(genre: str) -> int | None:
    """The ID3v1 genre number of ``genre`` ("Jazz", "jazz", "hiphop", "(17)"), None when the
    list does not have it."""
    names = TCON(encoding=3, text=[genre]).genres  # "(17)" and "17" read as their names
    key = _fold(names[0] if names else genre)
    return next((i for i, name in enumerate(TCON.GENRES) if _fold(name) == key and i < 255), None)


def _fold(name: str) -> str:
    """A genre name compared without case, spaces or punctuation."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def _chown_like(fd: int, like: os.stat_result) -> None:
    """Give the copy the original's owner and group where we may (root, or a group we are in)."""
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) == (like.st_uid, like.st_gid):
        return
    with suppress(PermissionError):
        os.fchown(fd, like.st_uid, like.st_gid)
        return
    with suppress(PermissionError):
        os.fchown(fd, -1, like.st_gid)
