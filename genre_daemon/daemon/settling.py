"""Which inbox files the daemon takes, and when each is complete: the watcher's decisions, pure.

- :func:`is_candidate` decides from a path alone whether a file is audio the daemon should take.
- :class:`Settler` decides when a file is complete: its ``(device, inode, size, mtime)`` unchanged
  for ``settle_seconds`` and no writer holding it open: the kernel is asked (a read-lease
  probe, :mod:`genre_daemon.filing.writers`), and where it cannot answer, inotify's events decide
  (written and not closed-after-write, or opened more often than closed). A reader's
  open and close never ends a writer's write.
  Clock and stat are injected, so it is tested without threads or sleeps.
- :class:`FolderGate` decides when a folder of the inbox may be touched at all: nothing in it
  created, written or renamed in for ``folder_quiet_seconds``, and no writer holding a file in
  it. A CD ripper or a slow copy pauses between tracks for longer than ``settle_seconds``; a
  track settled alone must not be filed alone (tearing the album) nor its emptied folder
  removed (breaking the next copy). A loose file in the inbox itself is not held.

:class:`genre_daemon.daemon.watcher.InboxWatcher` feeds them from the filesystem's events.
"""

from __future__ import annotations

import logging
import math
import os
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from genre_daemon.filing.hidden import OWN_MARK, is_hidden, normalized_extensions
from genre_daemon.filing.writers import open_for_writing

__all__ = ["OWN_MARK", "PARTIAL_SUFFIXES", "FolderGate", "Settler", "is_candidate", "is_hidden",
           "normalized_extensions", "skipped_folder"]

# The watcher's logger: what the settler says reads as the watcher's, as before.
logger = logging.getLogger("genre_daemon.daemon.watcher")

# Names that downloaders and copiers give a file while it is still being written.
PARTIAL_SUFFIXES = (".part", ".crdownload", ".tmp", ".download", ".partial", ".!qb", ".opdownload")


def skipped_folder(path: Path, excluded: Collection[Path]) -> bool:
    """True when ``path`` is an excluded folder or lies under one (lexically)."""
    return any(path == ex or path.is_relative_to(ex) for ex in excluded)


def is_candidate(
    path: Path, inbox: Path, extensions: Collection[str], excluded: Collection[Path] = ()
) -> bool:
    """Whether ``path`` names a file the daemon should take (pure: no filesystem access).

    True when the path lies inside ``inbox``, no component below the inbox is hidden
    (:func:`is_hidden`: titles that begin with dots are taken), it is not under an ``excluded``
    folder (review or quarantine folders that sit in the inbox), its extension is one of
    ``extensions`` in any case (``"mp3"`` or ``".mp3"`` both match ``x.MP3``), and it is not a
    partial-download name (``x.mp3.part``). Both paths are compared as given: pass absolute paths.
    """
    try:
        parts = path.relative_to(inbox).parts
    except ValueError:
        return False
    if not parts or any(is_hidden(part) for part in parts[:-1]) or is_hidden(parts[-1], extensions):
        return False
    if excluded and skipped_folder(path, excluded):
        return False
    name = parts[-1].lower()
    if name.endswith(PARTIAL_SUFFIXES):
        return False
    ext = os.path.splitext(name)[1][1:]
    return bool(ext) and ext in normalized_extensions(extensions)



@dataclass
class _Entry:
    signature: tuple[int, int, int, int] | None  # (device, inode, size, mtime_ns); None: not yet seen
    since: float  # clock time at which `signature` was first observed
    dirty: bool  # written to since the last close-after-write
    opens: int = 0  # opens seen minus closes seen (readers and writers alike)

    @property
    def writing(self) -> bool:
        """A writer may hold the file: written since its last close-after-write, or opened and
        not closed by whoever opened it (a reader's close never ends a writer's write)."""
        return self.dirty or self.opens > 0



@dataclass
class Settler:
    """Tracks files that are still arriving and reports those that are complete.

    Not thread-safe: the owner serialises calls. ``touch``/``forget`` do no I/O; ``due`` stats.
    ``open_timeout`` bounds how long a file that is reported open but no longer changes is held
    back: a lost close event (inotify overflow) must not strand a file forever.

    ``writers(path)`` asks the kernel whether a process holds the file open for writing
    (:func:`genre_daemon.filing.writers.open_for_writing`): True holds a file back however quiet it
    is (a writer that paused, a lost event), False lets a quiet file go even when events
    suggest an open (a reader still holding it), None (cannot tell) leaves it to the events.
    """

    settle_seconds: float
    clock: Callable[[], float] = time.monotonic
    stat: Callable[[Path], os.stat_result] = os.lstat
    open_timeout: float = 600.0
    writers: Callable[[Path], bool | None] = open_for_writing
    _entries: dict[Path, _Entry] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.settle_seconds < 0:
            raise ValueError(f"settle_seconds must be >= 0, not {self.settle_seconds!r}")

    def touch(self, path: Path, *, writing: bool | None = None) -> None:
        """Record an event for ``path``.

        ``writing=True``: a write or an open happened (the quiet period starts again);
        ``False``: the writer closed it; ``None``: no news about writers (rescan, rename-in).
        """
        entry = self._entries.get(path)
        if entry is None:
            self._entries[path] = _Entry(None, self.clock(), bool(writing))
            return
        if writing is False:  # close-after-write: that writer is done
            entry.dirty = False
            entry.opens = max(0, entry.opens - 1)
        elif writing:
            entry.dirty = True
            entry.signature = None

    def opened(self, path: Path) -> None:
        """Someone opened a tracked file (inotify cannot say whether to read or to write)."""
        entry = self._entries.get(path)
        if entry is not None:
            entry.opens += 1

    def closed_unwritten(self, path: Path) -> None:
        """Someone closed a tracked file without writing (a reader): one open fewer, and
        nothing learnt about any writer."""
        entry = self._entries.get(path)
        if entry is not None:
            entry.opens = max(0, entry.opens - 1)

    def forget(self, path: Path) -> None:
        """Stop tracking ``path`` (deleted, or moved away)."""
        self._entries.pop(path, None)

    def due(self) -> list[Path]:
        """Paths complete now, oldest first; they stop being tracked.

        A path is complete when its signature was unchanged across observations spanning at
        least ``settle_seconds`` and no writer is known to hold it. Vanished paths, symlinks and
        anything but regular files are dropped; a transient stat error keeps the path for later.
        """
        now = self.clock()
        ready: list[Path] = []
        for path, entry in list(self._entries.items()):
            try:
                st = self.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                del self._entries[path]
                continue
            except OSError as exc:
                logger.debug("cannot stat %s, will retry: %s", path, exc)
                continue
            if not stat_mod.S_ISREG(st.st_mode):
                del self._entries[path]
                continue
            signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if signature != entry.signature:
                entry.signature, entry.since = signature, now
                continue
            quiet = now - entry.since
            if quiet < self.settle_seconds:
                continue
            held = self.writers(path)
            if held:  # a writer holds it open, however long it has been quiet
                entry.dirty, entry.since = True, now
                continue
            if held is None and entry.writing and quiet < self.open_timeout:
                continue
            del self._entries[path]
            ready.append(path)
        return ready

    def paths(self) -> list[Path]:
        """The paths being tracked."""
        return list(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def __len__(self) -> int:
        return len(self._entries)


HELD_RECHECK = 5.0  # seconds between looks at a folder in which a writer holds a file open


@dataclass
class FolderGate:
    """Whether a folder of the inbox has been quiet long enough for its files to be taken.

    The folder is the one directly in ``inbox`` that a file lies in. It is quiet once nothing
    under it (sidecars, partial downloads and hidden files too) was created, written or renamed
    in for ``quiet_seconds``, as the files' ctimes say (a copy that keeps its source's mtime
    still sets them; a folder's own times are not looked at, since the daemon's moves out of it
    change them), and no process holds a file in it open for writing (``writers``, as for
    :class:`Settler`). A folder seen busy is not walked again before it could have become quiet;
    one seen quiet stays so until :meth:`changed` (an event under it) or ``quiet_seconds`` pass.
    Thread-safe: events come from the observer's thread.
    """

    inbox: Path
    quiet_seconds: float
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time  # what ctimes are compared with
    writers: Callable[[Path], bool | None] = open_for_writing
    _not_before: dict[Path, float] = field(default_factory=dict, init=False, repr=False)
    _quiet_until: dict[Path, float] = field(default_factory=dict, init=False, repr=False)
    _events: dict[Path, int] = field(default_factory=dict, init=False, repr=False)
    _held: set[Path] = field(default_factory=set, init=False, repr=False)  # said to be waiting
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def top(self, path: Path | None, *, folder: bool = False) -> Path | None:
        """The folder directly in the inbox that ``path`` lies in (or is, for a ``folder``);
        None for a file in the inbox itself."""
        if path is None or not path.is_relative_to(self.inbox):
            return None
        parts = path.relative_to(self.inbox).parts
        return self.inbox / parts[0] if len(parts) > (0 if folder else 1) else None

    def changed(self, path: Path | None, *, folder: bool = False) -> None:
        """An event: something was created, written or renamed in at ``path``."""
        top = self.top(path, folder=folder)
        if top is None:
            return
        with self._lock:
            self._quiet_until.pop(top, None)
            self._events[top] = self._events.get(top, 0) + 1

    def forget(self, folder: Path) -> None:
        """``folder`` left the inbox."""
        with self._lock:
            for known in (self._not_before, self._quiet_until, self._events):
                known.pop(folder, None)
            self._held.discard(folder)

    def allows(self, path: Path, excluded: Collection[Path] = ()) -> bool:
        """Whether the file ``path`` may be handed on now (always, in the inbox itself); says
        once per wait which folder is held back, and why."""
        top = self.top(path)
        if top is None or self.ready(top, excluded):
            return True
        with self._lock:
            if top in self._held:
                return False
            self._held.add(top)
        logger.info("%s: waiting until nothing in it has changed for %.0f s (folder_quiet_seconds) and no "
                    "program holds a file in it open for writing", top, self.quiet_seconds)
        return False

    def ready(self, folder: Path, excluded: Collection[Path] = ()) -> bool:
        """Whether the files of ``folder`` may be taken now (walks it when it must)."""
        if self.quiet_seconds <= 0:
            return True
        now = self.clock()
        with self._lock:
            if now < self._quiet_until.get(folder, -math.inf):
                return True
            if now < self._not_before.get(folder, -math.inf):
                return False
            events = self._events.get(folder, 0)
        wait = self.busy_for(folder, excluded)
        with self._lock:
            if len(self._not_before) + len(self._quiet_until) + len(self._held) >= 10_000:
                for known in (self._not_before, self._quiet_until, self._held):
                    known.clear()
            if wait > 0:
                self._not_before[folder] = now + wait
                return False
            self._not_before.pop(folder, None)
            self._held.discard(folder)
            if self._events.get(folder, 0) == events:  # no event came during the walk
                self._quiet_until[folder] = now + self.quiet_seconds
                self._events.pop(folder, None)
        return True

    def busy_for(self, folder: Path, excluded: Collection[Path] = ()) -> float:
        """Seconds before ``folder`` can be quiet: 0 when it is quiet now (or gone)."""
        newest, files = latest_change(folder, excluded)
        left = self.quiet_seconds - (self.wall() - newest)
        if left > 0:
            return left
        if any(self.writers(f) for f in files):
            return min(self.quiet_seconds, HELD_RECHECK)
        return 0.0


def latest_change(folder: Path, excluded: Collection[Path] = ()) -> tuple[float, list[Path]]:
    """The newest ctime of anything but a folder under ``folder`` (never following a link;
    ``excluded`` folders skipped), and its regular files. A folder that vanishes meanwhile is
    skipped: the daemon moves albums out while this looks."""
    newest, files = -math.inf, []
    for top, dirs, names in os.walk(folder, followlinks=False):
        base = Path(top)
        dirs[:] = [d for d in dirs if not skipped_folder(base / d, excluded)]
        for name in names:
            try:
                st = os.lstat(base / name)
            except OSError:
                continue
            newest = max(newest, st.st_ctime)
            if stat_mod.S_ISREG(st.st_mode):
                files.append(base / name)
    return newest, files
