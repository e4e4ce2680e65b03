"""The filer: one file classified, given its place by the one decision (:mod:`.decision`), moved
(or quarantined), recorded and tagged.

A :class:`Filer` is composed of its parts: the settings, the journal, a classifier (anything
with ``classify(path)`` and ``version``: the model, or ``import``'s engine answers), the hash
cache, the counters, and :class:`Hooks` to the service around it (the watchers, the queue). The
daemon and ``import`` each hold one; albums are :class:`genre_daemon.filer.albums.AlbumFiler`'s,
built on the same filer; what a crash interrupted is finished by :mod:`.recovery`.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from genre_daemon.config import Settings
from genre_daemon.config.names import shown_name
from genre_daemon.errors import AudioDecodeError, MoveError, SourceChangedError
from genre_daemon.filer import decision, evidence, tag_choice
from genre_daemon.filer.probe import Apart
from genre_daemon.filer.solo import SoloLock
from genre_daemon.filing import mover, tagging
from genre_daemon.filing.album_mover import remove_emptied
from genre_daemon.filing.copying import write_atomically
from genre_daemon.filing.journal import MAX_INTERRUPTIONS, FileIdentity, FileRow, Journal, MoveRow, State
from genre_daemon.filing.mover import reason_path
from genre_daemon.filing.writers import open_for_writing
from genre_daemon.learning.artists import ArtistIndex
from genre_daemon.model.inference import Prediction
from genre_daemon.system.logs import file_fields
from genre_daemon.tags import tags_dict

__all__ = ["Classifies", "Counters", "Filer", "Hooks", "incomplete_grace", "renamed", "write_reason_file",
           "UNREADABLE", "INCOMPLETE"]

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


class Classifies(Protocol):
    """What the filer classifies with: the model (:class:`~genre_daemon.model.inference.Classifier`)
    or ``import``'s answers from its engine."""

    version: str

    def classify(self, path: str | os.PathLike[str]) -> Prediction: ...


@dataclass
class Counters:
    """Files placed, sent to review and quarantined since the start, and the last one taken."""

    placed: int = 0
    review: int = 0
    quarantined: int = 0
    last_file: str = ""


def _nothing(*_args: object) -> None:
    return None


def _no_suspects(path: Path) -> Apart:
    return Apart(poison="no separate process to classify it in")


@dataclass
class Hooks:
    """What the filer tells the service around it; each defaults to nothing.

    ``expect(path)``: a path the filer is about to create in the library (its own placement, not
    the user's move). ``track(path)``: watch a file again (it changed, or came back). ``rescan(folder)``:
    look at a folder again. ``defer(file_id)``: a file put back is taken again at the next rescan
    only. ``resume(row)`` and ``resume_album(album_id)``: what a crash interrupted waits for a
    worker again. ``album_waits(root, seconds)``: look at an album folder again after ``seconds``
    (None: as soon as it settles). ``classify_apart(path)``: classify a suspect in a separate
    process (:mod:`genre_daemon.filer.probe`)."""

    expect: Callable[[Path], None] = _nothing
    track: Callable[[Path], None] = _nothing
    rescan: Callable[[Path], None] = _nothing
    defer: Callable[[int], None] = _nothing
    resume: Callable[[FileRow], None] = _nothing
    resume_album: Callable[[int], None] = _nothing
    album_waits: Callable[[Path, float | None], None] = _nothing
    classify_apart: Callable[[Path], Apart] = _no_suspects


def incomplete_grace(settings: Settings) -> float:
    """How long a truncated file written to recently waits for its writer to come back."""
    return max(INCOMPLETE_GRACE_MIN, INCOMPLETE_GRACE_SETTLES * settings.settle_seconds)


@dataclass
class Filer:
    """Files one file at a time (see the module docstring). ``settings`` and ``classifier`` may
    be replaced while it runs (a reload, a model switch); ``journal`` is set once it is open."""

    settings: Settings
    journal: Journal | None = None
    classifier: Classifies | None = None
    hashes: Callable[[Path], str] | None = None
    hooks: Hooks = field(default_factory=Hooks)
    counters: Counters = field(default_factory=Counters)
    stop: threading.Event = field(default_factory=threading.Event)
    solo: SoloLock = field(default_factory=SoloLock)
    artists: ArtistIndex = field(default_factory=ArtistIndex)  # refreshed by the label scan

    # ----------------------------------------------------------------- one file
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
            self.hooks.track(path)
            return
        if (why := unreadable(path)) is not None:
            self.skip_unreadable(row, why)
            return
        if open_for_writing(path):  # a writer came back after it settled: settle it again
            self.resettle(row, "a program holds it open for writing")
            return
        # A file a stop interrupted before may be what stopped it: it runs alone, so a poison
        # file's count of interruptions never lands on whatever ran beside it.
        with self.solo.solo() if row.attempts > 0 else self.solo.shared():
            self._classify_and_place(row, path)

    def _classify_and_place(self, row: FileRow, path: Path) -> None:
        journal = self.journal
        assert journal is not None
        journal.set_state(row.id, State.CLASSIFYING)
        self.counters.last_file = path.name
        if (refusal := mover.read_refusal(path)) is not None:  # a foreign hard link (or a swapped-in symlink)
            self.quarantine(row, refusal, copy=False)  # never read: linked, never copied
            return
        try:
            prediction = self._classify(row, path)
        except AudioDecodeError as exc:
            if (why := unreadable(path)) is not None:  # lost read access meanwhile: not its fault
                self.skip_unreadable(row, why)
            elif FileIdentity.of_or_none(path) != row.identity:  # it changed while being read
                self.resettle(row, "it changed while it was being classified")
            elif exc.incomplete and time.time() - row.identity.mtime_ns / 1e9 < incomplete_grace(self.settings):
                self._hold_incomplete(row, exc.reason)
            else:
                self.quarantine(row, exc.reason)
            return
        if prediction is not None:
            self.place(row, prediction)

    def _classify(self, row: FileRow, path: Path) -> Prediction | None:
        """The file's prediction; None when it was dealt with instead. A file that stopped the
        daemon MAX_INTERRUPTIONS times (``row``: as queued) is classified in a separate process
        first, as an album's track is: poison kills that process too and goes to quarantine; a
        file that classifies there is placed (the stops came from outside: kill -9, power cut)."""
        assert self.classifier is not None and self.journal is not None
        if row.attempts < MAX_INTERRUPTIONS:
            return self.classifier.classify(path)
        apart = self.hooks.classify_apart(path)
        if apart.stopped:  # the daemon is stopping: nothing learnt, the attempt not counted
            self.journal.requeue(row.id, reason="the daemon stopped while checking it in a separate process")
            return None
        if apart.poison is not None:
            self.quarantine(row, f"the daemon stopped {row.attempts} times while classifying it, and {apart.poison}")
            return None
        if apart.error is not None:
            raise AudioDecodeError(path, apart.error, incomplete=apart.incomplete)
        log.info("%s stopped the daemon %d times, but classified in a separate process it is fine: it is placed",
                 path.name, row.attempts)
        return apart.prediction

    def resettle(self, row: FileRow, why: str, returned: Path | None = None) -> None:
        """The file changed (or a writer holds it) after it settled: not placed, not
        quarantined; back to settling, taken again once complete. The attempt is not counted."""
        assert self.journal is not None
        path = Path(row.path)
        current = self.journal.get(row.id)
        if current is not None and current.state == State.CLASSIFYING:
            self.journal.requeue(row.id, reason=f"{why}; settling again")
        self.hooks.defer(row.id)  # not from the backlog: once the watcher says it is complete
        log.info("%s: %s; waiting until it is complete", path.name, why, extra=file_fields(str(path)))
        self.hooks.track(path)
        if returned is not None and returned != path:
            self.hooks.track(returned)

    def _hold_incomplete(self, row: FileRow, reason: str) -> None:
        """Truncated, and written to recently: a writer may have paused. Left in the inbox; any
        change takes it again, and after the grace period unchanged it is judged as it is."""
        assert self.journal is not None
        self.journal.set_state(row.id, State.GONE, reason=f"{INCOMPLETE} ({reason}); left in the inbox")
        log.warning("%s: %s; left in the inbox while it may still be arriving (judged as it is after "
                    "%.0f s unchanged)", row.path, reason, incomplete_grace(self.settings),
                    extra=file_fields(row.path))

    def skip_unreadable(self, row: FileRow, why: str) -> None:
        """Not quarantined, not moved: left in the inbox, taken again once it can be read."""
        assert self.journal is not None
        self.journal.set_state(row.id, State.GONE,
                               reason=f"{UNREADABLE} ({why}); left in the inbox, retried when it can be read")
        log.warning("%s: %s (%s); skipped, left in the inbox, retried when it can be read",
                    row.path, UNREADABLE, why, extra=file_fields(row.path))

    # ----------------------------------------------------------------- placing
    def place(self, row: FileRow, pred: Prediction) -> None:
        """Put a classified file where the one decision says, and record it."""
        journal, s = self.journal, self.settings
        assert journal is not None
        path = Path(row.path)
        tags = self.read_tags(row)
        digest = self.hash(path)  # before the move: a duplicate is caught before it lands
        duplicate = journal.find_placed_hash(digest) if digest else None
        if duplicate is not None and not os.path.lexists(duplicate):
            duplicate = None
        weighed = self.weigh(pred.scores, tags)
        genre, confidence, scores = pred.genre, pred.confidence, pred.scores
        if weighed.changed:  # the file's own tag or its artist's songs had their say
            genre, confidence, scores = weighed.genre or pred.genre, weighed.confidence, weighed.scores
        where = decision.for_file(s, path, genre, confidence, tags, duplicate=duplicate, review=weighed.review,
                                  vouched=weighed.vouched)
        if where.outcome == "skip":
            journal.set_state(row.id, State.GONE, reason=where.reason)
            log.info("%s: already in the library as %s; left in the inbox (duplicates: skip)", path.name, duplicate,
                     extra=file_fields(str(path)))
            return
        if where.outcome == "quarantined":
            self.quarantine(row, where.reason or "quarantined")
            return
        if duplicate is not None:
            log.info("%s: already in the library as %s; filed anyway (duplicates: keep)", path.name, duplicate,
                     extra=file_fields(str(path)))
        reason = weighed.review if where.outcome == "review" else None
        journal.begin_move(row.id, str(where.path), state=where.state, genre=genre, confidence=confidence,
                           scores=scores, model_version=pred.model_version, reason=reason)
        self.hooks.expect(where.path)  # our own placement: not a move of the user's
        try:
            result = mover.move(path, where.path, where.on_conflict, root=where.root, expect=signature(row),
                                folder_mode=s.folder_mode)
        except SourceChangedError as exc:
            self.resettle(row, str(exc), returned_path(exc))
            return
        except MoveError as exc:
            self.move_failed(row, exc)
            return
        if result.skipped:
            journal.set_state(row.id, State.GONE, reason=f"left in the inbox: {where.path} exists (on_conflict: skip)")
            log.info("%s -> skipped: %s exists (on_conflict: skip)", path.name, where.path)
            return
        assert result.destination is not None
        move = journal.finish(row.id, where.state, source=str(path), destination=str(result.destination),
                              genre=genre, confidence=confidence, scores=scores,
                              model_version=pred.model_version, reason=reason, content_hash=digest,
                              tag=s.write_tags and where.tagged)
        remove_emptied(path.parent, s.inbox)
        name_change = renamed(path, result.destination)
        note = f"; {weighed.note}" if weighed.note else ""
        if where.outcome == "review":
            self.counters.review += 1
            why = where.reason if reason is not None else f"{self.named(genre)} {confidence:.2f} < {s.min_confidence:.2f}"
            log.info("%s -> review%s (%s%s)", path.name, name_change, why, note,
                     extra=file_fields(str(path), None, confidence))
        else:
            self.counters.placed += 1
            log.info("%s -> %s%s (%.2f%s)", path.name, self.named(genre), name_change, confidence, note,
                     extra=file_fields(str(path), genre, confidence))
            self.artists.add(tags, genre)  # the artist's next song leans at once
            if s.write_tags and genre is not None:
                self.write_genre_tag(move, result.destination, self.tag_genres(genre, scores))

    def named(self, genre: str | None) -> str | None:
        """The user's name for the model's ``genre`` (``genre_names``), for log lines."""
        return None if genre is None else shown_name(self.settings, genre)

    def weigh(self, scores: dict[str, float], tags: dict[str, object]) -> evidence.Weighed:
        """The sound's ``scores`` with the file's own genre tag and its artist's songs in the
        library as evidence, as the settings say (:mod:`genre_daemon.filer.evidence`)."""
        return evidence.for_song(self.settings, scores, tags, self.artist_genres(tags))

    def artist_genres(self, tags: dict[str, object]) -> dict[str, int]:
        """The song's artist's songs per genre in the library (``{}``: unknown, or the key off)."""
        if not self.settings.use_artist_genre:
            return {}
        return self.artists.genres(tags, dict(self.settings.genre_names))

    def read_tags(self, row: FileRow) -> dict[str, object]:
        """The file's own tags, recorded in the journal (for the path template and history)."""
        assert self.journal is not None
        tags = tags_dict(row.path)
        if tags:
            self.journal.set_tags(row.id, tags)
        return tags

    def write_genre_tag(self, move: MoveRow, placed: Path, genres: str | Sequence[str] | None = None) -> None:
        """``write_tags``: ``genres`` (the user's names for them) into the placed file's genre tag as ``tag_mode`` says,
        crash-safe; the tag it replaced is kept in the journal for undo. None: the genres chosen
        from the move (its genre, and its scores, or its album's mean scores for an album's track:
        how a write a stop interrupted is taken up). A file that cannot be tagged stays placed."""
        assert self.journal is not None
        if genres is None:
            album = self.journal.album(move.album_id) if move.album_id is not None else None
            genres = self.tag_genres(move.genre, album.scores if album is not None else move.scores)
        if not genres:
            self.journal.drop_tag(move.id)
            return
        self.hooks.expect(placed)
        problem = tagging.tag_placed(self.journal, move, placed, genres, self.hash, mode=self.settings.tag_mode)
        if problem is not None:
            log.warning("%s: placed, but its genre tag was not written: %s", placed, problem,
                        extra=file_fields(str(placed)))

    def tag_genres(self, genre: str | None, scores: Mapping[str, float]) -> tuple[str, ...]:
        """The genres a file (its scores) or an album (its mean scores) placed as ``genre`` gets
        in its tag (``tag_genres``, ``min_confidence``): the filer's one call for it."""
        return tag_choice.for_placement(self.settings, genre, scores, names=lambda g: shown_name(self.settings, g))

    def hash(self, path: Path) -> str | None:
        """Content hash of a placed file (still in the page cache): lets a later correction be
        recognised even after the user copies it across filesystems."""
        if self.hashes is None:
            return None
        try:
            return self.hashes(path)
        except OSError:
            return None

    def quarantine(self, row: FileRow, reason: str, *, copy: bool = True) -> None:
        """Put a file that cannot be filed aside, with its reason beside it."""
        journal, s = self.journal, self.settings
        assert journal is not None
        path = Path(row.path)
        where = decision.for_quarantine(s, path, reason)
        journal.begin_move(row.id, str(where.path), state=State.QUARANTINED, reason=reason)
        try:
            final = mover.quarantine(path, s.quarantine_dir, reason, copy=copy, expect=signature(row),
                                     folder_mode=s.folder_mode)
        except SourceChangedError as exc:
            self.resettle(row, str(exc), returned_path(exc))
            return
        except MoveError as exc:
            self.move_failed(row, exc)
            return
        journal.finish(row.id, State.QUARANTINED, source=str(path), destination=str(final), genre=None,
                       confidence=None, scores={}, model_version=None, reason=reason)
        remove_emptied(path.parent, s.inbox)
        self.counters.quarantined += 1
        log.warning("%s -> quarantine%s: %s", path.name, renamed(path, final), reason, extra=file_fields(str(path)))

    def move_failed(self, row: FileRow, exc: MoveError) -> None:
        """The source is intact. Disk full and the like: back to the queue for the next rescan.
        Anything else: leave the file in the inbox, recorded, not retried until it changes."""
        assert self.journal is not None
        code = getattr(exc, "errno", None) or getattr(exc.__cause__, "errno", None)
        if code in RETRY_ERRNOS:
            self.hooks.defer(row.id)
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


def renamed(source: Path, final: Path) -> str:
    """For a log line: `` as '<final path>'`` when the file's name changed on the way (made
    safe, or `` (2)`` on a clash), else nothing."""
    return f" as {str(final)!r}" if final.name != source.name else ""


def signature(row: FileRow) -> mover.Signature:
    """The signature the file had when it settled (as the journal recorded it)."""
    i = row.identity
    return (i.dev, i.ino, i.size, i.mtime_ns)


def returned_path(exc: SourceChangedError) -> Path | None:
    return Path(exc.returned) if exc.returned is not None else None


def unreadable(path: Path) -> str | None:
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

