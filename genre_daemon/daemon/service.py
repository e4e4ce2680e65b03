"""The daemon: wires watcher, journal, pipeline and mover; owns threads, signals and recovery.

Threads: the watchdog observer and the watcher's settle thread hand complete files to
:meth:`Daemon.offer`, which records them in the journal and puts their id on a bounded queue;
``workers`` worker threads classify and move; the main thread only dispatches signals, restarts
a dead observer, rescans and writes the status file. Signal handlers only queue the signal
(gunicorn's pattern); the main loop acts on it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genre_daemon.filing import destination, mover, recovery
from genre_daemon.config import DEFAULT_FOLDERS, Settings, load_settings, missing_folders
from genre_daemon.learning.versions import resolve_model_dir
from genre_daemon.errors import AudioDecodeError, ConfigError, GenreDaemonError, MoveError, SourceChangedError
from genre_daemon.filing.journal import (
    MAX_INTERRUPTIONS,
    FileIdentity,
    FileRow,
    Journal,
    JournalError,
    State,
    content_hash,
)
from genre_daemon.daemon.libwatch import LibraryWatcher
from genre_daemon.system.logs import RepeatedProblem, file_fields
from genre_daemon.system.notify import Notifier, WatchdogGate, format_status
from genre_daemon.model.inference import Classifier, Prediction
from genre_daemon.daemon.watcher import InboxWatcher
from genre_daemon.filing.writers import open_for_writing

log = logging.getLogger("genre_daemon.daemon.service")

QUEUE_SIZE = 256  # the journal, not memory, holds any backlog beyond this
STATUS_FILE = "daemon.json"
LOCK_FILE = "daemon.lock"
RETRY_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STALL_SECONDS = 120.0  # one file held longer than this by a worker: wedged, stop the watchdog pings
# Journal reason of a file skipped because it cannot be read: it stays in the inbox, and is taken
# again once it can be read (a chmod changes only its ctime, so identity alone would miss it).
UNREADABLE = "cannot be read"
# Journal reason of a file that holds less than its header promises and was written to recently:
# it may still be arriving (a writer that paused), so it waits in the inbox. Once it has not
# changed for incomplete_grace(settings) seconds it is classified again and, still truncated,
# quarantined: at least a minute, and 30 settle periods (a writer's stall outlasting the settle
# period many times over is not a pause any more).
INCOMPLETE = "incomplete, may still be arriving"
INCOMPLETE_GRACE_MIN = 60.0
INCOMPLETE_GRACE_SETTLES = 30


def status_path(settings: Settings) -> Path:
    return settings.state_dir / STATUS_FILE


def read_status(settings: Settings) -> dict[str, Any] | None:
    """The running daemon's status file, or None when no daemon is running for this state_dir."""
    try:
        data = json.loads(status_path(settings).read_text(encoding="utf-8"))
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


WAITING = frozenset({State.SEEN, State.SETTLING, State.QUEUED})  # recorded, not yet being classified


class _SoloLock:
    """Shared for ordinary files, exclusive for a suspect (one a stop interrupted before): a
    suspect waits for the others to finish and runs alone; a waiting suspect goes first."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._solo = False
        self._solo_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._solo and not self._solo_waiting)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def solo(self) -> Iterator[None]:
        with self._cond:
            self._solo_waiting += 1
            self._cond.wait_for(lambda: not self._solo and not self._active)
            self._solo_waiting -= 1
            self._solo = True
        try:
            yield
        finally:
            with self._cond:
                self._solo = False
                self._cond.notify_all()


@dataclass
class _Counters:
    placed: int = 0
    review: int = 0
    quarantined: int = 0
    last_file: str = ""


class Daemon:
    """``genre-daemon run``: everything between an inbox and a sorted library."""

    def __init__(self, settings: Settings, notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.notifier = notifier or Notifier()
        self.gate = WatchdogGate(stall_after=STALL_SECONDS)
        self._last_ping = 0.0
        self._wedged_logged = False
        self._model_dir: Path | None = None
        self._trainer: Any = None  # the retrain child process, while one runs
        self._new_labels = 0
        self._label_scan: threading.Thread | None = None
        self.library_watch: LibraryWatcher | None = None
        self.web: Any = None  # genre_daemon.web's server while web.enabled
        from genre_daemon.learning.labels import HashCache

        self._hashes = HashCache()
        self.journal: Journal | None = None
        self.classifier: Classifier | None = None
        self.watcher: InboxWatcher | None = None
        self.queue: queue.Queue[int] = queue.Queue(maxsize=QUEUE_SIZE)
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._lock_fd: int | None = None
        self._inbox_lock_fd: int | None = None
        self.started = time.time()
        self.counters = _Counters()
        self._last_rescan = 0.0
        self._last_status = 0.0
        self._backlog = False  # the journal holds queued files the in-memory queue had no room for
        self._deferred: set[int] = set()  # put back by a failed move: retried at the next rescan only
        self._solo = _SoloLock()
        self._unrecorded = RepeatedProblem(30.0)  # the journal refusing new files (disk full, ...)

    # ----------------------------------------------------------------- life cycle
    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop. Returns the exit status."""
        self._install_signal_handlers()
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
        return 0

    def start(self) -> None:
        s = self.settings
        self._prepare_folders()
        self._take_lock()
        self._take_inbox_lock()
        # retry_for=None: a journal locked by another process pauses the daemon, never drops a file.
        self.journal = Journal(s.journal_path, retry_for=None)
        from genre_daemon.learning.versions import ModelStore

        ModelStore(s.state_dir / "models").clean()  # candidates a killed trainer left behind
        model_dir = resolve_model_dir(s)
        self.classifier = Classifier.from_dir(model_dir)
        self.classifier.warm_up()
        self._model_dir = model_dir.resolve()
        log.info("genre-daemon %s: model %s (%s), inbox %s, library %s", os.getpid(), self.classifier.version,
                 model_dir, s.inbox, s.library)
        self._recover()
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
        excluded = [p for p in (s.quarantine_dir, s.review_dir, s.library, s.state_dir) if _inside(p, s.inbox)]
        return InboxWatcher(s.inbox, s.extensions, s.settle_seconds, self.offer, excluded=excluded, polling=s.polling)

    def request_stop(self) -> None:
        self._stop.set()

    def shutdown(self, timeout: float = 8.0) -> None:
        """Stop taking files, let each worker finish the file in hand, leave the rest queued in
        the journal for the next start."""
        self._stop.set()
        self.close_trainer()
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
            self.journal = None
        for attr in ("_inbox_lock_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)

    def _prepare_folders(self) -> None:
        """Create the five folders (saying so: a typo in the config would otherwise mean a new,
        empty folder watched in silence) and make state_dir private. A folder that cannot be
        made or used is one line naming it, the reason and the fix (GenreDaemonError)."""
        s = self.settings
        # Only the user's folders are worth a word: the daemon's own are made on a first start.
        missing = {key for key, _ in missing_folders(s)} & {"inbox", "library"}
        # state_dir first: when it cannot be used, nothing else is made and one line says why.
        for key in sorted(DEFAULT_FOLDERS, key=lambda k: k != "state_dir"):
            folder = getattr(s, key)
            try:
                mover.makedirs(folder)
                if key == "state_dir":
                    os.chmod(folder, 0o700)
            except OSError as exc:
                raise _folder_error(key, folder, exc, s) from None
            if key in missing:
                log.warning("%s %s did not exist; created it (if that is a typo, fix %s in %s)", key, folder,
                            key, s.source or "the config")

    def _take_lock(self) -> None:
        """One daemon per state_dir: an exclusive lock on state_dir/daemon.lock, holding our pid."""
        self._lock_fd = _lock_file(self.settings.state_dir / LOCK_FILE, "state_dir", self.settings,
                                   "another genre-daemon uses state_dir {folder} (pid {pid}, lock {path})")

    def _take_inbox_lock(self) -> None:
        """One daemon per inbox, whatever their state dirs: two would race for every file (two
        journals, moves recorded twice, false errors). The lock is a flock on the inbox folder
        itself, so nothing is written into the user's inbox; the holder's pid is read from
        /proc/locks. Where a folder cannot be locked (some network filesystems) it says so and
        goes on."""
        inbox = self.settings.inbox
        try:
            fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _folder_error("inbox", inbox, exc, self.settings) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _flock_holder(os.fstat(fd))
            os.close(fd)
            raise GenreDaemonError(f"another genre-daemon (pid {holder or 'unknown'}) is watching inbox {inbox}; "
                                   "stop it, or give this one another inbox") from None
        except OSError as exc:
            os.close(fd)
            log.warning("cannot lock inbox %s (%s): a second daemon on it would not be refused", inbox, exc)
            return
        self._inbox_lock_fd = fd

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
        if self.watcher is not None and self.watcher.ensure_running():
            log.warning("watcher restarted (inbox %s)", self.settings.inbox)
        self._check_model()
        self._check_trainer()
        if self._backlog and self.queue.qsize() <= QUEUE_SIZE // 2:
            self._backlog = False
            self._requeue_waiting(retries=False)  # sets it again if the queue fills up
        if now - self._last_rescan >= self.settings.rescan_interval:
            self._last_rescan = now
            if self.watcher is not None:
                self.watcher.rescan()
            self._requeue_waiting(retries=True)
            self._start_label_scan()
        elif self.library_watch is not None and self._label_scan_idle() and self.library_watch.due():
            self._start_label_scan()  # the user moved something in the library: count it now
        if now - self._last_status >= 1.0:
            self._last_status = now
            self._write_status()
            self.notifier.status(self._status_line())

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
        watch_keys = ("inbox", "extensions", "settle_seconds", "polling", "quarantine_dir", "review_dir")
        if any(getattr(old, k) != getattr(new, k) for k in watch_keys) and self.watcher is not None:
            for folder in (new.inbox, new.library, new.review_dir, new.quarantine_dir):
                mover.makedirs(folder)
            self.watcher.stop()
            self.watcher = self._make_watcher(new)
            self.watcher.start()
        if (old.library, old.retrain.labelled_dirs, old.polling) != (new.library, new.retrain.labelled_dirs, new.polling):
            if self.library_watch is not None:
                self.library_watch.stop()
            self.library_watch = LibraryWatcher([new.library, *new.retrain.labelled_dirs], polling=new.polling)
            self.library_watch.start()
        if resolve_model_dir(old) != resolve_model_dir(new):
            self.classifier = Classifier.from_dir(resolve_model_dir(new))
        if old.web != new.web:
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

    # ----------------------------------------------------------------- learning
    def _check_model(self) -> None:
        """Pick up a promotion or a rollback (the pointer in state_dir/models) without a restart."""
        try:
            current = resolve_model_dir(self.settings).resolve()
        except OSError:
            return
        if current == self._model_dir:
            return
        try:
            classifier = Classifier.from_dir(current)
            classifier.warm_up()
        except GenreDaemonError as exc:
            log.error("model %s not loaded, keeping %s: %s", current, self._model_dir, exc)
            self._model_dir = current  # do not retry every tick; a new switch is noticed again
            return
        old = self.classifier.version if self.classifier is not None else None
        self.classifier, self._model_dir = classifier, current
        log.info("model switched: %s -> %s", old, classifier.version)
        threading.Thread(target=self._reclassify_review, name="review", daemon=True).start()

    def _label_scan_idle(self) -> bool:
        return self._label_scan is None or not self._label_scan.is_alive()

    def _start_label_scan(self) -> None:
        if self._label_scan_idle():
            # A big library takes seconds to walk: not on the main loop.
            self._label_scan = threading.Thread(target=self._maybe_retrain, name="labels", daemon=True)
            self._label_scan.start()

    def _maybe_retrain(self) -> None:
        """At a rescan: count the new labels; start the trainer when a retrain is due."""
        from genre_daemon.learning import retrain
        from genre_daemon.learning.labels import new_labels, scan_labels

        s = self.settings
        if self.journal is None or self.classifier is None:
            return
        try:
            labels = scan_labels(s, self.journal, hasher=self._hashes, known=self.classifier.model.genres)
            used = set(self.classifier.model.training.get("label_hashes", []))
            self._new_labels = len(new_labels(labels, used, hasher=self._hashes))
        except OSError as exc:
            log.warning("cannot scan the library for labels: %s", exc)
            return
        last = retrain.read_progress(s) or {}
        if self._trainer is None and retrain.due(self._new_labels, last.get("finished"), time.time(), s):
            log.info("%d new labels: retraining in the background", self._new_labels)
            self._trainer = retrain.spawn(s.source)

    def _check_trainer(self) -> None:
        if self._trainer is None or self._trainer.poll() is None:
            return
        from genre_daemon.learning import retrain

        code, self._trainer = self._trainer.returncode, None
        progress = retrain.read_progress(self.settings) or {}
        if code != 0 and progress.get("state") == "running":
            retrain.write_progress(self.settings, state="failed", finished=time.time(),
                                   reason=f"trainer exited with status {code}")
        log.info("retrain finished (status %s): %s", code, progress.get("reason", progress.get("state")))

    def _reclassify_review(self) -> None:
        """After a model switch: files in review that the new model is sure of move on."""
        s, journal = self.settings, self.journal
        if journal is None or not s.review_dir.is_dir():
            return
        for path in sorted(p for p in s.review_dir.iterdir() if p.is_file() and not p.is_symlink()
                           and p.suffix.lower().lstrip(".") in s.extensions and not p.name.startswith(".")):
            classifier = self.classifier
            if self._stop.is_set() or classifier is None:
                return
            try:
                pred = classifier.classify(path)
            except AudioDecodeError:
                continue
            if pred.confidence < s.min_confidence:
                continue
            row, _ = journal.observe(path, FileIdentity.of(path))
            if row.state not in (State.SEEN, State.SETTLING):
                continue
            journal.set_state(row.id, State.CLASSIFYING, via=[State.SETTLING, State.QUEUED])
            self._place(journal.get(row.id) or row, pred)

    def close_trainer(self) -> None:
        if self._trainer is not None and self._trainer.poll() is None:
            self._trainer.terminate()
            try:
                self._trainer.wait(5)
            except Exception:
                self._trainer.kill()

    # ----------------------------------------------------------------- intake
    def offer(self, path: Path) -> bool:
        """A complete file in the inbox (from the watcher's thread). False: cannot take it now."""
        journal = self.journal
        if journal is None or self._stop.is_set():
            return False
        try:
            identity = FileIdentity.of(path)
            row, new = journal.observe(path, identity, hasher=content_hash)
            if not new and self._readable_again(row, path):
                row, new = journal.reopen(row.id), True
                log.info("%s can be read now: taking it", path)
            elif not new and self._incomplete_for_good(row):
                row, new = journal.reopen(row.id), True
                log.info("%s has not changed for %.0f s: taking it as it is", path, self._grace())
            if new:  # (a row already recorded is in the queue, the journal's backlog, or done)
                self._enqueue(row)  # a full queue leaves it in the journal: the backlog
            if self._unrecorded.clear():
                log.info("the journal records files again")
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:  # e.g. hashing a file that cannot be read: the next rescan retries
            log.warning("%s: cannot look at it now (%s); retried at the next rescan", path, exc)
            return True
        except JournalError as exc:  # the watcher keeps the file and offers it again
            count = self._unrecorded.note(str(path))
            if count is not None:  # once, then every 30 s: the retries come every tick
                log.warning("%d file(s) not recorded yet, waiting in the inbox (latest %s): %s; "
                            "retrying (said again every %.0f s at most)", count, path, exc,
                            self._unrecorded.interval)
            return False

    def _readable_again(self, row: FileRow, path: Path) -> bool:
        """A file skipped as unreadable (same identity: a chmod changes no mtime) that can be
        read now."""
        return (row.state == State.GONE and not row.held and (row.reason or "").startswith(UNREADABLE)
                and _unreadable(path) is None)

    def _grace(self) -> float:
        """How long a truncated file written to recently waits for its writer to come back."""
        return max(INCOMPLETE_GRACE_MIN, INCOMPLETE_GRACE_SETTLES * self.settings.settle_seconds)

    def _incomplete_for_good(self, row: FileRow) -> bool:
        """A file held back as incomplete that has stayed as it was for the whole grace period
        (same identity, so same mtime): it will not grow any more."""
        return (row.state == State.GONE and not row.held and (row.reason or "").startswith(INCOMPLETE)
                and time.time() - row.identity.mtime_ns / 1e9 >= self._grace())

    def _enqueue(self, row: FileRow) -> bool:
        """Record the file as queued, then queue it. A full queue leaves it queued in the
        journal (the backlog lives there, not in memory: 10,000 files dropped at once cost
        journal rows, not a list of paths) and returns False; :meth:`tick` refills the queue
        from the journal, oldest first, as the workers drain it."""
        assert self.journal is not None
        with self._lock:  # claim the id; the journal write happens outside the lock (it may wait)
            if row.id in self._queued:
                return True
            self._queued.add(row.id)
        try:
            if row.state == State.SEEN:
                row = self.journal.set_state(row.id, State.QUEUED, via=[State.SETTLING])
            elif row.state == State.SETTLING:
                row = self.journal.set_state(row.id, State.QUEUED)
            self.queue.put_nowait(row.id)
        except queue.Full:
            with self._lock:
                self._queued.discard(row.id)
            self._backlog = True
            return False
        except BaseException:
            with self._lock:
                self._queued.discard(row.id)
            raise
        return True

    def _requeue_waiting(self, *, retries: bool) -> None:
        """Rows the journal holds as waiting but the queue does not: the backlog, and with
        ``retries`` (at a rescan) the files a failed move put back (disk full and the like),
        which are otherwise left alone so they cannot starve the rest."""
        assert self.journal is not None
        if retries:
            self._deferred.clear()
        for row in self.journal.recoverable():
            if row.state in WAITING and row.id not in self._queued and row.id not in self._deferred:
                if not self._enqueue(row):
                    break

    # ----------------------------------------------------------------- recovery
    def _recover(self) -> None:
        """Resume whatever a crash interrupted: a move half done, a file left classifying."""
        assert self.journal is not None
        for row in self.journal.recoverable():
            if row.state == State.CLASSIFYING and row.destination:
                settled = recovery.settle(Path(row.path), Path(row.destination), size=row.identity.size,
                                       mtime_ns=row.identity.mtime_ns)
                if settled.state == "moved" and settled.destination is not None:
                    if settled.destination == Path(row.destination):
                        self.journal.finish_pending(row.id)  # the outcome was recorded before the move
                        self._ensure_reason_file(settled.destination)
                        log.info("%s -> %s (completed after a restart)", Path(row.path).name, settled.destination)
                    else:
                        self._finish_recovered(row, settled.destination)
                    continue
                if settled.state == "missing":
                    self.journal.set_state(row.id, State.GONE, reason="vanished during an interrupted move")
                    continue
                if os.path.lexists(row.path):
                    # Classification had finished: the stop interrupted the move (a long copy),
                    # which says nothing about the file. Not counted towards quarantine.
                    log.warning("%s: the daemon stopped while moving it; trying again", Path(row.path).name)
                    row = self.journal.requeue(row.id, reason="a stop interrupted its move")
            if not os.path.lexists(row.path):
                self.journal.set_state(row.id, State.GONE, reason="no longer in the inbox")
                continue
            if row.state == State.CLASSIFYING:
                # attempts: entries into classifying that a stop interrupted (requeue() refunds
                # the others), this one included. A file that keeps killing the daemon is poison.
                if row.attempts >= MAX_INTERRUPTIONS:
                    self._quarantine(row, f"the daemon stopped {row.attempts} times while classifying it")
                    continue
                log.warning("%s: the daemon stopped while classifying it (%d of %d); trying again",
                            Path(row.path).name, row.attempts, MAX_INTERRUPTIONS)
                self.journal.set_state(row.id, State.QUEUED)
                row = self.journal.get(row.id) or row
            self._enqueue(row)

    def _finish_recovered(self, row: FileRow, dest: Path) -> None:
        assert self.journal is not None
        in_review = _inside(dest, self.settings.review_dir)
        in_quarantine = _inside(dest, self.settings.quarantine_dir)
        state = State.QUARANTINED if in_quarantine else State.REVIEW if in_review else State.MOVED
        if in_quarantine:
            self._ensure_reason_file(dest)
        self.journal.finish(row.id, state, source=row.path, destination=str(dest),
                            genre=None if (in_review or in_quarantine) else dest.parent.name,
                            confidence=None, scores={}, model_version=None,
                            reason="completed after a restart" if not in_quarantine else "undecodable")
        log.info("%s -> %s (completed after a restart)", Path(row.path).name, dest)

    def _ensure_reason_file(self, dest: Path) -> None:
        """A quarantine interrupted after the move has no reason file yet: write one."""
        if not _inside(dest, self.settings.quarantine_dir):
            return
        reason_file = dest.with_name(dest.name + mover.REASON_SUFFIX)
        if not reason_file.exists():
            row = self.journal.by_path(str(dest)) if self.journal else None
            reason = (row.reason if row else None) or "could not be decoded"
            fd = os.open(reason_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(f"{reason}\n(reason written after a restart)\n")

    # ----------------------------------------------------------------- work
    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                file_id = self.queue.get(timeout=0.25)
            except queue.Empty:
                continue
            worker = threading.current_thread().name
            self.gate.busy(worker)
            try:
                if not self._stop.is_set():
                    self.process(file_id)
            except JournalError as exc:  # the file stays where it is, its row queued for a rescan
                log.error("journal row %s: %s; the file stays in place", file_id, exc)
            except Exception:  # a bug must not kill the worker: log it, keep the file where it is
                log.exception("internal error on journal row %s; file left in place", file_id)
            finally:
                self.gate.idle(worker)
                with self._lock:
                    self._queued.discard(file_id)

    def process(self, file_id: int) -> None:
        """Classify one queued file and put it where it belongs."""
        journal, classifier = self.journal, self.classifier
        assert journal is not None and classifier is not None
        row = journal.get(file_id)
        if row is None or row.state != State.QUEUED:
            return
        path = Path(row.path)
        try:
            identity = FileIdentity.of(path)
        except FileNotFoundError:
            journal.set_state(file_id, State.GONE, reason="removed from the inbox before it was classified")
            log.info("%s: gone before it was classified", path.name)
            return
        if identity != row.identity:
            journal.set_state(file_id, State.GONE, reason="changed while queued; taken again as a new file")
            if self.watcher is not None:
                self.watcher.track(path)
            return
        if (why := _unreadable(path)) is not None:
            self._skip_unreadable(row, why)
            return
        if open_for_writing(path):  # a writer came back after it settled: settle it again
            self._resettle(row, "a program holds it open for writing")
            return
        # A file a stop interrupted before may be what stopped it: it runs alone, so a poison
        # file's count of interruptions never lands on whatever ran beside it.
        with self._solo.solo() if row.attempts > 0 else self._solo.shared():
            self._classify_and_place(row, path)

    def _classify_and_place(self, row: FileRow, path: Path) -> None:
        journal, classifier = self.journal, self.classifier
        assert journal is not None and classifier is not None
        file_id = row.id
        journal.set_state(file_id, State.CLASSIFYING)
        self.counters.last_file = path.name
        if (refusal := mover.read_refusal(path)) is not None:  # a foreign hard link (or a swapped-in symlink)
            self._quarantine(row, refusal, copy=False)  # never read: linked, never copied
            return
        try:
            prediction = classifier.classify(path)
        except AudioDecodeError as exc:
            if (why := _unreadable(path)) is not None:  # lost read access meanwhile: not its fault
                self._skip_unreadable(row, why)
            elif FileIdentity.of_or_none(path) != row.identity:  # it changed while being read
                self._resettle(row, "it changed while it was being classified")
            elif exc.incomplete and time.time() - row.identity.mtime_ns / 1e9 < self._grace():
                self._hold_incomplete(row, exc.reason)
            else:
                self._quarantine(row, exc.reason)
            return
        self._place(row, prediction)

    def _resettle(self, row: FileRow, why: str, returned: Path | None = None) -> None:
        """The file changed (or a writer holds it) after it settled: not placed, not
        quarantined; back to settling, taken again once complete. The attempt is not counted."""
        assert self.journal is not None
        path = Path(row.path)
        current = self.journal.get(row.id)
        if current is not None and current.state == State.CLASSIFYING:
            self.journal.requeue(row.id, reason=f"{why}; settling again")
        self._deferred.add(row.id)  # not from the backlog: once the watcher says it is complete
        log.info("%s: %s; waiting until it is complete", path.name, why, extra=file_fields(str(path)))
        if self.watcher is not None:
            self.watcher.track(path)
            if returned is not None and returned != path:
                self.watcher.track(returned)

    def _hold_incomplete(self, row: FileRow, reason: str) -> None:
        """Truncated, and written to recently: a writer may have paused. Left in the inbox; any
        change takes it again, and after the grace period unchanged it is judged as it is."""
        assert self.journal is not None
        self.journal.set_state(row.id, State.GONE, reason=f"{INCOMPLETE} ({reason}); left in the inbox")
        log.warning("%s: %s; left in the inbox while it may still be arriving (judged as it is after "
                    "%.0f s unchanged)", row.path, reason, self._grace(), extra=file_fields(row.path))

    def _skip_unreadable(self, row: FileRow, why: str) -> None:
        """Not quarantined, not moved: left in the inbox, taken again once it can be read."""
        assert self.journal is not None
        self.journal.set_state(row.id, State.GONE,
                               reason=f"{UNREADABLE} ({why}); left in the inbox, retried when it can be read")
        log.warning("%s: %s (%s); skipped, left in the inbox, retried when it can be read",
                    row.path, UNREADABLE, why, extra=file_fields(row.path))

    def _place(self, row: FileRow, pred: Prediction) -> None:
        journal, s = self.journal, self.settings
        assert journal is not None
        path = Path(row.path)
        dest = destination.destination(path, pred.genre, pred.confidence, library=s.library, review_dir=s.review_dir,
                                 min_confidence=s.min_confidence)
        to_review = _inside(dest, s.review_dir)
        journal.begin_move(row.id, str(dest), state=State.REVIEW if to_review else State.MOVED, genre=pred.genre,
                           confidence=pred.confidence, scores=pred.scores, model_version=pred.model_version)
        if self.library_watch is not None:
            self.library_watch.expect(dest)  # our own placement: not a move of the user's
        try:
            result = mover.move(path, dest, s.on_conflict, root=s.review_dir if to_review else s.library,
                                expect=_signature(row))
        except SourceChangedError as exc:
            self._resettle(row, str(exc), _returned(exc))
            return
        except MoveError as exc:
            self._move_failed(row, exc)
            return
        if result.skipped:
            journal.set_state(row.id, State.GONE, reason=f"left in the inbox: {dest} exists (on_conflict: skip)")
            log.info("%s -> skipped: %s exists (on_conflict: skip)", path.name, dest)
            return
        assert result.destination is not None
        state = State.REVIEW if to_review else State.MOVED
        journal.finish(row.id, state, source=str(path), destination=str(result.destination), genre=pred.genre,
                       confidence=pred.confidence, scores=pred.scores, model_version=pred.model_version,
                       content_hash=self._hash(result.destination))
        renamed = _renamed(path, result.destination)
        if to_review:
            self.counters.review += 1
            log.info("%s -> review%s (%s %.2f < %.2f)", path.name, renamed, pred.genre, pred.confidence,
                     s.min_confidence, extra=file_fields(str(path), None, pred.confidence))
        else:
            self.counters.placed += 1
            log.info("%s -> %s%s (%.2f)", path.name, pred.genre, renamed, pred.confidence,
                     extra=file_fields(str(path), pred.genre, pred.confidence))

    def _hash(self, path: Path) -> str | None:
        """Content hash of a placed file (still in the page cache): lets a later correction be
        recognised even after the user copies it across filesystems."""
        try:
            return self._hashes(path)
        except OSError:
            return None

    def _quarantine(self, row: FileRow, reason: str, *, copy: bool = True) -> None:
        journal, s = self.journal, self.settings
        assert journal is not None
        path = Path(row.path)
        journal.begin_move(row.id, str(destination.quarantine_destination(path, s.quarantine_dir)),
                           state=State.QUARANTINED, reason=reason)
        try:
            final = mover.quarantine(path, s.quarantine_dir, reason, copy=copy, expect=_signature(row))
        except SourceChangedError as exc:
            self._resettle(row, str(exc), _returned(exc))
            return
        except MoveError as exc:
            self._move_failed(row, exc)
            return
        journal.finish(row.id, State.QUARANTINED, source=str(path), destination=str(final), genre=None,
                       confidence=None, scores={}, model_version=None, reason=reason)
        self.counters.quarantined += 1
        log.warning("%s -> quarantine%s: %s", path.name, _renamed(path, final), reason, extra=file_fields(str(path)))

    def _move_failed(self, row: FileRow, exc: MoveError) -> None:
        """The source is intact. Disk full and the like: back to the queue for the next rescan.
        Anything else: leave the file in the inbox, recorded, not retried until it changes."""
        assert self.journal is not None
        code = getattr(exc, "errno", None) or getattr(exc.__cause__, "errno", None)
        if code in RETRY_ERRNOS:
            self._deferred.add(row.id)
            self.journal.requeue(row.id, reason=str(exc))  # not counted as an interrupted attempt
            log.warning("%s: %s; left in the inbox, retried at the next rescan", Path(row.path).name, exc)
        else:
            self.journal.set_state(row.id, State.GONE, reason=f"left in the inbox: {exc}")
            log.error("%s: %s; left in the inbox", Path(row.path).name, exc)

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
            "inbox": str(self.settings.inbox),
            "new_labels": self._new_labels,
            "retraining": self._trainer is not None,
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
        path = status_path(self.settings)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.status(), fh)
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("cannot write %s: %s", path, exc)


def _folder_error(key: str, folder: Path, exc: OSError, s: Settings) -> GenreDaemonError:
    """One line for a folder the daemon cannot make or use: which, why, and what to do."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.EROFS,):
        fix = f"mount it read-write or set {key} in {s.source or 'the config'} to a writable folder"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        fix = (f"give the daemon's user (uid {os.geteuid()}) write access to it, or set {key} in "
               f"{s.source or 'the config'} to a folder it may write")
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = f"{key} must be a folder: remove the file in its way or set {key} elsewhere"
    else:
        fix = f"check the folder, or set {key} in {s.source or 'the config'} to another one"
    return GenreDaemonError(f"cannot use {key} {folder}: {why}; {fix}")


def _lock_file(path: Path, key: str, s: Settings, held_message: str) -> int:
    """Take an exclusive, non-blocking flock on ``path`` and write our pid into it; the fd.
    Held by another process: GenreDaemonError with ``held_message`` (its pid read from the file)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _folder_error(key, path.parent, exc, s) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            pid = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
        finally:
            os.close(fd)
        raise GenreDaemonError(held_message.format(folder=path.parent, pid=pid, path=path)) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # the lock is what counts; the pid is only for the message
    return fd


def _renamed(source: Path, final: Path) -> str:
    """For a log line: `` as '<final path>'`` when the file's name changed on the way (made
    safe, or `` (2)`` on a clash), else nothing."""
    return f" as {str(final)!r}" if final.name != source.name else ""


def _flock_holder(st: os.stat_result, locks: str = "/proc/locks") -> int | None:
    """The pid holding a flock on the file with this stat, read from /proc/locks (Linux), or
    None. Lines look like ``1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF``."""
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        text = Path(locks).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == want and fields[4].isdigit():
            return int(fields[4])
    return None


def _signature(row: FileRow) -> mover.Signature:
    """The signature the file had when it settled (as the journal recorded it)."""
    i = row.identity
    return (i.dev, i.ino, i.size, i.mtime_ns)


def _returned(exc: SourceChangedError) -> Path | None:
    return Path(exc.returned) if exc.returned is not None else None


def _unreadable(path: Path) -> str | None:
    """Why this process cannot read ``path`` (permission denied), or None when it can. Other
    errors are left to the decoder (which quarantines with its reason) or to the caller."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        os.close(os.open(path, flags))
    except PermissionError as exc:
        return exc.strerror or "permission denied"
    except OSError:
        return None
    return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
        return True
    except ValueError:
        return False
