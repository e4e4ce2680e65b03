"""Which genres go into a placed file's genre tag: the one choice every way of filing asks.

``tag_genres: N`` writes the top genre plus any other whose score passes ``min_confidence``, up to
N, best first; the review page writes the user's one genre. Names come through ``names`` (the
model's genre -> the name written; the identity until ``genre_names`` is routed here), and two
genres given one name (a merge) are written once. How they meet the file's own genre
(``tag_mode``) is :func:`genre_daemon.tags.write_genre`'s. Pure: values in, a tuple out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from genre_daemon.config import Settings

__all__ = ["Names", "as_is", "chosen", "for_placement", "for_user"]

Names = Callable[[str], str]


def as_is(genre: str) -> str:
    """The name written for a genre when no other is given: the genre itself."""
    return genre


def chosen(genre: str | None, scores: Mapping[str, float], *, min_confidence: float, most: int,
           names: Names = as_is) -> tuple[str, ...]:
    """``genre`` (the top one, always first), then the other genres of ``scores`` whose score is
    at least ``min_confidence``, best first (ties by name), up to ``most`` in all; each through
    ``names``, a name already chosen (compared without case) not repeated. Empty without a genre."""
    if genre is None or most < 1:
        return ()
    others = sorted(((float(p), g) for g, p in scores.items()
                     if g != genre and isinstance(p, (int, float)) and not math.isnan(p) and p >= min_confidence),
                    key=lambda pair: (-pair[0], pair[1]))
    out: list[str] = []
    for name in (names(g) for g in [genre, *(g for _, g in others)]):
        if len(out) == most:
            break
        if name.strip() and name.casefold() not in {o.casefold() for o in out}:
            out.append(name)
    return tuple(out)


def for_placement(settings: Settings, genre: str | None, scores: Mapping[str, float], *,
                  names: Names = as_is) -> tuple[str, ...]:
    """The genres written for a file (its scores) or an album (its mean scores) the daemon placed
    as ``genre``: :func:`chosen` with ``min_confidence`` and ``tag_genres``."""
    return chosen(genre, scores, min_confidence=settings.min_confidence, most=settings.tag_genres, names=names)


def for_user(genre: str, *, names: Names = as_is) -> tuple[str, ...]:
    """The genre written for the user's own filing (the review page): their one genre."""
    return (names(genre),)
