"""The journal's connection: opening the file, and the one transaction discipline every read and
write goes through. :class:`JournalConnection` is the base the rest of :class:`Journal` is built
on; nothing here knows what a file or a move is.

**Concurrency.** One connection per :class:`Journal`, shared by the daemon's threads and
serialised by a lock (every operation is a few milliseconds; classification, not the journal, is
the slow part). Across processes, WAL lets readers run while one process writes; every write is
one ``BEGIN IMMEDIATE`` transaction (taking the write lock up front, so a read-then-write such as
:meth:`Journal.observe` can never be overtaken by another process), ``synchronous=FULL`` makes
each commit durable. A writer waits :attr:`Journal.BUSY_TIMEOUT` for another process's lock
inside SQLite, then keeps retrying with backoff (without holding the in-process lock, so reads go
on) for ``retry_for`` seconds, or until :meth:`Journal.stop_waiting` when that is None (the
daemon: a lock held by another process pauses it, never drops a file). The first wait and the end
of it are logged.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from genre_daemon.filing.journal.errors import JournalError
from genre_daemon.filing.journal.rows import FileRow, _file_row
from genre_daemon.filing.journal.schema import check_version, migrate, up_to_date

# The package's name, as before the split into modules: log filters and handlers keep working.
log = logging.getLogger("genre_daemon.filing.journal")


def _is_busy(e: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED), not a real fault."""
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (extended codes share the low byte)
    text = str(e).lower()
    return "locked" in text or "busy" in text


# Held while a journal connection of this process is created and opened: see _create_private.
_OPENING = threading.Lock()


def _create_private(path: Path) -> None:
    """Create the journal file, empty and 0o600, if it does not exist yet (SQLite gives its -wal
    and -shm the main file's mode, so they are 0o600 too); an existing file is left alone.

    Why this way: POSIX record locks belong to the process, and closing *any* descriptor of a file
    drops every lock the process holds on it. An open+close of a journal this process already has
    open through SQLite (the daemon's review page, a second Journal) silently unlocks that
    connection; another process closing its own connection (``genre-daemon status``) then finds no
    reader left and deletes the WAL the daemon goes on writing into (issue 19 J1). So the only
    descriptor opened here outside SQLite is an ``O_EXCL`` create: a brand-new inode, that no
    connection can hold, and ``_OPENING`` keeps every other thread's connect out until it is
    closed. Not a temporary umask (process-wide: it would race other threads creating library
    files) nor a chmod after SQLite created the file (another process could create -wal/-shm from
    the loose mode in between)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return  # SQLite opens it; never a descriptor of ours on a journal that may be in use
    os.close(fd)


class JournalConnection:
    """The journal file at ``path``, open: created (folder 0o700, file 0o600) with its schema if
    missing, migrated if older, refused if not a journal or written by a newer version."""

    BUSY_TIMEOUT = 2.0  # seconds one attempt waits (inside SQLite) for another process's lock
    RETRY_FOR = 60.0  # default seconds a write keeps retrying a locked journal before failing

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = BUSY_TIMEOUT,
        retry_for: float | None = RETRY_FOR,
    ) -> None:
        """``retry_for``: seconds a write retries while another process holds the journal's
        write lock; None: until :meth:`stop_waiting` (the daemon)."""
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self.busy_timeout = float(busy_timeout)
        self.retry_for = retry_for
        self._give_up = False  # set by stop_waiting(): a plain flag, safe from a signal handler
        self._busy_lock = threading.Lock()
        self._busy_since: float | None = None  # monotonic time the current lock-out was noticed
        self._busy_logged = 0.0
        with _OPENING:  # no other connection of this process opens the file while we may create it
            try:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                _create_private(self.path)
            except OSError as e:
                raise JournalError(f"journal {os.fspath(self.path)!r}: cannot create it: {e}") from e
            try:
                conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
            except sqlite3.Error as e:
                raise self._error("cannot open it", e) from e
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            check_version(conn, self.path)  # before WAL mode: never convert someone else's database
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(
                    f"journal {os.fspath(self.path)!r}: SQLite refused WAL mode (got {mode!r}); "
                    "put state_dir on a local file system"
                )
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._conn = conn
            self._migrate()
        except BaseException as e:
            self._conn = None
            conn.close()
            if isinstance(e, sqlite3.Error):
                raise self._error("cannot open it (is it a genre-daemon journal?)", e) from e
            raise

    # -- plumbing --------------------------------------------------------------------------

    def _error(self, what: str, e: BaseException) -> JournalError:
        return JournalError(f"journal {os.fspath(self.path)!r}: {what}: {e}")

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(f"journal {os.fspath(self.path)!r} is closed")
        return self._conn

    def stop_waiting(self) -> None:
        """Writes waiting for another process's lock give up now (and later ones do not wait
        beyond the SQLite busy timeout): lets a stopping daemon exit. Only sets a flag, so a
        signal handler may call it."""
        self._give_up = True

    def _begin(self, what: str) -> sqlite3.Connection:
        """``BEGIN IMMEDIATE``, retried with backoff while another process holds the write
        lock. Returns with ``self._lock`` held and the transaction open."""
        started = time.monotonic()
        delay = 0.05
        while True:
            self._lock.acquire()
            try:
                conn = self._open_conn()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                self._lock.release()
                waited = time.monotonic() - started
                if not _is_busy(e) or self._give_up or (
                    self.retry_for is not None and waited >= self.retry_for
                ):
                    why = " (stopping)" if self._give_up and _is_busy(e) else ""
                    raise self._error(f"cannot {what}{why}", e) from e
                self._note_busy(e)
                # Sleep in short steps: stop_waiting() must take effect quickly.
                until = time.monotonic() + delay
                while not self._give_up and time.monotonic() < until:
                    time.sleep(min(0.05, max(0.0, until - time.monotonic())))
                delay = min(delay * 2, 1.0)
                continue
            except BaseException as e:
                self._lock.release()
                if isinstance(e, sqlite3.Error):
                    raise self._error(f"cannot {what}", e) from e
                raise
            self._note_free()
            return conn

    def _note_busy(self, e: BaseException) -> None:
        """Log the start of a lock-out once, then every 30 s while it lasts."""
        now = time.monotonic()
        with self._busy_lock:
            if self._busy_since is None:
                self._busy_since = self._busy_logged = now
                log.warning("journal %s is locked by another process (%s): writes wait and retry "
                            "until it is free; no file is dropped", os.fspath(self.path), e)
            elif now - self._busy_logged >= 30.0:
                self._busy_logged = now
                log.warning("journal %s still locked by another process after %.0f s",
                            os.fspath(self.path), now - self._busy_since)

    def _note_free(self) -> None:
        if self._busy_since is None:
            return
        with self._busy_lock:
            since, self._busy_since = self._busy_since, None
        if since is not None:
            log.warning("journal %s is writable again after %.1f s", os.fspath(self.path),
                        time.monotonic() - since)

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): committed whole or rolled back whole."""
        conn = self._begin(what)
        try:
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as e:
                if conn.in_transaction:
                    conn.rollback()
                if isinstance(e, sqlite3.Error):
                    raise self._error(f"cannot {what}", e) from e
                raise
        finally:
            self._lock.release()

    @contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._open_conn()
            try:
                yield conn
            except sqlite3.Error as e:
                raise self._error(f"cannot {what}", e) from e

    def _migrate(self) -> None:
        if up_to_date(self._open_conn(), self.path):
            return  # current already: no write, so opening works while another process writes
        with self._write("migrate the schema") as c:
            migrate(c, self.path)

    @staticmethod
    def _row(c: sqlite3.Connection, file_id: int) -> sqlite3.Row | None:
        return c.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()

    def _require(self, c: sqlite3.Connection, file_id: int) -> FileRow:
        r = self._row(c, file_id)
        if r is None:
            raise JournalError(f"journal {os.fspath(self.path)!r}: no file row {file_id}")
        return _file_row(r)

    def close(self) -> None:
        """Close the connection (idempotent); later calls raise :class:`JournalError`."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def waiting_for_lock(self) -> bool:
        """A write is waiting for another process's lock on the journal right now."""
        return self._busy_since is not None
