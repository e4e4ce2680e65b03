"""What the page shows and does, without HTTP: the journal, the folders and the model store.

Every action takes a journal id (a file row for review songs and audio, a move for recent
placements), never a path: the path always comes from the journal. :class:`WebData` is the page's
one object: the review list and filing from review, the recent placements with their corrections
and undo, and the status here; which file a row means and the filing itself in
:mod:`genre_daemon.web.placing`; the model versions, rollback and plots in
:mod:`genre_daemon.web.models`.

**Albums are one unit.** An album the daemon sent to review (a folder ``review/<album>/`` whose
tracks' rows share an ``album_id``) is one review item, listed by its first track's id with its
tracks; filing any of its tracks files the whole folder; "wrong genre?" on a track of a placed
album moves the whole album, and undo of one of its tracks brings the whole album back
(:mod:`genre_daemon.filing.undo`), each saying so.

Filing (from review, or into another genre from Recent) is the user's own filing
(:mod:`genre_daemon.filer.by_hand`): where the one placement decision puts it, with
``path_template`` and ``write_tags``, never replacing a file. The label scan (``labels.py``)
counts it by itself: the journal still holds the daemon's placement (review or the old genre),
and the file is now in another genre folder. Actions are serialised in-process by one lock; a
file the daemon or the user moves meanwhile makes the move fail cleanly (nothing moved twice,
the source untouched).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.config.names import shown_name
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing.daemon_status import file_counts
from genre_daemon.filer.by_hand import tidy
from genre_daemon.filing.journal import AlbumRow, FileRow, Journal, JournalError, MoveRow, State
from genre_daemon.filing.undo import counted
from genre_daemon.web.items import (
    SORTS,
    RecentItem,
    ReviewItem,
    ReviewView,
    TrackItem,
    albums_alike,
    check_sort,
    cover_url,
    genre_counts,
    order,
)
from genre_daemon.web.media_info import Cover, MediaInfo, SongInfo, album_artist
from genre_daemon.web.models import ModelViews
from genre_daemon.web.placing import (
    RECORD_PREFIX,
    Placer,
    WebError,
    check_genre_name,
    genre_of,
    inside,
    is_file_of,
    relative,
    shown,
)

log = logging.getLogger("genre_daemon.web")

__all__ = ["WebError", "ReviewItem", "RecentItem", "ReviewView", "SORTS", "TrackItem", "WebData",
           "check_genre_name", "RECORD_PREFIX", "StatusProvider"]

StatusProvider = Callable[[], Mapping[str, Any] | None]


class WebData:
    """The page's model of the daemon's state; every method is safe to call from any thread."""

    def __init__(self, settings: Settings, journal: Journal, status_provider: StatusProvider | None = None) -> None:
        self.settings = settings
        self.journal = journal
        self.status_provider = status_provider
        self._act = threading.Lock()  # one action at a time: check-then-move stays true
        self._scores_lock = threading.Lock()
        self._scores: dict[int, _Scored] = {}  # file id -> its review move
        self._max_move = 0
        self._rows: list[FileRow] = []
        self._rows_key: tuple[int, int] | None = None
        self._entries: list[_Entry] = []
        self._entries_key: tuple[Any, ...] | None = None
        self._models = ModelViews(settings, self._act)
        self._placer = Placer(settings, journal, self._models.model_genres)
        self._media = MediaInfo(settings.library, settings.review_dir)
        self._config_lock = threading.Lock()
        self._config_min: tuple[tuple[int, int], float] | None = None  # (config file's mtime, size) -> value

    # --- review ---------------------------------------------------------------------------------

    def review_items(self, sort: str | None = None, genre: str | None = None, offset: int = 0,
                     limit: int | None = None, *, media: bool = True) -> list[ReviewItem]:
        """Songs and albums waiting for review (:meth:`review_view`'s items)."""
        return self.review_view(sort, genre, offset, limit, media=media).items

    def review_view(self, sort: str | None = None, genre: str | None = None, offset: int = 0,
                    limit: int | None = None, *, media: bool = True) -> ReviewView:
        """The items from ``offset`` (at most ``limit``) of the songs and albums waiting for
        review that suggest ``genre`` (any when None), ordered by ``sort`` (:data:`SORTS`;
        WebError 400 for another), with the counts and genres the page shows around them.

        Waiting means a row in state review whose file is still at its address in the review
        folder (a file moved or filed since is left out); the tracks of an album in review make
        one item. Tags and covers are read (through :class:`MediaInfo`'s cache) only for the
        items returned, unless ``media`` is False."""
        return self._view(self._review_entries(), check_sort(sort), genre or None, offset, limit, media)

    def review_page(self, sort: str | None, genre: str | None, page_no: int, size: int) -> tuple[ReviewView, int, int]:
        """Page ``page_no`` (from 1, clamped to the pages there are) of ``size`` items of
        :meth:`review_view`; returns the view, the page number and how many pages there are."""
        sort = check_sort(sort)
        entries = self._review_entries()
        total = len(order([e.item for e in entries], sort, genre or None))
        pages = max(1, math.ceil(total / size))
        page_no = min(max(1, page_no), pages)
        return self._view(entries, sort, genre or None, (page_no - 1) * size, size, True), page_no, pages

    def _view(self, entries: list[_Entry], sort: str, genre: str | None, offset: int, limit: int | None,
              media: bool) -> ReviewView:
        everything = [e.item for e in entries]
        chosen = order(everything, sort, genre)
        start = max(0, offset)
        shown_items = chosen[start:] if limit is None else chosen[start: start + max(0, limit)]
        if media:
            by_id = {e.item.id: e for e in entries}
            shown_items = [self._dressed(by_id[it.id]) for it in shown_items]
        return ReviewView(shown_items, len(chosen), sum(it.songs for it in chosen), sort, genre,
                          genre_counts(everything), self.min_confidence())

    def _review_entries(self) -> list[_Entry]:
        """Every item waiting in review, newest first, without tags. Cheap on a long list: the
        journal's rows are cached (:meth:`_review_rows`), and so are the items built from them
        while the rows, the review moves and which files are still in place (one lstat each per
        request) stay the same."""
        rows, rows_key = self._review_rows()
        scores = self._review_scores()
        present = tuple(is_file_of(row.destination or "", row) for row in rows)
        # an album's own row changes apart from its tracks' (its state becomes review after they
        # moved): the key holds each one's state, so a list built mid-way is not kept
        album_rows = {i: self.journal.album(i) for i in dict.fromkeys(
            row.album_id for row, here in zip(rows, present) if here and row.album_id is not None)}
        key = (rows_key, self._max_move, present,
               tuple((i, a.state, a.destination, a.undone, a.updated) if a else (i,) for i, a in album_rows.items()))
        with self._scores_lock:
            if self._entries_key == key:
                return self._entries
        review = os.fspath(self.settings.review_dir)
        items: list[_Entry | int] = []  # an int holds an album's place
        albums: dict[int, list[FileRow]] = {}
        for row, here in zip(rows, present):
            if not here:
                continue
            if row.album_id is not None:
                if row.album_id not in albums:
                    albums[row.album_id] = []
                    items.append(row.album_id)
                albums[row.album_id].append(row)
                continue
            items.append(self._song_entry(row, scores))
        out: list[_Entry] = []
        for it in items:
            if isinstance(it, _Entry):
                out.append(it)
                continue
            album = album_rows[it]
            folder = Path(album.destination) if album is not None and album.destination else None
            if album is None or album.state != "review" or album.undone or folder is None \
                    or not inside(folder, review):
                out.extend(self._song_entry(row, scores) for row in albums[it])  # not an album in review now
                continue
            out.append(self._album_entry(album, folder, albums[it], scores))
        with self._scores_lock:
            self._entries, self._entries_key = out, key
        return out

    def _song_entry(self, row: FileRow, scores: dict[int, _Scored]) -> _Entry:
        sc = scores.get(row.id)
        item = ReviewItem(row.id, os.path.basename(row.destination or ""), row.genre, row.confidence,
                          sc.scores if sc else {}, sc.time if sc else row.updated,
                          sc.model if sc else row.model_version, genre_name=self.named(row.genre),
                          why=sc.reason if sc else None)
        return _Entry(item, (row.destination or "",), None)

    def _album_entry(self, album: AlbumRow, folder: Path, rows: list[FileRow],
                     scores: dict[int, _Scored]) -> _Entry:
        tracks = []
        rows = sorted(rows, key=lambda r: os.fsencode(r.destination or ""))
        for row in rows:
            sc = scores.get(row.id)
            own = sc.scores if sc and sc.scores else (row.scores or {})
            best = max(own.items(), key=lambda kv: (kv[1], kv[0])) if own else (row.genre, row.confidence)
            tracks.append(TrackItem(row.id, relative(Path(row.destination or ""), folder), best[0], best[1],
                                    self.named(best[0])))
        newest = max((scores[r.id].time for r in rows if r.id in scores), default=album.updated)
        item = ReviewItem(tracks[0].id, folder.name, album.genre, album.confidence, dict(album.scores), newest,
                          album.model_version, "album", album.id, tuple(tracks), self.named(album.genre),
                          why=album.reason)
        return _Entry(item, tuple(r.destination or "" for r in rows), os.fspath(folder))

    def _dressed(self, entry: _Entry) -> ReviewItem:
        """The item with its tags and cover (what people know it by), read through the cache."""
        media, item = self._media, entry.item
        if item.kind != "album":
            info = media.song(entry.paths[0])
            cover = cover_url(item.id) if media.has_cover(entry.paths[0]) else None
            return replace(item, title=info.title, artist=info.artist, album_title=info.album, year=info.year,
                           track=info.track, cover=cover)
        infos = [media.song(p) for p in entry.paths]
        tracks = tuple(replace(t, title=i.title, artist=i.artist, track=i.track, disc=i.disc, duration=i.duration)
                       for t, i in zip(item.tracks, infos))
        cover = next((cover_url(t.id) for t, p in zip(item.tracks, entry.paths)
                      if media.has_cover(p, entry.folder)), None)
        return replace(item, tracks=tracks, artist=album_artist(infos),
                       album_title=next((i.album for i in infos if i.album), None),
                       year=next((i.year for i in infos if i.year), None), cover=cover)

    def _review_rows(self) -> tuple[list[FileRow], tuple[int, int]]:
        """The journal's rows in state review whose address is in the review folder, newest
        first, and the key they were read under, cached: the set changes only when a move is
        recorded (a new newest move id) or one is undone (fewer review rows), so the count and
        the newest move id together say whether the cached rows are still the rows."""
        newest = self.journal.history(1)
        key = (self.journal.counts()[State.REVIEW.value], newest[0].id if newest else 0)
        with self._scores_lock:
            if self._rows_key == key:
                return self._rows, key
        review = os.fspath(self.settings.review_dir)
        rows = [r for r in self.journal.in_states(State.REVIEW) if r.destination and inside(r.destination, review)]
        rows.reverse()
        with self._scores_lock:
            self._rows, self._rows_key = rows, key
        return rows, key

    def _review_scores(self) -> dict[int, _Scored]:
        """Every review move by file id (its id, scores, model, time), read incrementally from the
        journal's history (moves are only ever appended; the first call reads them all)."""
        with self._scores_lock:
            limit = 64
            while True:
                batch = self.journal.history(None if self._max_move == 0 else limit)
                if self._max_move == 0 or len(batch) < limit or batch[-1].id <= self._max_move:
                    break
                limit *= 4
            for m in batch:
                if m.id > self._max_move and m.kind == "review":
                    self._scores[m.file_id] = _Scored(m.id, m.scores, m.model_version, m.time, m.reason)
            if batch:
                self._max_move = max(self._max_move, batch[0].id)
            return self._scores

    def file_review(self, file_id: int, genre: object) -> dict[str, Any]:
        """File the review song ``file_id`` (or the whole album it is a track of) as ``genre``;
        returns what was done."""
        with self._act:
            row = self.journal.get(file_id)
            if row is None:
                raise WebError(404, f"no song with id {file_id}")
            name = self._placer.meant(check_genre_name(genre))
            if row.album_id is not None and row.state is State.REVIEW:
                album = self.journal.album(row.album_id)
                if album is not None and album.state == "review" and not album.undone:
                    return self._file_album(album, name, file_id, in_review=True)
            record = self._placer.record(file_id)
            if record is not None:
                raise WebError(409, f"song {file_id} was already filed into {shown(record.genre)} "
                                    f"({record.path.name}); nothing moved")
            if row.state is not State.REVIEW:
                what = {State.MOVED: f"placed in {shown(row.genre or '?')} by the daemon (correct it under Recent)",
                        State.QUARANTINED: "in quarantine"}.get(row.state, f"{row.state.value}")
                raise WebError(409, f"song {file_id} is not waiting for review: it is {what}; nothing moved")
            source = Path(row.destination or "")
            if not row.destination or not inside(source, self.settings.review_dir) or not is_file_of(source, row):
                raise WebError(410, f"{shown(source.name)} is no longer in the review folder (moved or deleted "
                                    "outside this page); nothing moved")
            return self._placer.file_song(row, self._review_move(row), source, name, came_from="review")

    def _file_album(self, album: AlbumRow, genre: str, file_id: int, *, in_review: bool,
                    came_from: str | None = None) -> dict[str, Any]:
        """File the whole album ``album`` (a track of it was clicked) as ``genre``."""
        folder, tracks = self._placer.album_tracks(album)
        label = shown(Path(album.destination or album.source).name)
        filed = next((rec for t in tracks if (rec := self._placer.record(t.row.id)) is not None), None)
        if in_review and filed is not None:
            raise WebError(409, f"the album {label} was already filed into {shown(filed.genre)}; nothing moved")
        if folder is None or not tracks:
            where = "the review folder" if in_review else "the library or the review folder"
            raise WebError(410, f"the album {label} is no longer in {where} (moved or deleted outside this page); "
                                "nothing moved")
        if in_review and not inside(folder, self.settings.review_dir):
            raise WebError(409, f"the album {label} is not waiting for review; nothing moved")
        if came_from is None:
            came_from = ("review" if inside(folder, self.settings.review_dir)
                         else self._placer.genre_now(tracks[0].row, tracks[0].where))
        if came_from == self.named(genre) and not inside(folder, self.settings.review_dir):
            raise WebError(409, f"the album {shown(folder.name)} is already in {shown(came_from)}; nothing moved")
        return self._placer.file_album(album, tracks, folder, genre, file_id=file_id, came_from=came_from)

    def _review_move(self, row: FileRow) -> MoveRow | None:
        scored = self._review_scores().get(row.id)
        return self.journal.move(scored.move) if scored is not None else None

    # --- recent ---------------------------------------------------------------------------------

    def recent(self, limit: int = 50) -> list[RecentItem]:
        """The newest ``limit`` placements into a genre folder or review, newest first."""
        limit = max(1, min(int(limit), 1000))
        want = limit * 2 + 16
        while True:
            moves = self.journal.history(want)
            chosen = [m for m in moves if m.kind in ("genre", "review")][:limit]
            if len(chosen) == limit or len(moves) < want:
                break
            want *= 4
        albums: dict[int, tuple[str, int]] = {}
        made = [self._recent_item(m, albums) for m in chosen]
        return albums_alike(made)

    def _recent_item(self, m: MoveRow, albums: dict[int, tuple[str, int]]) -> tuple[RecentItem, SongInfo]:
        """A placement as Recent lists it, with the tags of its file where it is now."""
        row = self.journal.get(m.file_id)
        record = self._placer.record(m.file_id)
        name = Path(m.destination).name
        if m.undone or row is None:
            now, by_you, where = "back in the inbox", False, None
        else:
            where = self._placer.locate(row, record)
            by_you = record is not None and where is not None and where == record.path
            if where is None:
                now = "not found"
            elif inside(where, self.settings.review_dir):
                now = "review"
            else:
                now = genre_of(where, self.settings.library)
            if where is not None:
                name = where.name
        album_name, tracks = None, 0
        if m.album_id is not None:
            if m.album_id not in albums:
                album = self.journal.album(m.album_id)
                albums[m.album_id] = ((Path(album.source).name, len(self.journal.album_tracks(album.id)))
                                      if album is not None else ("?", 0))
            album_name, tracks = albums[m.album_id]
        info, cover = SongInfo(), None
        if where is not None and row is not None:
            info = self._media.song(where)
            cover = cover_url(m.file_id) if self._media.has_cover(where, self._album_folder(row)) else None
        item = RecentItem(m.id, m.file_id, name, m.kind, m.genre, m.confidence, m.time, m.undone, now, by_you,
                          where is not None, dict(m.scores), m.album_id, album_name, tracks, self.named(m.genre),
                          info.title, info.artist, info.album, info.albumartist, info.year, info.track, info.disc,
                          info.duration, cover)
        return item, info

    def correct(self, move_id: int, genre: object) -> dict[str, Any]:
        """Move the file of placement ``move_id`` (the whole album, for a track of one) into
        another genre ("wrong genre")."""
        with self._act:
            move = self.journal.move(move_id)
            if move is None or move.kind not in ("genre", "review"):
                raise WebError(404, f"no placement with id {move_id}")
            name = self._placer.meant(check_genre_name(genre))
            if move.undone:
                raise WebError(409, f"placement {move_id} was undone: the file is back in the inbox; nothing moved")
            row = self.journal.get(move.file_id)
            if row is None or row.state not in (State.MOVED, State.REVIEW):
                raise WebError(409, f"placement {move_id} is no longer the file's last move; nothing moved")
            album = self.journal.album(move.album_id) if move.album_id is not None else None
            if album is not None and not album.undone:
                return self._file_album(album, name, row.id, in_review=False)
            record = self._placer.settle(row, move)
            where = self._placer.locate(row, record)
            if where is None:
                raise WebError(410, f"{shown(Path(move.destination).name)} is not where the daemon or this page "
                                    "put it (moved or deleted by hand?); nothing moved")
            in_review = inside(where, self.settings.review_dir)
            came_from = "review" if in_review else self._placer.genre_now(row, where)
            if not in_review and came_from == self.named(name):
                raise WebError(409, f"{shown(where.name)} is already in {shown(came_from)}; nothing moved")
            return self._placer.file_song(row, move, where, name, came_from=came_from)

    def undo(self, move_id: int) -> dict[str, Any]:
        """Put the file of placement ``move_id`` back where it came from (``undo.py``); a track of
        an album brings the whole album back."""
        from genre_daemon.filing.undo import Undoer

        with self._act:
            move = self.journal.move(move_id)
            if move is None:
                raise WebError(404, f"no placement with id {move_id}")
            if move.undone:
                raise WebError(409, f"placement {move_id} was already undone; nothing moved")
            album = self.journal.album(move.album_id) if move.album_id is not None else None
            if album is not None:  # undo takes the whole album: each of its files, with its move
                rows = self.journal.album_tracks(album.id)
                own = {m.file_id: m for m in self.journal.album_moves(album.id)}
            else:
                rows = [r for r in [self.journal.get(move.file_id)] if r is not None]
                own = {move.file_id: move}
            records = {r.id: self._placer.settle(r, own.get(r.id)) for r in rows}
            result = Undoer(self.journal, self.settings).undo(move)
            if result.error is not None or result.restored is None:
                raise WebError(409, f"cannot undo {result.error}")
            back = [fid for fid, m in own.items() if (self.journal.move(m.id) or m).undone]
            for fid in back:
                rec = records.get(fid)
                self._placer.forget(fid)
                if rec is not None:  # the folders this page made for it, left empty now
                    tidy(self.settings, (rec.folder or rec.path).parent)
            restored = relative(result.restored, self.settings.inbox)
            n = len(back)
            if result.album:
                message = f"the album {shown(result.restored.name)} ({counted(n, 'track')}) is back in the inbox"
            else:
                message = f"{shown(result.restored.name)} is back in the inbox"
            log.info("web: undid move %d: %s", move_id, message)
            return {"move": move_id, "id": move.file_id, "restored": restored, "note": result.note,
                    "kind": "album" if result.album else "file",
                    "album": {"id": album.id, "name": result.restored.name, "tracks": n} if result.album and album
                    else None, "message": message}

    # --- files ----------------------------------------------------------------------------------

    def audio_path(self, file_id: int) -> tuple[Path, os.stat_result]:
        """The file of row ``file_id`` (in the library or review) and its ``lstat``; WebError 404."""
        row = self.journal.get(file_id)
        if row is None:
            raise WebError(404, f"no song with id {file_id}")
        placed = row.state in (State.MOVED, State.REVIEW)
        where = self._placer.locate(row, self._placer.record(file_id)) if placed else None
        if where is None:
            raise WebError(404, f"song {file_id} is not in the library or the review folder")
        try:
            st = os.lstat(where)
        except OSError:
            raise WebError(404, f"song {file_id} is not in the library or the review folder") from None
        return where, st

    def cover(self, file_id: int) -> Cover:
        """The cover of file ``file_id``: its album folder's picture, else the one embedded in
        it; WebError 404 when it has none (or is not in the library or the review folder)."""
        where, _ = self.audio_path(file_id)
        row = self.journal.get(file_id)
        found = self._media.cover(where, self._album_folder(row) if row is not None else None)
        if found is None:
            raise WebError(404, f"song {file_id} has no cover (no cover.jpg, folder.jpg or front.jpg beside it, "
                                "no picture in its tags)")
        return found

    def _album_folder(self, row: FileRow) -> str | None:
        """The folder of the album ``row`` is a track of, where it is now (this page's record of
        where it filed it, else the journal's); None for a loose song."""
        if row.album_id is None:
            return None
        record = self._placer.record(row.id)
        if record is not None and record.folder is not None:
            return os.fspath(record.folder)
        album = self.journal.album(row.album_id)
        return album.destination if album is not None else None

    def known_genres(self) -> list[str]:
        """Genre folders of the library and genres of the active model, by the user's names
        (``genre_names``), sorted, for the pickers."""
        return self._placer.known_genres()

    def named(self, genre: str | None) -> str | None:
        """The user's name for the model's ``genre`` (``genre_names``), as the page shows it."""
        return None if genre is None else shown_name(self.settings, genre)

    # --- what is true now -----------------------------------------------------------------------

    def min_confidence(self) -> float:
        """The threshold as the running daemon has it (re-read on SIGHUP), else as the config
        file says now, else as this page was started with."""
        return self._min_confidence(self._running())

    def _running(self) -> dict[str, Any]:
        """The running daemon's status (``{}`` when none runs)."""
        return dict(self.status_provider() or {}) if self.status_provider is not None else {}

    def _min_confidence(self, running: Mapping[str, Any]) -> float:
        value = running.get("min_confidence")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return self._config_min_confidence()

    def _config_min_confidence(self) -> float:
        """``min_confidence`` of the config file the page was started from, read again when the
        file changes (a bad file: the value the page started with)."""
        from genre_daemon.config import load_settings

        source = self.settings.source
        try:
            st = os.stat(source) if source and os.path.isfile(source) else None
        except OSError:
            st = None
        if st is None:
            return self.settings.min_confidence
        key = (st.st_mtime_ns, st.st_size)
        with self._config_lock:
            if self._config_min is not None and self._config_min[0] == key:
                return self._config_min[1]
        try:
            value = load_settings(source).min_confidence
        except (GenreDaemonError, OSError) as exc:
            log.debug("web: cannot read %s again: %s", source, exc)
            value = self.settings.min_confidence
        with self._config_lock:
            self._config_min = (key, value)
        return value

    # --- status and models ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counts per state (``genre-daemon status``'s, with ``held``), the daemon's queue and model,
        the files it left alone, retrain progress, the last gate decision."""
        from genre_daemon.learning.retrain import read_progress

        running = self._running()
        try:
            counts = file_counts(self.journal)
        except JournalError as exc:
            counts, running["journal_error"] = {}, str(exc)
        progress = read_progress(self.settings)
        active = self._models.active_info()
        gate: dict[str, Any] | None = None
        if progress and progress.get("state") in ("done", "failed"):
            gate = {k: progress.get(k) for k in ("promoted", "reason", "candidate", "active", "labels",
                                                  "new_labels", "version", "finished", "waiting_genres")
                    if k in progress}
        return {
            "running": bool(running.get("pid")),
            "pid": running.get("pid"),
            "uptime": round(time.time() - float(running["started"]), 1) if running.get("started") else None,
            "queue_depth": running.get("queue_depth", 0),
            "waiting": running.get("waiting"),
            "last_file": running.get("last_file"),
            "left_alone": running.get("left_alone"),
            "new_labels": running.get("new_labels"),
            "retraining": running.get("retraining", False),
            "model_version": running.get("model_version") or (active or {}).get("version"),
            "counts": counts,
            "in_review": sum(it.songs for it in self.review_items(media=False)),
            "min_confidence": self._min_confidence(running),
            "retrain": progress,
            "last_gate": gate,
            "active_model": active,
        }

    def models(self) -> dict[str, Any]:
        """Every model version (or the shipped model) with its metrics; which one is active."""
        return self._models.models()

    def rollback(self) -> dict[str, Any]:
        """The version before the active one becomes active (a running daemon switches by itself)."""
        return self._models.rollback()

    def confusion_png(self, name: str) -> bytes:
        """The confusion matrix of version ``name`` (``vNNNN`` or ``shipped``) as a PNG."""
        return self._models.confusion_png(name)


# --- small helpers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scored:
    """A review move as the review list needs it."""

    move: int
    scores: dict[str, float]
    model: str | None
    time: float
    reason: str | None = None  # why it went to review, when the daemon said more than a low score


@dataclass(frozen=True)
class _Entry:
    """A review item before its tags are read: the paths of its files (an album's tracks in the
    item's order) and an album's folder, which the JSON never shows."""

    item: ReviewItem
    paths: tuple[str, ...]
    folder: str | None

