"""The daemon's albums (``albums: together``) before they are filed: held back while the folder
arrives, and taken once it has settled. Filing them is the
:class:`~genre_daemon.filer.albums.AlbumFiler`'s.

1. Intake. A settled track that :func:`genre_daemon.filing.albums.group` puts in an album is not
   queued on its own; its album folder is noted (:meth:`AlbumIntake.hold_for_album`).
2. Readiness, on the main loop's tick (:meth:`AlbumIntake.tick`): an album is taken once every
   track of it is recorded and settled, nothing in the folder (sidecars included) changed for
   ``settle_seconds``, and no process holds any of its files open for writing. Its snapshot
   (every file's signature) and its tracks go to the journal in one transaction, and the album is
   queued for a worker.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genre_daemon.daemon.settling import is_candidate, is_hidden
from genre_daemon.daemon.watcher import InboxWatcher
from genre_daemon.errors import MoveError
from genre_daemon.filer.albums import GIVEN_UP, album_snapshot_from, album_snapshot_json
from genre_daemon.filer.core import Filer
from genre_daemon.filing import album_mover
from genre_daemon.filing.albums import Grouping, group
from genre_daemon.filing.journal import WAITING, FileRow
from genre_daemon.filing.writers import open_for_writing

__all__ = ["AlbumIntake", "AlbumJob", "album_snapshot_from", "album_snapshot_json"]

log = logging.getLogger("genre_daemon.daemon.service")

GROUPING_TTL = 1.0  # seconds a listing of an inbox folder is reused for routing its files


@dataclass(frozen=True)
class AlbumJob:
    """An album on the work queue (file ids are plain ints)."""

    album_id: int


class AlbumIntake:
    """Albums from intake to the work queue (see the module docstring)."""

    def __init__(self, filer: Filer, work: queue.Queue[Any], lock: threading.Lock,
                 enqueue: Callable[[FileRow], bool], watcher: Callable[[], InboxWatcher | None]) -> None:
        self.filer = filer
        self.queue = work
        self._lock = lock  # the daemon's queue lock, shared with the files' intake
        self._enqueue = enqueue
        self._watcher = watcher
        self._album_roots: dict[Path, float] = {}  # noted album folders -> not before (monotonic)
        self._albums_queued: set[int] = set()
        self._groupings: dict[Path, tuple[float, Grouping]] = {}
        self._album_lock = threading.Lock()

    # ----------------------------------------------------------------- intake
    def _album_of(self, path: Path) -> Path | None:
        """The album folder ``path`` belongs to, or None (a loose file, or ``albums: per_track``)."""
        s = self.filer.settings
        if s.albums != "together" or path.parent == s.inbox or not path.is_relative_to(s.inbox):
            return None
        top = s.inbox / path.relative_to(s.inbox).parts[0]
        now = time.monotonic()
        with self._album_lock:
            cached = self._groupings.get(top)
        if cached is None or now - cached[0] > GROUPING_TTL:
            cached = (now, self._group(top))
            with self._album_lock:
                self._groupings[top] = cached
        root = cached[1].album_of(path)
        if root is not None and self._given_up(root):
            return None
        return root

    def _group(self, top: Path) -> Grouping:
        """The albums and loose files under the inbox folder ``top`` as they are now, the files
        already judged loose kept loose (``FileRow.judged_loose``)."""
        journal = self.filer.journal
        judged = [Path(r.path) for r in journal.recoverable(under=top) if r.judged_loose] if journal else []
        return group(self.filer.settings.inbox, self._audio_under(top), judged)

    def _audio_under(self, top: Path) -> list[Path]:
        """Every audio file the daemon would take under ``top`` (never through a link)."""
        s = self.filer.settings
        excluded = [d for d in (s.review_dir, s.quarantine_dir) if d.is_relative_to(s.inbox)]
        found: list[Path] = []
        for folder, dirs, files in os.walk(top, followlinks=False):
            base = Path(folder)
            dirs[:] = [d for d in dirs if not is_hidden(d)]
            for name in files:
                p = base / name
                if is_candidate(p, s.inbox, s.extensions, excluded) and stat.S_ISREG(_lstat_mode(p)):
                    found.append(p)
        return found

    def _given_up(self, root: Path) -> bool:
        journal = self.filer.journal
        return journal is not None and journal.album_given_up(root, GIVEN_UP)

    def hold_for_album(self, row: FileRow) -> bool:
        """True when ``row`` waits for its album instead of being queued on its own."""
        if row.album_id is not None:  # already one of an album's tracks: the album is queued
            return True
        if row.judged_loose:  # queued on its own before (a restart, the backlog): it stays loose
            return False
        root = self._album_of(Path(row.path))
        if root is None:
            return False
        with self._album_lock:
            self._album_roots.setdefault(root, 0.0)
        return True

    # ----------------------------------------------------------------- readiness
    def tick(self) -> None:
        """Take every noted album that has settled; refill the queue with queued albums."""
        journal = self.filer.journal
        if journal is None:
            return
        for album in journal.active_albums(under=self.filer.settings.inbox):
            if album.state == "queued":
                self.queue_album(album.id)
        now = time.monotonic()
        with self._album_lock:
            due = [r for r, not_before in self._album_roots.items() if now >= not_before]
        for root in due:
            try:
                self._take_if_ready(root)
            except OSError as exc:
                log.warning("%s: cannot look at the album now (%s); trying again", root, exc)

    def _take_if_ready(self, root: Path) -> None:
        journal, s = self.filer.journal, self.filer.settings
        assert journal is not None
        top = s.inbox / root.relative_to(s.inbox).parts[0]
        grouping = self._group(top) if top.is_dir() else Grouping({}, ())
        with self._album_lock:
            self._groupings[top] = (time.monotonic(), grouping)
        if root not in grouping.albums:  # emptied, or no longer an album: its files go on their own
            self._forget_root(root)
            for t in (p for p in grouping.loose if p.is_relative_to(root)):
                row = journal.by_path(str(t))
                if row is not None and row.state in WAITING:
                    self._enqueue(row)
            for other in grouping.albums:
                if other != root and root.is_relative_to(other):
                    with self._album_lock:
                        self._album_roots.setdefault(other, 0.0)
            return
        if journal.active_album(root) is not None:
            self._forget_root(root)
            return
        rows: list[FileRow] = []
        for t in grouping.albums[root]:
            row = journal.by_path(str(t))
            if row is None or row.held or row.state not in WAITING:
                return  # not offered yet (still arriving), or left alone after an undo
            rows.append(row)
        if (watcher := self._watcher()) is not None and watcher.settling_under(root):
            return
        newest = _newest_change(root)
        if time.time() - newest < s.settle_seconds:
            return
        try:
            snap = album_mover.snapshot(root)
        except MoveError as exc:
            log.warning("%s: %s; its tracks are filed one by one", root, exc)
            self._give_up(root, rows, str(exc))
            return
        for rel, sig in snap.files.items():
            if open_for_writing(root / rel):
                return
        track_ids = [r.id for r in rows]
        for r in rows:
            if r.identity.size != snap.files.get(Path(r.path).relative_to(root).as_posix(), (0, 0, -1, 0))[2]:
                return  # a track changed since it settled: the watcher offers it again
        album = journal.open_album(root, track_ids, album_snapshot_json(snap))
        self._forget_root(root)
        others = len(snap.files) - len(track_ids)
        log.info("album %s: %d tracks and %d other files settled; classifying", root.name, len(track_ids), others)
        self.queue_album(album.id)

    def _give_up(self, root: Path, rows: list[FileRow], why: str) -> None:
        """File these tracks one by one from now on (recorded, so a restart does the same)."""
        journal = self.filer.journal
        assert journal is not None
        journal.record_given_up_album(root, f"{GIVEN_UP}: {why}")
        others = sorted(p.name for p in root.rglob("*") if p.is_file() and not any(
            str(p) == r.path for r in rows))
        if others:  # the files that are not audio stay where they are: say so once
            log.info("%s: its %d other file(s) stay in the inbox (%s)", root, len(others), ", ".join(others[:5]))
        self._forget_root(root)
        with self._album_lock:
            self._groupings.clear()
        for r in rows:
            fresh = journal.get(r.id)
            if fresh is not None and fresh.state in WAITING:
                self._enqueue(fresh)

    def _forget_root(self, root: Path) -> None:
        with self._album_lock:
            self._album_roots.pop(root, None)

    def wait(self, root: Path, seconds: float | None) -> None:
        """Look at the album folder ``root`` again after ``seconds`` (None: as soon as it settles,
        keeping an earlier wait)."""
        with self._album_lock:
            if seconds is None:
                self._album_roots.setdefault(root, 0.0)
            else:
                self._album_roots[root] = time.monotonic() + seconds

    def queue_album(self, album_id: int) -> None:
        with self._lock:
            if album_id in self._albums_queued:
                return
            self._albums_queued.add(album_id)
        try:
            self.queue.put_nowait(AlbumJob(album_id))
        except queue.Full:  # the next tick offers it again
            with self._lock:
                self._albums_queued.discard(album_id)

    def done(self, album_id: int) -> None:
        with self._lock:
            self._albums_queued.discard(album_id)


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def _newest_change(root: Path) -> float:
    """The latest mtime or ctime of anything in the album folder, the folder included."""
    newest = 0.0
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in (".", *dirs, *files):
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            newest = max(newest, st.st_mtime, st.st_ctime)
    return newest

