"""The journal: a SQLite (WAL) record of every file the daemon has seen and every move it made.

It is the daemon's only state on disk besides models, and what makes a restart safe: a crash
leaves each file's last committed state here, and :meth:`Journal.recoverable` lists the work to
resume. The CLI (``status``, ``history``, ``undo``) opens the same file from another process
while the daemon runs.

This package's modules, lowest first:

* :mod:`~genre_daemon.filing.journal.states`: the states of a file and the legal transitions;
* :mod:`~genre_daemon.filing.journal.errors`: :class:`JournalError`, :class:`TransitionError`;
* :mod:`~genre_daemon.filing.journal.rows`: the row dataclasses, file identity, content hash,
  and how values are stored (paths as the file system's bytes);
* :mod:`~genre_daemon.filing.journal.schema`: the schema, its migrations (:data:`MIGRATIONS`),
  and the check that a file is a journal this code can use;
* :mod:`~genre_daemon.filing.journal.connection`: opening the file, and the transaction
  discipline (one ``BEGIN IMMEDIATE`` per write, retried while another process holds the lock);
* :mod:`~genre_daemon.filing.journal.files`: observing inbox files, state changes, file queries;
* :mod:`~genre_daemon.filing.journal.moves`: planned and finished moves, history, undo, crash
  recovery;
* :mod:`~genre_daemon.filing.journal.albums`: albums filed whole, their crash recovery and undo;
* :mod:`~genre_daemon.filing.journal.in_place`: genre tags written where the files are (``tag``);
* :mod:`~genre_daemon.filing.journal.core`: :class:`Journal`, all of it on one connection.

Import from here; the modules are the journal's own layout.
"""

from __future__ import annotations

from genre_daemon.filing.journal.albums import AlbumRow, HistoryEntry, PlacedTrack, RestoredTrack
from genre_daemon.filing.journal.core import Journal
from genre_daemon.filing.journal.errors import JournalError, TransitionError
from genre_daemon.filing.journal.rows import FileIdentity, FileRow, MoveRow, Placement, content_hash
from genre_daemon.filing.journal.schema import MIGRATIONS
from genre_daemon.filing.journal.states import (
    MAX_INTERRUPTIONS,
    PLACED,
    TERMINAL,
    TRANSITIONS,
    WAITING,
    State,
    can_transition,
)

__all__ = [
    "State",
    "MAX_INTERRUPTIONS",
    "TERMINAL",
    "WAITING",
    "PLACED",
    "TRANSITIONS",
    "can_transition",
    "FileIdentity",
    "FileRow",
    "MoveRow",
    "Placement",
    "JournalError",
    "TransitionError",
    "Journal",
    "content_hash",
    "MIGRATIONS",
    "AlbumRow",
    "PlacedTrack",
    "HistoryEntry",
    "RestoredTrack",
]
