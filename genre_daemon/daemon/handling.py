"""Handling the inbox's files, one at a time: taken in (journal, queue), classified, given a
destination, moved (or quarantined), recorded; and, at start-up, whatever a crash interrupted
resumed. A mixin of :class:`genre_daemon.daemon.service.Daemon`, which owns the state it uses
(the journal, the classifier, the queue) and the threads that call it."""

from __future__ import annotations

import errno
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.daemon.libwatch import LibraryWatcher
from genre_daemon.daemon.probe import Apart, classify_apart
from genre_daemon.daemon.status import Counters
from genre_daemon.daemon.watcher import InboxWatcher
from genre_daemon.errors import AudioDecodeError, MoveError, SourceChangedError
from genre_daemon.filing import destination, mover, recovery, tagging
from genre_daemon.filing.journal import (
    MAX_INTERRUPTIONS,
    FileIdentity,
    FileRow,
    Journal,
    MoveRow,
    JournalError,
    State,
    content_hash,
)
from genre_daemon.filing.album_mover import remove_emptied
from genre_daemon.filing.mover import reason_path
from genre_daemon.filing.writers import open_for_writing
from genre_daemon.filing.copying import write_atomically
from genre_daemon.names import safe_component
from genre_daemon.path_template import Template, file_values
from genre_daemon.tags import read_tags
from genre_daemon.model.inference import Classifier, Prediction
from genre_daemon.system.logs import RepeatedProblem, file_fields

__all__ = ["FileHandling", "SoloLock", "inside", "reason_path", "write_reason_file"]

# The daemon's one logger (journald's LOGGER field), whichever of its modules speaks.
log = logging.getLogger("genre_daemon.daemon.service")

RETRY_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS}


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


WAITING = frozenset({State.SEEN, State.SETTLING, State.QUEUED})  # recorded, not yet being classified


class SoloLock:
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


class FileHandling:
    """Intake, the work on one file, and the recovery at start-up (the state: see the Daemon)."""

    settings: Settings
    journal: Journal | None
    classifier: Classifier | None
    watcher: InboxWatcher | None
    library_watch: LibraryWatcher | None
    queue: queue.Queue[int]
    counters: Counters
    _hashes: Any  # genre_daemon.learning.labels.HashCache
    _queued: set[int]
    _lock: threading.Lock
    _stop: threading.Event
    _backlog: bool
    _deferred: set[int]
    _solo: SoloLock
    _unrecorded: RepeatedProblem

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
        if self._hold_for_album(row):  # it waits for its album folder to settle (albums: together)
            return True
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

    def _hold_for_album(self, row: FileRow) -> bool:
        """Whether the file waits for its album instead of being queued (see daemon/albums.py)."""
        return False

    def _requeue_waiting(self, *, retries: bool) -> None:
        """Rows the journal holds as waiting but the queue does not: the backlog, and with
        ``retries`` (at a rescan) the files a failed move put back (disk full and the like),
        which are otherwise left alone so they cannot starve the rest."""
        assert self.journal is not None
        if retries:
            self._deferred.clear()
        for row in self.journal.recoverable(under=self.settings.inbox):
            if row.state in WAITING and row.id not in self._queued and row.id not in self._deferred:
                if not self._enqueue(row):
                    break

    # ----------------------------------------------------------------- recovery
    def _recover(self) -> None:
        """Resume whatever a crash interrupted: a move half done, a file left classifying. Only
        files under this inbox: ``import`` (its folder as its inbox) and the daemon share the
        journal, and each finishes its own rows, never the other's."""
        assert self.journal is not None
        for row in self.journal.recoverable(under=self.settings.inbox):
            if row.album_id is not None:  # one of an album's tracks: the album's recovery has it
                continue
            if row.state == State.CLASSIFYING and row.destination:
                settled = recovery.settle(Path(row.path), Path(row.destination), size=row.identity.size,
                                       mtime_ns=row.identity.mtime_ns)
                if settled.state == "moved" and settled.destination is not None:
                    if settled.destination == Path(row.destination):
                        self.journal.finish_pending(row.id, tag=self.settings.write_tags)  # recorded before the move
                        self._ensure_reason_file(settled.destination, row)
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
                # the others), this one included. A file that keeps killing the daemon may be
                # poison, or in the way of outside kills: it is classified apart next (_classify).
                if row.attempts >= MAX_INTERRUPTIONS:
                    log.warning("%s: the daemon stopped %d times while classifying it; it is classified in a "
                                "separate process next", Path(row.path).name, row.attempts)
                else:
                    log.warning("%s: the daemon stopped while classifying it (%d of %d); trying again",
                                Path(row.path).name, row.attempts, MAX_INTERRUPTIONS)
                self.journal.set_state(row.id, State.QUEUED)
                row = self.journal.get(row.id) or row
            self._resume(row)
        write = (lambda m: self._write_genre_tag(m, Path(m.destination), m.genre)) if self.settings.write_tags else None
        for move in tagging.finish_tags(self.journal, self.settings.inbox, write):  # a stop came between placing and tagging
            log.info("%s: its genre tag, interrupted by a stop, %s", move.destination,
                     "taken up after a restart" if write else "left unwritten (write_tags is off)")

    def _resume(self, row: FileRow) -> None:
        """A recovered file waits for a worker again (the daemon queues it; ``import`` takes it
        up in its own walk)."""
        self._enqueue(row)

    def _finish_recovered(self, row: FileRow, dest: Path) -> None:
        """A move a stop interrupted ended at ``dest``, not at the planned address (a clash
        renamed it ``x (2).mp3``): recorded with the outcome planned before the move (genre,
        scores, reason), never one guessed from the folder, which a ``path_template`` makes an
        album or artist folder."""
        assert self.journal is not None
        in_review = inside(dest, self.settings.review_dir)
        in_quarantine = inside(dest, self.settings.quarantine_dir)
        state = State.QUARANTINED if in_quarantine else State.REVIEW if in_review else State.MOVED
        if in_quarantine:
            self._ensure_reason_file(dest, row)
        self.journal.finish(row.id, state, source=row.path, destination=str(dest), genre=row.genre,
                            confidence=row.confidence, scores=row.scores or {}, model_version=row.model_version,
                            reason=row.reason or ("undecodable" if in_quarantine else "completed after a restart"),
                            tag=self.settings.write_tags and state == State.MOVED)
        log.info("%s -> %s (completed after a restart)", Path(row.path).name, dest)

    def _ensure_reason_file(self, dest: Path, row: FileRow) -> None:
        """A quarantine interrupted after the move has no reason file yet: write one, with the
        reason and the inbox path the journal planned the move with."""
        if not inside(dest, self.settings.quarantine_dir) or os.path.lexists(reason_path(dest)):
            return
        write_reason_file(dest, f"{row.reason or 'could not be decoded'} (reason written after a restart)", row.path)

    # ----------------------------------------------------------------- work
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
            prediction = self._classify(row, path)
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
        if prediction is not None:
            self._place(row, prediction)

    def _classify(self, row: FileRow, path: Path) -> Prediction | None:
        """The file's prediction; None when it was dealt with instead. A file that stopped the
        daemon MAX_INTERRUPTIONS times (``row``: as queued) is classified in a separate process
        first, as an album's track is: poison kills that process too and goes to quarantine; a
        file that classifies there is placed (the stops came from outside: kill -9, power cut)."""
        assert self.classifier is not None and self.journal is not None
        if row.attempts < MAX_INTERRUPTIONS:
            return self.classifier.classify(path)
        apart = self._classify_suspect(path)
        if apart.stopped:  # the daemon is stopping: nothing learnt, the attempt not counted
            self.journal.requeue(row.id, reason="the daemon stopped while checking it in a separate process")
            return None
        if apart.poison is not None:
            self._quarantine(row, f"the daemon stopped {row.attempts} times while classifying it, and {apart.poison}")
            return None
        if apart.error is not None:
            raise AudioDecodeError(path, apart.error, incomplete=apart.incomplete)
        log.info("%s stopped the daemon %d times, but classified in a separate process it is fine: it is placed",
                 path.name, row.attempts)
        return apart.prediction

    def _classify_suspect(self, path: Path) -> Apart:
        """A file or track that stopped the daemon MAX_INTERRUPTIONS times, classified in a
        separate process (:mod:`genre_daemon.daemon.probe`)."""
        model_dir = getattr(self, "_model_dir", None) or getattr(self.classifier, "model_dir", None)
        return classify_apart(Path(model_dir), path, stop=self._stop)

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
        tags = self._read_tags(row)
        digest = self._hash(path)  # before the move: a duplicate is caught before it lands
        duplicate = journal.find_placed_hash(digest) if digest else None
        if duplicate is not None and not os.path.lexists(duplicate):
            duplicate = None
        if duplicate is not None and s.duplicates == "skip":
            journal.set_state(row.id, State.GONE, reason=f"duplicate of {duplicate}; left in the inbox (duplicates: skip)")
            log.info("%s: already in the library as %s; left in the inbox (duplicates: skip)", path.name, duplicate,
                     extra=file_fields(str(path)))
            return
        if duplicate is not None and s.duplicates == "quarantine":
            self._quarantine(row, f"duplicate of {duplicate} (duplicates: quarantine)")
            return
        if duplicate is not None:
            log.info("%s: already in the library as %s; filed anyway (duplicates: keep)", path.name, duplicate,
                     extra=file_fields(str(path)))
        dest = destination.destination(path, pred.genre, pred.confidence, library=s.library, review_dir=s.review_dir,
                                 min_confidence=s.min_confidence)
        to_review = inside(dest, s.review_dir)
        if not to_review and pred.genre is not None:
            rel = Template.parse(s.path_template).file_path(
                file_values(path, safe_component(pred.genre), tags), path.suffix)
            dest = s.library / rel
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
        move = journal.finish(row.id, state, source=str(path), destination=str(result.destination), genre=pred.genre,
                              confidence=pred.confidence, scores=pred.scores, model_version=pred.model_version,
                              content_hash=digest, tag=s.write_tags)
        remove_emptied(path.parent, s.inbox)
        renamed = _renamed(path, result.destination)
        if to_review:
            self.counters.review += 1
            log.info("%s -> review%s (%s %.2f < %.2f)", path.name, renamed, pred.genre, pred.confidence,
                     s.min_confidence, extra=file_fields(str(path), None, pred.confidence))
        else:
            self.counters.placed += 1
            log.info("%s -> %s%s (%.2f)", path.name, pred.genre, renamed, pred.confidence,
                     extra=file_fields(str(path), pred.genre, pred.confidence))
            if s.write_tags and pred.genre is not None:
                self._write_genre_tag(move, result.destination, pred.genre)

    def _read_tags(self, row: FileRow) -> dict[str, object]:
        """The file's own tags, recorded in the journal (for the path template and history)."""
        assert self.journal is not None
        try:
            tags: dict[str, object] = dict(read_tags(row.path).to_json())
        except OSError:
            return {}
        if tags:
            self.journal.set_tags(row.id, tags)
        return tags

    def _write_genre_tag(self, move: MoveRow, placed: Path, genre: str) -> None:
        """``write_tags``: the genre into the placed file's genre tag, crash-safe; the tag it
        replaced is kept in the journal for undo. A file that cannot be tagged stays placed."""
        assert self.journal is not None
        if self.library_watch is not None:
            self.library_watch.expect(placed)
        problem = tagging.tag_placed(self.journal, move, placed, genre, self._hash)
        if problem is not None:
            log.warning("%s: placed, but its genre tag was not written: %s", placed, problem,
                        extra=file_fields(str(placed)))

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
        remove_emptied(path.parent, s.inbox)
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


def write_reason_file(placed: Path, reason: str, original: str | os.PathLike[str]) -> None:
    """Say beside a quarantined file or album folder why it is there, when, and where it came
    from, as :func:`genre_daemon.filing.mover.quarantine` does for a file. Best effort: what is
    quarantined is safe already, so a failure here is logged, not raised."""
    note = (f"reason: {reason}\ntime: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
            f"original: {os.fspath(original)}\n")
    try:
        write_atomically(reason_path(placed), note.encode("utf-8", "backslashreplace"))
    except OSError as exc:
        log.warning("could not write %r: %s (quarantined because: %s)", str(reason_path(placed)), exc, reason)


def _renamed(source: Path, final: Path) -> str:
    """For a log line: `` as '<final path>'`` when the file's name changed on the way (made
    safe, or `` (2)`` on a clash), else nothing."""
    return f" as {str(final)!r}" if final.name != source.name else ""


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


def inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
        return True
    except ValueError:
        return False
