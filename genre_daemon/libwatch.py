"""Watch the library (and ``retrain.labelled_dirs``) for the user's moves, so labels count at once.

The label scan (:mod:`genre_daemon.labels`) compares the journal with the disk; it is the source of
truth and also runs at every rescan, so a correction made while the daemon was stopped still
counts. This module only makes it prompt: a watchdog observer on each folder notes that something
changed, and :meth:`LibraryWatcher.due` says when the user has been quiet for ``quiet_seconds``
(one scan for a whole drag-and-drop of fifty files, not fifty scans).

The daemon's own placements also raise events; the scan tells them apart through the journal, so
they never count as labels. Nothing here follows a symlink (the observer does not, and the scan
walks with ``follow_symlinks=False``). When the observer cannot start (too many folders for
inotify's watch limit, a network share) the folder is left to the periodic rescans, with a warning.
"""

from __future__ import annotations

import logging
import threading
import time
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
_IGNORED_EVENTS = {EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE}  # reads (our own, the user's player)


class _Handler(FileSystemEventHandler):
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.event_type not in _IGNORED_EVENTS:
            self._on_change()


class LibraryWatcher:
    """Observers on ``folders``; :meth:`due` is true once after a burst of changes settles."""

    def __init__(self, folders: Sequence[Path], *, polling: bool = False, quiet_seconds: float = QUIET_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.folders = [Path(f) for f in folders]
        self.polling = polling
        self.quiet_seconds = quiet_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_change: float | None = None
        self._observer: BaseObserver | None = None
        self.watching: list[Path] = []

    def start(self) -> None:
        """Watch every folder that exists; a folder that cannot be watched is logged and skipped."""
        observer: BaseObserver = PollingObserver(timeout=2.0) if self.polling else Observer()
        handler = _Handler(self.changed)
        for folder in self.folders:
            try:
                observer.schedule(handler, str(folder), recursive=True)
                self.watching.append(folder)
            except OSError as exc:
                log.warning("not watching %s for your moves (%s); they are found at each rescan", folder, exc)
        if not self.watching:
            return
        try:
            observer.start()
        except OSError as exc:  # e.g. ENOSPC: inotify's max_user_watches reached
            log.warning("not watching the library for your moves (%s); they are found at each rescan", exc)
            self.watching = []
            return
        self._observer = observer

    def stop(self, timeout: float = 5.0) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None

    def is_alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def changed(self) -> None:
        """Note a change (called from the observer's thread)."""
        with self._lock:
            self._last_change = self._clock()

    def due(self) -> bool:
        """True once when changes were seen and none for ``quiet_seconds``; then resets."""
        with self._lock:
            if self._last_change is None or self._clock() - self._last_change < self.quiet_seconds:
                return False
            self._last_change = None
            return True
