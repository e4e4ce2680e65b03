"""What is an album, and which genre it gets (pure: paths and scores in, decisions out).

**An album** is a folder of the inbox, at any depth, holding two or more audio files of its own
(its part sub-folders count as its own: discs and sides, ``CD1/``, ``Disc 2/``, ``Side A``, and
``Bonus/``, ``Extras/``). Everything under it travels with it: sidecars (cover art, ``.cue``,
``.log``, ``.m3u``, ``.nfo``, lyrics) and any other sub-folder, audio or not.

**A container** is a folder whose sub-folders (other than its parts) are albums of their own, or
hold albums: a ``Downloads/`` with ``bob.mp3``, ``Bach/`` and ``Metallica/`` in it, or an artist
folder holding album folders. It is not an album: each of its album sub-folders is judged as its
own album, and the songs beside them are loose. An album therefore never holds another album
except in its parts, and is never torn apart.

An audio file that is in no album (in the inbox itself, alone in its folder, or beside the albums
of a container) is a loose file and is placed on its own.

**Its genre** is the genre with the highest mean score over its tracks (each track's scores
are probabilities over the same genres; every track weighs the same, however long). The mean
of probabilities lets a few confident tracks carry an album whose other tracks are unsure, while
one confident outlier cannot outvote a consistent album (it is one track of N). The album goes
to review as a whole when that mean is below ``min_confidence``: a compilation spanning genres
scores low for every genre, so it is the user's call, not a split.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# A disc or side of a multi-disc release: CD1, CD 02, Disc 2, disk_3, Disc 1 - The Early Years,
# Side A, DVD, Vinyl 2. Matched on the folder's name, case-insensitively.
DISC_FOLDER = re.compile(
    r"^(?:(?:cd|disc|disk|dvd|side|vinyl|lp)[\s._-]*(?:\d{1,3}|[a-d])(?=$|[\s._)\]-])|(?:cd|disc|disk)$)",
    re.IGNORECASE,
)


# A part of the album above it that is not a disc: bonus tracks, extras, B-sides.
EXTRA_FOLDER = re.compile(
    r"^(?:bonus(?:[\s._-]*(?:tracks?|disc|cd|material))?|extras?|b[\s._-]?sides)$", re.IGNORECASE)


def is_disc_folder(name: str) -> bool:
    """Whether a folder's name says it is one disc (or side) of the album above it."""
    return bool(DISC_FOLDER.match(name.strip()))


def is_part_folder(name: str) -> bool:
    """Whether a folder's name says it is part of the album above it (a disc, a side, its bonus
    tracks or extras): its tracks count as that album's own, and it never makes a container."""
    return is_disc_folder(name) or bool(EXTRA_FOLDER.match(name.strip()))


def home_folder(inbox: Path, track: Path) -> Path | None:
    """The folder whose album ``track`` counts towards: its own folder, or the one above a part
    folder; None for a file directly in the inbox."""
    folder = track.parent
    if folder == inbox or not folder.is_relative_to(inbox):
        return None
    if is_part_folder(folder.name) and folder.parent != inbox:
        return folder.parent
    return folder


@dataclass(frozen=True)
class Grouping:
    """The inbox's audio files sorted into albums (root folder -> its tracks) and loose files."""

    albums: Mapping[Path, tuple[Path, ...]]
    loose: tuple[Path, ...]

    def album_of(self, track: Path) -> Path | None:
        """The album root ``track`` belongs to, or None (loose, or not in this grouping)."""
        for folder in track.parents:
            tracks = self.albums.get(folder)
            if tracks is not None:
                return folder if track in tracks else None
        return None


def group(inbox: Path, tracks: Iterable[Path], judged_loose: Iterable[Path] = ()) -> Grouping:
    """Sort audio files under ``inbox`` into albums and loose files (see the module docstring):
    the one rule that both the daemon and ``import`` follow.

    Pure: the caller lists the files (every audio file under the folders concerned, settled or
    not, so that an album is judged on all its tracks). ``judged_loose``: files already judged
    loose (the songs beside a container's albums, the albums since filed): they stay loose and
    count towards no album, so the two songs left in ``Downloads/`` never become an album called
    Downloads. Costs one walk up each file's folders."""
    judged = set(judged_loose)
    tracks = sorted(set(tracks))
    counts: dict[Path, int] = {}
    for t in tracks:
        if t in judged:
            continue
        home = home_folder(inbox, t)
        if home is not None:
            counts[home] = counts.get(home, 0) + 1
    candidates = {folder for folder, n in counts.items() if n >= 2}
    containers = {above for c in candidates for above in _holders(inbox, c) if above in candidates}
    albums = candidates - containers
    # an album's parts may hold a folder of two tracks: it belongs to the album (the outermost)
    roots = {a for a in albums if not any(above in albums for above in _ancestors(inbox, a))}
    grouped: dict[Path, list[Path]] = {r: [] for r in sorted(roots)}
    loose: list[Path] = []
    for t in tracks:
        root = None if t in judged else next((f for f in reversed(_ancestors(inbox, t)) if f in roots), None)
        if root is None:
            loose.append(t)
        else:
            grouped[root].append(t)
    return Grouping({r: tuple(ts) for r, ts in grouped.items()}, tuple(loose))


def _ancestors(inbox: Path, path: Path) -> list[Path]:
    """The folders between ``inbox`` (excluded) and ``path`` (excluded), nearest first."""
    out: list[Path] = []
    for folder in path.parents:
        if folder == inbox or not folder.is_relative_to(inbox):
            break
        out.append(folder)
    return out


def _holders(inbox: Path, candidate: Path) -> list[Path]:
    """The folders above ``candidate`` that it makes containers: those it sits under through a
    sub-folder that is not one of their parts (disc, bonus...)."""
    out: list[Path] = []
    child = candidate
    for folder in _ancestors(inbox, candidate):
        if not is_part_folder(child.name):
            out.append(folder)
        child = folder
    return out


@dataclass(frozen=True)
class AlbumVerdict:
    """One genre for an album: the winner of the mean scores, how sure, and whether it is left
    to the user (``to_review``, with ``why``)."""

    genre: str | None
    confidence: float
    scores: Mapping[str, float]
    agreement: float  # share of tracks whose own top genre is the album's
    to_review: bool
    why: str


def decide(track_scores: Sequence[Mapping[str, float]], min_confidence: float) -> AlbumVerdict:
    """The album's genre from its tracks' scores (each a genre -> probability mapping)."""
    scored = [s for s in track_scores if s]
    if not scored:
        return AlbumVerdict(None, 0.0, {}, 0.0, True, "no track could be classified")
    genres = sorted({g for s in scored for g in s})
    mean = {g: sum(float(s.get(g, 0.0)) for s in scored) / len(scored) for g in genres}
    genre = max(genres, key=lambda g: (mean[g], g))
    confidence = mean[genre]
    agreement = sum(1 for s in scored if max(s, key=lambda g: (s[g], g)) == genre) / len(scored)
    if confidence < min_confidence:
        others = sorted(genres, key=lambda g: -mean[g])[:3]
        spread = ", ".join(f"{g} {mean[g]:.2f}" for g in others)
        why = (f"too mixed to decide: mean scores {spread} over {len(scored)} tracks "
               f"(below min_confidence {min_confidence:.2f})")
        return AlbumVerdict(genre, confidence, mean, agreement, True, why)
    why = f"{genre} {confidence:.2f} mean over {len(scored)} tracks, {agreement:.0%} of them agreeing"
    return AlbumVerdict(genre, confidence, mean, agreement, False, why)
