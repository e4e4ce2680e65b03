"""``genre-daemon import DIR``: sort an existing collection into the library through the daemon's
own journal, careful mover and album handling, with an engine classifying ahead.

The folder being imported plays the inbox: every file gets a journal row, every album an album
row, and each is placed by the same code the daemon runs (:class:`FileHandling`,
:class:`AlbumHandling`), so every promise holds: nothing lost, nothing placed twice, undo. The
classification is the engine's (:mod:`genre_daemon.engines`: a process pool, or Ray): its
results stream back in any order and this process applies each one as it arrives, a loose file
at once, an album once all its tracks are back. Moves stay here, with the files' owner.

Resumable: a killed import left rows in the journal; the next run finishes or undoes a move a
kill interrupted (as the daemon does at start), and what was placed is no longer in the folder,
so it is never classified again. A file planned loose is recorded queued at once, as the daemon's
intake records one: that verdict outlives a stop, so the songs left beside a container's albums
(filed first, as engine results come in any order) stay loose files at the next run.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from genre_daemon.config import Settings
from genre_daemon.daemon.albums import AlbumHandling, _judged_loose, album_snapshot_json
from genre_daemon.daemon.handling import FileHandling, SoloLock
from genre_daemon.daemon.probe import Apart
from genre_daemon.daemon.startup import lock_file, prepare_folders, take_inbox_lock
from genre_daemon.daemon.status import Counters
from genre_daemon.errors import AudioDecodeError, MoveError
from genre_daemon.filing import album_mover
from genre_daemon.filing.albums import decide
from genre_daemon.filing.journal import FileIdentity, FileRow, Journal, State
from genre_daemon.importer.plan import Plan, check_source, plan
from genre_daemon.importer.progress import Progress
from genre_daemon.learning.labels import HashCache
from genre_daemon.model.inference import Prediction
from genre_daemon.names import safe_component
from genre_daemon.path_template import Template, album_values, file_values
from genre_daemon.system.logs import RepeatedProblem

log = logging.getLogger("genre_daemon.daemon.service")

WAITING = (State.SEEN, State.SETTLING, State.QUEUED)
IMPORT_LOCK = "import.lock"  # in state_dir: one import at a time (one inside another's folder would race it)


@dataclass(frozen=True)
class Outcome:
    """What one classification gave: the prediction, or why there is none."""

    prediction: Prediction | None
    error: str | None = None
    incomplete: bool = False


class Answers:
    """Stands in for the classifier in the shared handling code: the engine's result for a path."""

    def __init__(self, version: str) -> None:
        self.version = version
        self._results: dict[str, Outcome] = {}

    def put(self, path: str, outcome: Outcome) -> None:
        self._results[os.path.abspath(path)] = outcome

    def classify(self, path: str | os.PathLike[str]) -> Prediction:
        outcome = self._results.pop(os.path.abspath(path), None)
        if outcome is None:
            raise AudioDecodeError(path, "no classification came back for it")
        if outcome.prediction is None:
            raise AudioDecodeError(path, outcome.error or "could not be classified", incomplete=outcome.incomplete)
        return outcome.prediction


class Importer(AlbumHandling, FileHandling):
    """One ``import`` run (see the module docstring)."""

    def __init__(self, settings: Settings, source: Path,
                 engine_factory: Callable[[], Any], *, progress: TextIO | None = sys.stderr) -> None:
        source = check_source(source, settings)
        # The folder being imported is this run's inbox: folders it empties are removed, never it.
        self.settings = replace(settings, inbox=source)
        self.source = source
        self._engine_factory = engine_factory
        self._progress_stream = progress
        self.journal: Journal | None = None
        self.classifier: Any = None
        self.watcher = None
        self.library_watch = None
        self.queue: queue.Queue[Any] = queue.Queue()
        self.counters = Counters()
        self._hashes = HashCache()
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._backlog = False
        self._deferred: set[int] = set()
        self._solo = SoloLock()
        self._unrecorded = RepeatedProblem(30.0)
        self._init_albums()

    # the daemon's queue is not used: import takes files up in its own walk
    def _resume(self, row: FileRow) -> None:
        pass

    def _resume_album(self, album_id: int) -> None:
        pass

    def _hold_for_album(self, row: FileRow) -> bool:
        return False

    def _classify_suspect(self, path: Path) -> Apart:
        """The engine classified it already, in its own process: that answer stands."""
        try:
            return Apart(prediction=self.classifier.classify(path))
        except AudioDecodeError as exc:
            return Apart(error=exc.reason, incomplete=exc.incomplete)

    def request_stop(self) -> None:
        self._stop.set()

    def run(self) -> Counters:
        """Sort the folder; returns what was placed, sent to review and quarantined."""
        s = self.settings
        prepare_folders(s)
        running = lock_file(s.state_dir / IMPORT_LOCK, "state_dir", s,
                            "another import (pid {pid}) is running with state_dir {folder}; let it finish or stop it")
        try:
            lock = take_inbox_lock(s)  # no daemon on this folder meanwhile
        except BaseException:
            os.close(running)
            raise
        try:
            with Journal(s.journal_path, retry_for=None) as journal:
                self.journal = journal
                self._recover_albums()  # this folder's rows only: the daemon finishes its inbox's
                self._recover()
                work = plan(self.source, s, judged_loose(journal, self.source))
                log.info("import %s: %d audio files (%d albums, %d loose)", self.source, work.tracks,
                         len(work.grouping.albums), len(work.grouping.loose))
                self._sort(work)
        finally:
            if lock is not None:
                os.close(lock)
            os.close(running)
        return self.counters

    def _sort(self, work: Plan) -> None:
        journal = self.journal
        assert journal is not None
        loose: dict[str, FileRow] = {}
        albums: dict[Path, list[FileRow]] = {}
        for path in work.grouping.loose:
            if (row := self._take(path)) is not None:
                loose[os.path.abspath(path)] = self._queue(row)  # the loose verdict, kept past a stop
        for root, tracks in work.grouping.albums.items():
            rows = [r for t in tracks if (r := self._take(t)) is not None]
            if rows:
                albums[root] = rows
        album_of = {os.path.abspath(r.path): root for root, rows in albums.items() for r in rows}
        waiting = {root: len(rows) for root, rows in albums.items()}
        paths = [*loose, *album_of]
        progress = Progress(self.settings, self.source, len(paths), self._progress_stream)
        finished = False
        try:
            with self._engine_factory() as engine:
                self.classifier = Answers(engine.model_version)
                for result in engine.classify(paths):
                    if self._stop.is_set():
                        break
                    self.classifier.put(result.path, Outcome(result.prediction, result.error, result.incomplete))
                    key = os.path.abspath(result.path)
                    if key in loose:
                        self._file_one(loose.pop(key))
                        progress.advance()
                    elif key in album_of:
                        root = album_of[key]
                        waiting[root] -= 1
                        if waiting[root] == 0:
                            self._file_album(root, albums[root])
                            progress.advance(len(albums[root]))
                else:
                    finished = True
        finally:
            progress.close(finished=finished)  # stopped: status says what waits for the next run

    def _take(self, path: Path) -> FileRow | None:
        """The journal row of a file to sort, recorded if new; None for one to leave alone (an
        undone file, or one already judged and left in the folder)."""
        journal = self.journal
        assert journal is not None
        try:
            row, _new = journal.observe(path, FileIdentity.of(path), hasher=self._hashes)
        except FileNotFoundError:
            return None
        if row.held or row.state not in WAITING:
            return None
        return row

    def _file_one(self, row: FileRow) -> None:
        journal = self.journal
        assert journal is not None
        current = journal.get(row.id)
        if current is None or current.state not in WAITING:
            return
        self._queue(current)
        self.process(row.id)

    def _queue(self, row: FileRow) -> FileRow:
        """``row`` (waiting) queued on its own: the journal's mark of a loose file, which the next
        run's plan keeps loose (:func:`judged_loose`)."""
        journal = self.journal
        assert journal is not None
        if row.state == State.QUEUED:
            return row
        return journal.set_state(row.id, State.QUEUED, via=[State.SETTLING] if row.state == State.SEEN else [])

    def _file_album(self, root: Path, rows: list[FileRow]) -> None:
        journal = self.journal
        assert journal is not None
        album = journal.active_album(root)
        if album is None:
            try:
                snap = album_mover.snapshot(root)
            except MoveError as exc:
                log.warning("%s: %s; its tracks are filed one by one", root, exc)
                for r in rows:
                    self._file_one(r)
                return
            fresh = [r.id for r in rows if (f := journal.get(r.id)) is not None and f.state in WAITING and not f.held]
            if not fresh:  # nothing of it waits any more (e.g. its files were undone meanwhile)
                return
            album = journal.open_album(root, fresh, album_snapshot_json(snap))
        if album.state == "queued":
            self.process_album(album.id)


def judged_loose(journal: Journal, source: Path) -> list[Path]:
    """The files under ``source`` that an earlier run (stopped since) judged loose: queued on
    their own, in no album, the daemon's mark too (``daemon.albums._judged_loose``)."""
    return [Path(r.path) for r in journal.recoverable(under=source) if _judged_loose(r)]


# ----------------------------------------------------------------- the dry run
def dry_run(settings: Settings, source: Path, engine_factory: Callable[[], Any], out: TextIO) -> int:
    """Print where each album and loose file would go; change nothing (no move; the journal,
    if there is one, only read: what a stopped import judged loose stays loose)."""
    source = check_source(source, settings)
    judged: list[Path] = []
    if settings.journal_path.exists():
        with Journal(settings.journal_path) as journal:
            judged = judged_loose(journal, source)
    work = plan(source, replace(settings, inbox=source), judged)
    album_of = {str(t): root for root, ts in work.grouping.albums.items() for t in ts}
    scores: dict[Path, list[dict[str, float]]] = {root: [] for root in work.grouping.albums}
    errors = 0
    template = Template.parse(settings.path_template)
    with engine_factory() as engine:
        for result in engine.classify([*map(str, work.grouping.loose), *album_of]):
            path = Path(result.path)
            if result.prediction is None:
                errors += 1
                print(f"{path} -> quarantine ({result.error})", file=out)
                continue
            root = album_of.get(str(path))
            if root is None:
                pred = result.prediction
                if pred.confidence < settings.min_confidence:
                    print(f"{path} -> review ({pred.genre} {pred.confidence:.2f})", file=out)
                else:
                    rel = template.file_path(file_values(path, safe_component(pred.genre), _tags(path)), path.suffix)
                    print(f"{path} -> {settings.library / rel} ({pred.confidence:.2f})", file=out)
                continue
            scores[root].append(result.prediction.scores)
            if len(scores[root]) == len(work.grouping.albums[root]):
                verdict = decide(scores[root], settings.min_confidence)
                if verdict.to_review or verdict.genre is None:
                    print(f"{root}/ -> review/{root.name}/ ({verdict.why})", file=out)
                else:
                    rel = template.album_path(album_values(root.name, safe_component(verdict.genre),
                                                           [_tags(t) for t in work.grouping.albums[root]]))
                    print(f"{root}/ -> {settings.library / rel}/ ({verdict.why})", file=out)
    print(f"dry run: {work.tracks} audio files ({len(work.grouping.albums)} albums, "
          f"{len(work.grouping.loose)} loose), {errors} could not be classified; nothing was changed", file=out)
    return 0


def _tags(path: Path) -> dict[str, object]:
    from genre_daemon.tags import read_tags

    try:
        return dict(read_tags(path).to_json())
    except OSError:
        return {}
