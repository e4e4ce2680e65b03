"""The review page's items as the templates and the JSON API see them, and the review list's
sort orders and genre filter.

Each item carries what people know a song by (its tags: ``title``, ``artist``, ``album_title``,
``year``, ``track``; an album's tracks also ``disc`` and ``duration``) and its ``cover`` URL, beside
the pinned fields (``id``, ``kind``, ``name``, ``genre``, ``confidence``, ``scores``): ids and URLs
only, never paths. A missing tag is None (``null``): the page then shows ``name``, the file name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from genre_daemon.web.media_info import SongInfo, album_artist
from genre_daemon.web.placing import WebError, shown

__all__ = ["SORTS", "GenreCount", "RecentItem", "ReviewItem", "ReviewView", "TrackItem", "albums_alike", "check_sort",
           "cover_url", "genre_counts", "order"]

SORTS = ("newest", "oldest", "least-sure", "most-sure", "genre")


def cover_url(file_id: int) -> str:
    """The URL of the cover of file ``file_id`` (``GET /api/files/<id>/cover``)."""
    return f"/api/files/{file_id}/cover"


@dataclass(frozen=True)
class TrackItem:
    """A track of an album waiting in review: its file row id, its path in the album folder, the
    model's top genre for it alone, and its own tags and length."""

    id: int
    name: str
    genre: str | None
    confidence: float | None
    genre_name: str | None = None  # the user's name for ``genre`` (genre_names)
    title: str | None = None
    artist: str | None = None
    track: int | None = None
    disc: int | None = None
    duration: float | None = None  # seconds

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "genre": self.genre, "genre_name": self.genre_name,
                "confidence": _num(self.confidence), "audio": f"/api/files/{self.id}/audio",
                "title": self.title, "artist": self.artist, "track": self.track, "disc": self.disc,
                "duration": _num(self.duration)}


@dataclass(frozen=True)
class ReviewItem:
    """A song (``kind`` file) or an album (``kind`` album: ``album`` is its id, ``tracks`` its
    tracks, ``id`` its first track's) waiting in review, with the daemon's scores (the album's).
    ``artist`` of an album: its album artist, else the artist its tracks share, else "Various
    artists"."""

    id: int
    name: str
    genre: str | None
    confidence: float | None
    scores: dict[str, float]
    time: float
    model: str | None
    kind: str = "file"
    album: int | None = None
    tracks: tuple[TrackItem, ...] = ()
    genre_name: str | None = None  # the user's name for ``genre`` (genre_names)
    title: str | None = None  # a song's; None for an album
    artist: str | None = None
    album_title: str | None = None
    year: int | None = None
    track: int | None = None  # a song's; None for an album
    cover: str | None = None  # its URL, or None when there is no picture
    why: str | None = None  # why it waits, when the daemon said more than a low score (the evidence's words)

    def to_json(self) -> dict[str, Any]:
        """The pinned ``GET /api/review`` object (plus ``genre_name``, the user's name for the
        genre, ``time``, ``model`` and ``audio``; an album's ``album`` and ``tracks``; the tags)."""
        out = {"id": self.id, "kind": self.kind, "name": self.name, "genre": self.genre,
               "genre_name": self.genre_name, "confidence": _num(self.confidence), "scores": self.scores,
               "time": self.time, "model": self.model, "audio": f"/api/files/{self.id}/audio",
               "artist": self.artist, "album_title": self.album_title, "year": self.year, "cover": self.cover,
               "why": self.why}
        if self.kind == "album":
            out["album"] = self.album
            out["tracks"] = [t.to_json() for t in self.tracks]
        else:
            out["title"] = self.title
            out["track"] = self.track
        return out

    def top(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` best genres with their scores, best first."""
        return sorted(self.scores.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    @property
    def songs(self) -> int:
        """How many songs the item holds (an album's tracks, else one)."""
        return len(self.tracks) if self.kind == "album" else 1


@dataclass(frozen=True)
class RecentItem:
    """A recent placement and where its file is now, with the file's tags; a track of an album
    also carries the album's ``album_artist`` and ``cover``."""

    move: int
    file: int
    name: str
    kind: str  # "genre" | "review"
    genre: str | None  # the daemon's choice
    confidence: float | None
    time: float
    undone: bool
    now: str  # "jazz", "review", "back in the inbox", "not found"
    by_you: bool  # filed or corrected through this page
    playable: bool
    scores: dict[str, float] = field(default_factory=dict)
    album: int | None = None  # a track of this album: its correction and undo act on the whole album
    album_name: str | None = None
    album_tracks: int = 0
    genre_name: str | None = None  # the user's name for ``genre`` (genre_names)
    title: str | None = None
    artist: str | None = None
    album_title: str | None = None
    album_artist: str | None = None
    year: int | None = None
    track: int | None = None
    disc: int | None = None
    duration: float | None = None
    cover: str | None = None

    def to_json(self) -> dict[str, Any]:
        """One ``GET /api/recent`` object."""
        return {"move": self.move, "id": self.file, "name": self.name, "kind": self.kind, "genre": self.genre,
                "genre_name": self.genre_name,
                "confidence": _num(self.confidence), "time": self.time, "undone": self.undone,
                "now": self.now, "by_you": self.by_you,
                "audio": f"/api/files/{self.file}/audio" if self.playable else None,
                "album": self.album, "album_name": self.album_name, "album_tracks": self.album_tracks,
                "title": self.title, "artist": self.artist, "album_title": self.album_title,
                "album_artist": self.album_artist, "year": self.year, "track": self.track, "disc": self.disc,
                "duration": _num(self.duration), "cover": self.cover}


@dataclass(frozen=True)
class GenreCount:
    """A genre suggested for items in review (a filter option): how many items and songs."""

    genre: str
    genre_name: str | None
    items: int
    songs: int

    def to_json(self) -> dict[str, Any]:
        return {"genre": self.genre, "genre_name": self.genre_name, "items": self.items, "songs": self.songs}


@dataclass(frozen=True)
class ReviewView:
    """One page of the review list, and what the page needs around it: ``total`` items after
    the filter (``songs`` in them), the sort and filter in force, the genres in review with their
    counts (every item, unfiltered), and ``min_confidence`` as the running daemon has it."""

    items: list[ReviewItem]
    total: int
    songs: int
    sort: str
    genre: str | None
    genres: list[GenreCount]
    min_confidence: float

    def to_json(self) -> dict[str, Any]:
        """``GET /api/review/summary``: everything but the items."""
        return {"total": self.total, "songs": self.songs, "sort": self.sort, "genre": self.genre,
                "genres": [g.to_json() for g in self.genres], "sorts": list(SORTS),
                "min_confidence": self.min_confidence}


def albums_alike(made: list[tuple[RecentItem, SongInfo]]) -> list[RecentItem]:
    """The recent items, the tracks of one album listed with the same album artist (its album
    artist tag, else the artist they share, else "Various artists") and the same cover (that of
    the first of them, by file id, that has one), so the page can show them as one album."""
    by_album: dict[int, list[tuple[RecentItem, SongInfo]]] = {}
    for item, info in made:
        if item.album is not None:
            by_album.setdefault(item.album, []).append((item, info))
    alike: dict[int, tuple[str | None, str | None]] = {
        album: (album_artist([i for _, i in members]),
                next((it.cover for it, _ in sorted(members, key=lambda m: m[0].file) if it.cover), None))
        for album, members in by_album.items()}
    out = []
    for item, _ in made:
        if item.album is not None:
            artist, cover = alike[item.album]
            item = replace(item, album_artist=artist, cover=cover)
        out.append(item)
    return out


def check_sort(value: object) -> str:
    """``value`` when it is one of :data:`SORTS` (None: ``newest``); WebError 400 otherwise."""
    if value is None or value == "":
        return "newest"
    if value not in SORTS:
        raise WebError(400, f"unknown sort {shown(str(value))}: use one of {', '.join(SORTS)}")
    return str(value)


def order(items: Sequence[ReviewItem], sort: str, genre: str | None) -> list[ReviewItem]:
    """``items`` (newest first) with only those suggesting ``genre`` (the model's name or the
    user's, case aside), in the order ``sort`` says; ties keep the newest first."""
    chosen = list(items)
    if genre:
        want = genre.casefold()
        chosen = [it for it in chosen if want in ((it.genre or "").casefold(), (it.genre_name or "").casefold())]
    if sort == "oldest":
        chosen.reverse()
    elif sort == "least-sure":
        chosen.sort(key=lambda it: _sure(it, 2.0))  # no confidence: last
    elif sort == "most-sure":
        chosen.sort(key=lambda it: -_sure(it, -1.0))
    elif sort == "genre":
        chosen.sort(key=lambda it: ((it.genre_name or it.genre or "\uffff").casefold(), -_sure(it, -1.0)))
    return chosen


def genre_counts(items: Sequence[ReviewItem]) -> list[GenreCount]:
    """The genres the items suggest, most items first, then by name."""
    counts: dict[str, list[Any]] = {}
    for it in items:
        if it.genre is None:
            continue
        entry = counts.setdefault(it.genre, [it.genre_name, 0, 0])
        entry[1] += 1
        entry[2] += it.songs
    out = [GenreCount(g, name, n, songs) for g, (name, n, songs) in counts.items()]
    out.sort(key=lambda c: (-c.items, (c.genre_name or c.genre).casefold()))
    return out


def _sure(item: ReviewItem, missing: float) -> float:
    """The item's confidence for sorting; ``missing`` (one end) when it has none."""
    c = item.confidence
    return missing if c is None or not math.isfinite(c) else float(c)


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)
