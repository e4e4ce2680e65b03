"""Which file a journal row means, and filing songs and albums for the page.

A file is the one a row describes when it is a regular file (never a symlink) at the row's
address with the same inode, or the same size and nanosecond mtime (a copy across file systems
keeps both), inside the library or the review folder. Filing is the user's own filing
(:mod:`genre_daemon.filer.by_hand`): a song, or a whole album folder, goes where the one
placement decision puts it (``path_template``, the files' tags; a clash is numbered, never
replaced or merged), with its genre tag written under ``write_tags``.

Where the page put a file is noted in the journal's ``meta`` table (key ``web.placed.<file
id>``: path, identity, genre, its album folder, and the genre tag the page's write replaced), so
a second click is refused and the file can still be found and played. A tag write also gives the
file's journal row its new identity and the move the tag to put back (:meth:`Journal.record_tag_write`,
as the daemon's own writes do), so the label scan still knows the file for a placement the user
corrected and every undo (the page's, ``genre-daemon undo``) finds it and restores its tag. The
note is written with the replaced tag just before the tagged copy takes the file's place, so a
kill in between is finished at the next action on that file (:meth:`Placer.settle`).

Also here: :class:`WebError` (what the page refuses, with its HTTP status) and the genre-name
check every action makes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.config.names import fold, label_genre, resolve, shown_name
from genre_daemon.errors import GenreDaemonError, MoveError, SourceChangedError
from genre_daemon.filer import by_hand
from genre_daemon.filing.fsutil import inside
from genre_daemon.filing.journal import AlbumRow, FileIdentity, FileRow, Journal, JournalError, MoveRow, State, content_hash
from genre_daemon.filing.undo import counted
from genre_daemon.learning.labels import genre_name
from genre_daemon.names import safe_component
from genre_daemon.tags import GenreSnapshot

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
    """Where this page put a file (journal meta ``web.placed.<file id>``): its path and identity
    there, the genre, when; for an album's track the album and the folder the page put it in;
    the genre tag the page's write replaced (``tag``, GenreSnapshot JSON), ``tag_pending`` while
    that write may not have been recorded yet, and why a tag could not be written."""

    path: Path
    dev: int
    ino: int
    size: int
    mtime_ns: int
    genre: str
    time: float
    album: int | None = None
    folder: Path | None = None
    tag: dict[str, Any] | None = None
    tag_pending: bool = False
    tag_error: str | None = None

    def to_meta(self) -> str:
        d: dict[str, Any] = {"path": os.fspath(self.path), "dev": self.dev, "ino": self.ino, "size": self.size,
                             "mtime_ns": self.mtime_ns, "genre": self.genre, "time": self.time}
        if self.album is not None:
            d["album"] = self.album
        if self.folder is not None:
            d["folder"] = os.fspath(self.folder)
        if self.tag is not None:
            d["tag"] = self.tag
        if self.tag_pending:
            d["tag_pending"] = True
        if self.tag_error is not None:
            d["tag_error"] = self.tag_error
        return json.dumps(d)

    @classmethod
    def from_meta(cls, text: str | None) -> _Record | None:
        if not text:
            return None
        try:
            d = json.loads(text)
            return cls(Path(d["path"]), int(d["dev"]), int(d["ino"]), int(d["size"]), int(d["mtime_ns"]),
                       str(d["genre"]), float(d["time"]), int(d["album"]) if d.get("album") is not None else None,
                       Path(d["folder"]) if d.get("folder") else None,
                       dict(d["tag"]) if isinstance(d.get("tag"), dict) else None, bool(d.get("tag_pending", False)),
                       str(d["tag_error"]) if d.get("tag_error") else None)
        except (ValueError, KeyError, TypeError):
            return None

    @classmethod
    def at(cls, path: Path, identity: FileIdentity, genre: str, **extra: Any) -> _Record:
        return cls(path, identity.dev, identity.ino, identity.size, identity.mtime_ns, genre, time.time(), **extra)


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


@dataclass(frozen=True)
class Track:
    """An album's track as the page files it: its row, its move, where its file is now."""

    row: FileRow
    move: MoveRow | None
    where: Path


class Placer:
    """Finds the files of journal rows and files songs and albums (under the caller's action
    lock). ``model_genres`` gives the active model's genres, for the genre pickers."""

    def __init__(self, settings: Settings, journal: Journal, model_genres: Callable[[], list[str]]) -> None:
        self.settings = settings
        self.journal = journal
        self.model_genres = model_genres

    # --- filing -----------------------------------------------------------------------------

    def file_song(self, row: FileRow, move: MoveRow | None, source: Path, genre: str, *,
                  came_from: str) -> dict[str, Any]:
        """File the song ``source`` (row's file, placed by ``move``) as ``genre`` and note it."""
        self.check_genre(genre)
        folder = shown_name(self.settings, genre)  # the user's name: the folder, the note, the answer
        keep = self._keeper({source: (row, move)}, folder, album=None, old_folder=None)
        # No ``expect``: the daemon announces its own moves so its library watch does not take
        # them for the user's; these ARE the user's (a label), so the watch is left to see them
        # and wake the label scan at once.
        with _refusals(source, "the file stays where it was"):
            filed = by_hand.file_song(self.settings, source, genre, keep_tag=keep,
                                      earlier_tag=_earlier_tags({source: (row, move)}))
        f = filed.files[0]
        self._note(row, move, f, folder)
        log.info("web: %s (%s) filed into %s by the user%s", f.path.name, came_from, folder, _tag_note(filed))
        # A song's answer is the documented six fields (clients compare it whole), plus what became
        # of its genre tag when write_tags is on.
        done = {"id": row.id, "name": f.path.name, "genre": folder, "from": came_from,
                "destination": relative(f.path, self.settings.library), "renamed": filed.renamed}
        return {**done, **_tag_json(filed)} if filed.tags_written else done

    def file_album(self, album: AlbumRow, tracks: Sequence[Track], folder: Path, genre: str, *,
                   file_id: int, came_from: str) -> dict[str, Any]:
        """File the album folder ``folder`` (``tracks`` are its tracks in it) as ``genre``, whole,
        and note every track."""
        self.check_genre(genre)
        named = shown_name(self.settings, genre)  # the user's name: the folder, the notes, the answer
        members = {t.where: (t.row, t.move) for t in tracks}
        keep = self._keeper(members, named, album=album.id, old_folder=folder)
        with _refusals(folder, "the album stays whole where it was", album=True):
            filed = by_hand.file_album(self.settings, folder, genre, keep_tag=keep, earlier_tag=_earlier_tags(members),
                                       tracks=[t.where.relative_to(folder).as_posix() for t in tracks])
        for t in tracks:
            f = filed.moved(t.where)
            if f is not None:
                self._note(t.row, t.move, f, named, album=album.id, folder=filed.destination)
        n, others = len(filed.tracks), len(filed.files) - len(filed.tracks)
        what = counted(n, "track") + (f", {counted(others, 'other file')}" if others else "")
        name = filed.destination.name
        dest = relative(filed.destination, self.settings.library)
        log.info("web: the album %s (%s, %s) filed into %s by the user: %s%s", folder.name, came_from, what, named,
                 dest, _tag_note(filed))
        return {"id": file_id, "kind": "album", "album": album.id, "name": name, "genre": named, "from": came_from,
                "destination": dest, "renamed": filed.renamed, "tracks": n, "files": len(filed.files),
                "tags_written": filed.tags_written, **_tag_json(filed),
                "message": f"the album {shown(name)} ({what}) filed into {named}: {dest}{_tag_note(filed)}"}

    def meant(self, name: str) -> str:
        """The genre a name given on the page means: a genre of the active model as it is, a
        name of ``genre_names`` as its genre (a merged name: :func:`label_genre`), anything
        else as typed (a new genre, or a twin :meth:`check_genre` refuses)."""
        known = self.model_genres()
        if name in known or resolve(self.settings, name, known).how != "exact":
            return name
        return label_genre(self.settings, name, known)

    def check_genre(self, genre: str) -> None:
        """WebError unless ``genre``'s folder (its user's name) may be a genre folder: not a role
        folder, no twin (the same name but for case, or for '-', '_', spaces, '&')."""
        named = shown_name(self.settings, genre)
        folder = self.settings.library / named
        if _real(folder) in self._not_genres():
            raise WebError(422, f"{shown(named)} is not a genre folder: that name is the "
                                f"{self._role_of(folder)} folder; nothing moved")
        twin = self._case_twin(named)
        if twin is not None:
            alike = "case" if twin.casefold() == named.casefold() else "case, '-', '_', spaces or '&'"
            raise WebError(409, f"a genre {shown(twin)} already exists; names that differ only by {alike} are one "
                                f"genre: use {shown(twin)}; nothing moved")

    # --- the notes -----------------------------------------------------------------------------

    def _keeper(self, members: dict[Path, tuple[FileRow, MoveRow | None]], genre: str, *, album: int | None,
                old_folder: Path | None) -> by_hand.KeepTag:
        """Called just before a tagged copy replaces a filed file: notes the tag it replaces
        (pending), so a kill right after the write still lets undo put it back."""

        def keep(source: Path, placed: Path, snapshot: GenreSnapshot) -> None:
            member = members.get(source)
            if member is None:
                return
            row, _ = member
            folder = None
            if old_folder is not None:
                depth = len(source.relative_to(old_folder).parts)
                folder = Path(*placed.parts[:-depth])
            self.journal.set_meta(RECORD_PREFIX + str(row.id), _Record.at(
                placed, FileIdentity.of(placed), genre, album=album, folder=folder, tag=snapshot.to_json(),
                tag_pending=True).to_meta())

        return keep

    def _note(self, row: FileRow, move: MoveRow | None, f: by_hand.FiledFile, genre: str, *,
              album: int | None = None, folder: Path | None = None) -> None:
        """Note where the page put row's file; after a tag write, give its journal row the tagged
        file's identity and its move the tag undo restores."""
        if f.identity is None:
            log.warning("web: %s was filed into %s but cannot be looked at now", f.path, genre)
            return
        try:
            if f.tag is not None:
                self._record_tag(move, f.path, f.identity, f.tag)
            self.journal.set_meta(RECORD_PREFIX + str(row.id), _Record.at(
                f.path, f.identity, genre, album=album, folder=folder,
                tag=f.tag.to_json() if f.tag is not None else None, tag_error=f.tag_error).to_meta())
        except JournalError as exc:  # the move is done and counts as a label all the same
            log.warning("web: %s filed into %s, but the journal could not note it: %s", f.path.name, genre, exc)

    def _record_tag(self, move: MoveRow | None, path: Path, identity: FileIdentity, tag: GenreSnapshot) -> None:
        if move is None:
            return
        current = self.journal.move(move.id) or move
        try:
            digest: str | None = content_hash(path)
        except OSError:
            digest = None
        self.journal.record_tag_write(move.id, json.dumps(_undo_tag(current, tag).to_json()), identity, digest)

    def settle(self, row: FileRow, move: MoveRow | None) -> _Record | None:
        """Row's note, with a tag write a kill interrupted recorded now (the tagged file is at the
        noted path: it took the file's place there)."""
        record = self.record(row.id)
        if record is None or not record.tag_pending:
            return record
        st = _lstat_regular(record.path)
        if st is None:
            return record
        identity = FileIdentity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        settled = replace(record, dev=identity.dev, ino=identity.ino, size=identity.size, mtime_ns=identity.mtime_ns,
                          tag_pending=False)
        try:
            if record.tag is not None:
                self._record_tag(move, record.path, identity, GenreSnapshot.from_json(record.tag))
            self.journal.set_meta(RECORD_PREFIX + str(row.id), settled.to_meta())
        except (JournalError, ValueError) as exc:
            log.warning("web: cannot finish the note on %s: %s", record.path, exc)
            return record
        return settled

    def record(self, file_id: int) -> _Record | None:
        return _Record.from_meta(self.journal.get_meta(RECORD_PREFIX + str(file_id)))

    def forget(self, file_id: int) -> None:
        try:
            self.journal.delete_meta(RECORD_PREFIX + str(file_id))
        except JournalError as exc:
            log.warning("web: cannot forget the note on journal row %d: %s", file_id, exc)

    # --- finding files ---------------------------------------------------------------------------

    def locate(self, row: FileRow, record: _Record | None) -> Path | None:
        """Where row's file is now: where this page put it, else the journal's address."""
        if record is not None:
            st = _lstat_regular(record.path)
            same = st is not None and (record.tag_pending  # a tag write replaced it there
                                       or (st.st_dev, st.st_ino) == (record.dev, record.ino)
                                       or (st.st_size, st.st_mtime_ns) == (record.size, record.mtime_ns))
            return record.path if same and inside(record.path, self.settings.library) else None
        if row.destination is None or row.state not in (State.MOVED, State.REVIEW):
            return None
        where = Path(row.destination)
        root = self.settings.review_dir if row.state is State.REVIEW else self.settings.library
        return where if inside(where, root) and is_file_of(where, row) else None

    def genre_now(self, row: FileRow, where: Path) -> str:
        """The genre folder row's file, at ``where`` in the library, is in now: the genre this
        page filed it as when it is where the page put it (a template may nest it deeper)."""
        record = self.record(row.id)
        if record is not None and record.path == where:
            return record.genre
        return genre_of(where, self.settings.library)

    def album_tracks(self, album: AlbumRow) -> tuple[Path | None, list[Track]]:
        """Where ``album``'s folder is now (where this page put it, else where the daemon did) and
        its tracks still in it; (None, []) when it is in neither place."""
        rows = [r for r in self.journal.album_tracks(album.id) if r.state in (State.MOVED, State.REVIEW)]
        moves = {m.file_id: m for m in self.journal.album_moves(album.id)}
        found = [(r, rec, self.locate(r, rec)) for r in rows for rec in [self.settle(r, moves.get(r.id))]]
        folder = next((rec.folder for r, rec, where in found if rec is not None and rec.folder is not None
                       and where is not None and where.is_relative_to(rec.folder)), None)
        if folder is None and album.destination and not album.undone:
            placed = Path(album.destination)
            root = self.settings.review_dir if album.state == "review" else self.settings.library
            if inside(placed, root) and not any(rec is not None for _, rec, _ in found):
                folder = placed
        if folder is None or not folder.is_dir() or os.path.islink(folder):
            return None, []
        return folder, [Track(r, moves.get(r.id), where) for r, _, where in found
                        if where is not None and where.is_relative_to(folder)]

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
        key = fold(genre)
        return next((g for g in self.known_genres() if g != genre and fold(g) == key), None)

    def known_genres(self) -> list[str]:
        """Genre folders of the library and genres of the active model, by the user's names
        (``genre_names``: an old ``hiphop/`` folder shows as ``Hip-Hop``), sorted, for the pickers."""
        names: set[str] = set()
        skip = self._not_genres()
        known = self.model_genres()
        try:
            with os.scandir(self.settings.library) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False) and _real(Path(entry.path)) not in skip:
                        g = genre_name(entry.name)
                        if g is not None:
                            names.add(shown_name(self.settings, label_genre(self.settings, g, known)))
        except OSError:
            pass
        names.update(shown_name(self.settings, g) for g in known)
        return sorted(names, key=lambda g: (g.casefold(), g))


@contextmanager
def _refusals(source: Path, stays: str, *, album: bool = False) -> Iterator[None]:
    """The user's filing's errors as the page's refusals (nothing moved in each case)."""
    what = f"the album {shown(source.name)}" if album else shown(source.name)
    try:
        yield
    except FileNotFoundError:
        raise WebError(410, f"{what} vanished before it could be moved; nothing moved") from None
    except SourceChangedError as exc:
        raise WebError(409, f"{what} changed while it was being moved, so it was left where it is: {exc}") from None
    except MoveError as exc:
        code = getattr(exc, "errno", None)
        if not os.path.lexists(source):
            raise WebError(410, f"{what} vanished before it could be moved; nothing moved") from None
        raise WebError(507 if code in (errno.ENOSPC, errno.EDQUOT) else 409, f"{exc}; {stays}") from None


def _earlier_tags(members: dict[Path, tuple[FileRow, MoveRow | None]]) -> by_hand.EarlierTag:
    """The tag write of the daemon's that the page's filing of each file corrects (its move's)."""

    def earlier(source: Path) -> GenreSnapshot | None:
        move = members.get(source, (None, None))[1]
        try:
            return GenreSnapshot.from_json(json.loads(move.tag_snapshot)) if move and move.tag_snapshot else None
        except ValueError:
            return None

    return earlier


def _undo_tag(move: MoveRow, replaced: GenreSnapshot) -> GenreSnapshot:
    """The tag an undo of ``move`` puts back once the page wrote over ``replaced``: the one the
    move already keeps when ``replaced`` is what an earlier write of ours put there (the file goes
    back to the inbox as it came), else ``replaced`` (the user changed the tag in between)."""
    if move.tag_snapshot:
        try:
            kept = GenreSnapshot.from_json(json.loads(move.tag_snapshot))
        except ValueError:
            return replaced
        if kept.format != replaced.format or kept.written_values is None:
            return replaced
        if kept.written_values == replaced.written_values and replaced.values != kept.written_values:
            return kept  # this very write, recorded already (a stop came before its note)
        if replaced.values == kept.written_values:
            return replace(kept, written=replaced.written)
    return replaced


def _tag_json(filed: by_hand.Filed) -> dict[str, Any]:
    """What became of the genre tags: how many tracks carry the genre now, which could not."""
    untagged = [{"name": relative(f.path, filed.destination) if filed.kind == "album" else f.path.name,
                 "reason": f.tag_error} for f in filed.untagged]
    tagged = len(filed.tracks) - len(untagged) if filed.tags_written else 0
    return {"tagged": tagged, "untagged": untagged}


def _tag_note(filed: by_hand.Filed) -> str:
    bad = filed.untagged
    if not bad:
        return ""
    first = bad[0]
    return (f"; its genre tag was not written ({first.tag_error})" if filed.kind == "file" else
            f"; {counted(len(bad), 'track')} could not be tagged (e.g. {first.path.name}: {first.tag_error})")


# --- small helpers --------------------------------------------------------------------------------


def shown(text: str) -> str:
    """A name for a message: quoted, control characters escaped, shortened."""
    r = repr(text)
    return r if len(r) <= 80 else r[:77] + "...'"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


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
