"""The journal: a SQLite (WAL) record of every file the daemon has seen and every move it made.

It is the daemon's only state on disk besides models, and what makes a restart safe: a crash
leaves each file's last committed state here, and :meth:`Journal.recoverable` lists the work to
resume. The CLI (``status``, ``history``, ``undo``) opens the same file from another process
while the daemon runs.

**Concurrency.** One connection per :class:`Journal`, shared by the daemon's threads and
serialised by a lock (every operation is a few milliseconds; classification, not the journal, is
the slow part). Across processes, WAL lets readers run while one process writes; every write is
one ``BEGIN IMMEDIATE`` transaction (taking the write lock up front, so a read-then-write such as
:meth:`observe` can never be overtaken by another process), ``synchronous=FULL`` makes each
commit durable. A writer waits :attr:`Journal.BUSY_TIMEOUT` for another process's lock inside
SQLite, then keeps retrying with backoff (without holding the in-process lock, so reads go on)
for ``retry_for`` seconds, or until :meth:`Journal.stop_waiting` when that is None (the daemon:
a lock held by another process pauses it, never drops a file). The first wait and the end of it
are logged.

**Identity.** A file is (device, inode, size, mtime in ns), read with ``lstat``, so a changed or
replaced file is new work and an unchanged one is not redone. Identity alone cannot recognise a
*copy* (new inode, same content). That matters in one place: a file the user undid is "held" (the
daemon leaves it alone until it changes), and a copy of it with the same size and mtime (``cp -p``,
``mv`` across filesystems) should stay held too. So :meth:`Journal.observe` takes an optional
``hasher`` and calls it only then; :func:`content_hash` is the hash to use, and ``undo`` should
pass it to :meth:`Journal.mark_undone`.

**Crash recovery.** A row left in ``classifying`` by a crash is resumed: with no ``destination``
nothing was moved yet (queue it again); with one, :meth:`Journal.begin_move` recorded the plan
before the move, so if the destination is complete and the source gone the daemon calls
:meth:`Journal.finish_pending`, and otherwise it moves again.

Paths are stored as the file system's bytes (``os.fsencode``), so any name a file can have,
including undecodable bytes and newlines, round-trips exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from genre_daemon.errors import GenreDaemonError

log = logging.getLogger(__name__)

# A file the daemon was classifying when it died this many times is a poison file: on recovery
# it goes to quarantine instead of being tried again (no crash loop). See Journal.requeue().
MAX_INTERRUPTIONS = 3

__all__ = [
    "State",
    "MAX_INTERRUPTIONS",
    "TERMINAL",
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
]


class State(str, Enum):
    """Where a file is in its life (DESIGN.md: the life of a file)."""

    SEEN = "seen"
    SETTLING = "settling"
    QUEUED = "queued"
    CLASSIFYING = "classifying"
    MOVED = "moved"
    REVIEW = "review"
    QUARANTINED = "quarantined"
    GONE = "gone"


TERMINAL = frozenset({State.MOVED, State.REVIEW, State.QUARANTINED, State.GONE})
# The terminal states reached by a move; only Journal.finish() enters them (with a move row).
PLACED = frozenset({State.MOVED, State.REVIEW, State.QUARANTINED})
_KIND = {State.MOVED: "genre", State.REVIEW: "review", State.QUARANTINED: "quarantine"}
_WAITING = (State.SEEN, State.SETTLING, State.QUEUED)

# Legal next states. Any non-terminal state may go back to SEEN (the file changed while waiting)
# or to GONE (it vanished); CLASSIFYING -> QUEUED is "retry later" (e.g. the disk was full).
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.SEEN: frozenset({State.SEEN, State.SETTLING, State.GONE}),
    State.SETTLING: frozenset({State.SETTLING, State.QUEUED, State.SEEN, State.GONE}),
    State.QUEUED: frozenset({State.CLASSIFYING, State.SETTLING, State.SEEN, State.GONE}),
    State.CLASSIFYING: frozenset(
        {State.MOVED, State.REVIEW, State.QUARANTINED, State.GONE, State.QUEUED, State.SEEN}
    ),
    State.MOVED: frozenset(),
    State.REVIEW: frozenset(),
    State.QUARANTINED: frozenset(),
    State.GONE: frozenset(),
}


def can_transition(src: State, dst: State) -> bool:
    """True when the state machine allows ``src -> dst``."""
    return dst in TRANSITIONS[src]


class JournalError(GenreDaemonError):
    """The journal file cannot be opened, read or written; names the file and the reason."""


class TransitionError(JournalError):
    """A file row was asked to make a move its state does not allow."""

    def __init__(self, file_id: int, path: str, src: State, dst: State, why: str = "") -> None:
        self.file_id = file_id
        self.path = path
        self.src = src
        self.dst = dst
        detail = f": {why}" if why else ""
        super().__init__(
            f"{path!r} (journal row {file_id}): cannot go from {src.value} to {dst.value}{detail}"
        )


@dataclass(frozen=True)
class FileIdentity:
    """What makes a file the same file: device, inode, size and modification time."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileIdentity:
        """The identity of ``path`` itself (``lstat``: a symlink is never followed)."""
        st = os.lstat(path)
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @classmethod
    def of_or_none(cls, path: str | os.PathLike[str]) -> FileIdentity | None:
        """:meth:`of`, or None when the file cannot be looked at (gone, say)."""
        try:
            return cls.of(path)
        except OSError:
            return None


@dataclass(frozen=True)
class FileRow:
    """One file as the journal knows it. While ``classifying`` with a ``destination``, the
    prediction fields describe the move planned by :meth:`Journal.begin_move`."""

    id: int
    path: str
    identity: FileIdentity
    state: State
    reason: str | None
    genre: str | None
    confidence: float | None
    destination: str | None
    model_version: str | None
    content_hash: str | None
    held: bool
    attempts: int
    first_seen: float
    updated: float


@dataclass(frozen=True)
class MoveRow:
    """One move the daemon made (into a genre folder, review or quarantine)."""

    id: int
    file_id: int
    source: str
    destination: str
    genre: str | None
    confidence: float | None
    scores: dict[str, float]
    model_version: str | None
    time: float
    kind: str  # "genre" | "review" | "quarantine"
    reason: str | None  # why, for quarantine
    undone: bool


@dataclass(frozen=True)
class Placement:
    """A file the daemon put somewhere and nobody undid: a move row with the identity (and
    content hash, if known) of the file it moved. Label detection compares the disk with these."""

    move_id: int
    file_id: int
    kind: str  # "genre" | "review" | "quarantine"
    genre: str | None
    destination: str
    identity: FileIdentity
    content_hash: str | None


def content_hash(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """``"sha256:<hex>"`` of the file's bytes; refuses to follow a symlink (``O_NOFOLLOW``)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    with open(fd, "rb", closefd=True) as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise OSError(f"{os.fspath(path)!r} is not a regular file")
        while block := f.read(chunk):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


# ---------------------------------------------------------------------------------------------
# Schema and migrations. MIGRATIONS[i] takes a journal from schema version i to i + 1 inside one
# transaction (PRAGMA user_version is set in the same transaction). To change the schema, append
# a function; never edit a released one.

def _is_busy(e: sqlite3.OperationalError) -> bool:
    """Another connection holds the lock (SQLITE_BUSY / SQLITE_LOCKED), not a real fault."""
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (extended codes share the low byte)
    text = str(e).lower()
    return "locked" in text or "busy" in text


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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_v1]


# ---------------------------------------------------------------------------------------------
# Value conversions between Python and the stored columns.

def _path_key(path: str | os.PathLike[str]) -> bytes:
    """A path as stored: the file system's bytes (undecodable names survive)."""
    return os.fsencode(path)


def _path_str(raw: bytes | None) -> str | None:
    return None if raw is None else os.fsdecode(raw)


def _text(s: str | None) -> str | None:
    """Free text as stored: lone surrogates (undecodable file names) become ``\\udcxx``."""
    return None if s is None else str(s).encode("utf-8", "backslashreplace").decode("utf-8")


def _i64(n: int) -> int:
    """An unsigned 64-bit dev/inode number as SQLite's signed INTEGER (some file systems use all
    64 bits)."""
    return n - (1 << 64) if n >= (1 << 63) else n


def _u64(n: int) -> int:
    return n + (1 << 64) if n < 0 else n


def _confidence(value: float | None) -> float | None:
    if value is None:
        return None
    c = float(value)
    if not math.isfinite(c):
        raise ValueError(f"confidence must be a finite number, not {value!r}")
    return c


def _scores_json(scores: Mapping[str, float] | None) -> str:
    clean: dict[str, float] = {}
    for genre, p in (scores or {}).items():
        value = float(p)
        if not math.isfinite(value):
            raise ValueError(f"score for genre {genre!r} must be a finite number, not {p!r}")
        clean[_text(str(genre)) or ""] = value
    return json.dumps(clean, allow_nan=False)


def _file_row(r: sqlite3.Row) -> FileRow:
    return FileRow(
        id=r["id"],
        path=os.fsdecode(r["path"]),
        identity=FileIdentity(_u64(r["dev"]), _u64(r["ino"]), r["size"], r["mtime_ns"]),
        state=State(r["state"]),
        reason=r["reason"],
        genre=r["genre"],
        confidence=r["confidence"],
        destination=_path_str(r["destination"]),
        model_version=r["model_version"],
        content_hash=r["content_hash"],
        held=bool(r["held"]),
        attempts=r["attempts"],
        first_seen=r["first_seen"],
        updated=r["updated"],
    )


def _move_row(r: sqlite3.Row) -> MoveRow:
    return MoveRow(
        id=r["id"],
        file_id=r["file_id"],
        source=os.fsdecode(r["source"]),
        destination=os.fsdecode(r["destination"]),
        genre=r["genre"],
        confidence=r["confidence"],
        scores=json.loads(r["scores"]),
        model_version=r["model_version"],
        time=r["time"],
        kind=r["kind"],
        reason=r["reason"],
        undone=bool(r["undone"]),
    )


_NEED_HASH = object()  # observe(): "decide again once the file's content hash is known"


class Journal:
    """The journal file at ``path``: created (folder 0o700, file 0o600) with its schema if
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
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Create the file ourselves so it (and SQLite's -wal/-shm, which copy its mode) is 0o600.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600))
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
            self._check_ours(conn)  # before WAL mode: never convert someone else's database
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

    def _check_ours(self, c: sqlite3.Connection) -> int:
        """The schema version of a journal this code can use; refuses anything else."""
        version = c.execute("PRAGMA user_version").fetchone()[0]
        target = len(MIGRATIONS)
        if version > target:
            raise JournalError(
                f"journal {os.fspath(self.path)!r} has schema version {version}, newer than "
                f"this genre-daemon understands ({target}); upgrade genre-daemon"
            )
        if version == 0 and c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise JournalError(
                f"{os.fspath(self.path)!r} is an SQLite database but not a genre-daemon "
                "journal; point state_dir elsewhere"
            )
        return version

    def _migrate(self) -> None:
        if self._check_ours(self._open_conn()) == len(MIGRATIONS):
            return  # current already: no write, so opening works while another process writes
        with self._write("migrate the schema") as c:
            version = self._check_ours(c)  # again, inside the write lock: another process may
            target = len(MIGRATIONS)  # have created or upgraded it meanwhile
            for step in range(version, target):
                MIGRATIONS[step](c)
            if version != target:
                c.execute(f"PRAGMA user_version = {int(target)}")

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

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- files -----------------------------------------------------------------------------

    def observe(
        self,
        path: str | os.PathLike[str],
        identity: FileIdentity,
        *,
        hasher: Callable[[Path], str] | None = None,
    ) -> tuple[FileRow, bool]:
        """Record that the file at ``path`` with ``identity`` is in the inbox.

        Returns ``(row, is_new_work)``:

        * a row at ``path`` with this identity: that row; new work only if it is neither
          terminal nor held. That includes ``gone``: the daemon also ends a file there when it
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
        match = next((r for r in rows if r.identity == ident), None)
        if match is not None:
            if match.held or match.state in TERMINAL:
                return match, False
            self._supersede(c, key, match.id, now)
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
            self._supersede(c, key, renamed["id"], now)
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
                row_id = self._insert(
                    c, key, ident, now, held=True, content_hash=digest,
                    reason=f"a copy of the file the user undid (journal row {twin.id})",
                )
                self._supersede(c, key, row_id, now)
                return self._require(c, row_id), False
        row_id = self._insert(c, key, ident, now, content_hash=digest)
        self._supersede(c, key, row_id, now)
        return self._require(c, row_id), True

    @staticmethod
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
        cur = c.execute(
            "INSERT INTO files (path, dev, ino, size, mtime_ns, state, reason, content_hash, held, "
            "first_seen, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, _i64(ident.dev), _i64(ident.ino), ident.size, ident.mtime_ns, State.SEEN.value,
             _text(reason), content_hash, int(held), now, now),
        )
        return int(cur.lastrowid)  # type: ignore[arg-type]

    @staticmethod
    def _supersede(c: sqlite3.Connection, key: bytes, keep: int, now: float) -> None:
        """Waiting rows at ``key`` other than ``keep`` describe a file no longer there."""
        c.execute(
            f"UPDATE files SET state = ?, reason = ?, updated = ? WHERE path = ? AND id != ? "
            f"AND state IN ({_states_sql(_WAITING)})",
            (State.GONE.value, f"replaced by a changed file (journal row {keep})", now, key, keep),
        )

    def update_identity(self, file_id: int, identity: FileIdentity) -> FileRow:
        """The file of a waiting row (seen, settling, queued) grew or changed while it was being
        written: same work item, new identity. Saves a superseded row per poll of a slow write."""
        with self._write("update a file's identity") as c:
            row = self._require(c, file_id)
            if row.state not in _WAITING or row.held:
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
            new_id = self._insert(c, key, row.identity, now, content_hash=row.content_hash,
                                  reason=reason)
            self._supersede(c, key, new_id, now)
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
    ) -> MoveRow:
        """The file was moved: in ONE transaction, its row goes from ``classifying`` to
        ``state`` (moved, review or quarantined) and a move row records source, destination,
        prediction, model version and time. Returns the move row."""
        state = State(state)
        conf = _confidence(confidence)
        scores_json = _scores_json(scores)
        src, dest = _path_key(source), _path_key(destination)
        if not src or not dest:
            raise ValueError("source and destination must not be empty")
        with self._write("record a move") as c:
            return self._finish(
                c, file_id, state, src, dest, _text(genre), conf, scores_json,
                _text(model_version), _text(reason), content_hash,
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
        return _move_row(c.execute("SELECT * FROM moves WHERE id = ?", (cur.lastrowid,)).fetchone())

    def finish_pending(self, file_id: int) -> MoveRow:
        """Complete a move planned by :meth:`begin_move` (with its outcome) that a crash
        interrupted after the file reached its destination; the caller has checked that the
        destination is complete and the source gone."""
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
                row.confidence, r["scores"] or "{}", row.model_version, row.reason, None,
            )

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

    def recoverable(self) -> list[FileRow]:
        """Work a crash or stop interrupted: non-terminal rows not held, oldest first."""
        with self._read("list unfinished files") as c:
            return [
                _file_row(r)
                for r in c.execute(
                    f"SELECT * FROM files WHERE held = 0 AND state NOT IN "
                    f"({_states_sql(TERMINAL)}) ORDER BY id"
                )
            ]

    def waiting_for_lock(self) -> bool:
        """A write is waiting for another process's lock on the journal right now."""
        return self._busy_since is not None

    def waiting_count(self) -> int:
        """Files recorded and waiting for a worker (not held by an undo)."""
        with self._read("count waiting files") as c:
            return int(c.execute(
                "SELECT count(*) FROM files WHERE held = 0 AND state IN ('seen', 'settling', 'queued')"
            ).fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Number of rows per state; every state is a key."""
        out = {s.value: 0 for s in State}
        with self._read("count files") as c:
            for r in c.execute("SELECT state, count(*) AS n FROM files GROUP BY state"):
                out[r["state"]] = r["n"]
        return out

    def held_count(self) -> int:
        """Files the user undid that are still waiting, unchanged, in the inbox."""
        with self._read("count held files") as c:
            return c.execute(
                "SELECT count(*) FROM files WHERE held = 1 AND state = ?", (State.SEEN.value,)
            ).fetchone()[0]

    # -- moves -----------------------------------------------------------------------------

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

    def move(self, move_id: int) -> MoveRow | None:
        """The move with this id, if any."""
        with self._read("read a move") as c:
            r = c.execute("SELECT * FROM moves WHERE id = ?", (move_id,)).fetchone()
            return None if r is None else _move_row(r)

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
            m = c.execute("SELECT * FROM moves WHERE id = ?", (move_id,)).fetchone()
            if m is None:
                raise JournalError(f"journal {os.fspath(self.path)!r}: no move {move_id}")
            row = self._require(c, m["file_id"])
            if m["undone"]:
                raise TransitionError(
                    row.id, row.path, row.state, State.SEEN, f"move {move_id} was already undone"
                )
            if row.state not in PLACED:
                raise TransitionError(
                    row.id, row.path, row.state, State.SEEN, f"move {move_id} is not its last move"
                )
            key = _path_key(restored_path)
            now = self._clock()
            c.execute("UPDATE moves SET undone = 1 WHERE id = ?", (move_id,))
            c.execute(
                "UPDATE files SET path = ?, dev = ?, ino = ?, size = ?, mtime_ns = ?, state = ?, "
                "held = 1, reason = ?, destination = NULL, pending_state = NULL, "
                "content_hash = coalesce(?, content_hash), updated = ? WHERE id = ?",
                (key, _i64(identity.dev), _i64(identity.ino), identity.size, identity.mtime_ns,
                 State.SEEN.value, f"undone by the user (move {move_id})", content_hash, now,
                 row.id),
            )
            self._supersede(c, key, row.id, now)

    # -- meta ------------------------------------------------------------------------------

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
