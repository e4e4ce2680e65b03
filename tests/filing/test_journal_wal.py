"""The journal's WAL survives every way this process and others open and close the journal (issue 19
J1). POSIX record locks belong to the process: closing *any* descriptor of the journal file drops
every lock this process holds on it, those of its other SQLite connections included, and another
process closing its connection then finds no reader left and deletes the WAL the first one still
writes into. Real SQLite files and a real second process; no mocks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from genre_daemon.filing.journal import Journal, State
from test_journal import ident, make_row, raw

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Another process opens the journal, reads the counts and closes it, as `genre-daemon status` does.
OPEN_AND_CLOSE = "import sys; from genre_daemon.filing.journal import Journal\nwith Journal(sys.argv[1]) as j: j.counts()"


def other_process_opens_and_closes(db: Path) -> None:
    subprocess.run([sys.executable, "-c", OPEN_AND_CLOSE, str(db)], check=True, cwd=PROJECT_ROOT, timeout=60)


def deleted_journal_fds(db: Path) -> list[str]:
    """This process's open descriptors of the journal's files that point at an unlinked file."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
        if target.startswith(str(db)) and target.endswith("(deleted)"):
            found.append(target)
    return found


def test_two_journals_in_one_process_and_another_process_never_lose_the_wal(tmp_path: Path) -> None:
    db = tmp_path / "state" / "journal.sqlite3"
    old_umask = os.umask(0o022)  # a usual umask: the journal's files must be 0o600 all the same
    try:
        first = Journal(db)
    finally:
        os.umask(old_umask)
    try:
        make_row(first, State.MOVED, "/inbox/before.mp3", ident())
        # A second connection in this process (the daemon's review page), then another process
        # (the CLI) opening and closing: the first connection's locks must still stand.
        with Journal(db) as second:
            assert second.counts()[State.MOVED.value] == 1
            other_process_opens_and_closes(db)
            assert deleted_journal_fds(db) == []
            make_row(first, State.MOVED, "/inbox/during.mp3", ident())
        other_process_opens_and_closes(db)  # after the second closed, too
        assert deleted_journal_fds(db) == []
        make_row(first, State.REVIEW, "/inbox/after.mp3", ident())
        # Another process sees every row the first connection wrote: nothing went to a lost WAL.
        with raw(db) as c:
            paths = {bytes(r[0]).decode() for r in c.execute("SELECT path FROM files")}
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert paths == {"/inbox/before.mp3", "/inbox/during.mp3", "/inbox/after.mp3"}
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.iterdir()}
        assert modes == {"journal.sqlite3": 0o600, "journal.sqlite3-wal": 0o600, "journal.sqlite3-shm": 0o600}
    finally:
        first.close()

