"""``genre-daemon tag DIR``: classify a collection and write genre tags where the files are, moving
nothing (for libraries laid out by artist: Lidarr, Plex and beets users keep their layout and
only want the tag).

The walk and the grouping are ``import``'s (:func:`~genre_daemon.importer.plan.plan`: albums and
loose files, as the daemon groups an inbox), the classification an engine's
(:mod:`genre_daemon.engines`), what is written :mod:`~genre_daemon.importer.tag_verdict`'s: an
album gets one genre, the daemon's album verdict. Every file judged is recorded in the journal
(:mod:`genre_daemon.filing.journal.in_place`): a tag written is a move of kind ``tag`` (source
and destination the same path) holding the tag it replaced, so ``history`` lists it and
``undo`` puts the old tag back, moving nothing (:mod:`genre_daemon.filing.tag_undo`).

**Crash-safe and resumable.** A verdict is recorded, its tag pending, before the file is touched;
the write keeps the old tag in the journal before the tagged copy replaces the file
(:func:`genre_daemon.filing.tagging.tag_placed`). A killed run leaves the pending writes to the
next run, which finishes them first, then walks again and leaves alone every file judged before
and unchanged since: nothing tagged is classified twice. A file left untagged is judged again
only by another model, one whose write failed at every run.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from genre_daemon.config import Settings
from genre_daemon.daemon.startup import folder_error, lock_file, take_inbox_lock
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing import mover, tagging
from genre_daemon.filing.journal import FileIdentity, FileRow, Journal, MoveRow, State, content_hash
from genre_daemon.filing.journal.in_place import KEPT, NOT_WRITTEN, UNTAGGED, Judged
from genre_daemon.importer import tag_verdict
from genre_daemon.importer.plan import plan
from genre_daemon.importer.progress import Progress
from genre_daemon.importer.tag_verdict import Verdict
from genre_daemon.tags import GenreSnapshot, current_genre, write_genre
from genre_daemon.tags.write import temp_path

__all__ = ["TagRefused", "TagRun", "check_folder", "dry_run", "write_tag"]

log = logging.getLogger("genre_daemon.importer.tag")

TAG_LOCK = "tag.lock"  # in state_dir: one tag run at a time


class TagRefused(GenreDaemonError):
    """``tag`` cannot run on this folder; the message says why."""


def check_folder(source: Path, settings: Settings) -> Path:
    """``source`` as an absolute folder ``tag`` may run on: the library or any folder of yours,
    but not the inbox (the daemon's to sort), review, quarantine or the state folder, nor a
    folder inside one, nor one holding the inbox or the state folder (review and quarantine
    inside it are skipped by the walk)."""
    if not source.is_dir():
        raise TagRefused(f"{source}: not a folder")
    real = Path(os.path.realpath(source))
    for key in ("inbox", "review_dir", "quarantine_dir", "state_dir"):
        other = Path(os.path.realpath(getattr(settings, key)))
        if real == other or real.is_relative_to(other):
            raise TagRefused(f"{source}: it is {key} ({other}) or inside it; tag your library or another "
                             "folder of music (the daemon tags what it files with write_tags: true)")
        if key in ("inbox", "state_dir") and other.is_relative_to(real):
            raise TagRefused(f"{source}: it holds {key} ({other}); tag the folders of music beside it")
    return Path(os.path.abspath(source))


def write_tag(settings: Settings) -> tagging.Writer:
    """The one call that writes a genre tag for ``tag``: the model's genre in the user's name
    (``genre_names``) through the daemon's crash-safe writer. One place, so a writer of several
    values (``tag_genres``) or another mode takes it over whole."""
    def write(path: Path, genre: str, *, mode: str = "replace",
              before_change: Callable[[GenreSnapshot], None] | None = None) -> GenreSnapshot:
        return write_genre(path, tag_verdict.shown_name(settings, genre), mode=mode, before_change=before_change)

    return write


def own_genre(path: Path) -> str | None:
    """The genre tag the file carries now, or None (none, or unreadable)."""
    try:
        return current_genre(path)
    except OSError:
        return None


@dataclass
class Counts:
    """What a run did, file by file."""

    tagged: int = 0
    albums: int = 0
    untagged: int = 0
    kept: int = 0
    before: int = 0
    failed: int = 0


@dataclass
class Work:
    """What is under DIR for a run (or its dry run): loose files and albums' tracks to classify,
    the recorded scores of album tracks judged before, and what stays as it is (with why)."""

    tracks: int = 0
    albums: int = 0
    loose_files: int = 0
    loose: list[Path] = field(default_factory=list)
    album_tracks: dict[Path, list[Path]] = field(default_factory=dict)
    before: dict[Path, list[Mapping[str, float]]] = field(default_factory=dict)
    stays: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    judged: int = 0  # files left alone as judged before

    @property
    def to_classify(self) -> list[Path]:
        return [*self.loose, *(t for ts in self.album_tracks.values() for t in ts)]


def judged_before(journal: Journal | None, path: Path, version: str) -> FileRow | None:
    """The row of an earlier verdict on ``path`` that still stands (the file unchanged since):
    tagged, left untagged by this model, kept its genre, its tag undone; or a held file (an
    undone placement: left alone). None: judge it."""
    if journal is None or (row := journal.by_path(path)) is None:
        return None
    if row.identity != FileIdentity.of_or_none(path):
        return None
    if row.held:
        return row
    if not row.in_place:
        return None
    reason = row.reason or ""
    if row.state is State.GONE and (reason.startswith(NOT_WRITTEN) or
                                    (reason.startswith(UNTAGGED) and row.model_version != version)):
        return None
    return row


def _why_judged(row: FileRow) -> str:
    if row.held:
        return "left alone: you undid genre-daemon's placement of it"
    if row.state is State.MOVED:
        return f"tagged {row.genre} by an earlier run"
    return row.reason or "judged by an earlier run"


def survey(settings: Settings, source: Path, journal: Journal | None, version: str) -> Work:
    """What a run on ``source`` classifies and what it leaves (see :class:`Work`)."""
    found = plan(source, settings)
    work = Work(tracks=found.tracks, albums=len(found.grouping.albums), loose_files=len(found.grouping.loose))
    keeps = settings.tag_mode != "replace"
    for path in found.grouping.loose:
        if (row := judged_before(journal, path, version)) is not None:
            work.judged += 1
            work.stays.append((str(path), _why_judged(row)))
        elif keeps and (kept := tag_verdict.keeps_own(settings, own_genre(path))) is not None:
            work.stays.append((str(path), kept))
        else:
            work.loose.append(path)
    for root, tracks in found.grouping.albums.items():
        todo: list[Path] = []
        before: list[Mapping[str, float]] = []
        for t in tracks:
            row = judged_before(journal, t, version)
            if row is None:
                todo.append(t)
            else:
                work.judged += 1
                before.extend([row.scores] if row.scores else [])
        if not todo:
            work.stays.append((f"{root}/", "every track judged by an earlier run"))
        elif keeps and all(own_genre(t) for t in todo):
            work.stays.append((f"{root}/", f"every track has a genre of its own (tag_mode: {settings.tag_mode})"))
        else:
            work.album_tracks[root] = todo
            work.before[root] = before
    return work


def lines(v: Verdict, root: Path | None, was: Mapping[Path, str | None] | None = None) -> list[str]:
    """The lines that say a verdict: ``PATH -> NAME (why)``, ``PATH -> stays (why)``; an album's
    path ends in ``/``. ``was``: each file's genre now, shown beside a loose file's new one."""
    out: list[str] = []
    if root is not None:
        if v.genre is None:  # untagged as a whole: one line says why
            return [f"{root}/ -> stays ({v.why})"]
        out.append(f"{root}/ -> {v.name} ({v.why})" if v.write else
                   f"{root}/ -> stays ({v.why}; every track keeps its own genre)")
        return out + [f"{p} -> stays ({why})" for p, why in v.left.items()]
    for p in v.write:
        old = f"; was {was.get(p) or 'no genre'}" if was is not None else ""
        out.append(f"{p} -> {v.name} ({v.why}{old})")
    out += [f"{p} -> stays ({why})" for p, why in v.left.items()]
    return out


class _Albums:
    """Albums' results as they come back, in any order: an album is judged with its last track."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self.album_of = {str(t): root for root, ts in work.album_tracks.items() for t in ts}
        self.back: dict[Path, list[Any]] = {root: [] for root in work.album_tracks}

    def add(self, result: Any) -> Path | None:
        """Note ``result``; the album's root once all its tracks are back, else None."""
        root = self.album_of[result.path]
        self.back[root].append(result)
        return root if len(self.back[root]) == len(self.work.album_tracks[root]) else None

    def verdict(self, settings: Settings, root: Path, theirs: Callable[[Path], str | None]) -> tuple[Verdict, list[Any]] | None:
        """The album's verdict over the tracks that were classified (None: none was), and those."""
        ok = [r for r in self.back[root] if r.prediction is not None]
        if not ok:
            return None
        tracks = [(Path(r.path), r.prediction.scores) for r in ok]
        return tag_verdict.for_album(settings, tracks, self.work.before[root], {p: theirs(p) for p, _ in tracks}), ok


class TagRun:
    """One ``tag`` run (see the module docstring): :meth:`run` it; :meth:`request_stop` from a
    signal handler ends it after the file in hand."""

    def __init__(self, settings: Settings, source: Path, engine_factory: Callable[[], Any], *,
                 progress: TextIO | None = sys.stderr) -> None:
        self.source = check_folder(source, settings)
        self.settings = settings
        self._engine_factory = engine_factory
        self._progress_stream = progress
        self.stop = threading.Event()
        self.counts = Counts()
        self.report: list[str] = []  # what was left untagged or failed, one line each
        self._write = write_tag(settings)
        self._journal: Journal | None = None
        self._version = ""

    def request_stop(self) -> None:
        self.stop.set()

    def run(self) -> Counts:
        s = self.settings
        try:
            mover.makedirs(s.state_dir)
            os.chmod(s.state_dir, 0o700)
        except OSError as exc:
            raise folder_error("state_dir", s.state_dir, exc, s) from None
        running = lock_file(s.state_dir / TAG_LOCK, "state_dir", s,
                            "another tag run (pid {pid}) uses state_dir {folder}; let it finish or stop it")
        try:
            folder = take_inbox_lock(replace(s, inbox=self.source))  # no import or daemon on it meanwhile
        except BaseException:
            os.close(running)
            raise
        try:
            with Journal(s.journal_path, retry_for=None) as journal:
                self._journal = journal
                for move in journal.pending_in_place(self.source):  # a stop came between a verdict and its write
                    self._finish_pending(move)
                with self._engine_factory() as engine:
                    self._version = engine.model_version
                    work = survey(s, self.source, journal, self._version)
                    log.info("tag %s: %d audio files (%d albums, %d loose); %d to classify, %d judged by an "
                             "earlier run", self.source, work.tracks, work.albums, work.loose_files,
                             len(work.to_classify), work.judged)
                    self.counts.before = work.judged
                    kept = [f"{what} -> stays ({why})" for what, why in work.stays if why.startswith(KEPT)]
                    self.counts.kept += len(kept)
                    self.report += kept
                    self._classify(engine, work)
        finally:
            self._journal = None
            if folder is not None:
                os.close(folder)
            os.close(running)
        return self.counts

    def _classify(self, engine: Any, work: Work) -> None:
        paths = work.to_classify
        albums = _Albums(work)
        progress = Progress(self.settings, self.source, len(paths), self._progress_stream, command="tag")
        try:
            for result in engine.classify(map(str, paths)):
                if self.stop.is_set():
                    break
                if result.path not in albums.album_of:
                    self._loose(result)
                    progress.advance()
                elif (root := albums.add(result)) is not None:
                    self._album(albums, root)
                    progress.advance(len(work.album_tracks[root]))
        finally:
            progress.close()

    def _theirs(self, path: Path) -> str | None:
        return own_genre(path) if self.settings.tag_mode != "replace" else None

    def _failed(self, path: str, why: str) -> None:
        self.counts.failed += 1
        self.report.append(f"{path} -> failed ({why})")

    def _loose(self, result: Any) -> None:
        pred = result.prediction
        if pred is None:
            self._failed(result.path, result.error or "could not be classified")
            return
        path = Path(result.path)
        v = tag_verdict.for_file(self.settings, path, pred.genre, pred.confidence, pred.scores, self._theirs(path))
        self._apply(v, {path: pred}, None)

    def _album(self, albums: _Albums, root: Path) -> None:
        for r in albums.back[root]:
            if r.prediction is None:
                self._failed(r.path, r.error or "could not be classified")
        judged = albums.verdict(self.settings, root, self._theirs)
        if judged is not None:
            v, ok = judged
            self._apply(v, {Path(r.path): r.prediction for r in ok}, root)

    def _apply(self, v: Verdict, preds: Mapping[Path, Any], root: Path | None) -> None:
        """Record the verdict (the tags pending), then write each tag."""
        journal = self._journal
        assert journal is not None
        rows: dict[Path, FileRow] = {}
        for path in preds:
            row = self._take(path)
            if row is not None:
                rows[path] = row
        if v.write and (written := [p for p in v.write if p in rows]):
            files = [Judged(rows[p].id, preds[p].confidence, preds[p].scores) for p in written]
            moves = journal.record_in_place(files, genre=v.genre, model_version=self._version, reason=v.why, tag=True,
                                            album=root, album_confidence=v.confidence, album_scores=v.scores)
            self.counts.albums += root is not None
            for move in moves:
                self._write_one(move)
        for path, why in v.left.items():
            if path in rows:
                journal.record_in_place([Judged(rows[path].id, preds[path].confidence, preds[path].scores)],
                                        genre=v.genre, model_version=self._version, reason=why, tag=False)
                self.counts.kept += why.startswith(KEPT)
                self.counts.untagged += not why.startswith(KEPT)
        self.report += [line for line in lines(v, root) if " -> stays (" in line]

    def _take(self, path: Path) -> FileRow | None:
        """The file's row, ``classifying``: its waiting row (a stopped run's), or a new one. None
        (reported) when it is gone, or an undone placement the journal holds."""
        journal = self._journal
        assert journal is not None
        try:
            row, _new = journal.observe(path, FileIdentity.of(path))
        except FileNotFoundError:
            self._failed(str(path), "it vanished while it was being classified")
            return None
        if row.held or row.state not in (State.SEEN, State.SETTLING, State.QUEUED, State.CLASSIFYING):
            self.report.append(f"{path} -> stays ({_why_judged(row)})")
            return None
        via = {State.SEEN: [State.SETTLING, State.QUEUED], State.SETTLING: [State.QUEUED], State.QUEUED: []}
        if row.state is not State.CLASSIFYING:
            row = journal.set_state(row.id, State.CLASSIFYING, via=via[row.state])
        return row

    def _write_one(self, move: MoveRow) -> None:
        """Write the tag of a recorded verdict; the file's own placement by the daemon follows it."""
        journal = self._journal
        assert journal is not None
        row = journal.get(move.file_id)
        assert row is not None and move.genre is not None
        problem = tagging.tag_placed(journal, move, Path(move.destination), move.genre, _hash,
                                     mode=self.settings.tag_mode, writer=self._write)
        if problem is not None:
            journal.unrecord_tag(move.id, problem)
            self._failed(move.destination, f"its tag cannot be written: {problem}")
            return
        self.counts.tagged += 1
        now = journal.get(move.file_id)
        if now is not None and now.identity != row.identity:
            journal.follow_rewrite(move.file_id, row.identity, now.identity, now.content_hash)

    def _finish_pending(self, move: MoveRow) -> None:
        """A verdict a kill kept from its write: a temporary copy it left goes, then the write."""
        leftover = temp_path(Path(os.path.realpath(move.destination)))
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink(missing_ok=True)
        log.info("%s: its genre tag, interrupted by a stop, written now", move.destination)
        self._write_one(move)


def _hash(path: Path) -> str | None:
    try:
        return content_hash(path)
    except OSError:
        return None


def summary(counts: Counts, source: Path, stopped: bool) -> str:
    """The run's last line."""
    return (f"tagged {source}: {counts.tagged} files tagged ({counts.albums} albums), {counts.untagged} left "
            f"untagged, {counts.kept} kept their genre, {counts.before} judged by an earlier run, "
            f"{counts.failed} failed" + (" (stopped: run it again to go on)" if stopped else ""))


def dry_run(settings: Settings, source: Path, engine_factory: Callable[[], Any], out: TextIO) -> int:
    """Print what a run would write, file by file and album by album, changing nothing (the
    journal, when there is one, is only read); exit status 1 when a file could not be classified."""
    source = check_folder(source, settings)
    journal = Journal(settings.journal_path) if settings.journal_path.exists() else None
    failed = tagged = 0
    try:
        with engine_factory() as engine:
            work = survey(settings, source, journal, engine.model_version)
            for what, why in work.stays:
                print(f"{what} -> stays ({why})", file=out)
            albums = _Albums(work)
            for result in engine.classify(map(str, work.to_classify)):
                if result.prediction is None:
                    failed += 1
                    print(f"{result.path} -> failed ({result.error or 'could not be classified'})", file=out)
                if result.path not in albums.album_of:
                    if result.prediction is not None:
                        p = Path(result.path)
                        v = tag_verdict.for_file(settings, p, result.prediction.genre, result.prediction.confidence,
                                                 result.prediction.scores, own_genre(p))
                        tagged += len(v.write)
                        _print(lines(v, None, {p: own_genre(p)}), out)
                elif (root := albums.add(result)) is not None and (
                        judged := albums.verdict(settings, root, own_genre)) is not None:
                    tagged += len(judged[0].write)
                    _print(lines(judged[0], root), out)
    finally:
        if journal is not None:
            journal.close()
    print(f"dry run: {work.tracks} audio files ({work.albums} albums); {tagged} would be tagged, "
          f"{len(work.stays)} stay as they are, {failed} could not be classified; nothing was changed", file=out)
    return 1 if failed else 0


def _print(items: Iterable[str], out: TextIO) -> None:
    for line in items:
        print(line, file=out)
