"""``genre-daemon import DIR``: sort an existing collection into the library through the daemon's
own journal, careful mover and album handling, with an engine classifying ahead.

The folder being imported plays the inbox: every file gets a journal row, every album an album
row, and each is placed by the filer the daemon holds too (:mod:`genre_daemon.filer`: the one
placement decision, the mover, the journal, the tags), so every promise holds: nothing lost,
nothing placed twice, undo. ``import`` is the daemon's sibling: it holds its own filer, with its
own hooks (no watcher, no queue: it walks its folder). The
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
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from genre_daemon.config import Settings
from genre_daemon.daemon.startup import lock_file, prepare_folders, take_inbox_lock
from genre_daemon.errors import AudioDecodeError, MoveError
from genre_daemon.filer.albums import AlbumFiler, album_snapshot_json
from genre_daemon.filer.core import Counters, Filer, Hooks
from genre_daemon.filer.probe import Apart
from genre_daemon.filer.recovery import FileRecovery
from genre_daemon.filing import album_mover
from genre_daemon.filing.journal import WAITING, FileIdentity, FileRow, Journal, State
from genre_daemon.importer.plan import Plan, check_source, loose_before, plan
from genre_daemon.importer.progress import Progress
from genre_daemon.learning.artists import library_artists
from genre_daemon.learning.labels import HashCache
from genre_daemon.model.inference import Prediction

log = logging.getLogger("genre_daemon.daemon.service")

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


class Importer:
    """One ``import`` run (see the module docstring)."""

    def __init__(self, settings: Settings, source: Path,
                 engine_factory: Callable[[], Any], *, progress: TextIO | None = sys.stderr,
                 inbox_pass: bool = False) -> None:
        """``inbox_pass``: ``source`` is the daemon's own inbox, sorted once by ``run --once``
        (:mod:`genre_daemon.importer.once`), which import refuses; no import progress is kept."""
        source = Path(os.path.abspath(source)) if inbox_pass else check_source(source, settings)
        self.command = "run --once" if inbox_pass else "import"
        self.source = source
        self._engine_factory = engine_factory
        self._progress_stream = progress
        self.answers: Answers | None = None
        # The folder being imported is this run's inbox: folders it empties are removed, never it.
        # Its recovered rows are taken up in the walk, not queued; the engine classified every
        # file in its own process already, so a suspect's answer is that one.
        self.filer = Filer(replace(settings, inbox=source), hashes=HashCache(), counters=Counters(),
                           hooks=Hooks(classify_apart=self._engine_answer))
        self.albums = AlbumFiler(self.filer)

    @property
    def settings(self) -> Settings:
        return self.filer.settings

    @property
    def counters(self) -> Counters:
        return self.filer.counters

    def _engine_answer(self, path: Path) -> Apart:
        """The engine classified it already, in its own process: that answer stands."""
        assert self.answers is not None
        try:
            return Apart(prediction=self.answers.classify(path))
        except AudioDecodeError as exc:
            return Apart(error=exc.reason, incomplete=exc.incomplete)

    def request_stop(self) -> None:
        self.filer.stop.set()

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
                self.filer.journal = journal
                library_artists(s, journal, self.filer.artists)  # what the library says of each artist
                self.albums.recover()  # this folder's rows only: the daemon finishes its inbox's
                FileRecovery(self.filer).recover()
                work = plan(self.source, s, loose_before(journal, self.source))
                log.info("%s %s: %d audio files (%d albums, %d loose)", self.command, self.source, work.tracks,
                         len(work.grouping.albums), len(work.grouping.loose))
                self._sort(work)
        finally:
            self.filer.journal = None
            if lock is not None:
                os.close(lock)
            os.close(running)
        return self.counters

    def _sort(self, work: Plan) -> None:
        journal = self.filer.journal
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
        progress = Progress(self.settings, self.source, len(paths), self._progress_stream, command=self.command)
        finished = False
        try:
            with self._engine_factory() as engine:
                self.answers = self.filer.classifier = Answers(engine.model_version)
                for result in engine.classify(paths):
                    if self.filer.stop.is_set():
                        break
                    self.answers.put(result.path, Outcome(result.prediction, result.error, result.incomplete))
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
        journal = self.filer.journal
        assert journal is not None
        try:
            row, _new = journal.observe(path, FileIdentity.of(path), hasher=self.filer.hashes)
        except FileNotFoundError:
            return None
        if row.held or row.state not in WAITING:
            return None
        return row

    def _file_one(self, row: FileRow) -> None:
        journal = self.filer.journal
        assert journal is not None
        current = journal.get(row.id)
        if current is None or current.state not in WAITING:
            return
        self._queue(current)
        self.filer.process(row.id)

    def _queue(self, row: FileRow) -> FileRow:
        """``row`` (waiting) queued on its own: the journal's mark of a loose file, which the next
        run's plan keeps loose (:func:`~genre_daemon.importer.plan.loose_before`)."""
        journal = self.filer.journal
        assert journal is not None
        if row.state == State.QUEUED:
            return row
        return journal.set_state(row.id, State.QUEUED, via=[State.SETTLING] if row.state == State.SEEN else [])

    def _file_album(self, root: Path, rows: list[FileRow]) -> None:
        journal = self.filer.journal
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
            self.albums.process(album.id)
