"""The user's names for the model's genres (``genre_names``), both ways, pure.

One way: :func:`shown_name`, a model genre to the name the user sees in folders, tags, the
review page, the log and ``evaluate`` (an unmapped genre keeps its own name). Several genres may
share one name: a merge (``{disco: Pop, pop: Pop}``).

The other way: :func:`model_genres_of`, a folder name (a genre folder of the library, a
``retrain.labelled_dirs`` sub-folder, an ``evaluate`` data sub-folder, a name typed on the
page) to the model genre(s) it means, tried in this order (:func:`resolve` says which step
matched):

1. ``exact``: a shown name spelt exactly so (``Hip-Hop`` with ``{hiphop: Hip-Hop}``; an
   unmapped ``jazz``);
2. ``case``: a shown name or a genre's own name that differs only by case (``JAZZ``; an old
   ``hiphop/`` folder from before the rename is still hiphop's);
3. ``alike``: the same after :func:`fold` (case, ``-``, ``_``, spaces, ``&`` and the word
   ``and`` dropped): ``Hip Hop/`` or ``Hip-Hop/`` beside a known ``hiphop``, even with no mapping;
4. ``new``: nothing known: the name itself (a new genre, as a new folder always was).

A label needs ONE genre (:func:`label_genre`): a merged name means the merged genre whose own
name is alike the name (``Pop`` -> ``pop``), else the first of them in sorted order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol


__all__ = ["NO_NAMES", "GenreNames", "HasNames", "Match", "fold", "label_genre", "model_genres_of", "resolve",
           "shown_name", "shown_names"]

How = Literal["exact", "case", "alike", "new"]
_DROP = re.compile(r"(?:\band\b|[-_&\s])+")


class HasNames(Protocol):
    """Anything with ``genre_names`` as :class:`~genre_daemon.config.Settings` keeps it: sorted
    (genre, name) pairs. The settings themselves, or :class:`GenreNames` where there are none
    (``evaluate`` without ``--config``)."""

    @property
    def genre_names(self) -> tuple[tuple[str, str], ...]: ...


@dataclass(frozen=True)
class GenreNames:
    """``genre_names`` on its own (see :class:`HasNames`)."""

    genre_names: tuple[tuple[str, str], ...] = ()


NO_NAMES = GenreNames()


@dataclass(frozen=True)
class Match:
    """What a folder name means: the model genre(s) (sorted) and ``how`` they were found."""

    genres: tuple[str, ...]
    how: How


def shown_name(settings: HasNames, genre: str) -> str:
    """The user's name for the model's ``genre`` (``genre_names``); the genre itself if unmapped."""
    for key, name in settings.genre_names:
        if key == genre:
            return name
    return genre


def shown_names(settings: HasNames, genres: Iterable[str]) -> list[str]:
    """The distinct names of ``genres``, in their order (a merge shows once)."""
    out: list[str] = []
    for g in genres:
        name = shown_name(settings, g)
        if name not in out:
            out.append(name)
    return out


def fold(name: str) -> str:
    """``name`` compared loosely: NFKC, casefolded, without ``-``, ``_``, spaces, ``&`` and the
    word ``and`` (``Hip-Hop``, ``hip hop`` and ``HipHop`` all fold to ``hiphop``; ``Drum & Bass``
    and ``drum and bass`` to ``drumbass``)."""
    text = unicodedata.normalize("NFKC", name).casefold()
    folded = _DROP.sub("", text)
    return folded or text


def resolve(settings: HasNames, name: str, known: Collection[str]) -> Match:
    """The model genre(s) the folder name ``name`` means (see the module docstring). ``known``:
    the model's genres; the genres ``genre_names`` maps count too."""
    name = unicodedata.normalize("NFC", name)
    genres = list(dict.fromkeys([*known, *(g for g, _ in settings.genre_names)]))
    shown = {g: shown_name(settings, g) for g in genres}
    steps: tuple[tuple[How, Callable[[str], bool]], ...] = (
        ("exact", lambda g: shown[g] == name),
        ("case", lambda g: name.casefold() in (shown[g].casefold(), g.casefold())),
        ("alike", lambda g: fold(name) in (fold(shown[g]), fold(g))),
    )
    for how, test in steps:
        found = sorted(g for g in genres if test(g))
        if found:
            return Match(tuple(found), how)
    return Match((name,), "new")


def model_genres_of(settings: HasNames, name: str, known: Collection[str]) -> list[str]:
    """The model genre(s) the user's folder name ``name`` means: several for a merged name,
    ``[name]`` itself for a name that means no known genre."""
    return list(resolve(settings, name, known).genres)


def label_genre(settings: HasNames, name: str, known: Collection[str]) -> str:
    """The one genre a label in the folder ``name`` teaches: of a merge, the merged genre whose
    own name is alike ``name`` (``Pop/`` of ``{disco: Pop, pop: Pop}`` -> ``pop``), else the first."""
    genres = resolve(settings, name, known).genres
    alike = [g for g in genres if fold(g) == fold(name)]
    return (alike or list(genres))[0]
