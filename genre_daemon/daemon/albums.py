"""Filing albums whole (``albums: together``): held back while the folder arrives, classified
track by track, given one genre, moved as a folder, recorded, and finished after a crash.

A mixin of :class:`genre_daemon.daemon.service.Daemon`, beside
:class:`~genre_daemon.daemon.handling.FileHandling`. The flow:

1. Intake. A settled track that :func:`genre_daemon.filing.albums.group` puts in an album is not
   queued on its own; its album folder is noted (:meth:`AlbumHandling._hold_for_album`).
2. Readiness, on the main loop's tick (:meth:`AlbumHandling._albums_tick`): an album is taken
   once every track of it is recorded and settled, nothing in the folder (sidecars included)
   changed for ``settle_seconds``, and no process holds any of its files open for writing. Its
   snapshot (every file's signature) and its tracks go to the journal in one transaction, and the
   album is queued.
3. Work (:meth:`AlbumHandling.process_album`): each track classified (a track that cannot be
   decoded is quarantined on its own, with its reason, before the album moves); one genre from
   the tracks' scores, or review as a whole; the album folder moved whole
   (:mod:`genre_daemon.filing.album_mover`) to the path template's folder, a name that is not a
   safe library name made one there as a loose file's is (``...Blackened.flac`` ->
   ``Blackened.flac``; the album is never torn for a name); every track recorded
   placed in one transaction; with ``write_tags`` each track's genre tag written.
4. Recovery (:meth:`AlbumHandling._recover_albums`): an album a crash left ``moving`` is
   finished or put back in the queue, whichever side of the rename it is on; one left
   ``classifying`` is tried again. Only the track being classified when the daemon stopped is
   blamed (as for a single file); one that stopped it :data:`MAX_INTERRUPTIONS` times is
   classified in a separate process (:mod:`genre_daemon.daemon.probe`): poison kills that process
   too and leaves the album for quarantine, the album filed whole without it; a track that
   classifies there stays (the stops came from outside).
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.daemon.handling import reason_path, write_reason_file
from genre_daemon.daemon.probe import Apart
from genre_daemon.daemon.settling import is_candidate, is_hidden
from genre_daemon.daemon.status import Counters
from genre_daemon.daemon.watcher import InboxWatcher
from genre_daemon.errors import AudioDecodeError, MoveError, SourceChangedError
from genre_daemon.filing import album_mover
from genre_daemon.filing.album_mover import Names, Snapshot, placed_path
from genre_daemon.filing.albums import Grouping, decide, group
from genre_daemon.filing.journal import (
    MAX_INTERRUPTIONS,
    AlbumRow,
    FileIdentity,
    FileRow,
    Journal,
    PlacedTrack,
    State,
)
from genre_daemon.filing.mover import read_refusal
from genre_daemon.filing.writers import open_for_writing
from genre_daemon.model.inference import Classifier, Prediction
from genre_daemon.names import safe_component
from genre_daemon.path_template import Template, album_values
from genre_daemon.tags import read_tags

__all__ = ["AlbumHandling", "AlbumJob"]

log = logging.getLogger("genre_daemon.daemon.service")

GIVEN_UP = "filed track by track"  # the reason prefix of an album whose tracks go on their own
GROUPING_TTL = 1.0  # seconds a listing of an inbox folder is reused for routing its files


@dataclass(frozen=True)
class AlbumJob:
    """An album on the work queue (file ids are plain ints)."""

    album_id: int


album_snapshot_json = Snapshot.to_json  # the journal's form of a snapshot (import uses it too)
album_snapshot_from = Snapshot.from_json


class AlbumHandling:
    """Albums from intake to placement (see the module docstring); state on the Daemon."""

    settings: Settings
    journal: Journal | None
    classifier: Classifier | None
    watcher: InboxWatcher | None
    library_watch: Any
    queue: queue.Queue[Any]
    counters: Counters
    _lock: threading.Lock
    _stop: threading.Event

    def _init_albums(self) -> None:
        self._album_roots: dict[Path, float] = {}  # noted album folders -> not before (monotonic)
        self._albums_queued: set[int] = set()
        self._groupings: dict[Path, tuple[float, Grouping]] = {}
        self._album_lock = threading.Lock()

    # ----------------------------------------------------------------- intake
    def _album_of(self, path: Path) -> Path | None:
        """The album folder ``path`` belongs to, or None (a loose file, or ``albums: per_track``)."""
        s = self.settings
        if s.albums != "together" or path.parent == s.inbox or not path.is_relative_to(s.inbox):
            return None
        top = s.inbox / path.relative_to(s.inbox).parts[0]
        now = time.monotonic()
        with self._album_lock:
            cached = self._groupings.get(top)
        if cached is None or now - cached[0] > GROUPING_TTL:
            cached = (now, self._group(top))
            with self._album_lock:
                self._groupings[top] = cached
        root = cached[1].album_of(path)
        if root is not None and self._given_up(root):
            return None
        return root

    def _group(self, top: Path) -> Grouping:
        """The albums and loose files under the inbox folder ``top`` as they are now, the files
        already judged loose kept loose (:func:`_judged_loose`)."""
        journal = self.journal
        judged = [Path(r.path) for r in journal.recoverable(under=top) if _judged_loose(r)] if journal else []
        return group(self.settings.inbox, self._audio_under(top), judged)

    def _audio_under(self, top: Path) -> list[Path]:
        """Every audio file the daemon would take under ``top`` (never through a link)."""
        s = self.settings
        excluded = [d for d in (s.review_dir, s.quarantine_dir) if d.is_relative_to(s.inbox)]
        found: list[Path] = []
        for folder, dirs, files in os.walk(top, followlinks=False):
            base = Path(folder)
            dirs[:] = [d for d in dirs if not is_hidden(d)]
            for name in files:
                p = base / name
                if is_candidate(p, s.inbox, s.extensions, excluded) and stat.S_ISREG(_lstat_mode(p)):
                    found.append(p)
        return found

    def _given_up(self, root: Path) -> bool:
        journal = self.journal
        return journal is not None and journal.album_given_up(root, GIVEN_UP)

    def _hold_for_album(self, row: FileRow) -> bool:
        """True when ``row`` waits for its album instead of being queued on its own."""
        if row.album_id is not None:  # already one of an album's tracks: the album is queued
            return True
        if _judged_loose(row):  # queued on its own before (a restart, the backlog): it stays loose
            return False
        root = self._album_of(Path(row.path))
        if root is None:
            return False
        with self._album_lock:
            self._album_roots.setdefault(root, 0.0)
        return True

    # ----------------------------------------------------------------- readiness
    def _albums_tick(self) -> None:
        """Take every noted album that has settled; refill the queue with queued albums."""
        journal = self.journal
        if journal is None:
            return
        for album in journal.active_albums(under=self.settings.inbox):
            if album.state == "queued":
                self._queue_album(album.id)
        now = time.monotonic()
        with self._album_lock:
            due = [r for r, not_before in self._album_roots.items() if now >= not_before]
        for root in due:
            try:
                self._take_if_ready(root)
            except OSError as exc:
                log.warning("%s: cannot look at the album now (%s); trying again", root, exc)

    def _take_if_ready(self, root: Path) -> None:
        journal, s = self.journal, self.settings
        assert journal is not None
        top = s.inbox / root.relative_to(s.inbox).parts[0]
        grouping = self._group(top) if top.is_dir() else Grouping({}, ())
        with self._album_lock:
            self._groupings[top] = (time.monotonic(), grouping)
        if root not in grouping.albums:  # emptied, or no longer an album: its files go on their own
            self._forget_root(root)
            for t in (p for p in grouping.loose if p.is_relative_to(root)):
                row = journal.by_path(str(t))
                if row is not None and row.state in (State.SEEN, State.SETTLING, State.QUEUED):
                    self._enqueue(row)  # type: ignore[attr-defined]
            for other in grouping.albums:
                if other != root and root.is_relative_to(other):
                    with self._album_lock:
                        self._album_roots.setdefault(other, 0.0)
            return
        if journal.active_album(root) is not None:
            self._forget_root(root)
            return
        rows: list[FileRow] = []
        for t in grouping.albums[root]:
            row = journal.by_path(str(t))
            if row is None or row.held or row.state not in (State.SEEN, State.SETTLING, State.QUEUED):
                return  # not offered yet (still arriving), or left alone after an undo
            rows.append(row)
        if self.watcher is not None and self.watcher.settling_under(root):
            return
        newest = _newest_change(root)
        if time.time() - newest < s.settle_seconds:
            return
        try:
            snap = album_mover.snapshot(root)
        except MoveError as exc:
            log.warning("%s: %s; its tracks are filed one by one", root, exc)
            self._give_up(root, rows, str(exc))
            return
        for rel, sig in snap.files.items():
            if open_for_writing(root / rel):
                return
        track_ids = [r.id for r in rows]
        for r in rows:
            if r.identity.size != snap.files.get(Path(r.path).relative_to(root).as_posix(), (0, 0, -1, 0))[2]:
                return  # a track changed since it settled: the watcher offers it again
        album = journal.open_album(root, track_ids, album_snapshot_json(snap))
        self._forget_root(root)
        others = len(snap.files) - len(track_ids)
        log.info("album %s: %d tracks and %d other files settled; classifying", root.name, len(track_ids), others)
        self._queue_album(album.id)

    def _give_up(self, root: Path, rows: list[FileRow], why: str) -> None:
        """File these tracks one by one from now on (recorded, so a restart does the same)."""
        journal = self.journal
        assert journal is not None
        journal.record_given_up_album(root, f"{GIVEN_UP}: {why}")
        others = sorted(p.name for p in root.rglob("*") if p.is_file() and not any(
            str(p) == r.path for r in rows))
        if others:  # the files that are not audio stay where they are: say so once
            log.info("%s: its %d other file(s) stay in the inbox (%s)", root, len(others), ", ".join(others[:5]))
        self._forget_root(root)
        with self._album_lock:
            self._groupings.clear()
        for r in rows:
            fresh = journal.get(r.id)
            if fresh is not None and fresh.state in (State.SEEN, State.SETTLING, State.QUEUED):
                self._enqueue(fresh)  # type: ignore[attr-defined]

    def _forget_root(self, root: Path) -> None:
        with self._album_lock:
            self._album_roots.pop(root, None)

    def _later(self, root: Path, seconds: float) -> None:
        with self._album_lock:
            self._album_roots[root] = time.monotonic() + seconds

    def _queue_album(self, album_id: int) -> None:
        with self._lock:
            if album_id in self._albums_queued:
                return
            self._albums_queued.add(album_id)
        try:
            self.queue.put_nowait(AlbumJob(album_id))
        except queue.Full:  # the next tick offers it again
            with self._lock:
                self._albums_queued.discard(album_id)

    def _album_done(self, album_id: int) -> None:
        with self._lock:
            self._albums_queued.discard(album_id)

    # ----------------------------------------------------------------- work
    def process_album(self, album_id: int) -> None:
        """Classify an album's tracks, decide its genre, move it whole, record it."""
        journal = self.journal
        assert journal is not None and self.classifier is not None
        album = journal.album(album_id)
        if album is None or album.state != "queued":
            return
        root = Path(album.source)
        expect = album_snapshot_from(root, album.snapshot)
        try:
            what = expect.changed(album_mover.snapshot(root)) if root.is_dir() else "it is gone"
        except MoveError as exc:
            what = str(exc)
        if what is not None:
            self._dissolve(album, f"changed before it was classified ({what}); taken again")
            return
        album = journal.start_album(album_id)
        tracks = journal.album_tracks(album_id)
        # An album with a track a stop interrupted before runs alone, as a suspect file does: a
        # poison track's interruptions never land on whatever ran beside it.
        with self._solo.solo() if any(t.attempts > 0 for t in tracks) else self._solo.shared():  # type: ignore[attr-defined]
            self._classify_album(album, root, expect, tracks)

    def _classify_album(self, album: AlbumRow, root: Path, expect: Snapshot, tracks: list[FileRow]) -> None:
        journal, classifier, s = self.journal, self.classifier, self.settings
        assert journal is not None and classifier is not None
        album_id = album.id
        preds: dict[int, Prediction] = {}
        tags: dict[int, dict[str, object]] = {}
        # Suspects last: a track a stop interrupted before is classified after the others, so the
        # next stop, if it is not the track's fault, lands on a track not yet blamed; a real poison
        # track still stops the daemon every time it is reached, and is quarantined at the limit.
        for row in sorted(tracks, key=lambda t: (t.attempts, t.path)):
            if self._stop.is_set():
                journal.requeue_album(album_id, "the daemon stopped while classifying it", refund=True)
                return
            path = Path(row.path)
            self.counters.last_file = path.name
            refusal = read_refusal(path)
            if refusal is not None:
                self._quarantine_track(row, refusal, expect, root, copy=False)
                continue
            if row.scores and row.model_version == classifier.version and row.genre is not None:
                # classified before a stop: go on with the next track, never blame this one again
                preds[row.id] = Prediction(str(path), row.genre, float(row.confidence or 0.0), row.scores,
                                           row.model_version)
                tags[row.id] = dict(row.tags or {})
                continue
            if row.attempts >= MAX_INTERRUPTIONS:  # suspect: poison, or in the way of outside stops?
                apart: Apart = self._classify_suspect(path)  # type: ignore[attr-defined]
                if apart.stopped:
                    journal.requeue_album(album_id, "the daemon stopped while classifying it", refund=True)
                    return
                if apart.poison is not None:
                    self._quarantine_track(row, f"the daemon stopped {row.attempts} times while classifying it, "
                                                f"and {apart.poison}", expect, root, copy=True)
                    continue
                if apart.error is not None:
                    if self._requeue_if_moved(album_id, root, row):
                        return
                    self._quarantine_track(row, apart.error, expect, root, copy=True)
                    continue
                assert apart.prediction is not None
                log.info("album %s: %s stopped the daemon %d times, but classified in a separate process it "
                         "is fine: it stays with its album", root.name, path.name, row.attempts)
                preds[row.id] = apart.prediction
                journal.record_track_prediction(row.id, genre=apart.prediction.genre,
                                                confidence=apart.prediction.confidence,
                                                scores=apart.prediction.scores,
                                                model_version=apart.prediction.model_version)
                tags[row.id] = self._track_tags(row)
                continue
            journal.begin_track(row.id)  # a stop now blames this track, not its album
            try:
                preds[row.id] = classifier.classify(path)
            except AudioDecodeError as exc:
                journal.end_track(row.id)
                if self._requeue_if_moved(album_id, root, row):
                    return
                if exc.incomplete and time.time() - row.identity.mtime_ns / 1e9 < self._grace():  # type: ignore[attr-defined]
                    journal.requeue_album(album_id, f"{path.name} is incomplete, may still be arriving", refund=True)
                    self._later(root, self._grace())  # type: ignore[attr-defined]
                    log.warning("album %s: %s: %s; the album waits in the inbox", root.name, path.name, exc.reason)
                    return
                self._quarantine_track(row, exc.reason, expect, root, copy=True)
                continue
            pred = preds[row.id]
            journal.record_track_prediction(row.id, genre=pred.genre, confidence=pred.confidence,
                                            scores=pred.scores, model_version=pred.model_version)
            journal.end_track(row.id)
            tags[row.id] = self._track_tags(row)
        kept = [r for r in tracks if r.id in preds]
        if not kept:
            journal.dissolve_album(album_id, f"{GIVEN_UP}: no track could be classified")
            return
        verdict = decide([preds[r.id].scores for r in kept], s.min_confidence)
        hashes = {r.id: self._hash(Path(r.path)) for r in kept}  # type: ignore[attr-defined]
        dup_of = {r.id: journal.find_placed_hash(h) for r in kept if (h := hashes[r.id])}
        dups = [d for d in dup_of.values() if d is not None and os.path.lexists(d)]
        state, base, dest_root, reason = self._album_destination(root, verdict, kept, tags, dups)
        if state == "skip":
            journal.dissolve_album(album_id, f"{GIVEN_UP}: skipped, all {len(kept)} tracks are already in the "
                                             f"library (duplicates: skip)")
            for r in kept:
                journal.set_state(r.id, State.GONE, reason=f"duplicate of {dup_of[r.id]}; left in the inbox "
                                                             "(duplicates: skip)")
            log.info("album %s: every track is already in the library (e.g. %s); left in the inbox "
                     "(duplicates: skip)", root.name, dups[0])
            return
        if dups and state != "quarantined":
            log.info("album %s: %d of %d tracks are already in the library (e.g. %s); filed anyway "
                     "(duplicates: %s)", root.name, len(dups), len(kept), dups[0], s.duplicates)
        model_version = preds[kept[0].id].model_version
        names = expect.library_names()

        def record_claim(claimed: Path) -> None:
            journal.begin_album_move(album_id, claimed, state=state, genre=verdict.genre,
                                     confidence=verdict.confidence, scores=verdict.scores,
                                     model_version=model_version, reason=reason)
            if self.library_watch is not None:  # its files arrive under their names, then the library's
                for rel in expect.files:
                    self.library_watch.expect(claimed / rel)
                    self.library_watch.expect(claimed / names[rel])

        try:
            moved = album_mover.move_album(root, base, root=dest_root, expect=expect, inbox=s.inbox,
                                           on_claimed=record_claim, names=names)
        except SourceChangedError as exc:
            self._requeue_changed(album_id, root, str(exc))
            return
        except MoveError as exc:
            journal.requeue_album(album_id, str(exc), refund=True)
            self._later(root, max(30.0, s.rescan_interval))
            log.error("album %s: %s; left in the inbox, tried again later", root.name, exc)
            return
        self._record_album(album_id, root, moved.destination, kept, preds, hashes, names)
        if state == "quarantined":
            write_reason_file(moved.destination, reason or "quarantined", root)
        self._report_album(root, moved.destination, verdict, len(kept), len(expect.files) - len(kept), state, reason,
                           _renamed(names))
        if state == "moved" and s.write_tags and verdict.genre:
            for move in journal.album_moves(album_id):
                self._write_genre_tag(move, Path(move.destination), verdict.genre)  # type: ignore[attr-defined]

    def _track_tags(self, row: FileRow) -> dict[str, object]:
        """A track's own tags, recorded in the journal (for the template and history)."""
        assert self.journal is not None
        try:
            tags: dict[str, object] = dict(read_tags(row.path).to_json())
        except OSError:
            return {}
        self.journal.set_tags(row.id, tags)
        return tags

    def _album_destination(self, root: Path, verdict: Any, kept: list[FileRow], tags: dict[int, dict[str, object]],
                           dups: list[str]) -> tuple[str, Path, Path, str | None]:
        """(outcome, wanted folder, the root it must stay inside, reason) for an album."""
        s = self.settings
        name = safe_component(root.name, max_bytes=255, normalize=False, fallback="album")
        if dups and len(dups) == len(kept) and s.duplicates != "keep":
            if s.duplicates == "skip":
                return "skip", root, root, None
            return ("quarantined", s.quarantine_dir / name, s.quarantine_dir,
                    f"every track is already in the library (e.g. {dups[0]}; duplicates: quarantine)")
        if verdict.to_review or verdict.genre is None:
            return "review", s.review_dir / name, s.review_dir, verdict.why
        rel = Template.parse(s.path_template).album_path(
            album_values(root.name, safe_component(verdict.genre), [tags.get(r.id, {}) for r in kept]))
        return "moved", s.library / rel, s.library, None

    def _record_album(self, album_id: int, root: Path, dest: Path, kept: list[FileRow],
                      preds: dict[int, Prediction] | None, hashes: dict[int, str | None], names: Names) -> None:
        """Every track recorded placed at its path in the album's folder ``dest`` (under its
        library name); ``preds`` None: completed after a restart, the outcome is the album's."""
        journal = self.journal
        assert journal is not None
        placed = [PlacedTrack(r.id, str(placed_path(dest, Path(r.path).relative_to(root).as_posix(), names)),
                              preds[r.id].confidence if preds else None, preds[r.id].scores if preds else {},
                              hashes.get(r.id)) for r in kept]
        journal.finish_album(album_id, placed, destination=dest, tag=self.settings.write_tags)

    def _report_album(self, root: Path, dest: Path, verdict: Any, n: int, others: int, state: str,
                      reason: str | None, renamed: str) -> None:
        """One line for the album, naming where it went (and the names it changed there)."""
        s = self.settings
        where = os.path.relpath(dest, s.library if state == "moved" else s.review_dir if state == "review"
                                else s.quarantine_dir)
        if state == "moved":
            self.counters.placed += n
            log.info("album %s -> %s (%d tracks, %d other files; %s)%s", root.name, where, n, others, verdict.why,
                     renamed)
        elif state == "review":
            self.counters.review += n
            log.info("album %s -> review/%s (%d tracks, %d other files): %s%s", root.name, where, n, others,
                     verdict.why, renamed)
        else:
            self.counters.quarantined += n
            log.warning("album %s -> quarantine/%s: %s%s", root.name, where, reason, renamed)

    def _quarantine_track(self, row: FileRow, reason: str, expect: Snapshot, root: Path, *, copy: bool) -> None:
        """One track that cannot be read or decoded leaves its album for quarantine, with its reason."""
        assert self.journal is not None
        rel = Path(row.path).relative_to(root).as_posix()
        if row.album_id is not None:
            self.journal.drop_from_snapshot(row.album_id, rel)
        self.journal.leave_album(row.id)
        self._quarantine(self.journal.get(row.id) or row, reason, copy=copy)  # type: ignore[attr-defined]
        expect.files.pop(rel, None)
        log.warning("album %s: %s taken out of the album: %s", root.name, rel, reason)

    def _requeue_if_moved(self, album_id: int, root: Path, row: FileRow) -> bool:
        """A track that failed to decode because it is not there as it settled any more (its
        album folder renamed or moved meanwhile, the file changed): not the track's fault, so
        not quarantined (which would fail too); the album settles again (True)."""
        if FileIdentity.of_or_none(row.path) == row.identity:
            return False
        rel = Path(row.path).relative_to(root).as_posix()
        self._requeue_changed(album_id, root, f"{rel} was moved or changed while the album was classified")
        return True

    def _requeue_changed(self, album_id: int, root: Path, why: str) -> None:
        journal = self.journal
        assert journal is not None
        current = journal.album(album_id)
        if current is not None and current.state in ("classifying", "moving"):
            self._dissolve(current, f"{why}; taken again once it settles")
        if self.watcher is not None:
            self.watcher.rescan_folder(root)

    def _dissolve(self, album: AlbumRow, why: str) -> None:
        """Back to the inbox's waiting files: they settle again and form the album again."""
        assert self.journal is not None
        self.journal.dissolve_album(album.id, why)
        log.info("album %s: %s", Path(album.source).name, why)
        with self._album_lock:
            self._album_roots.setdefault(Path(album.source), 0.0)

    # ----------------------------------------------------------------- recovery
    def _recover_albums(self) -> None:
        """Finish or requeue what a crash interrupted (before the files' own recovery); only
        albums under this inbox (``import``'s are its own, see ``FileHandling._recover``)."""
        journal = self.journal
        assert journal is not None
        for album in journal.active_albums(under=self.settings.inbox):
            root = Path(album.source)
            if album.state == "moving" and album.destination:
                expect = album_snapshot_from(root, album.snapshot)
                names = expect.library_names()
                placed = Path(album.destination)
                where = album_mover.settle_album(root, placed, expect, names)
                if where == "placed":
                    tracks = [t for t in journal.album_tracks(album.id) if t.state == State.CLASSIFYING]
                    self._record_album(album.id, root, placed, tracks, None, {}, names)
                    album_mover.remove_emptied(root.parent, self.settings.inbox)
                    if album.pending_state == "quarantined" and not os.path.lexists(reason_path(placed)):
                        write_reason_file(placed, f"{album.reason} (reason written after a restart)", root)
                    log.info("album %s -> %s (completed after a restart)", root.name, album.destination)
                    continue
                if where == "missing":
                    journal.dissolve_album(album.id, "vanished during an interrupted move")
                    continue
                log.warning("album %s: the daemon stopped while moving it; trying again", root.name)
                journal.requeue_album(album.id, "a stop interrupted its move", refund=True)
            elif album.state == "classifying":
                # The track a stop interrupted carries the attempt (begin_track); one that has
                # stopped the daemon MAX_INTERRUPTIONS times is classified in a separate process
                # next (process_album): poison leaves the album for quarantine, the rest stays.
                log.warning("album %s: the daemon stopped while classifying it; trying again", root.name)
                journal.requeue_album(album.id, "a stop interrupted its classification", refund=True)
            self._resume_album(album.id)

    def _resume_album(self, album_id: int) -> None:
        """A recovered album waits for a worker again (``import`` takes it up in its own walk)."""
        self._queue_album(album_id)


def _judged_loose(row: FileRow) -> bool:
    """Whether the journal says ``row``'s file was judged loose: queued (or being filed) on its
    own, in no album. A track waits in ``seen`` until its album is taken, which links it, and
    a dissolved album's tracks go back to ``seen``: so this is the verdict, kept across a
    restart, where the folder as it is now (a container's albums filed, its songs left) would
    say otherwise."""
    return row.album_id is None and row.state in (State.QUEUED, State.CLASSIFYING)


def _renamed(names: Names) -> str:
    """For the album's log line: the names it has in the library that differ from its own."""
    changed = sorted((old, new) for old, new in names.items() if old.rpartition("/")[2] != new.rpartition("/")[2])
    if not changed:
        return ""
    shown = ", ".join(f"{old!r} as {new.rpartition('/')[2]!r}" for old, new in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return f"; {len(changed)} name{'s' if len(changed) > 1 else ''} made safe there: {shown}{more}"


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def _newest_change(root: Path) -> float:
    """The latest mtime or ctime of anything in the album folder, the folder included."""
    newest = 0.0
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in (".", *dirs, *files):
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            newest = max(newest, st.st_mtime, st.st_ctime)
    return newest

