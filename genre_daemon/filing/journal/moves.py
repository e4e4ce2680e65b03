"""Moves: the plan recorded before a file is moved (:meth:`Moves.begin_move`), the move row
written with the file's new state in one transaction (:meth:`Moves.finish`), the history, and
undo (:meth:`Moves.mark_undone`).

**Crash recovery.** A row left in ``classifying`` by a crash is resumed: with no ``destination``
nothing was moved yet (queue it again); with one, :meth:`Moves.begin_move` recorded the plan
before the move, so if the destination is complete and the source gone the daemon calls
:meth:`Moves.finish_pending`, and otherwise it moves again.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping, Sequence

from genre_daemon.filing.journal.connection import JournalConnection
from genre_daemon.filing.journal.errors import JournalError, TransitionError
from genre_daemon.filing.journal.files import _supersede
from genre_daemon.filing.journal.rows import (
    FileIdentity,
    MoveRow,
    Placement,
    _confidence,
    _file_row,
    _i64,
    _move_row,
    _path_key,
    _scores_json,
    _text,
    _u64,
)
from genre_daemon.filing.journal.states import _KIND, PLACED, State


class Moves(JournalConnection):
    """The move half of :class:`Journal`: planned moves, finished moves, history and undo."""

    def begin_move(
        self,
        file_id: int,
        destination: str | os.PathLike[str],
        *,
        state: State | None = None,
        genre: str | None = None,
        confidence: float | None = None,
        scores: Mapping[str, float] | None = None,
        model_version: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Record where a ``classifying`` file is about to be moved, before moving it.

        With ``state`` (moved, review or quarantined) and the prediction, the whole outcome is
        recorded, so after a crash between the move and :meth:`finish` the daemon can complete
        the row with :meth:`finish_pending` instead of classifying the file again."""
        if state is not None and State(state) not in PLACED:
            raise ValueError(f"a planned move ends in moved, review or quarantined, not {state}")
        dest = _path_key(destination)
        if not dest:
            raise ValueError("destination must not be empty")
        with self._write("record a planned move") as c:
            row = self._require(c, file_id)
            if row.state is not State.CLASSIFYING:
                raise TransitionError(
                    file_id, row.path, row.state, State(state) if state else row.state,
                    "a move is planned only while classifying",
                )
            c.execute(
                "UPDATE files SET destination = ?, pending_state = ?, genre = ?, confidence = ?, "
                "scores = ?, model_version = ?, reason = ?, updated = ? WHERE id = ?",
                (dest, State(state).value if state else None, _text(genre),
                 _confidence(confidence), _scores_json(scores) if scores is not None else None,
                 _text(model_version), _text(reason), self._clock(), file_id),
            )

    def finish(
        self,
        file_id: int,
        state: State,
        *,
        source: str | os.PathLike[str],
        destination: str | os.PathLike[str],
        genre: str | None,
        confidence: float | None,
        scores: Mapping[str, float],
        model_version: str | None,
        reason: str | None = None,
        content_hash: str | None = None,
        tag: bool = False,
    ) -> MoveRow:
        """The file was moved: in ONE transaction, its row goes from ``classifying`` to
        ``state`` (moved, review or quarantined) and a move row records source, destination,
        prediction, model version and time. Returns the move row. ``tag`` (``write_tags``): the
        move's genre tag is still to be written (:meth:`pending_tags`; for a genre folder only)."""
        state = State(state)
        conf = _confidence(confidence)
        scores_json = _scores_json(scores)
        src, dest = _path_key(source), _path_key(destination)
        if not src or not dest:
            raise ValueError("source and destination must not be empty")
        with self._write("record a move") as c:
            return self._finish(
                c, file_id, state, src, dest, _text(genre), conf, scores_json,
                _text(model_version), _text(reason), content_hash, tag,
            )

    def _finish(
        self,
        c: sqlite3.Connection,
        file_id: int,
        state: State,
        src: bytes,
        dest: bytes,
        genre: str | None,
        conf: float | None,
        scores_json: str,
        model_version: str | None,
        reason: str | None,
        digest: str | None,
        tag: bool = False,
    ) -> MoveRow:
        row = self._require(c, file_id)
        if state not in PLACED:
            raise TransitionError(
                file_id, row.path, row.state, state,
                "finish() records a move (moved, review, quarantined); use set_state()",
            )
        if row.state is not State.CLASSIFYING:
            raise TransitionError(file_id, row.path, row.state, state)
        now = self._clock()
        # The file row first, then the move row: a failure in either rolls back both.
        c.execute(
            "UPDATE files SET state = ?, reason = ?, genre = ?, confidence = ?, scores = ?, "
            "model_version = ?, destination = ?, pending_state = NULL, "
            "content_hash = coalesce(?, content_hash), updated = ? WHERE id = ?",
            (state.value, reason, genre, conf, scores_json, model_version, dest, digest, now,
             file_id),
        )
        cur = c.execute(
            "INSERT INTO moves (file_id, source, destination, genre, confidence, scores, "
            "model_version, time, kind, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (file_id, src, dest, genre, conf, scores_json, model_version, now, _KIND[state],
             reason),
        )
        if tag and state is State.MOVED and genre is not None:  # write_tags: tagged next
            c.execute("UPDATE moves SET tag_pending = 1 WHERE id = ?", (cur.lastrowid,))
        return _move_row(c.execute("SELECT * FROM moves WHERE id = ?", (cur.lastrowid,)).fetchone())

    def finish_pending(self, file_id: int, *, tag: bool = False) -> MoveRow:
        """Complete a move planned by :meth:`begin_move` (with its outcome) that a crash
        interrupted after the file reached its destination; the caller has checked that the
        destination is complete and the source gone. ``tag`` as for :meth:`finish`."""
        with self._write("record a move") as c:
            r = self._row(c, file_id)
            if r is None:
                raise JournalError(f"journal {os.fspath(self.path)!r}: no file row {file_id}")
            row = _file_row(r)
            if row.state is not State.CLASSIFYING or r["pending_state"] is None:
                raise TransitionError(
                    file_id, row.path, row.state, row.state,
                    "no planned move with its outcome to finish (begin_move(..., state=...))",
                )
            return self._finish(
                c, file_id, State(r["pending_state"]), r["path"], r["destination"], row.genre,
                row.confidence, r["scores"] or "{}", row.model_version, row.reason, None, tag,
            )


    def history(self, limit: int | None = None, *, include_undone: bool = True) -> list[MoveRow]:
        """Moves, newest first; at most ``limit``; without undone ones if asked."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        where = "" if include_undone else "WHERE undone = 0 "
        with self._read("read the history") as c:
            return [
                _move_row(r)
                for r in c.execute(
                    f"SELECT * FROM moves {where}ORDER BY id DESC LIMIT ?",
                    (-1 if limit is None else limit,),
                )
            ]

    def placements(self, kinds: Sequence[str] = ("genre", "review")) -> list[Placement]:
        """Every move not undone whose kind is in ``kinds``, oldest first, with the identity of
        the file it moved: one light query (no scores), since label detection reads them all at
        every rescan."""
        if not kinds:
            return []
        with self._read("list placed files") as c:
            return [
                Placement(
                    move_id=r["move_id"], file_id=r["file_id"], kind=r["kind"], genre=r["genre"],
                    destination=os.fsdecode(r["destination"]),
                    identity=FileIdentity(_u64(r["dev"]), _u64(r["ino"]), r["size"], r["mtime_ns"]),
                    content_hash=r["content_hash"],
                )
                for r in c.execute(
                    "SELECT m.id AS move_id, m.file_id, m.kind, m.genre, m.destination, f.dev, "
                    "f.ino, f.size, f.mtime_ns, f.content_hash FROM moves m "
                    "JOIN files f ON f.id = m.file_id "
                    f"WHERE m.undone = 0 AND m.kind IN ({', '.join('?' * len(kinds))}) "
                    "ORDER BY m.id",
                    list(kinds),
                )
            ]

    def placed_tags(self) -> list[tuple[str, str, dict[str, object]]]:
        """(genre, destination, the file's recorded tags) of every move into a genre folder not
        undone whose file had tags, oldest first: what the library knows of its artists
        (:mod:`genre_daemon.learning.artists`). One light query."""
        with self._read("list the tags of placed files") as c:
            out: list[tuple[str, str, dict[str, object]]] = []
            for r in c.execute("SELECT m.genre, m.destination, f.tags FROM moves m JOIN files f ON f.id = m.file_id "
                               "WHERE m.undone = 0 AND m.kind = 'genre' AND m.genre IS NOT NULL "
                               "AND f.tags IS NOT NULL ORDER BY m.id"):
                try:
                    tags = json.loads(r["tags"])
                except ValueError:
                    continue
                if isinstance(tags, dict):
                    out.append((r["genre"], os.fsdecode(r["destination"]), tags))
            return out

    def move(self, move_id: int) -> MoveRow | None:
        """The move with this id, if any."""
        with self._read("read a move") as c:
            r = c.execute("SELECT * FROM moves WHERE id = ?", (move_id,)).fetchone()
            return None if r is None else _move_row(r)

    def record_tag_write(self, move_id: int, snapshot: str | None, identity: FileIdentity,
                         content_hash: str | None) -> None:
        """``write_tags`` rewrote a placed file (new inode, new bytes): the move keeps the genre tag
        it replaced (JSON, for undo; None when undo has put it back) and is no longer pending, and
        the file's row its new identity and hash, so label detection still knows the file for the
        daemon's own. The hash it arrived with stays (``arrival_hash``): the same file dropped
        again is still a duplicate."""
        with self._write("record a tag write") as c:
            m = c.execute("SELECT file_id FROM moves WHERE id = ?", (move_id,)).fetchone()
            if m is None:
                raise JournalError(f"journal {os.fspath(self.path)!r}: no move {move_id}")
            c.execute("UPDATE moves SET tag_snapshot = ?, tag_pending = 0 WHERE id = ?", (snapshot, move_id))
            c.execute(
                "UPDATE files SET dev = ?, ino = ?, size = ?, mtime_ns = ?, "
                "arrival_hash = coalesce(arrival_hash, content_hash), "
                "content_hash = coalesce(?, content_hash), updated = ? WHERE id = ?",
                (_i64(identity.dev), _i64(identity.ino), identity.size, identity.mtime_ns, content_hash,
                 self._clock(), m["file_id"]))

    def record_tag_intent(self, move_id: int, snapshot: str) -> None:
        """The genre tag of a pending move is about to be written over ``snapshot`` (JSON): kept
        first, so a kill right after the write still lets undo put the old tag back."""
        with self._write("record a tag about to be written") as c:
            c.execute("UPDATE moves SET tag_snapshot = ? WHERE id = ? AND tag_pending = 1", (snapshot, move_id))

    def drop_tag(self, move_id: int) -> None:
        """The genre tag of this move will not be written (the file cannot take one, it is gone,
        ``write_tags`` was turned off): no longer pending."""
        with self._write("drop a pending tag") as c:
            c.execute("UPDATE moves SET tag_pending = 0 WHERE id = ?", (move_id,))

    def pending_tags(self) -> list[MoveRow]:
        """Moves not undone whose genre tag a stop kept from being written, oldest first."""
        with self._read("list pending tags") as c:
            return [_move_row(r) for r in c.execute(
                "SELECT * FROM moves WHERE tag_pending = 1 AND undone = 0 ORDER BY id")]

    def mark_undone(
        self,
        move_id: int,
        restored_path: str | os.PathLike[str],
        identity: FileIdentity,
        *,
        content_hash: str | None = None,
    ) -> None:
        """The user put a moved file back at ``restored_path``: the move is marked undone and
        the file's row becomes held, ``seen``, at that path with that identity, so the daemon
        leaves it alone until it changes. Pass the restored file's :func:`content_hash` so a
        copy of it is recognised too."""
        with self._write("record an undo") as c:
            self._mark_undone(c, move_id, restored_path, identity, content_hash)

    def _mark_undone(self, c: sqlite3.Connection, move_id: int, restored_path: str | os.PathLike[str],
                     identity: FileIdentity, content_hash: str | None) -> None:
        """:meth:`mark_undone` inside the caller's write transaction."""
        m = c.execute("SELECT * FROM moves WHERE id = ?", (move_id,)).fetchone()
        if m is None:
            raise JournalError(f"journal {os.fspath(self.path)!r}: no move {move_id}")
        row = self._require(c, m["file_id"])
        if m["undone"]:
            raise TransitionError(row.id, row.path, row.state, State.SEEN, f"move {move_id} was already undone")
        if row.state not in PLACED:
            raise TransitionError(row.id, row.path, row.state, State.SEEN, f"move {move_id} is not its last move")
        key = _path_key(restored_path)
        now = self._clock()
        c.execute("UPDATE moves SET undone = 1 WHERE id = ?", (move_id,))
        c.execute(
            "UPDATE files SET path = ?, dev = ?, ino = ?, size = ?, mtime_ns = ?, state = ?, "
            "held = 1, reason = ?, destination = NULL, pending_state = NULL, "
            "content_hash = coalesce(?, content_hash), updated = ? WHERE id = ?",
            (key, _i64(identity.dev), _i64(identity.ino), identity.size, identity.mtime_ns,
             State.SEEN.value, f"undone by the user (move {move_id})", content_hash, now, row.id),
        )
        _supersede(c, key, row.id, now)
