"""The journal's schema and its migrations, and the check that a file is a journal this code can
use.

MIGRATIONS[i] takes a journal from schema version i to i + 1 inside one transaction (PRAGMA
user_version is set in the same transaction). To change the schema, append a function; never edit
a released one. The functions here read :data:`MIGRATIONS` from this module at call time, so a
test may replace it (``monkeypatch.setattr(schema, "MIGRATIONS", ...)``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from genre_daemon.filing.journal.errors import JournalError
from genre_daemon.filing.journal.states import PLACED, State


def _states_sql(states: frozenset[State] | tuple[State, ...] | type[State]) -> str:
    return ", ".join(f"'{s.value}'" for s in states)


_V1 = (
    f"""CREATE TABLE files (
        id            INTEGER PRIMARY KEY,
        path          BLOB    NOT NULL,
        dev           INTEGER NOT NULL,
        ino           INTEGER NOT NULL,
        size          INTEGER NOT NULL,
        mtime_ns      INTEGER NOT NULL,
        state         TEXT    NOT NULL CHECK (state IN ({_states_sql(State)})),
        reason        TEXT,
        genre         TEXT,
        confidence    REAL,
        scores        TEXT,
        model_version TEXT,
        destination   BLOB,
        pending_state TEXT CHECK (pending_state IS NULL
                                  OR pending_state IN ({_states_sql(PLACED)})),
        content_hash  TEXT,
        held          INTEGER NOT NULL DEFAULT 0 CHECK (held IN (0, 1)),
        attempts      INTEGER NOT NULL DEFAULT 0,
        first_seen    REAL    NOT NULL,
        updated       REAL    NOT NULL
    )""",
    "CREATE INDEX files_by_path ON files (path, id)",
    "CREATE INDEX files_by_state ON files (state, held)",
    "CREATE INDEX files_by_hash ON files (content_hash) WHERE content_hash IS NOT NULL",
    "CREATE INDEX files_held ON files (size, mtime_ns) WHERE held = 1",
    """CREATE TABLE moves (
        id            INTEGER PRIMARY KEY,
        file_id       INTEGER NOT NULL UNIQUE REFERENCES files (id),
        source        BLOB    NOT NULL,
        destination   BLOB    NOT NULL,
        genre         TEXT,
        confidence    REAL,
        scores        TEXT    NOT NULL DEFAULT '{}',
        model_version TEXT,
        time          REAL    NOT NULL,
        kind          TEXT    NOT NULL CHECK (kind IN ('genre', 'review', 'quarantine')),
        reason        TEXT,
        undone        INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1))
    )""",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Version 1: files, moves, meta."""
    for statement in _V1:
        conn.execute(statement)


ALBUM_STATES = ("queued", "classifying", "moving", "moved", "review", "quarantined", "gone")

_V2 = (
    f"""CREATE TABLE albums (
        id            INTEGER PRIMARY KEY,
        source        BLOB    NOT NULL,
        state         TEXT    NOT NULL CHECK (state IN ({", ".join(f"'{s}'" for s in ALBUM_STATES)})),
        snapshot      TEXT,
        genre         TEXT,
        confidence    REAL,
        scores        TEXT,
        model_version TEXT,
        reason        TEXT,
        destination   BLOB,
        pending_state TEXT CHECK (pending_state IS NULL OR pending_state IN ('moved', 'review', 'quarantined')),
        attempts      INTEGER NOT NULL DEFAULT 0,
        undone        INTEGER NOT NULL DEFAULT 0 CHECK (undone IN (0, 1)),
        created       REAL    NOT NULL,
        updated       REAL    NOT NULL
    )""",
    "CREATE INDEX albums_by_state ON albums (state)",
    "ALTER TABLE files ADD COLUMN album_id INTEGER REFERENCES albums (id)",
    "ALTER TABLE files ADD COLUMN tags TEXT",
    "ALTER TABLE moves ADD COLUMN album_id INTEGER REFERENCES albums (id)",
    "ALTER TABLE moves ADD COLUMN tag_snapshot TEXT",
    "CREATE INDEX files_by_album ON files (album_id) WHERE album_id IS NOT NULL",
)


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Version 2: albums (a folder filed whole), each file's album and tags, and the genre tag a
    move wrote over (for undo)."""
    for statement in _V2:
        conn.execute(statement)


_V3 = (
    "ALTER TABLE files ADD COLUMN arrival_hash TEXT",
    "CREATE INDEX files_by_arrival_hash ON files (arrival_hash) WHERE arrival_hash IS NOT NULL",
    "ALTER TABLE moves ADD COLUMN tag_pending INTEGER NOT NULL DEFAULT 0 CHECK (tag_pending IN (0, 1))",
)


def _migrate_v3(conn: sqlite3.Connection) -> None:
    """Version 3: a file's content hash as it arrived, kept when ``write_tags`` changes its bytes
    (``duplicates`` compares an arriving file with both), and the moves whose genre tag is still
    to be written (a kill between placing and tagging: the next start writes it)."""
    for statement in _V3:
        conn.execute(statement)


MOVE_KINDS = ("genre", "review", "quarantine", "tag")
_V3_KINDS = "CHECK (kind IN ('genre', 'review', 'quarantine'))"


def _migrate_v4(conn: sqlite3.Connection) -> None:
    """Version 4: a move of kind ``tag``, a genre tag written where the file is (``genre-daemon
    tag``: source and destination the same path). SQLite cannot change a CHECK in place, so the
    moves table is made again from its own definition (the columns versions 2 and 3 added
    included) with the new CHECK, and every row copied."""
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'moves'").fetchone()[0]
    if _V3_KINDS not in sql:
        raise JournalError(f"the journal's moves table is not one this code made: {sql!r}")
    kinds = f"CHECK (kind IN ({', '.join(map(repr, MOVE_KINDS))}))"  # 'genre', ... as SQL strings
    conn.execute(sql.replace("CREATE TABLE moves", "CREATE TABLE moves_v4", 1).replace(_V3_KINDS, kinds))
    conn.execute("INSERT INTO moves_v4 SELECT * FROM moves")
    conn.execute("DROP TABLE moves")
    conn.execute("ALTER TABLE moves_v4 RENAME TO moves")
    conn.execute("CREATE INDEX moves_pending_tags ON moves (tag_pending) WHERE tag_pending = 1")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_v1, _migrate_v2, _migrate_v3, _migrate_v4]


def check_version(c: sqlite3.Connection, path: Path) -> int:
    """The schema version of the journal at ``path`` (open on ``c``), if this code can use it;
    refuses anything else."""
    version = c.execute("PRAGMA user_version").fetchone()[0]
    target = len(MIGRATIONS)
    if version > target:
        raise JournalError(
            f"journal {os.fspath(path)!r} has schema version {version}, newer than "
            f"this genre-daemon understands ({target}); upgrade genre-daemon"
        )
    if version == 0 and c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        raise JournalError(
            f"{os.fspath(path)!r} is an SQLite database but not a genre-daemon "
            "journal; point state_dir elsewhere"
        )
    return version


def up_to_date(c: sqlite3.Connection, path: Path) -> bool:
    """The journal already has the newest schema (refused, like :func:`check_version`, if it
    is not one this code can use)."""
    return check_version(c, path) == len(MIGRATIONS)


def migrate(c: sqlite3.Connection, path: Path) -> None:
    """Bring the journal's schema up to date, inside the caller's write transaction."""
    version = check_version(c, path)  # again, inside the write lock: another process may
    target = len(MIGRATIONS)  # have created or upgraded it meanwhile
    for step in range(version, target):
        MIGRATIONS[step](c)
    if version != target:
        c.execute(f"PRAGMA user_version = {int(target)}")
