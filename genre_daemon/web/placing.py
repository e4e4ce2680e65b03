"""Which file a journal row means, and moving it into a genre folder for the page.

A file is the one a row describes when it is a regular file (never a symlink) at the row's
address with the same inode, or the same size and nanosecond mtime (a copy across file systems
keeps both), inside the library or the review folder. Filing is one :func:`mover.move` into
``library/<genre>/`` with ``on_conflict="rename"`` (a click never replaces a file); where the page
put a file is noted in the journal's ``meta`` table (key ``web.placed.<file id>``), so a second
click is refused and the file can still be found and played. Also here: :class:`WebError` (what
the page refuses, with its HTTP status) and the genre-name check every action makes.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.errors import GenreDaemonError, MoveError, SourceChangedError
from genre_daemon.filing import mover
from genre_daemon.filing.journal import FileRow, Journal, JournalError, State
from genre_daemon.learning.labels import genre_name
from genre_daemon.names import safe_component, safe_filename

log = logging.getLogger("genre_daemon.web")

__all__ = ["RECORD_PREFIX", "WebError", "check_genre_name", "Placer", "shown", "inside", "relative",
           "genre_of", "is_file_of"]

RECORD_PREFIX = "web.placed."


class WebError(GenreDaemonError):
    """A request the page refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Record:
    """Where this page put a file (journal meta ``web.placed.<file id>``)."""

    path: Path
    dev: int
    ino: int
    size: int
    mtime_ns: int
    genre: str
    time: float

    def to_meta(self) -> str:
        return json.dumps({"path": os.fspath(self.path), "dev": self.dev, "ino": self.ino, "size": self.size,
                           "mtime_ns": self.mtime_ns, "genre": self.genre, "time": self.time})

    @classmethod
    def from_meta(cls, text: str | None) -> _Record | None:
        if not text:
            return None
        try:
            d = json.loads(text)
            return cls(Path(d["path"]), int(d["dev"]), int(d["ino"]), int(d["size"]), int(d["mtime_ns"]),
                       str(d["genre"]), float(d["time"]))
        except (ValueError, KeyError, TypeError):
            return None


def check_genre_name(name: object) -> str:
    """``name`` if it is one safe genre folder name (NFC), else :class:`WebError` 422 saying why."""
    if not isinstance(name, str):
        raise WebError(422, "the genre must be given as text, e.g. {\"genre\": \"jazz\"}")
    if not name:
        raise WebError(422, "the genre is empty: click a genre or type one")
    good = genre_name(name)
    if good is None or unicodedata.normalize("NFC", name) != good:
        fixed = safe_component(name, fallback="genre")
        raise WebError(422, f"{shown(name)} is not one safe folder name (no '/', '\\', control characters, "
                            "leading dots or dashes, trailing dots or spaces, at most 200 bytes); "
                            f"something like {shown(fixed)} would do")
    return good


class Placer:
    """Finds the files of journal rows and files them into genre folders (under the caller's
    action lock). ``model_genres`` gives the active model's genres, for the genre pickers."""

    def __init__(self, settings: Settings, journal: Journal, model_genres: Callable[[], list[str]]) -> None:
        self.settings = settings
        self.journal = journal
        self.model_genres = model_genres

    def file_into(self, row: FileRow, source: Path, genre: str, *, came_from: str) -> dict[str, Any]:
        """Move ``source`` (row's file) into ``library/<genre>/`` and note it in the journal."""
        s = self.settings
        folder = s.library / genre
        if _real(folder) in self._not_genres():
            raise WebError(422, f"{shown(genre)} is not a genre folder: that name is the "
                                f"{self._role_of(folder)} folder; nothing moved")
        twin = self._case_twin(genre)
        if twin is not None:
            raise WebError(409, f"a genre {shown(twin)} already exists; names that differ only by case are one "
                                f"genre: use {shown(twin)}; nothing moved")
        dest = folder / safe_filename(source.name)
        try:
            st = os.lstat(source)
            result = mover.move(source, dest, "rename", root=s.library, expect=mover.signature(st))
        except FileNotFoundError:
            raise WebError(410, f"{shown(source.name)} vanished before it could be moved; nothing moved") from None
        except SourceChangedError as exc:
            raise WebError(409, f"{shown(source.name)} changed while it was being moved, so it was left where "
                                f"it is: {exc}") from None
        except MoveError as exc:
            code = getattr(exc, "errno", None)
            if not os.path.lexists(source):
                raise WebError(410, f"{shown(source.name)} vanished before it could be moved; nothing moved") from None
            raise WebError(507 if code in (28, 122) else 409, f"{exc}; the file stays where it was") from None
        assert result.destination is not None
        final = result.destination
        fst = os.lstat(final)
        record = _Record(final, fst.st_dev, fst.st_ino, fst.st_size, fst.st_mtime_ns, genre, time.time())
        try:
            self.journal.set_meta(RECORD_PREFIX + str(row.id), record.to_meta())
        except JournalError as exc:  # the move is done and counts as a label all the same
            log.warning("web: %s filed into %s, but the journal could not note it: %s", final.name, genre, exc)
        log.info("web: %s (%s) filed into %s by the user", final.name, came_from, genre)
        return {"id": row.id, "name": final.name, "genre": genre, "from": came_from,
                "destination": relative(final, s.library), "renamed": final.name != source.name}

    def record(self, file_id: int) -> _Record | None:
        return _Record.from_meta(self.journal.get_meta(RECORD_PREFIX + str(file_id)))

    def forget(self, file_id: int) -> None:
        try:
            self.journal.delete_meta(RECORD_PREFIX + str(file_id))
        except JournalError as exc:
            log.warning("web: cannot forget the note on journal row %d: %s", file_id, exc)

    def locate(self, row: FileRow, record: _Record | None) -> Path | None:
        """Where row's file is now: where this page put it, else the journal's address."""
        if record is not None:
            st = _lstat_regular(record.path)
            same = st is not None and ((st.st_dev, st.st_ino) == (record.dev, record.ino)
                                       or (st.st_size, st.st_mtime_ns) == (record.size, record.mtime_ns))
            return record.path if same and inside(record.path, self.settings.library) else None
        if row.destination is None or row.state not in (State.MOVED, State.REVIEW):
            return None
        where = Path(row.destination)
        root = self.settings.review_dir if row.state is State.REVIEW else self.settings.library
        return where if inside(where, root) and is_file_of(where, row) else None

    def _not_genres(self) -> set[Path]:
        s = self.settings
        return {_real(p) for p in (s.review_dir, s.quarantine_dir, s.state_dir, s.inbox, *s.retrain.labelled_dirs)}

    def _role_of(self, folder: Path) -> str:
        s = self.settings
        real = _real(folder)
        for role, path in (("review", s.review_dir), ("quarantine", s.quarantine_dir), ("state", s.state_dir),
                           ("inbox", s.inbox)):
            if _real(path) == real:
                return role
        return "labelled-data"

    def _case_twin(self, genre: str) -> str | None:
        key = genre.casefold()
        return next((g for g in self.known_genres() if g != genre and g.casefold() == key), None)

    def known_genres(self) -> list[str]:
        """Genre folders of the library and genres of the active model, sorted, for the pickers."""
        names: set[str] = set()
        skip = self._not_genres()
        try:
            with os.scandir(self.settings.library) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False) and _real(Path(entry.path)) not in skip:
                        g = genre_name(entry.name)
                        if g is not None:
                            names.add(g)
        except OSError:
            pass
        names.update(self.model_genres())
        return sorted(names, key=lambda g: (g.casefold(), g))


# --- small helpers --------------------------------------------------------------------------------


def shown(text: str) -> str:
    """A name for a message: quoted, control characters escaped, shortened."""
    r = repr(text)
    return r if len(r) <= 80 else r[:77] + "...'"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """``path`` lies lexically below ``root``, with no ``..`` or ``.`` component (string work
    only: it runs once per review row per request)."""
    p, r = os.fspath(path), os.fspath(root).rstrip(os.sep)
    if not p.startswith(r + os.sep):
        return False
    rest = p[len(r) + 1:]
    return bool(rest) and all(part not in ("", ".", "..") for part in rest.split(os.sep))


def relative(path: Path, root: Path) -> str:
    try:
        return os.fspath(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name


def genre_of(path: Path, library: Path) -> str:
    """The genre folder (first component below the library) a library file is in."""
    try:
        return Path(path).relative_to(library).parts[0]
    except (ValueError, IndexError):
        return Path(path).parent.name


def _lstat_regular(path: str | os.PathLike[str]) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def is_file_of(path: str | os.PathLike[str], row: FileRow) -> bool:
    """A regular file at ``path`` that is row's file: the same inode (tags edited in place), or
    the same size and ns mtime (moved across file systems)."""
    st = _lstat_regular(path)
    if st is None:
        return False
    ident = row.identity
    return (st.st_dev, st.st_ino) == (ident.dev, ident.ino) or (st.st_size, st.st_mtime_ns) == (ident.size, ident.mtime_ns)
