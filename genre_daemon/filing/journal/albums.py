"""Albums: a folder of the inbox filed whole (``albums: together``), recorded so a crash at any
step is finished on restart and an undo puts the whole folder back.

An album row lives ``queued -> classifying -> moving -> moved | review | quarantined`` (the
last for a whole album of duplicates under ``duplicates: quarantine``), or ``gone`` (it
vanished, or was given up and its tracks filed one by one). Its tracks are ordinary file rows
(the pinned states) linked to it by ``album_id``: they enter ``classifying`` with it and are
placed in the same transaction that records the album placed, each with its own move row
(``moves.album_id``), so ``history`` and labels see every track.

**Crash recovery.** ``moving`` means :meth:`Albums.begin_album_move` recorded the claimed
destination before anything moved: the daemon asks
:func:`genre_daemon.filing.album_mover.settle_album` which side the album is on, then calls
:meth:`Albums.finish_album` (placed) or :meth:`Albums.requeue_album` (still in the inbox).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from genre_daemon.filing.journal.files import under_sql
from genre_daemon.filing.journal.moves import Moves
from genre_daemon.filing.journal.errors import JournalError, TransitionError
from genre_daemon.filing.journal.rows import (
    FileIdentity,
    FileRow,
    MoveRow,
    _confidence,
    _file_row,
    _move_row,
    _path_key,
    _path_str,
    _scores_json,
    _text,
)
from genre_daemon.filing.journal.schema import ALBUM_STATES
from genre_daemon.filing.journal.states import WAITING, State

ACTIVE = ("queued", "classifying", "moving")


@dataclass(frozen=True)
class AlbumRow:
    """One album: its inbox folder, where it is in its life, and its outcome once decided."""

    id: int
    source: str
    state: str
    snapshot: dict[str, object] | None
    genre: str | None
    confidence: float | None
    scores: dict[str, float]
    model_version: str | None
    reason: str | None
    destination: str | None
    pending_state: str | None
    attempts: int
    undone: bool
    created: float
    updated: float


@dataclass(frozen=True)
class PlacedTrack:
    """A track's outcome inside a placed album: where it is now and its own scores."""

    file_id: int
    destination: str
    confidence: float | None
    scores: Mapping[str, float]
    content_hash: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of ``history`` and of ``undo --last N``: a file's move, or an album with its
    tracks' moves (newest first). Its ``id`` is its newest move's."""

    moves: tuple[MoveRow, ...]
    album: AlbumRow | None = None

    @property
    def id(self) -> int:
        return self.moves[0].id

    @property
    def undone(self) -> bool:
        """An album counts as undone once it went back (a track that stayed in the library as
        your correction keeps its move); a file, once its move was undone."""
        return self.album.undone if self.album is not None else self.moves[0].undone


@dataclass(frozen=True)
class RestoredTrack:
    """A track of an album that undo put back: its move, where it is now, its identity and hash."""

    move_id: int
    path: str
    identity: FileIdentity
    content_hash: str | None


def _album_row(r: sqlite3.Row) -> AlbumRow:
    return AlbumRow(
        id=r["id"], source=os.fsdecode(r["source"]), state=r["state"],
        snapshot=json.loads(r["snapshot"]) if r["snapshot"] else None, genre=r["genre"],
        confidence=r["confidence"], scores=json.loads(r["scores"]) if r["scores"] else {},
        model_version=r["model_version"], reason=r["reason"], destination=_path_str(r["destination"]),
        pending_state=r["pending_state"], attempts=r["attempts"], undone=bool(r["undone"]),
        created=r["created"], updated=r["updated"],
    )


class Albums(Moves):
    """The album half of :class:`Journal` (see the module docstring)."""

    def open_album(self, source: str | os.PathLike[str], track_ids: Sequence[int],
                   snapshot: Mapping[str, object]) -> AlbumRow:
        """Record the settled album folder ``source`` with its tracks (file rows waiting in
        seen/settling/queued), all queued in one transaction. An album already active for the
        folder is returned as it is (a rescan offers it again)."""
        if len(track_ids) < 1:
            raise ValueError("an album has tracks")
        key = _path_key(source)
        with self._write("record an album") as c:
            active = self._active(c, key)
            if active is not None:
                return active
            now = self._clock()
            cur = c.execute(
                "INSERT INTO albums (source, state, snapshot, created, updated) VALUES (?, 'queued', ?, ?, ?)",
                (key, json.dumps(snapshot), now, now),
            )
            album_id = int(cur.lastrowid or 0)
            for fid in track_ids:
                row = self._require(c, fid)
                if row.state not in WAITING or row.held:
                    raise TransitionError(fid, row.path, row.state, State.QUEUED, "only a waiting track joins an album")
                c.execute("UPDATE files SET album_id = ?, state = 'queued', updated = ? WHERE id = ?",
                          (album_id, now, fid))
            return self._album(c, album_id)

    def album(self, album_id: int) -> AlbumRow | None:
        with self._read("read an album") as c:
            r = c.execute("SELECT * FROM albums WHERE id = ?", (album_id,)).fetchone()
            return None if r is None else _album_row(r)

    def active_album(self, source: str | os.PathLike[str]) -> AlbumRow | None:
        with self._read("read an album") as c:
            return self._active(c, _path_key(source))

    def active_albums(self, under: str | os.PathLike[str] | None = None) -> list[AlbumRow]:
        """Albums a crash or stop may have interrupted, oldest first; only those whose folder
        is under ``under`` when given (see :func:`~genre_daemon.filing.journal.files.under_sql`)."""
        scope, params = under_sql(under, "source")
        with self._read("list unfinished albums") as c:
            return [_album_row(r) for r in c.execute(
                f"SELECT * FROM albums WHERE state IN ({', '.join('?' * len(ACTIVE))}){scope} ORDER BY id",
                (*ACTIVE, *params))]

    def album_tracks(self, album_id: int) -> list[FileRow]:
        with self._read("list an album's tracks") as c:
            return [_file_row(r) for r in c.execute(
                "SELECT * FROM files WHERE album_id = ? ORDER BY path", (album_id,))]

    def start_album(self, album_id: int) -> AlbumRow:
        """``queued -> classifying``, for the album (counting an attempt) and each track still with
        it. A track's own attempts count only while it is being classified (:meth:`begin_track`),
        so a stop blames the one track it interrupted, as for a single file, not the album."""
        with self._write("start an album") as c:
            album = self._require_album(c, album_id, ("queued",))
            now = self._clock()
            c.execute("UPDATE albums SET state = 'classifying', attempts = attempts + 1, updated = ? WHERE id = ?",
                      (now, album.id))
            c.execute("UPDATE files SET state = 'classifying', updated = ? "
                      "WHERE album_id = ? AND state = 'queued'", (now, album.id))
            return self._album(c, album.id)

    def begin_track(self, file_id: int) -> int:
        """An album's track is about to be classified: one more attempt (kept if a stop comes
        before :meth:`end_track`). Returns its attempts now."""
        with self._write("start a track") as c:
            c.execute("UPDATE files SET attempts = attempts + 1, updated = ? WHERE id = ?", (self._clock(), file_id))
            return int(self._require(c, file_id).attempts)

    def record_track_prediction(self, file_id: int, *, genre: str | None, confidence: float | None,
                                scores: Mapping[str, float], model_version: str | None) -> None:
        """Keep a classified track's prediction, so a restart goes on with the album's next track
        instead of classifying this one again (and a stop is never blamed on it again)."""
        with self._write("record a track's prediction") as c:
            c.execute("UPDATE files SET genre = ?, confidence = ?, scores = ?, model_version = ?, updated = ? "
                      "WHERE id = ?", (_text(genre), _confidence(confidence), _scores_json(scores),
                                       _text(model_version), self._clock(), file_id))

    def end_track(self, file_id: int) -> None:
        """The track's classification finished (a genre or a reason): not an interrupted attempt."""
        with self._write("finish a track") as c:
            c.execute("UPDATE files SET attempts = max(0, attempts - 1), updated = ? WHERE id = ?",
                      (self._clock(), file_id))

    def drop_from_snapshot(self, album_id: int, rel: str) -> None:
        """A file taken out of the album (a track quarantined on its own) is no longer expected in
        its folder: the album's snapshot forgets it, so the move still finds the folder as it
        should be, also after a restart."""
        with self._write("update an album's snapshot") as c:
            album = self._album(c, album_id)
            snap = dict(album.snapshot or {})
            files = dict(snap.get("files", {}))  # type: ignore[arg-type]
            files.pop(rel, None)
            snap["files"] = files
            c.execute("UPDATE albums SET snapshot = ?, updated = ? WHERE id = ?",
                      (json.dumps(snap), self._clock(), album.id))

    def leave_album(self, file_id: int) -> None:
        """A track that will not travel with its album (quarantined on its own, or vanished)."""
        with self._write("take a track out of its album") as c:
            c.execute("UPDATE files SET album_id = NULL, updated = ? WHERE id = ?", (self._clock(), file_id))

    def set_tags(self, file_id: int, tags: Mapping[str, object]) -> None:
        """Record the tags read from a file (shown by ``classify --json`` and ``history``)."""
        with self._write("record a file's tags") as c:
            self._require(c, file_id)
            c.execute("UPDATE files SET tags = ?, updated = ? WHERE id = ?",
                      (json.dumps(dict(tags), ensure_ascii=False), self._clock(), file_id))

    def begin_album_move(self, album_id: int, destination: str | os.PathLike[str], *, state: str,
                         genre: str | None, confidence: float | None, scores: Mapping[str, float],
                         model_version: str | None, reason: str | None = None) -> AlbumRow:
        """Record the claimed destination and the outcome (moved or review) before the album moves."""
        if state not in ("moved", "review", "quarantined"):
            raise ValueError(f"an album is placed as moved, review or quarantined, not {state}")
        with self._write("record an album's planned move") as c:
            album = self._require_album(c, album_id, ("classifying",))
            c.execute(
                "UPDATE albums SET state = 'moving', destination = ?, pending_state = ?, genre = ?, "
                "confidence = ?, scores = ?, model_version = ?, reason = ?, updated = ? WHERE id = ?",
                (_path_key(destination), state, _text(genre), _confidence(confidence), _scores_json(scores),
                 _text(model_version), _text(reason), self._clock(), album.id))
            return self._album(c, album.id)

    def finish_album(self, album_id: int, tracks: Iterable[PlacedTrack],
                     destination: str | os.PathLike[str] | None = None, *, tag: bool = False) -> list[MoveRow]:
        """The album is in place: in ONE transaction the album becomes moved/review and every
        track row is placed with its own move row (``album_id`` set). ``destination``: where the
        album is when recovery found it somewhere other than the recorded claim. ``tag``: each
        track's genre tag is still to be written (as for :meth:`finish`)."""
        with self._write("record an album placed") as c:
            album = self._require_album(c, album_id, ("moving",))
            state = State(album.pending_state or "moved")
            now = self._clock()
            moves: list[MoveRow] = []
            for t in tracks:
                row = self._require(c, t.file_id)
                moves.append(self._finish(
                    c, t.file_id, state, _path_key(row.path), _path_key(t.destination), album.genre,
                    _confidence(album.confidence if state is State.MOVED else t.confidence),
                    _scores_json(t.scores), album.model_version, album.reason, t.content_hash, tag))
                c.execute("UPDATE moves SET album_id = ? WHERE id = ?", (album.id, moves[-1].id))
            c.execute("UPDATE albums SET state = ?, destination = coalesce(?, destination), updated = ? WHERE id = ?",
                      (state.value, _path_key(destination) if destination else None, now, album.id))
            return [replace(m, album_id=album.id) for m in moves]

    def requeue_album(self, album_id: int, reason: str, *, refund: bool) -> AlbumRow:
        """Back to ``queued`` (a stop interrupted it, or it changed): tracks back to queued (their
        own attempts kept: see :meth:`begin_track`), the plan dropped; with ``refund`` the album's
        interrupted attempt is not counted."""
        with self._write("requeue an album") as c:
            album = self._require_album(c, album_id, ACTIVE)
            now = self._clock()
            c.execute(
                "UPDATE albums SET state = 'queued', destination = NULL, pending_state = NULL, reason = ?, "
                "attempts = max(0, attempts - ?), updated = ? WHERE id = ?",
                (_text(reason), int(refund), now, album.id))
            c.execute(
                "UPDATE files SET state = 'queued', destination = NULL, pending_state = NULL, "
                "updated = ? WHERE album_id = ? AND state = 'classifying'", (now, album.id))
            return self._album(c, album.id)

    def dissolve_album(self, album_id: int, reason: str) -> list[FileRow]:
        """Give up on filing these tracks together (the album changed shape, vanished, or kept
        stopping the daemon): the album row becomes ``gone`` with ``reason``, its tracks go
        back to ``seen`` unlinked, to be taken again on their own or in a new album."""
        with self._write("dissolve an album") as c:
            album = self._require_album(c, album_id, ACTIVE)
            now = self._clock()
            c.execute("UPDATE albums SET state = 'gone', reason = ?, updated = ? WHERE id = ?",
                      (_text(reason), now, album.id))
            rows = [_file_row(r) for r in c.execute("SELECT * FROM files WHERE album_id = ?", (album.id,))]
            c.execute(
                "UPDATE files SET state = 'seen', album_id = NULL, destination = NULL, pending_state = NULL, "
                "updated = ? WHERE album_id = ? AND state IN ('seen', 'settling', 'queued', 'classifying')",
                (now, album.id))
            return rows

    def album_moves(self, album_id: int) -> list[MoveRow]:
        """The move rows of an album's tracks (not undone), for undo as a whole."""
        with self._read("read an album's moves") as c:
            return [_move_row(r) for r in c.execute(
                "SELECT * FROM moves WHERE album_id = ? AND undone = 0 ORDER BY id", (album_id,))]

    def mark_album_undone(self, album_id: int, restored: Sequence[RestoredTrack]) -> None:
        """The album went back to the inbox: in ONE transaction each restored track's move is
        undone and the track held (:meth:`mark_undone`), and the album marked undone. Tracks not
        in ``restored`` (left in the library) keep their moves."""
        with self._write("record an album undone") as c:
            for t in restored:
                self._mark_undone(c, t.move_id, t.path, t.identity, t.content_hash)
            c.execute("UPDATE albums SET undone = 1, updated = ? WHERE id = ?", (self._clock(), album_id))

    def history_entries(self, limit: int | None = None, *, include_undone: bool = True) -> list[HistoryEntry]:
        """``history`` as the user reads it, newest first: one entry per file's move and one per
        album (all its tracks' moves); at most ``limit`` entries; without undone ones if asked.
        An album's moves have consecutive ids (:meth:`finish_album` writes them in one
        transaction), so the moves are read newest first by id and never scanned whole."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        entries: list[HistoryEntry] = []
        if limit == 0:
            return entries
        with self._read("read the history") as c:
            for group in _by_entry(_newest_moves(c)):
                album = None
                if group[0].album_id is not None:
                    r = c.execute("SELECT * FROM albums WHERE id = ?", (group[0].album_id,)).fetchone()
                    album = None if r is None else _album_row(r)
                entry = HistoryEntry(tuple(group), album)
                if include_undone or not entry.undone:
                    entries.append(entry)
                    if len(entries) == limit:
                        break
        return entries

    def find_placed_hash(self, digest: str) -> str | None:
        """Where a file with this content already sits in the library (a placement not undone),
        or None: the duplicates policy's question. A file ``write_tags`` rewrote matches by the
        content it has now and by the content it arrived with (the same file dropped again)."""
        with self._read("look for a duplicate") as c:
            r = c.execute(
                "SELECT m.destination FROM moves m JOIN files f ON f.id = m.file_id "
                "WHERE (f.content_hash = ? OR f.arrival_hash = ?) AND m.undone = 0 AND m.kind IN ('genre', 'review') "
                "AND f.state IN ('moved', 'review') ORDER BY m.id DESC LIMIT 1", (digest, digest)).fetchone()
            return None if r is None else os.fsdecode(r["destination"])

    def record_given_up_album(self, source: str | os.PathLike[str], reason: str) -> None:
        """Record that the folder ``source`` is not filed as an album (a ``gone`` album row with
        ``reason``), so its tracks go one by one, also after a restart."""
        with self._write("record an album given up") as c:
            now = self._clock()
            c.execute("INSERT INTO albums (source, state, reason, created, updated) VALUES (?, 'gone', ?, ?, ?)",
                      (_path_key(source), _text(reason), now, now))

    def album_given_up(self, source: str | os.PathLike[str], prefix: str) -> bool:
        """Whether the newest album row of ``source`` gave it up with a reason starting ``prefix``."""
        with self._read("read an album") as c:
            r = c.execute("SELECT state, reason FROM albums WHERE source = ? ORDER BY id DESC LIMIT 1",
                          (_path_key(source),)).fetchone()
            return r is not None and r["state"] == "gone" and (r["reason"] or "").startswith(prefix)

    # -- helpers ----------------------------------------------------------------------------
    def _active(self, c: sqlite3.Connection, key: bytes) -> AlbumRow | None:
        r = c.execute(f"SELECT * FROM albums WHERE source = ? AND state IN ({', '.join('?' * len(ACTIVE))}) "
                      "ORDER BY id DESC LIMIT 1", (key, *ACTIVE)).fetchone()
        return None if r is None else _album_row(r)

    def _album(self, c: sqlite3.Connection, album_id: int) -> AlbumRow:
        r = c.execute("SELECT * FROM albums WHERE id = ?", (album_id,)).fetchone()
        if r is None:
            raise JournalError(f"journal {os.fspath(self.path)!r}: no album {album_id}")
        return _album_row(r)

    def _require_album(self, c: sqlite3.Connection, album_id: int, states: Sequence[str]) -> AlbumRow:
        album = self._album(c, album_id)
        if album.state not in states:
            raise JournalError(f"journal {os.fspath(self.path)!r}: album {album_id} ({album.source}) is "
                               f"{album.state}, not {' or '.join(states)}")
        return album


def _newest_moves(c: sqlite3.Connection, batch: int = 512) -> Iterator[MoveRow]:
    """Every move, newest first, read ``batch`` at a time by id."""
    before = (1 << 63) - 1
    while True:
        rows = c.execute("SELECT * FROM moves WHERE id < ? ORDER BY id DESC LIMIT ?", (before, batch)).fetchall()
        yield from (_move_row(r) for r in rows)
        if len(rows) < batch:
            return
        before = rows[-1]["id"]


def _by_entry(moves: Iterable[MoveRow]) -> Iterator[list[MoveRow]]:
    """Consecutive moves of one album together, every other move alone."""
    group: list[MoveRow] = []
    for m in moves:
        if group and (m.album_id is None or m.album_id != group[0].album_id):
            yield group
            group = []
        group.append(m)
    if group:
        yield group


assert set(ACTIVE) <= set(ALBUM_STATES)
