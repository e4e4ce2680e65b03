"""Filing an album whole: its tracks classified, one genre decided, the folder moved whole to
where the one decision (:mod:`.decision`) puts it, every track recorded and tagged; and, after a
crash, an album left half-way finished or put back.

:class:`AlbumFiler` is built on the :class:`~genre_daemon.filer.core.Filer` (its parts and hooks);
when an album is ready to file is the caller's (the daemon's :mod:`genre_daemon.daemon.albums`,
``import``'s walk). Each track is classified (a track that cannot be decoded is quarantined on its
own, with its reason, before the album moves); a name that is not a safe library name is made one
inside the new folder (``...Blackened.flac`` -> ``Blackened.flac``; the album is never torn for a
name). Only the track being classified when the daemon stopped is blamed (as for a single file);
one that stopped it :data:`MAX_INTERRUPTIONS` times is classified in a separate process
(:mod:`genre_daemon.filer.probe`): poison kills that process too and leaves the album for
quarantine, the album filed whole without it; a track that classifies there stays.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from genre_daemon.errors import AudioDecodeError, MoveError, SourceChangedError
from genre_daemon.filer import decision, evidence
from genre_daemon.filer.core import Filer, incomplete_grace, write_reason_file
from genre_daemon.filer.probe import Apart
from genre_daemon.filing import album_mover
from genre_daemon.filing.album_mover import Names, Snapshot, placed_path
from genre_daemon.filing.journal import MAX_INTERRUPTIONS, AlbumRow, FileIdentity, FileRow, PlacedTrack, State
from genre_daemon.filing.mover import read_refusal, reason_path
from genre_daemon.model.inference import Prediction

__all__ = ["GIVEN_UP", "AlbumFiler", "album_snapshot_from", "album_snapshot_json"]

log = logging.getLogger("genre_daemon.daemon.service")

GIVEN_UP = "filed track by track"  # the reason prefix of an album whose tracks go on their own

album_snapshot_json = Snapshot.to_json  # the journal's form of a snapshot
album_snapshot_from = Snapshot.from_json


class AlbumFiler:
    """Albums from a queued album row to placement (see the module docstring)."""

    def __init__(self, filer: Filer) -> None:
        self.filer = filer

    # ----------------------------------------------------------------- work
    def process(self, album_id: int) -> None:
        """Classify an album's tracks, decide its genre, move it whole, record it."""
        journal = self.filer.journal
        assert journal is not None and self.filer.classifier is not None
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
        with self.filer.solo.solo() if any(t.attempts > 0 for t in tracks) else self.filer.solo.shared():
            self._classify_album(album, root, expect, tracks)

    def _classify_album(self, album: AlbumRow, root: Path, expect: Snapshot, tracks: list[FileRow]) -> None:
        journal, classifier, s = self.filer.journal, self.filer.classifier, self.filer.settings
        assert journal is not None and classifier is not None
        album_id = album.id
        preds: dict[int, Prediction] = {}
        tags: dict[int, dict[str, object]] = {}
        # Suspects last: a track a stop interrupted before is classified after the others, so the
        # next stop, if it is not the track's fault, lands on a track not yet blamed; a real poison
        # track still stops the daemon every time it is reached, and is quarantined at the limit.
        for row in sorted(tracks, key=lambda t: (t.attempts, t.path)):
            if self.filer.stop.is_set():
                journal.requeue_album(album_id, "the daemon stopped while classifying it", refund=True)
                return
            path = Path(row.path)
            self.filer.counters.last_file = path.name
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
                apart: Apart = self.filer.hooks.classify_apart(path)
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
                tags[row.id] = self.filer.read_tags(row)
                continue
            journal.begin_track(row.id)  # a stop now blames this track, not its album
            try:
                preds[row.id] = classifier.classify(path)
            except AudioDecodeError as exc:
                journal.end_track(row.id)
                if self._requeue_if_moved(album_id, root, row):
                    return
                if exc.incomplete and time.time() - row.identity.mtime_ns / 1e9 < incomplete_grace(self.filer.settings):
                    journal.requeue_album(album_id, f"{path.name} is incomplete, may still be arriving", refund=True)
                    self.filer.hooks.album_waits(root, incomplete_grace(self.filer.settings))
                    log.warning("album %s: %s: %s; the album waits in the inbox", root.name, path.name, exc.reason)
                    return
                self._quarantine_track(row, exc.reason, expect, root, copy=True)
                continue
            pred = preds[row.id]
            journal.record_track_prediction(row.id, genre=pred.genre, confidence=pred.confidence,
                                            scores=pred.scores, model_version=pred.model_version)
            journal.end_track(row.id)
            tags[row.id] = self.filer.read_tags(row)
        kept = [r for r in tracks if r.id in preds]
        if not kept:
            journal.dissolve_album(album_id, f"{GIVEN_UP}: no track could be classified")
            return
        # the tracks' own genre tags and their artists' songs in the library have their say
        track_tags = [tags.get(r.id, {}) for r in kept]
        verdict = evidence.for_album(s, [preds[r.id].scores for r in kept], track_tags,
                                     [self.filer.artist_genres(t) for t in track_tags])
        hashes = {r.id: self.filer.hash(Path(r.path)) for r in kept}
        dup_of = {r.id: journal.find_placed_hash(h) for r in kept if (h := hashes[r.id])}
        dups = [d for d in dup_of.values() if d is not None and os.path.lexists(d)]
        where = decision.for_album(s, root.name, verdict.genre, [tags.get(r.id, {}) for r in kept],
                                   to_review=verdict.to_review, why=verdict.why, tracks=len(kept), duplicates=dups)
        state, base, dest_root, reason = where.outcome, where.path, where.root, where.reason
        if state == "skip":
            journal.dissolve_album(album_id, f"{GIVEN_UP}: {where.reason}")
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
            for rel in expect.files:  # its files arrive under their names, then the library's
                self.filer.hooks.expect(claimed / rel)
                self.filer.hooks.expect(claimed / names[rel])

        try:
            moved = album_mover.move_album(root, base, root=dest_root, expect=expect, inbox=s.inbox,
                                           on_claimed=record_claim, names=names, folder_mode=s.folder_mode)
        except SourceChangedError as exc:
            self._requeue_changed(album_id, root, str(exc))
            return
        except MoveError as exc:
            journal.requeue_album(album_id, str(exc), refund=True)
            self.filer.hooks.album_waits(root, max(30.0, s.rescan_interval))
            log.error("album %s: %s; left in the inbox, tried again later", root.name, exc)
            return
        self._record_album(album_id, root, moved.destination, kept, preds, hashes, names)
        if state == "quarantined":
            write_reason_file(moved.destination, reason or "quarantined", root)
        self._report_album(root, moved.destination, verdict, len(kept), len(expect.files) - len(kept), state, reason,
                           _renamed(names))
        if state == "moved" and verdict.genre:
            for t in track_tags:  # the artist's next song leans at once
                self.filer.artists.add(t, verdict.genre)
        if state == "moved" and s.write_tags and verdict.genre:
            genres = self.filer.tag_genres(verdict.genre, verdict.scores)  # the album's, from its mean scores
            for move in journal.album_moves(album_id):
                self.filer.write_genre_tag(move, Path(move.destination), genres)

    def _record_album(self, album_id: int, root: Path, dest: Path, kept: list[FileRow],
                      preds: dict[int, Prediction] | None, hashes: dict[int, str | None], names: Names) -> None:
        """Every track recorded placed at its path in the album's folder ``dest`` (under its
        library name); ``preds`` None: completed after a restart, the outcome is the album's."""
        journal = self.filer.journal
        assert journal is not None
        placed = [PlacedTrack(r.id, str(placed_path(dest, Path(r.path).relative_to(root).as_posix(), names)),
                              preds[r.id].confidence if preds else None, preds[r.id].scores if preds else {},
                              hashes.get(r.id)) for r in kept]
        journal.finish_album(album_id, placed, destination=dest, tag=self.filer.settings.write_tags)

    def _report_album(self, root: Path, dest: Path, verdict: Any, n: int, others: int, state: str,
                      reason: str | None, renamed: str) -> None:
        """One line for the album, naming where it went (and the names it changed there)."""
        s = self.filer.settings
        where = os.path.relpath(dest, s.library if state == "moved" else s.review_dir if state == "review"
                                else s.quarantine_dir)
        if state == "moved":
            self.filer.counters.placed += n
            why = verdict.why
            if verdict.genre and why.startswith(verdict.genre):  # the genre by the user's name for it
                why = f"{self.filer.named(verdict.genre)}{why[len(verdict.genre):]}"
            log.info("album %s -> %s (%d tracks, %d other files; %s)%s", root.name, where, n, others, why, renamed)
        elif state == "review":
            self.filer.counters.review += n
            log.info("album %s -> review/%s (%d tracks, %d other files): %s%s", root.name, where, n, others,
                     verdict.why, renamed)
        else:
            self.filer.counters.quarantined += n
            log.warning("album %s -> quarantine/%s: %s%s", root.name, where, reason, renamed)

    def _quarantine_track(self, row: FileRow, reason: str, expect: Snapshot, root: Path, *, copy: bool) -> None:
        """One track that cannot be read or decoded leaves its album for quarantine, with its reason."""
        assert self.filer.journal is not None
        rel = Path(row.path).relative_to(root).as_posix()
        if row.album_id is not None:
            self.filer.journal.drop_from_snapshot(row.album_id, rel)
        self.filer.journal.leave_album(row.id)
        self.filer.quarantine(self.filer.journal.get(row.id) or row, reason, copy=copy)
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
        journal = self.filer.journal
        assert journal is not None
        current = journal.album(album_id)
        if current is not None and current.state in ("classifying", "moving"):
            self._dissolve(current, f"{why}; taken again once it settles")
        self.filer.hooks.rescan(root)

    def _dissolve(self, album: AlbumRow, why: str) -> None:
        """Back to the inbox's waiting files: they settle again and form the album again."""
        assert self.filer.journal is not None
        self.filer.journal.dissolve_album(album.id, why)
        log.info("album %s: %s", Path(album.source).name, why)
        self.filer.hooks.album_waits(Path(album.source), None)

    # ----------------------------------------------------------------- recovery
    def recover(self) -> None:
        """Finish or requeue what a crash interrupted (before the files' own recovery); only
        albums under this inbox (``import``'s are its own, see :mod:`genre_daemon.filer.recovery`)."""
        journal = self.filer.journal
        assert journal is not None
        for album in journal.active_albums(under=self.filer.settings.inbox):
            root = Path(album.source)
            if album.state == "moving" and album.destination:
                expect = album_snapshot_from(root, album.snapshot)
                names = expect.library_names()
                placed = Path(album.destination)
                where = album_mover.settle_album(root, placed, expect, names, self.filer.settings.folder_mode)
                if where == "placed":
                    tracks = [t for t in journal.album_tracks(album.id) if t.state == State.CLASSIFYING]
                    self._record_album(album.id, root, placed, tracks, None, {}, names)
                    album_mover.remove_emptied(root.parent, self.filer.settings.inbox)
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
                # next (:meth:`process`): poison leaves the album for quarantine, the rest stays.
                log.warning("album %s: the daemon stopped while classifying it; trying again", root.name)
                journal.requeue_album(album.id, "a stop interrupted its classification", refund=True)
            self.filer.hooks.resume_album(album.id)


def _renamed(names: Names) -> str:
    """For the album's log line: the names it has in the library that differ from its own."""
    changed = sorted((old, new) for old, new in names.items() if old.rpartition("/")[2] != new.rpartition("/")[2])
    if not changed:
        return ""
    shown = ", ".join(f"{old!r} as {new.rpartition('/')[2]!r}" for old, new in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return f"; {len(changed)} name{'s' if len(changed) > 1 else ''} made safe there: {shown}{more}"
