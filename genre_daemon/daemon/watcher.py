"""The inbox watcher: filters filesystem events, waits until each file is complete, hands it on.

It never classifies and never touches the journal; the service wires ``on_ready`` to its queue.

The decisions are pure and live in :mod:`genre_daemon.daemon.settling`: ``is_candidate`` (is
this path a file to take?) and ``Settler`` (is it complete?). :class:`InboxWatcher` runs a
watchdog observer on the inbox (inotify, or polling for network shares), feeds the settler from
thin event handlers, and hands settled paths to ``on_ready`` from its own thread. A full rescan
runs at start (events can be dropped, e.g. when inotify's queue overflows; the service calls
:meth:`InboxWatcher.rescan` periodically too). A file in a folder of the inbox is handed on only
once that folder (the one directly in the inbox) is quiet (:class:`FolderGate`): a ripper's
album is never taken a track at a time.

Links: a symlink in the inbox is never a candidate and never followed (the observer does not
follow links, the rescan walks with ``follow_symlinks=False``, and before a path is handed on
every folder between the inbox and the file is checked to be a real folder).
"""

from __future__ import annotations

import logging
import os
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Literal

from watchdog.events import (
    EVENT_TYPE_ATTRIB,
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CLOSED_NO_WRITE,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    EVENT_TYPE_OPENED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from genre_daemon.daemon.settling import (
    OWN_MARK,
    PARTIAL_SUFFIXES,
    FolderGate,
    Settler,
    is_candidate,
    is_hidden,
    normalized_extensions,
    skipped_folder,
)

try:  # Linux only; elsewhere no observer reports close-after-write.
    from watchdog.observers.inotify import InotifyObserver
except Exception:  # pragma: no cover - non-Linux
    InotifyObserver = None  # type: ignore[assignment,misc]

logger = logging.getLogger(__name__)

# A hidden or partial name unchanged this long is said to be left alone (a download that died);
# before that it may still be arriving, and saying so would be noise.
STALE_SECONDS = 600.0


class _Handler(FileSystemEventHandler):
    """Thin adapter: every watchdog event goes to the watcher, and nothing escapes it
    (an exception in a handler would kill the observer thread)."""

    def __init__(self, watcher: InboxWatcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._watcher._on_event(event)
        except Exception:
            logger.exception("error handling %r", event)


_Verdict = Literal["take", "gone", "wait"]


class InboxWatcher:
    """Watches ``inbox`` recursively and calls ``on_ready(path)`` once per complete audio file.

    ``on_ready`` runs on the watcher's own thread and must not block; it returns False when the
    daemon cannot take the file now (queue full): the file is kept and offered again on a later
    tick, before any file that settled after it. Paths handed on are under ``inbox`` as given,
    even when the inbox itself is a symlink (the observer watches its real path).
    """

    def __init__(
        self,
        inbox: Path,
        extensions: Collection[str],
        settle_seconds: float,
        on_ready: Callable[[Path], bool],
        *,
        excluded: Collection[Path] = (),
        polling: bool = False,
        poll_interval: float = 0.5,
        albums: bool = False,
        folder_quiet: float = 0.0,
    ) -> None:
        self.inbox = Path(os.path.abspath(inbox))
        self.albums = albums  # files in folders may be an album's sidecars: not "left alone"
        self.extensions = normalized_extensions(extensions)
        self.settle_seconds = settle_seconds
        self.polling = polling
        self.poll_interval = poll_interval
        self._on_ready = on_ready
        self._given_excluded = tuple(Path(os.path.abspath(p)) for p in excluded)
        self._excluded: tuple[Path, ...] = self._given_excluded
        self._tick = max(0.02, min(0.25, settle_seconds / 4))

        self._lock = threading.Lock()  # guards _settler, _ready, _dirs
        self._settler = Settler(settle_seconds)
        self._gate = FolderGate(self.inbox, folder_quiet)  # a file in a folder: once the folder is quiet
        self._ready: dict[Path, None] = {}  # settled, waiting for on_ready to accept (FIFO)
        self._dirs: dict[Path, None] = {}  # folders to scan on the next tick

        self._life_lock = threading.RLock()  # guards the observer's lifecycle
        self._observer: BaseObserver | None = None
        self._root = str(self.inbox)  # real path the observer watches
        self._root_id: tuple[int, int] | None = None
        self._reports_writers = False  # the observer sends open/close-after-write events
        self._handler = _Handler(self)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._warned_missing = False
        self._told: set[Path] = set()  # files said once to be left alone
        self.left_alone = 0  # files and folders left alone in the inbox at the last full rescan

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the observer, the settle thread, then rescan the inbox.

        A missing inbox is not an error here: it is logged, :meth:`is_alive` is False, and
        :meth:`ensure_running` starts watching once the folder exists.
        """
        with self._life_lock:
            if self._thread is not None:
                raise RuntimeError("InboxWatcher already started")
            self._stop.clear()
            if not self._start_observer():
                logger.warning("inbox %s cannot be watched yet; waiting for it", self.inbox)
                self._warned_missing = True
            self._thread = threading.Thread(
                target=self._run, name="genre-daemon-settle", daemon=True
            )
            self._thread.start()
        self.rescan()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the observer and the settle thread; files not yet handed on stay pending."""
        with self._life_lock:
            self._stop.set()
            self._stop_observer(timeout)
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("settle thread did not stop within %.1f s", timeout)

    def is_alive(self) -> bool:
        """Whether events are being watched: the observer and its emitter threads run, and the
        inbox is still the folder they watch (not deleted, replaced or unmounted)."""
        with self._life_lock:  # the emitter set changes only under this lock
            observer, root_id = self._observer, self._root_id
            if observer is None or not observer.is_alive():
                return False
            emitters = list(observer.emitters)
        if not emitters or not all(e.is_alive() for e in emitters):
            return False
        try:
            st = os.stat(self.inbox)
        except OSError:
            return False
        return stat_mod.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == root_id

    def ensure_running(self) -> bool:
        """Restart a dead observer once the inbox exists again, then rescan.

        Never creates the inbox (a vanished network share must not be replaced by an empty
        local folder). Returns True when a restart happened.
        """
        with self._life_lock:
            if self._thread is None or self._stop.is_set() or self.is_alive():
                return False
            if not os.path.isdir(self.inbox):
                if not self._warned_missing:
                    logger.warning("inbox %s is gone; waiting for it to come back", self.inbox)
                    self._warned_missing = True
                return False
            self._stop_observer(5.0)
            if not self._start_observer():
                return False
            logger.warning("watching %s again (observer restarted)", self.inbox)
            self._warned_missing = False
        self.rescan()
        return True

    def rescan(self) -> int:
        """Walk the inbox without following symlinks and track every candidate file.

        Returns how many candidates were found. Files already settled and waiting are not
        reset; files still settling keep their progress.
        """
        return self._scan(self.inbox)

    def track(self, path: Path) -> None:
        """Follow ``path`` again, e.g. when the daemon found it changed after it was handed on:
        it is offered again once complete. Ignored unless it is a candidate in the inbox."""
        self._touch(Path(os.path.abspath(path)), writing=None)

    def pending(self) -> int:
        """Files seen but not yet handed on (settling, or waiting for the daemon to accept)."""
        with self._lock:
            return len(self._settler) + len(self._ready)

    def settling_under(self, folder: Path) -> bool:
        """Whether any file under ``folder`` is still settling or waiting to be handed on (an
        album is taken only once all of it has arrived)."""
        with self._lock:
            return any(p.is_relative_to(folder) for p in (*self._settler.paths(), *self._ready))

    def rescan_folder(self, folder: Path) -> int:
        """Track every candidate under ``folder`` again (an album that changed while it was
        being filed): each is offered once complete."""
        return self._scan(folder)

    # -- observer ----------------------------------------------------------------------------

    def _start_observer(self) -> bool:
        """Start a fresh observer on the inbox's real path; False when that is impossible."""
        root = os.path.realpath(self.inbox)
        try:
            st = os.stat(root)
        except OSError:
            return False
        if not stat_mod.S_ISDIR(st.st_mode):
            return False
        self._root, self._root_id = root, (st.st_dev, st.st_ino)
        self._excluded = self._resolve_excluded(root)
        observer = self._new_observer(self.polling)
        if observer is None and not self.polling and os.path.isdir(root):
            logger.warning("inotify unavailable for %s; falling back to polling", self.inbox)
            observer = self._new_observer(True)
        if observer is None:
            return False
        self._observer = observer
        return True

    def _new_observer(self, polling: bool) -> BaseObserver | None:
        observer: BaseObserver | None = None
        try:
            if polling:
                # lstat: symlinked folders are never descended into.
                observer = PollingObserverVFS(
                    os.lstat, os.scandir, polling_interval=self.poll_interval
                )
            else:
                observer = Observer()
            # Set before any event arrives: only inotify reports open and close-after-write.
            self._reports_writers = InotifyObserver is not None and isinstance(
                observer, InotifyObserver
            )
            observer.schedule(self._handler, self._root, recursive=True, follow_symlink=False)
            observer.start()
        except OSError as exc:
            logger.warning("cannot watch %s: %s", self.inbox, exc)
            if observer is not None:
                try:
                    observer.stop()
                except Exception:  # pragma: no cover - best effort cleanup
                    logger.debug("cleanup of a failed observer", exc_info=True)
            return None
        return observer

    def _stop_observer(self, timeout: float) -> None:
        observer, self._observer = self._observer, None
        if observer is None:
            return
        observer.stop()
        if observer.ident is not None:
            observer.join(timeout)

    def _resolve_excluded(self, root: str) -> tuple[Path, ...]:
        """Excluded folders as paths under ``inbox``, also when given through another route
        to the same place (a symlinked inbox, or a path through the real folder)."""
        found = set(self._given_excluded)
        for ex in self._given_excluded:
            real = Path(os.path.realpath(ex))
            if real.is_relative_to(root):
                found.add(self.inbox / real.relative_to(root))
        return tuple(found)

    # -- events (observer thread: thin, no I/O) ----------------------------------------------

    def _map(self, raw: bytes | str) -> Path | None:
        """An event path (under the real root) as a path under ``inbox``."""
        path = os.fsdecode(raw)
        if path == self._root:
            return self.inbox
        prefix = self._root.rstrip(os.sep) + os.sep
        if not path.startswith(prefix):
            return None
        return self.inbox / path[len(prefix):]

    def _on_event(self, event: FileSystemEvent) -> None:
        kind = event.event_type
        path = self._map(event.src_path)
        if logger.isEnabledFor(logging.DEBUG):
            arrow = f" -> {os.fsdecode(event.dest_path)}" if event.dest_path else ""
            logger.debug("%s %s%s", kind, os.fsdecode(event.src_path), arrow)
        # something arrived or was written: its folder is not quiet (a folder's own modification,
        # such as the daemon moving a file out of it, is no news)
        if kind in (EVENT_TYPE_CREATED, EVENT_TYPE_MOVED) or (
                not event.is_directory and kind in (EVENT_TYPE_MODIFIED, EVENT_TYPE_CLOSED, EVENT_TYPE_ATTRIB)):
            arrived = self._map(event.dest_path) if kind == EVENT_TYPE_MOVED else path
            self._gate.changed(arrived, folder=event.is_directory)
        if event.is_directory:
            if kind == EVENT_TYPE_CREATED and path is not None:
                self._queue_dir(path)
            elif kind == EVENT_TYPE_MOVED:
                if path is not None:
                    self._forget_under(path)
                dest = self._map(event.dest_path)
                if dest is not None:
                    self._queue_dir(dest)
            elif kind == EVENT_TYPE_DELETED and path is not None:
                self._forget_under(path)
                if path == self.inbox:
                    logger.warning("inbox %s was deleted or unmounted", self.inbox)
            return
        if kind == EVENT_TYPE_MOVED:
            if path is not None:
                self._forget(path)
            dest = self._map(event.dest_path)
            if dest is not None:
                self._touch(dest, writing=False, fresh=True)
        elif kind == EVENT_TYPE_DELETED:
            if path is not None:
                self._forget(path)
        elif path is None:
            return
        elif kind == EVENT_TYPE_CREATED:
            # A hard link or rename-in is created without an open: no writer is assumed.
            self._touch(path, writing=None)
        elif kind == EVENT_TYPE_MODIFIED:
            self._touch(path, writing=True if self._reports_writers else None)
        elif kind == EVENT_TYPE_CLOSED:
            self._touch(path, writing=False)
        elif kind == EVENT_TYPE_OPENED:
            # Readers open files too: counted, and only for files still arriving.
            self._opened(path)
        elif kind == EVENT_TYPE_CLOSED_NO_WRITE:
            # A reader's close says nothing about a writer that still holds the file.
            self._closed_unwritten(path)
        elif kind == EVENT_TYPE_ATTRIB:
            # A chmod or chown changes no signature, yet may make a skipped (unreadable) file
            # readable: offer it again once settled (the daemon ignores a file it already has).
            self._touch(path, writing=None)

    def _wanted(self, path: Path) -> bool:
        return is_candidate(path, self.inbox, self.extensions, self._excluded)

    def _left_alone(self, path: Path, entry: os.DirEntry[str] | None = None) -> bool:
        """Say once (per path) why a file in the inbox is not taken (otherwise a ``.wma`` dropped
        in, or a download's temporary file that never became audio, sits there with nothing in
        the log); True when it is left alone. A hidden or partial name is said only by a scan
        (``entry``) that finds it unchanged for :data:`STALE_SECONDS`: before, it may be arriving."""
        try:
            parts = path.relative_to(self.inbox).parts
        except ValueError:
            return False
        if (not parts or any(is_hidden(p) for p in parts[:-1]) or OWN_MARK in parts[-1]
                or skipped_folder(path, self._excluded)):
            return False  # under a hidden folder (the folder is said), or the daemon's own
        if self.albums and len(parts) > 1:  # in a folder: it travels with the album, if it is one
            return False
        name = parts[-1]
        temporary = is_hidden(name, self.extensions) or name.lower().endswith(PARTIAL_SUFFIXES)
        if temporary:
            try:
                age = time.time() - entry.stat(follow_symlinks=False).st_mtime if entry is not None else 0.0
            except OSError:
                return False
            if age < STALE_SECONDS:
                return False
        if path in self._told:
            return True
        if len(self._told) >= 10_000:
            self._told.clear()
        self._told.add(path)
        if temporary:
            logger.info("%s: left alone in the inbox: a hidden or partial name (as a download or copy has while "
                        "it arrives), unchanged for %.0f min", path, age / 60)
        else:
            ext = os.path.splitext(name)[1] or "(none)"
            logger.info("%s: left alone in the inbox: its extension %s is not one of the extensions taken (%s)",
                        path, ext, ", ".join(sorted(self.extensions)))
        return True

    def _touch(
        self, path: Path, *, writing: bool | None, only_tracked: bool = False, fresh: bool = False
    ) -> None:
        if not self._wanted(path):
            if writing is False or fresh:  # complete (closed or renamed in): say it once
                self._left_alone(path)
            return
        with self._lock:
            if path in self._ready:
                if not (writing or fresh):
                    return
                del self._ready[path]  # changed after it settled: settle again
            elif only_tracked and path not in self._settler:
                return
            if fresh:
                self._settler.forget(path)
            self._settler.touch(path, writing=writing)

    def _opened(self, path: Path) -> None:
        # Only counted: the daemon's own probes and reads open files too, so an open must not
        # restart the quiet period (a writer's writes do that) or take back a settled file.
        if self._wanted(path):
            with self._lock:
                self._settler.opened(path)

    def _closed_unwritten(self, path: Path) -> None:
        if self._wanted(path):
            with self._lock:
                self._settler.closed_unwritten(path)

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._settler.forget(path)
            self._ready.pop(path, None)

    def _forget_under(self, folder: Path) -> None:
        """A folder left: drop waiting files under it (settling ones vanish on their next stat)."""
        self._gate.forget(folder)
        with self._lock:
            for path in [p for p in self._ready if p.is_relative_to(folder)]:
                del self._ready[path]

    def _queue_dir(self, folder: Path) -> None:
        """A folder appeared: it may already hold files, so scan it on the next tick."""
        if folder == self.inbox or not skipped_folder(folder, self._excluded):
            with self._lock:
                self._dirs[folder] = None

    # -- settle thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self._step()
            except Exception:
                logger.exception("watcher step failed; continuing")

    def _step(self) -> None:
        with self._lock:
            folders, self._dirs = list(self._dirs), {}
        for folder in folders:
            self._scan(folder)
        with self._lock:
            for path in self._settler.due():
                self._ready[path] = None
            offers = list(self._ready)
        for path in offers:
            if self._stop.is_set():
                return
            if not self._gate.allows(path, self._excluded):
                continue  # kept, in order, until its folder is quiet
            verdict = self._check(path)
            with self._lock:
                if path not in self._ready:
                    continue  # deleted, moved or changed meanwhile
                if verdict != "take":
                    del self._ready[path]
                    if verdict == "wait":
                        self._settler.touch(path)
                    continue
            try:
                taken = self._on_ready(path)
            except Exception:
                logger.exception("on_ready failed for %s; will offer it again", path)
                taken = False
            if not taken:
                return  # backpressure: the rest waits for the next tick, in order
            logger.debug("handed on %s", path)
            with self._lock:
                self._ready.pop(path, None)

    def _check(self, path: Path) -> _Verdict:
        """Last look before handing on: still a regular file reached through real folders only,
        and no partial-download sibling (a browser's empty placeholder beside ``x.mp3.part``)."""
        try:
            if not stat_mod.S_ISREG(os.lstat(path).st_mode):
                return "gone"
            folder = path.parent
            while folder != self.inbox and folder != folder.parent:
                if not stat_mod.S_ISDIR(os.lstat(folder).st_mode):
                    logger.debug("not handing on %s: %s is not a real folder", path, folder)
                    return "gone"
                folder = folder.parent
        except OSError:
            return "gone"
        for suffix in PARTIAL_SUFFIXES:
            if os.path.lexists(path.with_name(path.name + suffix)):
                return "wait"
        return "take"

    def _scan(self, top: Path) -> int:
        """Track every candidate under ``top`` (never following symlinks); returns the count."""
        if top != self.inbox:
            if not (top.is_relative_to(self.inbox) and self._real_folder_in_inbox(top)):
                return 0
        found: list[Path] = []
        alone = 0
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                entries = os.scandir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                logger.warning("cannot scan %s: %s", folder, exc)
                continue
            with entries:
                for entry in entries:
                    path = folder / entry.name
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if is_hidden(entry.name):
                                alone += self._left_alone(path, entry)
                            elif not skipped_folder(path, self._excluded):
                                stack.append(path)
                        elif entry.is_file(follow_symlinks=False):
                            if self._wanted(path):
                                found.append(path)
                            else:
                                alone += self._left_alone(path, entry)
                    except OSError:
                        continue
        if top == self.inbox:
            self.left_alone = alone
        with self._lock:
            for path in found:
                if path not in self._ready:
                    self._settler.touch(path)
        return len(found)

    def _real_folder_in_inbox(self, folder: Path) -> bool:
        """Every component from the inbox down to ``folder`` is a real folder, none hidden."""
        parts = folder.relative_to(self.inbox).parts
        if any(is_hidden(part) for part in parts) or skipped_folder(folder, self._excluded):
            return False
        current = self.inbox
        try:
            for part in parts:
                current = current / part
                if not stat_mod.S_ISDIR(os.lstat(current).st_mode):
                    return False
        except OSError:
            return False
        return True
