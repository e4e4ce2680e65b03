"""``genre-daemon import DIR --dry-run``: where each album and loose file would go, changing nothing.

The plan is what the run does: the same walk and grouping (:mod:`.plan`), the engine's answers
taken in the order they come (a loose file at once, an album with its last track), and the one
placement decision (:mod:`genre_daemon.filer.decision`) with what the run would know at that
moment: the file's tags, the duplicates policy against the journal's placed files and the ones
planned before it, name clashes against the disk and the names planned before it, and the
checks the run makes (a file an undo holds or one judged before is left alone; one it cannot
read stays; a foreign hard link is quarantined unread; a truncated file written to recently
waits; an album with a pipe in it is filed track by track). The journal, when there is one, is
only read.

One line per album or loose file: ``SOURCE -> DESTINATION (why)``, ``SOURCE -> review:
DESTINATION (why)``, ``SOURCE -> quarantine: DESTINATION (reason)`` or ``SOURCE -> stays (why)``;
an album's paths end in ``/``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from genre_daemon.config import Settings
from genre_daemon.filer import decision, evidence
from genre_daemon.errors import MoveError
from genre_daemon.filer.core import incomplete_grace, unreadable
from genre_daemon.filer.decision import Placement
from genre_daemon.filing import album_mover
from genre_daemon.filing.destination import unique_path
from genre_daemon.filing.journal import WAITING, FileIdentity, Journal, content_hash
from genre_daemon.filing.mover import read_refusal
from genre_daemon.importer.plan import check_source, loose_before, plan
from genre_daemon.learning.artists import ArtistIndex, library_artists
from genre_daemon.tags import tags_dict

__all__ = ["dry_run"]


def dry_run(settings: Settings, source: Path, engine_factory: Callable[[], Any], out: TextIO, *,
            inbox_pass: bool = False) -> int:
    """Print the plan for ``source`` (see the module docstring); returns the exit status.
    ``inbox_pass``: ``source`` is the daemon's inbox (``run --dry-run``), which import refuses."""
    source = Path(os.path.abspath(source)) if inbox_pass else check_source(source, settings)
    s = replace(settings, inbox=source)
    journal = Journal(settings.journal_path) if settings.journal_path.exists() else None
    try:
        judged = loose_before(journal, source) if journal is not None else []
        work = plan(source, s, judged)
        sim = _Planner(s, journal, library_artists(s, journal))
        loose: list[Path] = []
        for path in work.grouping.loose:  # what the run leaves alone before classifying anything
            if (why := sim.left_alone(path)) is not None:
                print(f"{path} -> stays ({why})", file=out)
            else:
                loose.append(path)
        albums: dict[Path, list[Path]] = {}
        for root, tracks in work.grouping.albums.items():
            kept = [t for t in tracks if sim.left_alone(t) is None]
            if kept:
                albums[root] = kept
            else:
                print(f"{root}/ -> stays (left alone: every track was judged before)", file=out)
        album_of = {str(t): root for root, ts in albums.items() for t in ts}
        answers: dict[Path, dict[str, Any]] = {root: {} for root in albums}
        errors = 0
        with engine_factory() as engine:
            for result in engine.classify([*map(str, loose), *album_of]):
                path = Path(result.path)
                root = album_of.get(str(path))
                if result.prediction is None:
                    errors += 1
                if root is None:
                    print(sim.file(path, result), file=out)
                    continue
                answers[root][str(path)] = result
                if len(answers[root]) == len(albums[root]):
                    print(sim.album(root, [answers[root][str(t)] for t in albums[root]]), file=out)
    finally:
        if journal is not None:
            journal.close()
    print(f"dry run: {work.tracks} audio files ({len(work.grouping.albums)} albums, "
          f"{len(work.grouping.loose)} loose), {errors} could not be classified; nothing was changed", file=out)
    return 0


@dataclass
class _Planner:
    """What the run would know as it goes: the names and the contents it would have placed."""

    settings: Settings
    journal: Journal | None
    artists: ArtistIndex = field(default_factory=ArtistIndex)  # told of each planned placement, as the run's is
    names: set[Path] = field(default_factory=set)  # paths the plan has filled so far
    placed: dict[str, str] = field(default_factory=dict)  # content hash -> planned path

    def left_alone(self, path: Path) -> str | None:
        """Why the run would not take ``path`` up at all (its journal row held by an undo, or
        judged and left where it is), else None: as ``Importer._take`` decides."""
        if self.journal is None or (row := self.journal.by_path(str(path))) is None:
            return None
        if FileIdentity.of_or_none(path) != row.identity:
            return None  # changed since: the run records it afresh
        if row.held:
            return "left alone: you undid its placement"
        if row.state not in WAITING:
            return f"left alone: {row.reason or row.state.value}"
        return None

    def file(self, path: Path, result: Any) -> str:
        """The line of a loose file, checked as ``Filer.process`` checks it."""
        s = self.settings
        if (why := unreadable(path)) is not None:
            return f"{path} -> stays (cannot be read: {why})"
        if (refusal := read_refusal(path)) is not None:
            return self._line(path, decision.for_quarantine(s, path, refusal))[0]
        pred = result.prediction
        if pred is None and result.incomplete and self._recent(path):
            return f"{path} -> stays (incomplete, may still be arriving)"
        if pred is None:
            return self._line(path, decision.for_quarantine(s, path, result.error or "could not be classified"))[0]
        digest = _hash(path)
        tags = tags_dict(path)
        weighed = evidence.for_song(s, pred.scores, tags, self._artist(tags))
        genre, confidence = (weighed.genre or pred.genre, weighed.confidence) if weighed.changed else \
            (pred.genre, pred.confidence)
        where = decision.for_file(s, path, genre, confidence, tags, duplicate=self._duplicate(digest),
                                  review=weighed.review, vouched=weighed.vouched)
        if where.outcome == "moved":
            where = replace(where, reason=f"{confidence:.2f}" + (f"; {weighed.note}" if weighed.note else ""))
            self.artists.add(tags, genre)
        return self._line(path, where, digest)[0]

    def _artist(self, tags: dict[str, object]) -> dict[str, int]:
        """The artist's songs per genre, as the run's filer would know them at this point."""
        s = self.settings
        return self.artists.genres(tags, dict(s.genre_names)) if s.use_artist_genre else {}

    def _recent(self, path: Path) -> bool:
        """Written to within the grace a truncated file gets to finish arriving."""
        try:
            return time.time() - os.stat(path).st_mtime < incomplete_grace(self.settings)
        except OSError:
            return False

    def album(self, root: Path, results: list[Any]) -> str:
        s = self.settings
        try:
            album_mover.snapshot(root)
        except MoveError:  # the run files its tracks one by one (a pipe, a socket in it)
            return "\n".join(self.file(Path(r.path), r) for r in results)
        waiting = [Path(r.path).name for r in results if r.prediction is None and r.incomplete
                   and self._recent(Path(r.path))]
        if waiting:
            return f"{root}/ -> stays (waits: {waiting[0]} is incomplete, may still be arriving)"
        lines: list[str] = []
        kept: list[tuple[Path, Any]] = []
        for r in results:  # a track that cannot be read or decoded leaves its album for quarantine
            track = Path(r.path)
            refusal = read_refusal(track)
            if refusal is not None or r.prediction is None:
                why = refusal or r.error or "could not be classified"
                lines.append(self._line(track, decision.for_quarantine(s, track, why))[0])
            else:
                kept.append((track, r.prediction))
        if not kept:
            return "\n".join([*lines, f"{root}/ -> stays (no track could be classified: filed track by track)"])
        track_tags = [tags_dict(t) for t, _ in kept]
        verdict = evidence.for_album(s, [p.scores for _, p in kept], track_tags, [self._artist(t) for t in track_tags])
        digests = [_hash(t) for t, _ in kept]
        dups = [d for d in (self._duplicate(h) for h in digests) if d is not None]
        where = decision.for_album(s, root.name, verdict.genre, track_tags,
                                   to_review=verdict.to_review, why=verdict.why, tracks=len(kept), duplicates=dups)
        if where.outcome == "moved":
            where = replace(where, reason=verdict.why)
            for t in track_tags if verdict.genre else ():
                self.artists.add(t, verdict.genre)
        line, final = self._line(root, where, album=True)
        lines.append(line)
        if final is not None and where.outcome != "quarantined":
            for (track, _), digest in zip(kept, digests):
                if digest is not None:
                    self.placed.setdefault(digest, str(final / track.relative_to(root)))
        return "\n".join(lines)

    def _duplicate(self, digest: str | None) -> str | None:
        """A placed file with this content, as the run's lookup would find it at this point."""
        if digest is None:
            return None
        if self.journal is not None:
            found = self.journal.find_placed_hash(digest)
            if found is not None and os.path.lexists(found):
                return found
        return self.placed.get(digest)

    def _line(self, source: Path, where: Placement, digest: str | None = None, *,
              album: bool = False) -> tuple[str, Path | None]:
        """The plan's line for ``source`` and the path it would end at (None: it stays)."""
        slash = "/" if album else ""
        if where.outcome == "skip":
            return f"{source}{slash} -> stays ({where.reason})", None
        if not album and where.on_conflict == "skip" and self._taken(where.path):
            return f"{source} -> stays ({where.path} exists; on_conflict: skip)", None
        final = self._claimed(where.path, overwrite=where.on_conflict == "overwrite" and not album)
        if digest is not None and where.outcome != "quarantined":
            self.placed.setdefault(digest, str(final))
        kind = {"moved": "", "review": "review: ", "quarantined": "quarantine: "}[where.outcome]
        return f"{source}{slash} -> {kind}{final}{slash} ({where.reason})", final

    def _claimed(self, wanted: Path, *, overwrite: bool = False) -> Path:
        """The name the run would end up with (``x (2).mp3``, ``Album (2)``), now taken."""
        final = wanted if overwrite else unique_path(wanted, self._taken)
        self.names.add(final)
        return final

    def _taken(self, path: Path) -> bool:
        return path in self.names or os.path.lexists(path)


def _hash(path: Path) -> str | None:
    try:
        return content_hash(path)
    except OSError:
        return None

