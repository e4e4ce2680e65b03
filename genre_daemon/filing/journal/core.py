"""The :class:`Journal`: its file rows and its moves, composed on one connection, and the meta
table's small settings."""

from __future__ import annotations

from genre_daemon.filing.journal.files import FileStates
from genre_daemon.filing.journal.in_place import InPlace
from genre_daemon.filing.journal.rows import _text


class Journal(FileStates, InPlace):
    """The journal file at ``path``: created (folder 0o700, file 0o600) with its schema if
    missing, migrated if older, refused if not a journal or written by a newer version.

    Its operations come from :class:`~genre_daemon.filing.journal.files.FileStates` (file rows
    and the state machine) and :class:`~genre_daemon.filing.journal.moves.Moves` (planned and
    finished moves, history, undo) and :class:`~genre_daemon.filing.journal.albums.Albums` (folders
    filed whole) and :class:`~genre_daemon.filing.journal.in_place.InPlace` (genre tags written
    where the files are, by ``genre-daemon tag``), all on
    :class:`~genre_daemon.filing.journal.connection.JournalConnection` (opening, transactions)."""

    def set_meta(self, key: str, value: str) -> None:
        """Store a small string for the daemon (model version, pid, start time)."""
        with self._write("store a setting") as c:
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_text(key), _text(value)),
            )

    def get_meta(self, key: str) -> str | None:
        """A value stored by :meth:`set_meta`, or None."""
        with self._read("read a setting") as c:
            r = c.execute("SELECT value FROM meta WHERE key = ?", (_text(key),)).fetchone()
            return None if r is None else r["value"]

    def delete_meta(self, key: str) -> None:
        """Forget a value (e.g. the pid when the daemon stops)."""
        with self._write("delete a setting") as c:
            c.execute("DELETE FROM meta WHERE key = ?", (_text(key),))
