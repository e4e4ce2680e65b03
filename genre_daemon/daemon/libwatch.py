"""Watch the library (and ``retrain.labelled_dirs``) for the user's moves, so labels count at once.

The label scan (:mod:`genre_daemon.learning.labels`) compares the journal with the disk; it is the source of
truth and also runs at every rescan, so a correction made while the daemon was stopped still
counts. This module only makes it prompt: a watchdog observer on each folder notes that something
changed, and :meth:`LibraryWatcher.due` says when the user has been quiet for ``quiet_seconds``
(one scan for a whole drag-and-drop of fifty files, not fifty scans).

The daemon's own placements raise events too: it announces each destination first
(:meth:`LibraryWatcher.expect`), and events on those names (or on the mover's hidden temporary
files) do not wake the scan. Were one to slip through, the scan tells them apart through the
journal anyway, so they never count as labels. Nothing here follows a symlink (the observer does
not, and the scan walks with ``follow_symlinks=False``). A folder that cannot be watched (missing,
inotify's watch limit reached) is left to the periodic rescans, with a warning; with ``polling``
the library is polled every :data:`POLL_SECONDS` (it may be large and on a network share).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

QUIET_SECONDS = 3.0
POLL_SECONDS = 30.0
EXPECTED_MAX = 4096  # announced destinations remembered (the oldest are forgotten first)
_IGNORED_EVENTS = {EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE}  # reads (our own, the user's player)
_TEMP_MARK = ".genre-daemon-"  # the mover's hidden temporary files


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: LibraryWatcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENTS or event.is_directory:
            return  # a new folder alone is no label; the files moved into it are
        paths = [os.fsdecode(p) for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        if all(self._watcher.is_ours(p) for p in paths):
            return
        self._watcher.changed(paths[-1])


class LibraryWatcher:
    """Observers on ``folders``; :meth:`due` is true once after a burst of changes settles."""

    def __init__(self, folders: Sequence[Path], *, polling: bool = False, quiet_seconds: float = QUIET_SECONDS,
                 poll_seconds: float = POLL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.folders = [Path(f) for f in folders]
        self.polling = polling
        self.poll_seconds = poll_seconds
        self.quiet_seconds = quiet_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_change: float | None = None
        self._observer: BaseObserver | None = None
        self._expected: OrderedDict[str, None] = OrderedDict()
        self.recent: deque[str] = deque(maxlen=64)
        self.watching: list[Path] = []

    def start(self) -> None:
        """Watch every folder that exists; a folder that cannot be watched is logged and skipped.

        The observer is started first and each folder scheduled on it, so one failure (e.g.
        ENOSPC: inotify's ``max_user_watches`` reached) costs that folder alone."""
        folders = [f for f in self.folders if f.is_dir() and not f.is_symlink()]
        for folder in set(self.folders) - set(folders):
            log.warning("not watching %s for your moves (not a folder); they are found at each rescan", folder)
        if not folders:
            return
        observer: BaseObserver = PollingObserver(timeout=self.poll_seconds) if self.polling else Observer()
        observer.start()
        handler = _Handler(self)
        for folder in folders:
            try:
                observer.schedule(handler, str(folder), recursive=True)
                self.watching.append(folder)
            except OSError as exc:
                log.warning("not watching %s for your moves (%s); they are found at each rescan", folder, exc)
        if not self.watching:
            observer.stop()
            observer.join(5.0)
            return
        self._observer = observer

    def expect(self, path: Path) -> None:
        """The daemon is about to place a file at ``path``: its events are not the user's."""
        with self._lock:
            self._expected[os.fspath(path)] = None
            while len(self._expected) > EXPECTED_MAX:
                self._expected.popitem(last=False)

    def is_ours(self, path: str) -> bool:
        """An announced destination, or one of the mover's temporary files."""
        if _TEMP_MARK in os.path.basename(path):
            return True
        with self._lock:
            return path in self._expected

    def stop(self, timeout: float = 5.0) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None

    def is_alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def changed(self, path: str = "") -> None:
        """Note a change (called from the observer's thread); the last 64 paths that counted
        are kept in :attr:`recent`, to tell what woke a scan."""
        with self._lock:
            self._last_change = self._clock()
            self.recent.append(path)

    def due(self) -> bool:
        """True once when changes were seen and none for ``quiet_seconds``; then resets."""
        with self._lock:
            if self._last_change is None or self._clock() - self._last_change < self.quiet_seconds:
                return False
            self._last_change = None
            return True
