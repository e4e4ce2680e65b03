"""The daemon's intake: a complete file from the watcher recorded in the journal and put on the
work queue (or held for its album), and the backlog the journal keeps when the queue is full.

The work on a queued file is the :class:`~genre_daemon.filer.core.Filer`'s; this is only how
files reach it in the daemon (``import`` walks its folder instead).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from genre_daemon.filer.core import INCOMPLETE, UNREADABLE, Filer, incomplete_grace, unreadable
from genre_daemon.filing.journal import WAITING, FileIdentity, FileRow, JournalError, State, content_hash
from genre_daemon.system.logs import RepeatedProblem

__all__ = ["Intake"]

log = logging.getLogger("genre_daemon.daemon.service")


class Intake:
    """Files into the journal and onto the queue. ``hold_for_album(row)``: whether a file waits
    for its album folder instead (the daemon's :class:`~genre_daemon.daemon.albums.AlbumIntake`)."""

    def __init__(self, filer: Filer, work: queue.Queue[Any], hold_for_album: Callable[[FileRow], bool]) -> None:
        self.filer = filer
        self.queue = work
        self.hold_for_album = hold_for_album
        self.lock = threading.Lock()
        self.queued: set[int] = set()  # file ids on the queue or in a worker's hands
        self.deferred: set[int] = set()  # put back by a failed move: retried at the next rescan only
        self.backlog = False  # the journal holds queued files the in-memory queue had no room for
        self.unrecorded = RepeatedProblem(30.0)  # the journal refusing new files (disk full, ...)

    def offer(self, path: Path) -> bool:
        """A complete file in the inbox (from the watcher's thread). False: cannot take it now."""
        journal = self.filer.journal
        if journal is None or self.filer.stop.is_set():
            return False
        try:
            identity = FileIdentity.of(path)
            row, new = journal.observe(path, identity, hasher=content_hash)
            if not new and self._readable_again(row, path):
                row, new = journal.reopen(row.id), True
                log.info("%s can be read now: taking it", path)
            elif not new and self._incomplete_for_good(row):
                row, new = journal.reopen(row.id), True
                log.info("%s has not changed for %.0f s: taking it as it is", path,
                         incomplete_grace(self.filer.settings))
            if new:  # (a row already recorded is in the queue, the journal's backlog, or done)
                self.enqueue(row)  # a full queue leaves it in the journal: the backlog
            if self.unrecorded.clear():
                log.info("the journal records files again")
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:  # e.g. hashing a file that cannot be read: the next rescan retries
            log.warning("%s: cannot look at it now (%s); retried at the next rescan", path, exc)
            return True
        except JournalError as exc:  # the watcher keeps the file and offers it again
            count = self.unrecorded.note(str(path))
            if count is not None:  # once, then every 30 s: the retries come every tick
                log.warning("%d file(s) not recorded yet, waiting in the inbox (latest %s): %s; "
                            "retrying (said again every %.0f s at most)", count, path, exc,
                            self.unrecorded.interval)
            return False

    def _readable_again(self, row: FileRow, path: Path) -> bool:
        """A file skipped as unreadable (same identity: a chmod changes no mtime) that can be
        read now."""
        return (row.state == State.GONE and not row.held and (row.reason or "").startswith(UNREADABLE)
                and unreadable(path) is None)

    def _incomplete_for_good(self, row: FileRow) -> bool:
        """A file held back as incomplete that has stayed as it was for the whole grace period
        (same identity, so same mtime): it will not grow any more."""
        return (row.state == State.GONE and not row.held and (row.reason or "").startswith(INCOMPLETE)
                and time.time() - row.identity.mtime_ns / 1e9 >= incomplete_grace(self.filer.settings))

    def enqueue(self, row: FileRow) -> bool:
        """Record the file as queued, then queue it. A full queue leaves it queued in the
        journal (the backlog lives there, not in memory: 10,000 files dropped at once cost
        journal rows, not a list of paths) and returns False; the daemon's tick refills the
        queue from the journal, oldest first, as the workers drain it."""
        journal = self.filer.journal
        assert journal is not None
        if self.hold_for_album(row):  # it waits for its album folder to settle (albums: together)
            return True
        with self.lock:  # claim the id; the journal write happens outside the lock (it may wait)
            if row.id in self.queued:
                return True
            self.queued.add(row.id)
        try:
            if row.state == State.SEEN:
                row = journal.set_state(row.id, State.QUEUED, via=[State.SETTLING])
            elif row.state == State.SETTLING:
                row = journal.set_state(row.id, State.QUEUED)
            self.queue.put_nowait(row.id)
        except queue.Full:
            with self.lock:
                self.queued.discard(row.id)
            self.backlog = True
            return False
        except BaseException:
            with self.lock:
                self.queued.discard(row.id)
            raise
        return True

    def done(self, file_id: int) -> None:
        """A worker finished with the file (placed, or left where it is)."""
        with self.lock:
            self.queued.discard(file_id)

    def requeue_waiting(self, *, retries: bool) -> None:
        """Rows the journal holds as waiting but the queue does not: the backlog, and with
        ``retries`` (at a rescan) the files a failed move put back (disk full and the like),
        which are otherwise left alone so they cannot starve the rest."""
        journal = self.filer.journal
        assert journal is not None
        if retries:
            self.deferred.clear()
        for row in journal.recoverable(under=self.filer.settings.inbox):
            if row.state in WAITING and row.id not in self.queued and row.id not in self.deferred:
                if not self.enqueue(row):
                    break
