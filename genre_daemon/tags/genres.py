"""Which of the model's genres a genre tag names: the user's names (``genre_names``), the model's
own names, and a small table of the names taggers and shops use ("Hip-Hop", "Rap", "EDM", "R&B",
"Classic Rock", ...).

Pure: strings in, a genre out. Names are compared as :func:`key` makes them: case, accents,
spaces and punctuation ignored, "&" read as "and", so "Hip Hop", "hip-hop" and "HipHop" are one
name, and so are "Rock & Roll" and "rock and roll". A tag that names
several genres ("Rock; Pop", ID3's null-separated list, repeated Vorbis fields joined by the
reader) is read value by value: :func:`tag_genres` gives every one of the model's genres it
names, in the tag's order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping

__all__ = ["ALIASES", "key", "read_genre", "tag_genres", "split_values"]

# Other names for the built-in genres, as taggers (MusicBrainz/Picard, beets' lastgenre, iTunes,
# ID3v1's list), shops and streaming services write them. Only names that clearly mean one of the
# model's genres: a "Soul" or "Funk" tag is close to several and is left unread.
ALIASES: dict[str, tuple[str, ...]] = {
    "blues": ("Blues Rock", "Delta Blues", "Chicago Blues", "Electric Blues"),
    "classical": ("Classic", "Classical Music", "Orchestral", "Symphony", "Baroque", "Opera", "Chamber Music",
                  "Romantic", "Contemporary Classical", "Klassik", "Classique"),
    "country": ("Country & Western", "Country and Western", "Americana", "Bluegrass", "Country Rock",
                "Honky Tonk", "Western"),
    "disco": ("Euro Disco", "Eurodisco", "Nu Disco", "Disco Funk", "Italo Disco"),
    "hiphop": ("Hip Hop", "Hip-Hop", "Hip Hop/Rap", "Hip-Hop/Rap", "Rap", "Gangsta Rap", "Gangsta", "Trap",
               "Boom Bap", "Rap & Hip-Hop"),
    "jazz": ("Jazz Fusion", "Smooth Jazz", "Bebop", "Bop", "Swing", "Big Band", "Cool Jazz", "Free Jazz",
             "Acid Jazz", "Jazz Funk", "Latin Jazz", "Vocal Jazz"),
    "metal": ("Heavy Metal", "Death Metal", "Black Metal", "Thrash Metal", "Thrash", "Doom Metal", "Power Metal",
              "Nu Metal", "Nu-Metal", "Metalcore", "Speed Metal", "Hard Rock/Metal"),
    "pop": ("Pop Music", "Dance Pop", "Synthpop", "Synth-Pop", "Electropop", "Teen Pop", "Pop Rock", "K-Pop",
            "J-Pop", "Europop", "Pop/Rock", "Top 40", "Chart"),
    "reggae": ("Roots Reggae", "Dancehall", "Ska", "Dub", "Rocksteady", "Reggaeton"),
    "rock": ("Rock & Roll", "Rock'n'Roll", "Rock n Roll", "Classic Rock", "Hard Rock",
             "Alternative", "Alternative Rock", "Alt Rock", "Indie Rock", "Punk", "Punk Rock", "Grunge",
             "Garage Rock", "Psychedelic Rock", "Progressive Rock", "Prog Rock", "Soft Rock", "Southern Rock"),
    "electronic": ("Electronica", "Electro", "EDM", "Electronic Dance Music", "Dance", "Dance/Electronic",
                   "Electronic/Dance", "House", "Techno", "Trance", "Drum and Bass", "Drum & Bass", "DnB",
                   "Dubstep", "Ambient", "IDM", "Breakbeat", "Downtempo", "Synthwave"),
    "rnb": ("R&B", "RnB", "R and B", "R'n'B", "Rhythm and Blues", "Rhythm & Blues", "Contemporary R&B", "Soul/R&B"),
}

_VALUES = re.compile(r"\s*(?:;|\x00|\s/\s)\s*")


def key(name: str) -> str:
    """``name`` as names are compared: accents dropped, case folded, "&" as "and", everything but
    letters and digits (of any script) removed ("Hip-Hop" and "hip hop" give "hiphop", "R&B" gives "randb")."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold().replace("&", "and")
    return "".join(c for c in text if c.isalnum())


def split_values(tag: str) -> list[str]:
    """The values of one genre tag as the reader gives it: "Rock; Pop" (several values joined),
    a stray null separator, "Rock / Pop"; empty values dropped. "Hip Hop/Rap" stays one value."""
    return [v for v in _VALUES.split(tag) if v.strip()]


def _table(genres: Collection[str], names: Mapping[str, str]) -> dict[str, str]:
    """Name key -> genre: the model's genres and the user's names for them (which win), then
    the aliases of each group in :data:`ALIASES` that one of the model's genres belongs to (by
    its own name or an alias: a learnt genre called "R&B" or "Hip-Hop" gets its group's names)."""
    table: dict[str, str] = {}
    by_key = {key(g): g for g in sorted(genres, reverse=True)}
    for canonical, aliases in sorted(ALIASES.items()):
        group = [key(canonical), *map(key, aliases)]
        genre = next((by_key[k] for k in group if k in by_key), None)
        if genre is not None:
            for k in group:
                table.setdefault(k, genre)
    for genre in sorted(genres):
        table[key(genre)] = genre
    for genre, name in sorted(names.items()):
        if genre in genres:
            table[key(name)] = genre
    return table


def tag_genres(tag: str | None, genres: Collection[str], names: Mapping[str, str] | None = None) -> list[str]:
    """The model's ``genres`` that the genre tag ``tag`` names, in the tag's order, each once.

    ``names``: the model's genre -> the user's name (``genre_names``); a name several genres
    share (a merge) reads as the first of them in sorted order. Unknown values are ignored.
    """
    if not tag:
        return []
    table = _table(genres, names or {})
    out: list[str] = []
    for value in split_values(tag):
        genre = table.get(key(value))
        if genre is not None and genre not in out:
            out.append(genre)
    return out


def read_genre(tag: str | None, genres: Collection[str], names: Mapping[str, str] | None = None) -> str | None:
    """The first of the model's genres that ``tag`` names, or None."""
    found = tag_genres(tag, genres, names)
    return found[0] if found else None
