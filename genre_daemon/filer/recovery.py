"""What a crash interrupted, finished at the next start (the daemon's, or the next ``import``'s):
a move half done, a file left classifying, a genre tag a stop kept from being written.

Only rows under the filer's inbox: ``import`` (its folder as its inbox) and the daemon share the
journal, and each finishes its own rows, never the other's. Albums are
:meth:`genre_daemon.filer.albums.AlbumFiler.recover`'s, run first.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from genre_daemon.filer.core import Filer, write_reason_file
from genre_daemon.filing import recovery, tagging
from genre_daemon.filing.fsutil import inside
from genre_daemon.filing.journal import MAX_INTERRUPTIONS, FileRow, State
from genre_daemon.filing.mover import reason_path

__all__ = ["FileRecovery"]

log = logging.getLogger("genre_daemon.daemon.service")


class FileRecovery:
    """Finishes or requeues a loose file's interrupted work (see the module docstring)."""

    def __init__(self, filer: Filer) -> None:
        self.filer = filer

    def recover(self) -> None:
        """Resume whatever a crash interrupted: a move half done, a file left classifying. Only
        files under this inbox: ``import`` (its folder as its inbox) and the daemon share the
        journal, and each finishes its own rows, never the other's."""
        assert self.filer.journal is not None
        for row in self.filer.journal.recoverable(under=self.filer.settings.inbox):
            if row.album_id is not None:  # one of an album's tracks: the album's recovery has it
                continue
            if row.state == State.CLASSIFYING and row.destination:
                settled = recovery.settle(Path(row.path), Path(row.destination), size=row.identity.size,
                                       mtime_ns=row.identity.mtime_ns)
                if settled.state == "moved" and settled.destination is not None:
                    if settled.destination == Path(row.destination):
                        self.filer.journal.finish_pending(row.id, tag=self.filer.settings.write_tags)  # recorded before the move
                        self._ensure_reason_file(settled.destination, row)
                        log.info("%s -> %s (completed after a restart)", Path(row.path).name, settled.destination)
                    else:
                        self._finish_recovered(row, settled.destination)
                    continue
                if settled.state == "missing":
                    self.filer.journal.set_state(row.id, State.GONE, reason="vanished during an interrupted move")
                    continue
                if os.path.lexists(row.path):
                    # Classification had finished: the stop interrupted the move (a long copy),
                    # which says nothing about the file. Not counted towards quarantine.
                    log.warning("%s: the daemon stopped while moving it; trying again", Path(row.path).name)
                    row = self.filer.journal.requeue(row.id, reason="a stop interrupted its move")
            if not os.path.lexists(row.path):
                self.filer.journal.set_state(row.id, State.GONE, reason="no longer in the inbox")
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
                self.filer.journal.set_state(row.id, State.QUEUED)
                row = self.filer.journal.get(row.id) or row
            self.filer.hooks.resume(row)
        write = (lambda m: self.filer.write_genre_tag(m, Path(m.destination))) if self.filer.settings.write_tags else None
        for move in tagging.finish_tags(self.filer.journal, self.filer.settings.inbox, write):  # a stop came between placing and tagging
            log.info("%s: its genre tag, interrupted by a stop, %s", move.destination,
                     "taken up after a restart" if write else "left unwritten (write_tags is off)")

    def _finish_recovered(self, row: FileRow, dest: Path) -> None:
        """A move a stop interrupted ended at ``dest``, not at the planned address (a clash
        renamed it ``x (2).mp3``): recorded with the outcome planned before the move (genre,
        scores, reason), never one guessed from the folder, which a ``path_template`` makes an
        album or artist folder."""
        assert self.filer.journal is not None
        in_review = inside(dest, self.filer.settings.review_dir)
        in_quarantine = inside(dest, self.filer.settings.quarantine_dir)
        state = State.QUARANTINED if in_quarantine else State.REVIEW if in_review else State.MOVED
        if in_quarantine:
            self._ensure_reason_file(dest, row)
        self.filer.journal.finish(row.id, state, source=row.path, destination=str(dest), genre=row.genre,
                            confidence=row.confidence, scores=row.scores or {}, model_version=row.model_version,
                            reason=row.reason or ("undecodable" if in_quarantine else "completed after a restart"),
                            tag=self.filer.settings.write_tags and state == State.MOVED)
        log.info("%s -> %s (completed after a restart)", Path(row.path).name, dest)

    def _ensure_reason_file(self, dest: Path, row: FileRow) -> None:
        """A quarantine interrupted after the move has no reason file yet: write one, with the
        reason and the inbox path the journal planned the move with."""
        if not inside(dest, self.filer.settings.quarantine_dir) or os.path.lexists(reason_path(dest)):
            return
        write_reason_file(dest, f"{row.reason or 'could not be decoded'} (reason written after a restart)", row.path)
