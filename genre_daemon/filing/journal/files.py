"""File rows and their states: recording what the inbox shows (:meth:`FileStates.observe`),
moving a row along the state machine, and the queries on file rows.

**Held files.** A file the user undid is "held": the daemon leaves it alone until it changes. A
copy of it with the same size and mtime (``cp -p``, ``mv`` across filesystems) should stay held
too, and identity alone cannot recognise a copy (new inode, same content). So
:meth:`FileStates.observe` takes an optional ``hasher`` and calls it only then;
:func:`~genre_daemon.filing.journal.rows.content_hash` is the hash to use, and ``undo`` should
pass it to :meth:`Journal.mark_undone`.

The placed states (moved, review, quarantined) are entered only by the moves
(:mod:`genre_daemon.filing.journal.moves`), which also write the move row.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from genre_daemon.filing.journal.connection import JournalConnection
from genre_daemon.filing.journal.errors import TransitionError
from genre_daemon.filing.journal.rows import (
    FileIdentity,
    FileRow,
    _file_row,
    _i64,
    _path_key,
    _text,
)
from genre_daemon.filing.journal.schema import _states_sql
from genre_daemon.filing.journal.states import PLACED, TERMINAL, WAITING, State, can_transition

_NEED_HASH = object()  # observe(): "decide again once the file's content hash is known"

def _insert(
    c: sqlite3.Connection,
    key: bytes,
    ident: FileIdentity,
    now: float,
    *,
    held: bool = False,
    content_hash: str | None = None,
    reason: str | None = None,
) -> int:
    """A new ``seen`` row (held if asked) at ``key``; returns its id."""
    cur = c.execute(
        "INSERT INTO files (path, dev, ino, size, mtime_ns, state, reason, content_hash, held, "
        "first_seen, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, _i64(ident.dev), _i64(ident.ino), ident.size, ident.mtime_ns, State.SEEN.value,
         _text(reason), content_hash, int(held), now, now),
    )
    return int(cur.lastrowid)  # type: ignore[arg-type]

def under_sql(folder: str | os.PathLike[str] | None, column: str = "path") -> tuple[str, tuple[bytes, ...]]:
    """`` AND ...`` SQL and its parameters keeping the rows whose ``column`` (a stored path) lies
    under ``folder`` (nothing when None): a byte range, so the path index serves it. The daemon
    and ``import`` share one journal; each takes up only the rows under its own folder."""
    if folder is None:
        return "", ()
    base = _path_key(folder).rstrip(b"/")
    return f" AND {column} > ? AND {column} < ?", (base + b"/", base + b"0")  # b"0" follows b"/"

def _supersede(c: sqlite3.Connection, key: bytes, keep: int, now: float) -> None:
    """Waiting rows at ``key`` other than ``keep`` describe a file no longer there."""
    c.execute(
        f"UPDATE files SET state = ?, reason = ?, updated = ? WHERE path = ? AND id != ? "
        f"AND state IN ({_states_sql(WAITING)})",
        (State.GONE.value, f"replaced by a changed file (journal row {keep})", now, key, keep),
    )


class FileStates(JournalConnection):
    """The file-row half of :class:`Journal`: observe, state changes, queries on files."""

    def observe(
        self,
        path: str | os.PathLike[str],
        identity: FileIdentity,
        *,
        hasher: Callable[[Path], str] | None = None,
    ) -> tuple[FileRow, bool]:
        """Record that the file at ``path`` with ``identity`` is in the inbox.

        Returns ``(row, is_new_work)``:

        * a row at ``path`` with this identity (not a verdict of ``genre-daemon tag``,
          :attr:`FileRow.in_place`): that row; new work only if it is neither terminal nor held. That includes ``gone``: the daemon also ends a file there when it
          leaves it in the inbox on purpose (``on_conflict: skip``, a move that cannot succeed),
          and such a file must not be retried at every rescan. The price: a file that vanished
          and came back byte-for-byte unchanged (same inode and mtime) is not taken again
          until it changes (``touch`` it);
        * otherwise (an unknown path, or a changed file at a known one): a held (undone) file
          renamed here keeps its row and stays held; a copy of one (same size and mtime, new
          inode: only then is ``hasher(path)`` called, outside any transaction) whose content
          hash matches stays held in a new held row; anything else is a new ``seen`` row and
          new work.

        Waiting rows (seen, settling, queued) of an older file at ``path`` become ``gone``: the
        file they describe is no longer there. A ``classifying`` row is left to its worker.
        """
        text = os.fspath(path)
        key = _path_key(text)
        digest: str | None = None
        while True:
            with self._write("record a file") as c:
                out = self._observe(c, text, key, identity, digest, hasher is not None)
            if out is not _NEED_HASH:
                return out  # type: ignore[return-value]
            assert hasher is not None
            digest = hasher(Path(text))

    def _observe(
        self,
        c: sqlite3.Connection,
        text: str,
        key: bytes,
        ident: FileIdentity,
        digest: str | None,
        can_hash: bool,
    ) -> tuple[FileRow, bool] | object:
        now = self._clock()
        rows = [
            _file_row(r)
            for r in c.execute("SELECT * FROM files WHERE path = ? ORDER BY id DESC", (key,))
        ]
        match = next((r for r in rows if r.identity == ident and not r.in_place), None)
        if match is not None:
            if match.held or match.state in TERMINAL:
                return match, False
            _supersede(c, key, match.id, now)
            return match, True
        # The undone file itself, renamed here: it stays held and its row follows it.
        renamed = c.execute(
            "SELECT * FROM files WHERE held = 1 AND state = ? AND dev = ? AND ino = ? "
            "AND size = ? AND mtime_ns = ? ORDER BY id DESC LIMIT 1",
            (State.SEEN.value, _i64(ident.dev), _i64(ident.ino), ident.size, ident.mtime_ns),
        ).fetchone()
        if renamed is not None:
            c.execute(
                "UPDATE files SET path = ?, updated = ? WHERE id = ?", (key, now, renamed["id"])
            )
            _supersede(c, key, renamed["id"], now)
            return self._require(c, renamed["id"]), False
        # A copy of an undone file (cp -p, mv across file systems): only its content can tell.
        lookalikes = [
            _file_row(r)
            for r in c.execute(
                "SELECT * FROM files WHERE held = 1 AND size = ? AND mtime_ns = ? "
                "AND content_hash IS NOT NULL ORDER BY id DESC",
                (ident.size, ident.mtime_ns),
            )
        ]
        if lookalikes and can_hash:
            if digest is None:
                return _NEED_HASH
            twin = next((r for r in lookalikes if r.content_hash == digest), None)
            if twin is not None:
                if twin.path == text and twin.state is State.SEEN:
                    c.execute(
                        "UPDATE files SET dev = ?, ino = ?, updated = ? WHERE id = ?",
                        (_i64(ident.dev), _i64(ident.ino), now, twin.id),
                    )
                    return self._require(c, twin.id), False
                row_id = _insert(
                    c, key, ident, now, held=True, content_hash=digest,
                    reason=f"a copy of the file the user undid (journal row {twin.id})",
                )
                _supersede(c, key, row_id, now)
                return self._require(c, row_id), False
        row_id = _insert(c, key, ident, now, content_hash=digest)
        _supersede(c, key, row_id, now)
        return self._require(c, row_id), True

    def update_identity(self, file_id: int, identity: FileIdentity) -> FileRow:
        """The file of a waiting row (seen, settling, queued) grew or changed while it was being
        written: same work item, new identity. Saves a superseded row per poll of a slow write."""
        with self._write("update a file's identity") as c:
            row = self._require(c, file_id)
            if row.state not in WAITING or row.held:
                raise TransitionError(
                    file_id, row.path, row.state, row.state,
                    "only a waiting, unheld row can take a new identity",
                )
            c.execute(
                "UPDATE files SET dev = ?, ino = ?, size = ?, mtime_ns = ?, content_hash = NULL, "
                "updated = ? WHERE id = ?",
                (_i64(identity.dev), _i64(identity.ino), identity.size, identity.mtime_ns,
                 self._clock(), file_id),
            )
            return self._require(c, file_id)

    def requeue(self, file_id: int, reason: str | None = None) -> FileRow:
        """A ``classifying`` file goes back to ``queued`` to be tried again later (the disk was
        full, ...): the attempt ended normally, so it is not counted (``attempts`` counts only
        entries into classifying that a crash interrupted, plus the current one). The planned
        move, if any, is dropped."""
        with self._write("requeue a file") as c:
            row = self._require(c, file_id)
            if row.state is not State.CLASSIFYING:
                raise TransitionError(file_id, row.path, row.state, State.QUEUED,
                                      "only a file being classified is requeued")
            c.execute(
                "UPDATE files SET state = ?, reason = ?, updated = ?, "
                "attempts = max(attempts - 1, 0), destination = NULL, pending_state = NULL, "
                "genre = NULL, confidence = NULL, scores = NULL, model_version = NULL WHERE id = ?",
                (State.QUEUED.value, _text(reason), self._clock(), file_id),
            )
            return self._require(c, file_id)

    def reopen(self, file_id: int, reason: str | None = None) -> FileRow:
        """Take a file that was left in the inbox (``gone``, e.g. it could not be read) as new
        work: a new ``seen`` row with the same path and identity; the old row stays as history."""
        with self._write("take a file again") as c:
            row = self._require(c, file_id)
            if row.state is not State.GONE or row.held:
                raise TransitionError(file_id, row.path, row.state, State.SEEN,
                                      "only a file left in the inbox (gone, not held) is reopened")
            key = _path_key(row.path)
            now = self._clock()
            new_id = _insert(c, key, row.identity, now, content_hash=row.content_hash,
                                  reason=reason)
            _supersede(c, key, new_id, now)
            return self._require(c, new_id)

    def set_state(
        self, file_id: int, state: State, *, reason: str | None = None, via: Sequence[State] = ()
    ) -> FileRow:
        """Move a row along the state machine (:data:`TRANSITIONS`); ``reason`` says why (it
        replaces the previous one). ``via`` names intermediate states passed through in the same
        transaction (each step validated): one commit, one fsync, on the daemon's hot path.
        Entering ``classifying`` counts an attempt; leaving it for a
        non-placed state drops any planned move. The placed states (moved, review, quarantined)
        are reached only through :meth:`finish`, which also writes the move row. A held row can
        only vanish (``gone``)."""
        state = State(state)
        with self._write("change a file's state") as c:
            row = self._require(c, file_id)
            if state in PLACED:
                raise TransitionError(
                    file_id, row.path, row.state, state, "use Journal.finish(), which records the move"
                )
            current = row.state
            for step in [*map(State, via), state]:
                if not can_transition(current, step):
                    raise TransitionError(file_id, row.path, current, step)
                current = step
            if row.held and state not in (State.SEEN, State.GONE):
                raise TransitionError(
                    file_id, row.path, row.state, state,
                    "the user undid this file; it is left alone until it changes",
                )
            clear_plan = row.state is State.CLASSIFYING
            c.execute(
                "UPDATE files SET state = ?, reason = ?, updated = ?, attempts = attempts + ? "
                + (", destination = NULL, pending_state = NULL, genre = NULL, confidence = NULL, "
                   "scores = NULL, model_version = NULL " if clear_plan else "")
                + "WHERE id = ?",
                (state.value, _text(reason), self._clock(),
                 int(state is State.CLASSIFYING), file_id),
            )
            return self._require(c, file_id)

    def set_hash(self, file_id: int, content_hash: str) -> FileRow:
        """Record a file's content hash (see :func:`content_hash`)."""
        with self._write("record a content hash") as c:
            self._require(c, file_id)
            c.execute(
                "UPDATE files SET content_hash = ?, updated = ? WHERE id = ?",
                (content_hash, self._clock(), file_id),
            )
            return self._require(c, file_id)

    def find_by_hash(self, content_hash: str) -> list[FileRow]:
        """Every row whose file had this content hash, oldest first."""
        with self._read("look up a content hash") as c:
            return [
                _file_row(r)
                for r in c.execute(
                    "SELECT * FROM files WHERE content_hash = ? ORDER BY id", (content_hash,)
                )
            ]

    def get(self, file_id: int) -> FileRow | None:
        """The row with this id, if any."""
        with self._read("read a file") as c:
            r = self._row(c, file_id)
            return None if r is None else _file_row(r)

    def by_path(self, path: str | os.PathLike[str]) -> FileRow | None:
        """The newest row for ``path``."""
        with self._read("look up a path") as c:
            r = c.execute(
                "SELECT * FROM files WHERE path = ? ORDER BY id DESC LIMIT 1", (_path_key(path),)
            ).fetchone()
            return None if r is None else _file_row(r)

    def in_states(self, *states: State) -> list[FileRow]:
        """Rows in any of ``states``, oldest first."""
        if not states:
            return []
        values = [State(s).value for s in states]
        with self._read("list files") as c:
            return [
                _file_row(r)
                for r in c.execute(
                    f"SELECT * FROM files WHERE state IN ({', '.join('?' * len(values))}) "
                    "ORDER BY id",
                    values,
                )
            ]

    def recoverable(self, under: str | os.PathLike[str] | None = None) -> list[FileRow]:
        """Work a crash or stop interrupted: non-terminal rows not held, oldest first; only
        those under the folder ``under`` when given (see :func:`under_sql`)."""
        scope, params = under_sql(under)
        with self._read("list unfinished files") as c:
            return [
                _file_row(r)
                for r in c.execute(
                    f"SELECT * FROM files WHERE held = 0 AND state NOT IN "
                    f"({_states_sql(TERMINAL)}){scope} ORDER BY id", params
                )
            ]

    def waiting_count(self) -> int:
        """Files recorded and waiting for a worker (not held by an undo)."""
        with self._read("count waiting files") as c:
            return int(c.execute(
                "SELECT count(*) FROM files WHERE held = 0 AND state IN ('seen', 'settling', 'queued')"
            ).fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Number of rows per state; every state is a key. The verdicts of ``genre-daemon tag``
        (:attr:`FileRow.in_place`) are not counted: they are about a file's tag, not its life."""
        out = {s.value: 0 for s in State}
        with self._read("count files") as c:
            for r in c.execute("SELECT state, count(*) AS n FROM files WHERE NOT (destination IS NOT NULL "
                               "AND destination = path AND state IN ('moved', 'gone')) GROUP BY state"):
                out[r["state"]] = r["n"]
        return out

    def held_count(self) -> int:
        """Files the user undid that are still waiting, unchanged, in the inbox."""
        with self._read("count held files") as c:
            return c.execute(
                "SELECT count(*) FROM files WHERE held = 1 AND state = ?", (State.SEEN.value,)
            ).fetchone()[0]
