"""What the journal hands out and how it is stored: the row dataclasses (a file, a move, a
placement), a file's identity, its content hash, and the conversions between them and the stored
columns.

**Identity.** A file is (device, inode, size, mtime in ns), read with ``lstat``, so a changed or
replaced file is new work and an unchanged one is not redone. Identity alone cannot recognise a
*copy* (new inode, same content); :func:`content_hash` is what tells one apart (see
:meth:`Journal.observe <genre_daemon.filing.journal.files.FileStates.observe>`).

Paths are stored as the file system's bytes (``os.fsencode``), so any name a file can have,
including undecodable bytes and newlines, round-trips exactly. The underscore helpers are the
journal package's own: its other modules use them, nothing outside it does.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from genre_daemon.filing.journal.states import State


@dataclass(frozen=True)
class FileIdentity:
    """What makes a file the same file: device, inode, size and modification time."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileIdentity:
        """The identity of ``path`` itself (``lstat``: a symlink is never followed)."""
        st = os.lstat(path)
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @classmethod
    def of_or_none(cls, path: str | os.PathLike[str]) -> FileIdentity | None:
        """:meth:`of`, or None when the file cannot be looked at (gone, say)."""
        try:
            return cls.of(path)
        except OSError:
            return None


@dataclass(frozen=True)
class FileRow:
    """One file as the journal knows it. While ``classifying`` with a ``destination``, the
    prediction fields describe the move planned by :meth:`Journal.begin_move`."""

    id: int
    path: str
    identity: FileIdentity
    state: State
    reason: str | None
    genre: str | None
    confidence: float | None
    destination: str | None
    model_version: str | None
    content_hash: str | None
    held: bool
    attempts: int
    first_seen: float
    updated: float
    album_id: int | None = None  # the album it is filed with (albums: together), if any
    tags: dict[str, object] | None = None  # the tags read from it (artist, album, ...)
    scores: dict[str, float] | None = None  # its prediction's scores, once recorded

    @property
    def judged_loose(self) -> bool:
        """Whether the journal says the file was judged loose: queued (or being filed) on its
        own, in no album. A track waits in ``seen`` until its album is taken, which links it, and
        a dissolved album's tracks go back to ``seen``: so this is the verdict, kept across a
        restart, where the folder as it is now (a container's albums filed, its songs left)
        would say otherwise. The daemon's intake and ``import`` both keep it."""
        return self.album_id is None and self.state in (State.QUEUED, State.CLASSIFYING)

    @property
    def in_place(self) -> bool:
        """Whether ``genre-daemon tag`` judged the file where it lies (tagged: ``moved`` with a
        move of kind ``tag``; left untagged: ``gone``): its destination is its own path. Such a
        row is a verdict on the file's tag, not on where it goes, so it never keeps the daemon
        or ``import`` from taking the file (:meth:`Journal.observe`)."""
        return self.destination == self.path and self.state in (State.MOVED, State.GONE)


@dataclass(frozen=True)
class MoveRow:
    """One move the daemon made (into a genre folder, review or quarantine)."""

    id: int
    file_id: int
    source: str
    destination: str
    genre: str | None
    confidence: float | None
    scores: dict[str, float]
    model_version: str | None
    time: float
    kind: str  # "genre" | "review" | "quarantine" | "tag" (a genre tag written in place: source == destination)
    reason: str | None  # why, for quarantine
    undone: bool
    album_id: int | None = None  # moved as part of this album (undone with it)
    tag_snapshot: str | None = None  # JSON of the genre tag before write_tags changed it


@dataclass(frozen=True)
class Placement:
    """A file the daemon put somewhere and nobody undid: a move row with the identity (and
    content hash, if known) of the file it moved. Label detection compares the disk with these."""

    move_id: int
    file_id: int
    kind: str  # "genre" | "review" | "quarantine"
    genre: str | None
    destination: str
    identity: FileIdentity
    content_hash: str | None


def content_hash(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """``"sha256:<hex>"`` of the file's bytes; refuses to follow a symlink (``O_NOFOLLOW``)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", closefd=True) as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(f"{os.fspath(path)!r} is not a regular file")
        while block := f.read(chunk):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


# ---------------------------------------------------------------------------------------------
# Value conversions between Python and the stored columns.

def _path_key(path: str | os.PathLike[str]) -> bytes:
    """A path as stored: the file system's bytes (undecodable names survive)."""
    return os.fsencode(path)


def _path_str(raw: bytes | None) -> str | None:
    return None if raw is None else os.fsdecode(raw)


def _text(s: str | None) -> str | None:
    """Free text as stored: lone surrogates (undecodable file names) become ``\\udcxx``."""
    return None if s is None else str(s).encode("utf-8", "backslashreplace").decode("utf-8")


def _i64(n: int) -> int:
    """An unsigned 64-bit dev/inode number as SQLite's signed INTEGER (some file systems use all
    64 bits)."""
    return n - (1 << 64) if n >= (1 << 63) else n


def _u64(n: int) -> int:
    return n + (1 << 64) if n < 0 else n


def _confidence(value: float | None) -> float | None:
    if value is None:
        return None
    c = float(value)
    if not math.isfinite(c):
        raise ValueError(f"confidence must be a finite number, not {value!r}")
    return c


def _scores_json(scores: Mapping[str, float] | None) -> str:
    clean: dict[str, float] = {}
    for genre, p in (scores or {}).items():
        value = float(p)
        if not math.isfinite(value):
            raise ValueError(f"score for genre {genre!r} must be a finite number, not {p!r}")
        clean[_text(str(genre)) or ""] = value
    return json.dumps(clean, allow_nan=False)


def _file_row(r: sqlite3.Row) -> FileRow:
    return FileRow(
        id=r["id"],
        path=os.fsdecode(r["path"]),
        identity=FileIdentity(_u64(r["dev"]), _u64(r["ino"]), r["size"], r["mtime_ns"]),
        state=State(r["state"]),
        reason=r["reason"],
        genre=r["genre"],
        confidence=r["confidence"],
        destination=_path_str(r["destination"]),
        model_version=r["model_version"],
        content_hash=r["content_hash"],
        held=bool(r["held"]),
        attempts=r["attempts"],
        first_seen=r["first_seen"],
        updated=r["updated"],
        album_id=_column(r, "album_id"),
        tags=json.loads(t) if (t := _column(r, "tags")) else None,
        scores=json.loads(sc) if (sc := _column(r, "scores")) else None,
    )


def _move_row(r: sqlite3.Row) -> MoveRow:
    return MoveRow(
        id=r["id"],
        file_id=r["file_id"],
        source=os.fsdecode(r["source"]),
        destination=os.fsdecode(r["destination"]),
        genre=r["genre"],
        confidence=r["confidence"],
        scores=json.loads(r["scores"]),
        model_version=r["model_version"],
        time=r["time"],
        kind=r["kind"],
        reason=r["reason"],
        undone=bool(r["undone"]),
        album_id=_column(r, "album_id"),
        tag_snapshot=_column(r, "tag_snapshot"),
    )


def _column(r: sqlite3.Row, name: str) -> object:
    """A column that only newer schemas have (a query may select a subset): None when absent."""
    return r[name] if name in r.keys() else None
