"""Genre tags written where the files are (``genre-daemon tag``): the journal's record of them.

A file ``tag`` judges gets a file row of its own (the pinned states: ``moved`` when it is tagged,
``gone`` when it is left untagged), whose destination is its own path
(:attr:`~genre_daemon.filing.journal.rows.FileRow.in_place`), so the daemon and ``import`` never
mistake that verdict for one of theirs. A tagged file also gets a move row of kind ``tag``
(source and destination the same path) with its tag pending, written in the same transaction,
before the file is touched: the write then follows :mod:`genre_daemon.filing.tagging` (the old
tag kept before the tagged copy replaces the file, the new identity recorded after), and a kill
in between leaves the move pending for the next ``tag`` run. An album tagged with one genre is an
album row (``moved``, source and destination its folder) holding its tracks' moves: one entry of
``history`` and of ``undo --last N``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genre_daemon.filing.journal.albums import Albums
from genre_daemon.filing.journal.errors import JournalError, TransitionError
from genre_daemon.filing.journal.files import under_sql
from genre_daemon.filing.journal.rows import (
    FileIdentity,
    MoveRow,
    _confidence,
    _i64,
    _move_row,
    _scores_json,
    _text,
)
from genre_daemon.filing.journal.states import State

# Why an in-place verdict left a file untagged; the ``tag`` run reads these prefixes back.
UNTAGGED = "left untagged: "  # below min_confidence, or an album too mixed: judged again by another model
KEPT = "kept its genre: "  # tag_mode: fill and the file has one
NOT_WRITTEN = "tag not written: "  # the write failed: tried again at the next run
TAG_UNDONE = "tag undone by the user"  # undo put the old tag back: left alone until the file changes


@dataclass(frozen=True)
class Judged:
    """One file's verdict for :meth:`InPlace.record_in_place`: its row (classifying) and its own
    prediction."""

    file_id: int
    confidence: float | None
    scores: Mapping[str, float]


class InPlace(Albums):
    """The in-place half of :class:`Journal` (see the module docstring)."""

    def record_in_place(self, files: Sequence[Judged], *, genre: str | None, model_version: str | None,
                        reason: str, tag: bool, album: str | os.PathLike[str] | None = None,
                        album_confidence: float | None = None,
                        album_scores: Mapping[str, float] | None = None) -> list[MoveRow]:
        """In ONE transaction: each file (``classifying``) judged where it lies, and with ``tag``
        a move of kind ``tag`` for each, its genre tag pending (``genre`` to be written; the
        caller writes it next). Without ``tag`` the files are left untagged (``gone``, ``reason``
        saying why: it starts with :data:`UNTAGGED` or :data:`KEPT`). ``album``: the folder whose
        one genre this is (an album row holds the moves). Returns the moves, in ``files``' order."""
        now = self._clock()
        with self._write("record genre tags in place") as c:
            album_id = None
            if album is not None and tag:
                cur = c.execute(
                    "INSERT INTO albums (source, state, genre, confidence, scores, model_version, reason, "
                    "destination, created, updated) VALUES (?, 'moved', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (os.fsencode(album), _text(genre), _confidence(album_confidence),
                     _scores_json(album_scores), _text(model_version), _text(reason), os.fsencode(album), now, now))
                album_id = cur.lastrowid
            moves: list[MoveRow] = []
            for f in files:
                row = self._require(c, f.file_id)
                if row.state is not State.CLASSIFYING:
                    raise TransitionError(f.file_id, row.path, row.state, State.MOVED if tag else State.GONE,
                                          "a verdict in place is recorded only while classifying")
                key = os.fsencode(row.path)
                c.execute(
                    "UPDATE files SET state = ?, reason = ?, genre = ?, confidence = ?, scores = ?, model_version = ?, "
                    "destination = path, pending_state = NULL, album_id = ?, updated = ? WHERE id = ?",
                    ((State.MOVED if tag else State.GONE).value, _text(reason), _text(genre),
                     _confidence(f.confidence), _scores_json(f.scores), _text(model_version), album_id, now, f.file_id))
                if not tag:
                    continue
                cur = c.execute(
                    "INSERT INTO moves (file_id, source, destination, genre, confidence, scores, model_version, time, "
                    "kind, reason, album_id, tag_pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'tag', ?, ?, 1)",
                    (f.file_id, key, key, _text(genre), _confidence(f.confidence), _scores_json(f.scores),
                     _text(model_version), now, _text(reason), album_id))
                moves.append(_move_row(c.execute("SELECT * FROM moves WHERE id = ?", (cur.lastrowid,)).fetchone()))
            return moves

    def pending_in_place(self, under: str | os.PathLike[str]) -> list[MoveRow]:
        """Tag moves under the folder ``under`` whose write a stop interrupted, oldest first."""
        scope, params = under_sql(under, "source")
        with self._read("list pending tags") as c:
            return [_move_row(r) for r in c.execute(
                f"SELECT * FROM moves WHERE kind = 'tag' AND tag_pending = 1 AND undone = 0{scope} ORDER BY id",
                params)]

    def unrecord_tag(self, move_id: int, reason: str) -> None:
        """The tag of this move could not be written: the move goes (it changed nothing) and the
        file's row says why (``gone`` in place, ``reason`` after :data:`NOT_WRITTEN`), so the next
        run tries it again and ``history`` holds only tags that were written."""
        with self._write("record a tag not written") as c:
            m = self._tag_move(c, move_id)
            c.execute("DELETE FROM moves WHERE id = ?", (move_id,))
            c.execute("UPDATE files SET state = 'gone', reason = ?, album_id = NULL, updated = ? WHERE id = ?",
                      (_text(NOT_WRITTEN + reason), self._clock(), m["file_id"]))

    def follow_rewrite(self, file_id: int, before: FileIdentity, after: FileIdentity, digest: str | None) -> int:
        """A tag write gave a file a new identity (``before`` -> ``after``): the daemon's own
        placements of that file (moved or review, not undone) follow it, so label detection and
        undo still know it for the daemon's. Returns how many rows followed."""
        with self._write("follow a rewritten file") as c:
            cur = c.execute(
                "UPDATE files SET dev = ?, ino = ?, size = ?, mtime_ns = ?, "
                "arrival_hash = coalesce(arrival_hash, content_hash), content_hash = coalesce(?, content_hash), "
                "updated = ? WHERE id != ? AND state IN ('moved', 'review') AND dev = ? AND ino = ? AND size = ? "
                "AND mtime_ns = ? AND id IN (SELECT file_id FROM moves WHERE undone = 0 AND kind != 'tag')",
                (_i64(after.dev), _i64(after.ino), after.size, after.mtime_ns, digest, self._clock(), file_id,
                 _i64(before.dev), _i64(before.ino), before.size, before.mtime_ns))
            return cur.rowcount

    def mark_tags_undone(self, restored: Sequence[tuple[int, FileIdentity]], album_id: int | None = None) -> None:
        """Undo put these moves' old tags back (each move with the file's identity now): in ONE
        transaction the moves are undone and their files left alone (``gone`` in place, reason
        :data:`TAG_UNDONE`) until they change; the album too when given."""
        now = self._clock()
        with self._write("record tags undone") as c:
            for move_id, ident in restored:
                m = self._tag_move(c, move_id)
                if m["undone"]:
                    raise JournalError(f"journal {os.fspath(self.path)!r}: move {move_id} was already undone")
                c.execute("UPDATE moves SET undone = 1, tag_pending = 0 WHERE id = ?", (move_id,))
                c.execute(
                    "UPDATE files SET state = 'gone', reason = ?, dev = ?, ino = ?, size = ?, mtime_ns = ?, "
                    "content_hash = NULL, updated = ? WHERE id = ?",
                    (f"{TAG_UNDONE} (move {move_id})", _i64(ident.dev), _i64(ident.ino), ident.size, ident.mtime_ns,
                     now, m["file_id"]))
            if album_id is not None:
                c.execute("UPDATE albums SET undone = 1, updated = ? WHERE id = ?", (now, album_id))

    def _tag_move(self, c: sqlite3.Connection, move_id: int) -> sqlite3.Row:
        m = c.execute("SELECT * FROM moves WHERE id = ?", (move_id,)).fetchone()
        if m is None or m["kind"] != "tag":
            raise JournalError(f"journal {os.fspath(self.path)!r}: no tag move {move_id}")
        return m
