"""The daemon: wires watcher, journal, pipeline and mover; owns threads, signals, sd_notify and
the web page.

Threads: the watchdog observer and the watcher's settle thread hand complete files to
:meth:`Intake.offer <genre_daemon.daemon.intake.Intake.offer>`, which records them in the journal
and puts their id on a bounded queue; ``workers`` worker threads classify and move; the main thread only dispatches signals, restarts
a dead observer, rescans and writes the status file. Signal handlers only queue the signal
(gunicorn's pattern); the main loop acts on it.

It is composed of its parts, each named for its one job: the start-up checks and locks
(:mod:`.startup`), the status file (:mod:`.status`), the intake of files (:mod:`.intake`) and of
album folders (:mod:`.albums`), the learning loop's supervision (:mod:`.retraining`), and the
filer that every way of filing shares (:mod:`genre_daemon.filer`: one file, one album, the
recovery after a crash).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings, load_settings
from genre_daemon.daemon.albums import AlbumIntake, AlbumJob
from genre_daemon.daemon.intake import Intake
from genre_daemon.daemon.libwatch import LibraryWatcher
from genre_daemon.daemon.retraining import LearningLoop
from genre_daemon.daemon.startup import mark_media_folders, prepare_folders, take_inbox_lock, take_state_lock
from genre_daemon.daemon.status import read_status, status_path, write_status
from genre_daemon.daemon.watcher import InboxWatcher
from genre_daemon.errors import ConfigError, GenreDaemonError
from genre_daemon.filer.albums import AlbumFiler
from genre_daemon.filer.core import Counters, Filer, Hooks
from genre_daemon.filer.probe import classify_apart
from genre_daemon.filer.recovery import FileRecovery
from genre_daemon.filing import mover
from genre_daemon.filing.fsutil import inside
from genre_daemon.filing.journal import Journal, JournalError
from genre_daemon.learning.versions import resolve_model_dir
from genre_daemon.model.inference import Classifier
from genre_daemon.tags import clean_leftovers
from genre_daemon.system.notify import Notifier, WatchdogGate, format_status

__all__ = ["QUEUE_SIZE", "Daemon", "read_status"]

log = logging.getLogger("genre_daemon.daemon.service")

QUEUE_SIZE = 256  # the journal, not memory, holds any backlog beyond this
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STALL_SECONDS = 120.0  # one file held longer than this by a worker: wedged, stop the watchdog pings
# watchdog's inotify warns when a folder it watched before comes back into its tree (an undo puts
# an album folder back into the inbox; a refiled album comes back into the library): the kernel
# hands back the same watch and watchdog replaces its callback with an equal one. Harmless, and
# not the user's business: kept out of the log.
WATCHDOG_NOISE = r"Callback with id .* (already exists|does not exist) for watch"


class Daemon:
    """``genre-daemon run``: everything between an inbox and a sorted library."""

    def __init__(self, settings: Settings, notifier: Notifier | None = None) -> None:
        from genre_daemon.learning.labels import HashCache

        self.notifier = notifier or Notifier()
        self.gate = WatchdogGate(stall_after=STALL_SECONDS)
        self._last_ping = 0.0
        self._wedged_logged = False
        self.library_watch: LibraryWatcher | None = None
        self.web: Any = None  # genre_daemon.web's server while web.enabled
        self.watcher: InboxWatcher | None = None
        self.learning: LearningLoop | None = None  # once the model is loaded
        self.queue: queue.Queue[int | AlbumJob] = queue.Queue(maxsize=QUEUE_SIZE)  # file ids and albums
        self._hashes = HashCache()
        self.filer = Filer(settings, hashes=self._hashes, counters=Counters(), hooks=Hooks(
            expect=self._expect, track=self._track, rescan=self._rescan_folder, defer=self._defer,
            resume=self._resume, resume_album=self._resume_album, album_waits=self._album_waits,
            classify_apart=self._classify_apart))
        self.intake = Intake(self.filer, self.queue, self._hold_for_album)
        self.albums = AlbumIntake(self.filer, self.queue, self.intake.lock, self.intake.enqueue, lambda: self.watcher)
        self.album_filer = AlbumFiler(self.filer)
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._lock_fd: int | None = None
        self._inbox_lock_fd: int | None = None
        self._inbox_locked: tuple[int, int] | None = None  # (device, inode) of the inbox folder locked
        self._exit_status = 0
        self.started = time.time()
        self._last_rescan = 0.0
        self._last_status = 0.0

    # ----------------------------------------------------------------- the filer's parts and hooks
    @property
    def settings(self) -> Settings:
        return self.filer.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.filer.settings = value

    @property
    def journal(self) -> Journal | None:
        return self.filer.journal

    @property
    def classifier(self) -> Classifier | None:
        return self.learning.classifier if self.learning is not None else None

    @property
    def counters(self) -> Counters:
        return self.filer.counters

    def _expect(self, path: Path) -> None:
        if self.library_watch is not None:
            self.library_watch.expect(path)  # our own placement: not a move of the user's

    def _track(self, path: Path) -> None:
        if self.watcher is not None:
            self.watcher.track(path)

    def _rescan_folder(self, folder: Path) -> None:
        if self.watcher is not None:
            self.watcher.rescan_folder(folder)

    def _defer(self, file_id: int) -> None:
        self.intake.deferred.add(file_id)

    def _resume(self, row: Any) -> None:
        self.intake.enqueue(row)  # a recovered file waits for a worker again

    def _resume_album(self, album_id: int) -> None:
        self.albums.queue_album(album_id)

    def _album_waits(self, root: Path, seconds: float | None) -> None:
        self.albums.wait(root, seconds)

    def _hold_for_album(self, row: Any) -> bool:
        return self.albums.hold_for_album(row)

    def _classify_apart(self, path: Path) -> Any:
        """A file or track that stopped the daemon MAX_INTERRUPTIONS times, classified in a
        separate process (:mod:`genre_daemon.filer.probe`) with the model in use."""
        learning = self.learning
        assert learning is not None
        return classify_apart(learning.loaded_dir, path, stop=self.filer.stop)

    @property
    def _stop(self) -> threading.Event:
        return self.filer.stop

    # ----------------------------------------------------------------- life cycle
    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop. Returns the exit status."""
        self._install_signal_handlers()
        warnings.filterwarnings("ignore", WATCHDOG_NOISE, RuntimeWarning)
        try:
            self.start()
        except GenreDaemonError as exc:
            log.error("cannot start: %s", exc)
            self.close()
            return 2
        except OSError as exc:  # anything the checks above did not foresee: still one line
            where = f"{exc.filename}: " if exc.filename else ""
            log.error("cannot start: %s%s", where, exc.strerror or exc)
            self.close()
            return 2
        self.notifier.ready(self._status_line())
        try:
            self._main_loop()
        finally:
            self.notifier.stopping()
            self.shutdown()
        return self._exit_status

    def start(self) -> None:
        s = self.settings
        prepare_folders(s)
        self._lock_fd = take_state_lock(s)
        self._inbox_lock_fd = take_inbox_lock(s)
        self._inbox_locked = _folder_id(s.inbox)
        # retry_for=None: a journal locked by another process pauses the daemon, never drops a file.
        self.filer.journal = Journal(s.journal_path, retry_for=None)
        from genre_daemon.learning.versions import ModelStore

        ModelStore(s.state_dir / "models").clean()  # candidates a killed trainer left behind
        model_dir = resolve_model_dir(s)
        classifier = Classifier.from_dir(model_dir)
        classifier.warm_up()
        self.learning = LearningLoop(self.filer, self._hashes, classifier, model_dir.resolve())
        log.info("genre-daemon %s: model %s (%s), inbox %s, library %s", os.getpid(), classifier.version,
                 model_dir, s.inbox, s.library)
        for leftover in clean_leftovers(s.library):  # the copies a tag write killed mid-way left behind
            log.info("removed %s, left by a genre tag write a stop interrupted", leftover)
        self.album_filer.recover()
        FileRecovery(self.filer).recover()
        for i in range(s.workers):
            t = threading.Thread(target=self._work_loop, name=f"worker-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        self.watcher = self._make_watcher(s)
        self.watcher.start()
        self._last_rescan = time.monotonic()
        self.library_watch = LibraryWatcher([s.library, *s.retrain.labelled_dirs], polling=s.polling)
        self.library_watch.start()
        self._restart_web(s)
        self._write_status()

    def _make_watcher(self, s: Settings) -> InboxWatcher:
        excluded = [p for p in (s.quarantine_dir, s.review_dir, s.library, s.state_dir) if inside(p, s.inbox)]
        return InboxWatcher(s.inbox, s.extensions, s.settle_seconds, self.intake.offer, excluded=excluded,
                            polling=s.polling,
                            albums=s.albums == "together", folder_quiet=s.folder_quiet_seconds)

    def request_stop(self) -> None:
        self._stop.set()

    def shutdown(self, timeout: float = 8.0) -> None:
        """Stop taking files, let each worker finish the file in hand, leave the rest queued in
        the journal for the next start."""
        self._stop.set()
        if self.learning is not None:
            self.learning.close_trainer()
        if self.watcher is not None:
            self.watcher.stop()
        if self.library_watch is not None:
            self.library_watch.stop()
        deadline = time.monotonic() + timeout
        for t in self._workers:
            t.join(max(0.0, deadline - time.monotonic()))
        self.close()
        log.info("genre-daemon stopped")

    def close(self) -> None:
        if self.web is not None:
            self.web.stop()
            self.web = None
        try:
            status_path(self.settings).unlink()
        except OSError:
            pass
        if self.journal is not None:
            self.journal.close()
            self.filer.journal = None
        for attr in ("_inbox_lock_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)

    # ----------------------------------------------------------------- signals and the main loop
    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.put(signum)
        if signum in STOP_SIGNALS and self.journal is not None:
            self.journal.stop_waiting()  # a write waiting for a locked journal gives up: stop now

    def _main_loop(self) -> None:
        while not self._stop.is_set():
            interval = self.notifier.watchdog_interval or 0.5
            try:
                sig = self._signals.get(timeout=min(0.5, interval / 2))
            except queue.Empty:
                sig = None
            if sig in STOP_SIGNALS:
                log.info("received %s: stopping", signal.Signals(sig).name)
                break
            try:
                if sig == signal.SIGHUP:
                    self.reload()
                self.tick()
            except GenreDaemonError as exc:  # e.g. the journal unwritable: keep serving, say why
                log.error("%s; trying again at the next tick", exc)

    def tick(self) -> None:
        """Periodic duties: watchdog ping, restart a dead observer, rescan, status file."""
        now = time.monotonic()
        interval = self.notifier.watchdog_interval
        if interval is not None and now - self._last_ping >= interval:
            # Only while work makes progress: a wedged worker stops the pings, and systemd
            # restarts the service after WatchdogSec.
            # A worker waiting for another process's lock on the journal is paused, not wedged.
            if self.gate.healthy() or (self.journal is not None and self.journal.waiting_for_lock()):
                self.notifier.watchdog()
                self._last_ping = now
            elif not self._wedged_logged:
                self._wedged_logged = True
                log.error("worker(s) %s stuck on one file for over %.0f s: watchdog pings stopped",
                          ", ".join(self.gate.stalled()), STALL_SECONDS)
        self._relock_inbox()
        if self._stop.is_set():
            return
        if self.watcher is not None and self.watcher.ensure_running():
            log.warning("watcher restarted (inbox %s)", self.settings.inbox)
        learning = self.learning
        if learning is not None:
            learning.check_model()
            learning.check_trainer()
        self.albums.tick()
        if self.intake.backlog and self.queue.qsize() <= QUEUE_SIZE // 2:
            self.intake.backlog = False
            self.intake.requeue_waiting(retries=False)  # sets it again if the queue fills up
        if now - self._last_rescan >= self.settings.rescan_interval:
            self._last_rescan = now
            if self.watcher is not None:
                self.watcher.rescan()
            self.intake.requeue_waiting(retries=True)
            if learning is not None:
                learning.start_label_scan()
        elif (learning is not None and self.library_watch is not None and learning.label_scan_idle()
              and self.library_watch.due()):
            learning.start_label_scan()  # the user moved something in the library: count it now
        if now - self._last_status >= 1.0:
            self._last_status = now
            self._write_status()
            self.notifier.status(self._status_line())

    def _relock_inbox(self) -> None:
        """The inbox lock follows the inbox folder: one deleted and made again while the daemon
        runs (or another one after a reload) is locked before it is watched, and the old lock let
        go. Should another daemon have taken it first, this one stops (exit status 2)."""
        s = self.settings
        now = _folder_id(s.inbox)
        if now is None or now == self._inbox_locked:
            return  # missing (the watcher waits for it), or the folder locked already
        try:
            fd = take_inbox_lock(s)
        except GenreDaemonError as exc:
            log.error("%s; stopping", exc)
            self._exit_status = 2
            self._stop.set()
            return
        old, self._inbox_lock_fd, self._inbox_locked = self._inbox_lock_fd, fd, now
        if old is not None:
            os.close(old)
        log.info("inbox %s is a new folder: locked it", s.inbox)

    def reload(self) -> None:
        """SIGHUP: read the config again; keep the old one if the new one is bad."""
        self.notifier.reloading()
        try:
            self._reload()
        finally:
            self.notifier.ready(self._status_line())

    def _reload(self) -> None:
        source = self.settings.source
        try:
            new = load_settings(source)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config: %s", exc)
            return
        old, self.settings = self.settings, new
        watch_keys = ("inbox", "extensions", "settle_seconds", "polling", "quarantine_dir", "review_dir", "albums",
                      "folder_quiet_seconds")
        if any(getattr(old, k) != getattr(new, k) for k in watch_keys) and self.watcher is not None:
            for folder in (new.inbox, new.library, new.review_dir, new.quarantine_dir):
                mover.makedirs(folder, new.folder_mode)
            mark_media_folders(new)
            self.watcher.stop()
            self.watcher = self._make_watcher(new)
            self.watcher.start()
        if (old.library, old.retrain.labelled_dirs, old.polling) != (new.library, new.retrain.labelled_dirs, new.polling):
            if self.library_watch is not None:
                self.library_watch.stop()
            self.library_watch = LibraryWatcher([new.library, *new.retrain.labelled_dirs], polling=new.polling)
            self.library_watch.start()
        if resolve_model_dir(old) != resolve_model_dir(new) and self.learning is not None:
            self.learning.check_model()  # the new config's model, loaded and switched to
        if old.web != new.web or old.genre_names != new.genre_names:  # the page speaks the new names
            try:
                self._restart_web(new)
            except GenreDaemonError as exc:
                log.error("web: the review page is not served: %s", exc)
        log.info("configuration reloaded from %s", source)

    def _restart_web(self, settings: Settings) -> None:
        """(Re)start the review page for ``settings`` when ``web.enabled``; stop it otherwise.
        It runs in this process (no second service to manage), on its own journal connection."""
        if self.web is not None:
            self.web.stop()
            self.web = None
        if settings.web.enabled:
            from genre_daemon.web import start_in_thread

            self.web = start_in_thread(settings, status_provider=self.status)

    # ----------------------------------------------------------------- work
    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.queue.get(timeout=0.25)
            except queue.Empty:
                continue
            worker = threading.current_thread().name
            what = f"album {job.album_id}" if isinstance(job, AlbumJob) else f"journal row {job}"
            self.gate.busy(worker)
            try:
                if self._stop.is_set():
                    pass
                elif isinstance(job, AlbumJob):
                    self.album_filer.process(job.album_id)
                else:
                    self.filer.process(job)
            except JournalError as exc:  # the file stays where it is, its row queued for a rescan
                log.error("%s: %s; the files stay in place", what, exc)
            except Exception:  # a bug must not kill the worker: log it, keep the file where it is
                log.exception("internal error on %s; files left in place", what)
            finally:
                self.gate.idle(worker)
                if isinstance(job, AlbumJob):
                    self.albums.done(job.album_id)
                else:
                    self.intake.done(job)

    # ----------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started": self.started,
            "uptime": round(time.time() - self.started, 1),
            "queue_depth": self.queue.qsize(),
            "waiting": self._waiting(),
            "pending": self.watcher.pending() if self.watcher is not None else 0,
            "model_version": self.classifier.version if self.classifier is not None else None,
            "last_file": self.counters.last_file,
            "placed": self.counters.placed,
            "review": self.counters.review,
            "quarantined": self.counters.quarantined,
            "left_alone": self.watcher.left_alone if self.watcher is not None else 0,
            "inbox": str(self.settings.inbox),
            "min_confidence": self.settings.min_confidence,  # as reloaded on SIGHUP: the page shows it
            "new_labels": self.learning.new_labels if self.learning is not None else 0,
            "retraining": self.learning is not None and self.learning.trainer is not None,
            "updated": time.time(),
        }

    def _waiting(self) -> int:
        """Files recorded and waiting for a worker: the in-memory queue plus the journal's backlog."""
        try:
            return self.journal.waiting_count() if self.journal is not None else 0
        except JournalError:
            return self.queue.qsize()

    def _status_line(self) -> str:
        """STATUS= for systemd: queue depth, last file, model version."""
        return format_status(self.queue.qsize(), self.counters.last_file or None,
                             self.classifier.version if self.classifier is not None else None)

    def _write_status(self) -> None:
        write_status(self.settings, self.status())


def _folder_id(folder: Path) -> tuple[int, int] | None:
    """A folder's (device, inode), or None when it is not there."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


