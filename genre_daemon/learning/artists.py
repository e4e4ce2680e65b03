"""What the library already says about each artist: how many of their songs are in each genre.

The source of truth is the journal and the disk, as for labels (:mod:`.labels`): a song counts
for its genre when the daemon filed it there and it is still there (the journal's placements
with their recorded tags, :meth:`Journal.placed_tags`), or when it is a label (the user put it in
a genre folder, moved it there from another genre or from review, or it sits in one of
``retrain.labelled_dirs``: its tags are read from the file, once per file identity). A song the
user moved to another genre counts for the new genre only (it left its placement), so a
correction teaches the artist at the next label scan, seconds after the move, before any retrain.

:class:`ArtistIndex` is refreshed from scratch on each label scan (:meth:`ArtistIndex.refresh`)
and told of each placement as it happens (:meth:`ArtistIndex.add`), so the second song of an
artist in one batch already leans. Lookups are a dict access. Artists are matched by
:func:`artist_keys`: case, accents, spaces and punctuation ignored, a leading "The" dropped,
"feat." guests and several artists ("A; B") taken apart; "Various Artists" is no artist.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from genre_daemon.filing.journal import FileIdentity, Journal
from genre_daemon.config import Settings
from genre_daemon.learning.labels import Label, scan_labels
from genre_daemon.tags import tags_dict
from genre_daemon.tags.genres import key as genre_key

__all__ = ["ArtistIndex", "artist_key", "artist_keys", "library_artists"]

log = logging.getLogger("genre_daemon.learning.artists")

_FEAT = re.compile(r"\s+(?:feat\.?|featuring|ft\.)\s+.*$", re.IGNORECASE)
_SEVERAL = re.compile(r"\s*(?:;|\x00|\s/\s)\s*")  # "AC/DC" is one artist
_NO_ARTIST = {"variousartists", "various", "va", "unknownartist", "unknown", "artist", "compilation"}

Counts = dict[str, int]


def artist_key(name: str) -> str:
    """One artist's name as names are matched ("The Beatles", "beatles" and "BEATLES!" are one):
    "" for no artist (empty, "Various Artists", "Unknown")."""
    out = genre_key(re.sub(r"^the\s+", "", _FEAT.sub("", name.strip()), flags=re.IGNORECASE))
    return "" if out in _NO_ARTIST else out


def artist_keys(tags: Mapping[str, object]) -> tuple[list[str], list[str]]:
    """(the song's artists, its album artist) as keys: several artists ("A; B", "A / B") apart."""
    def keys(field: str) -> list[str]:
        value = tags.get(field)
        if not isinstance(value, str):
            return []
        out: list[str] = []
        for part in _SEVERAL.split(value):
            k = artist_key(part)
            if k and k not in out:
                out.append(k)
        return out

    return keys("artist"), keys("albumartist")


class ArtistIndex:
    """Normalised artist -> songs known per genre (see the module docstring). Thread-safe."""

    def __init__(self, read_tags: Callable[[Path], Mapping[str, object]] = tags_dict) -> None:
        self._read_tags = read_tags
        self._lock = threading.Lock()
        self._counts: dict[str, Counts] = {}
        self._label_keys: dict[FileIdentity, list[str]] = {}  # tags read from label files, by identity
        self.ready = False  # refreshed at least once

    # ----------------------------------------------------------------- building
    def refresh(self, journal: Journal, labels: Sequence[Label], *, exists: Callable[[str], bool] = os.path.lexists
                ) -> None:
        """Count again from the journal's kept placements and the labels found by the scan."""
        counts: dict[str, Counts] = {}
        for genre, destination, tags in journal.placed_tags():
            if exists(destination):  # filed and kept (a correction counts as its label instead)
                _count(counts, _song_keys(tags), genre)
        seen: dict[FileIdentity, list[str]] = {}
        for label in labels:
            keys = self._label_keys.get(label.identity)
            if keys is None:
                keys = _song_keys(self._read_tags(label.path))
            seen[label.identity] = keys
            _count(counts, keys, label.genre)
        with self._lock:
            self._counts = counts
            self._label_keys = seen  # files gone since are forgotten
            self.ready = True
        log.debug("artists: %d known from %d labels and the journal", len(counts), len(labels))

    def add(self, tags: Mapping[str, object], genre: str) -> None:
        """A song just filed under ``genre`` (by the daemon, ``import`` or the page)."""
        keys = _song_keys(tags)
        if keys:
            with self._lock:
                _count(self._counts, keys, genre)

    # ----------------------------------------------------------------- asking
    def genres(self, tags: Mapping[str, object], names: Mapping[str, str] | None = None) -> Counts:
        """Songs per genre of the song's artist (its artists', summed), else of its album
        artist; ``{}`` when neither is known. ``names`` (``genre_names``: the model's genre ->
        the user's name): a genre folder named by the user's name counts for the model's genre."""
        artists, album_artists = artist_keys(tags)
        with self._lock:
            found = _sum(self._counts.get(k) for k in artists) or _sum(self._counts.get(k) for k in album_artists)
        if not names or not found:
            return found
        back = {genre_key(name): genre for genre, name in sorted(names.items(), reverse=True)}
        out: Counts = {}
        for genre, n in found.items():
            model_genre = back.get(genre_key(genre), genre)
            out[model_genre] = out.get(model_genre, 0) + n
        return out

    def __len__(self) -> int:
        return len(self._counts)


def _song_keys(tags: Mapping[str, object]) -> list[str]:
    """Every key a song counts under: each of its artists, and its album artist."""
    artists, album_artists = artist_keys(tags)
    return artists + [k for k in album_artists if k not in artists]


def _count(counts: dict[str, Counts], keys: Iterable[str], genre: str) -> None:
    for k in keys:
        per = counts.setdefault(k, {})
        per[genre] = per.get(genre, 0) + 1


def _sum(found: Iterable[Counts | None]) -> Counts:
    out: Counts = {}
    for per in found:
        for genre, n in (per or {}).items():
            out[genre] = out.get(genre, 0) + n
    return out


def library_artists(settings: Settings, journal: Journal | None, index: ArtistIndex | None = None) -> ArtistIndex:
    """``index`` (a new one by default) refreshed from one label scan of the library and the
    journal, for ``import`` and its dry run; an empty one with ``use_artist_genre`` off or no journal."""
    index = index if index is not None else ArtistIndex()
    if settings.use_artist_genre and journal is not None:
        index.refresh(journal, scan_labels(settings, journal))
    return index
