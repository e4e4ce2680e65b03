"""Read an audio file's own tags (artist, album, track, year, genre...) with mutagen.

mutagen parses only the tag and stream headers, never the audio, so this is cheap enough to call
for every file the daemon sees. A file mutagen cannot make sense of, or one without tags, reads
as an empty :class:`Tags`: the daemon sorts by sound and tags are only ever a bonus.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import mutagen
from mutagen._vorbis import VCommentDict  # the base of every Vorbis-comment flavour (FLAC, Ogg)
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags

__all__ = ["Tags", "read_tags", "tags_dict", "current_genre", "load_audio"]


@dataclass(frozen=True)
class Tags:
    """The tags the daemon cares about; None where the file has no such tag.

    Several values of one text tag (two artists, two genres) are joined with "; ".
    """

    artist: str | None = None
    albumartist: str | None = None
    album: str | None = None
    title: str | None = None
    track: int | None = None
    disc: int | None = None
    year: int | None = None
    genre: str | None = None

    def to_json(self) -> dict[str, str | int]:
        """The non-empty fields as a JSON-ready dict (for the journal and the web page)."""
        out: dict[str, str | int] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value != "":
                out[f.name] = value
        return out


def load_audio(path: str | os.PathLike[str]) -> mutagen.FileType | None:
    """mutagen's view of ``path``, or None when mutagen does not know the format or cannot parse it.

    Real OS errors (no such file, permission denied, a folder) are raised as themselves: they
    say something about the path, not the content. mutagen wraps them, and it also raises its own
    errno-less IOError for short reads, which is a corrupt file, not an OS error.
    """
    try:
        return mutagen.File(os.fspath(path))
    except Exception as exc:  # mutagen raises more than MutagenError on corrupt files
        os_error = _os_error(exc)
        if os_error is not None:
            raise os_error from None
        return None


def read_tags(path: str | os.PathLike[str]) -> Tags:
    """The tags of the audio file at ``path``; an empty Tags when it has none or is not audio
    mutagen can read. Raises FileNotFoundError (or another OSError) when the path cannot be opened."""
    audio = load_audio(path)
    return tags_of(audio.tags) if audio is not None else Tags()


def tags_dict(path: str | os.PathLike[str]) -> dict[str, object]:
    """The file's tags as the JSON dict the journal, ``path_template`` and ``classify --json`` use
    (:meth:`Tags.to_json`); ``{}`` when the file cannot be read (an ``OSError``: gone, no
    permission, a folder). For callers that file or show a file whatever its tags; one that must
    say the file is unreadable calls :func:`read_tags`."""
    try:
        return dict(read_tags(path).to_json())
    except OSError:
        return {}


def current_genre(path: str | os.PathLike[str]) -> str | None:
    """The genre the file carries now (as :func:`read_tags` reads it), or None.

    Undo compares it with the genre it wrote, so it leaves alone a genre the user changed since.
    """
    return read_tags(path).genre


def tags_of(tags: object) -> Tags:
    """The :class:`Tags` of a loaded mutagen tag object (ID3, Vorbis comments, MP4); empty for others."""
    if isinstance(tags, ID3):
        return _from_id3(tags)
    if isinstance(tags, VCommentDict):
        return _from_vorbis(tags)
    if isinstance(tags, MP4Tags):
        return _from_mp4(tags)
    return Tags()


def _from_id3(tags: ID3) -> Tags:
    def text(*keys: str) -> str | None:
        for key in keys:
            frame = tags.get(key)
            if frame is not None and (value := _join(frame.text)):
                return value
        return None

    genre = tags.get("TCON")
    return Tags(
        artist=text("TPE1"),
        albumartist=text("TPE2"),
        album=text("TALB"),
        title=text("TIT2"),
        track=_number(text("TRCK")),
        disc=_number(text("TPOS")),
        year=_year(text("TDRC", "TYER", "TDOR", "TORY")),
        genre=_join(genre.genres) if genre is not None else None,  # "(17)" -> "Rock"
    )


def _from_vorbis(tags: VCommentDict) -> Tags:
    def text(*keys: str) -> str | None:
        for key in keys:
            if key in tags and (value := _join(tags[key])):
                return value
        return None

    return Tags(
        artist=text("artist"),
        albumartist=text("albumartist", "album artist", "album_artist"),
        album=text("album"),
        title=text("title"),
        track=_number(text("tracknumber", "track")),
        disc=_number(text("discnumber", "disc")),
        year=_year(text("date", "year", "originaldate")),
        genre=text("genre"),
    )


def _from_mp4(tags: MP4Tags) -> Tags:
    def text(key: str) -> str | None:
        return _join(tags.get(key, ()))

    def pair(key: str) -> int | None:
        values = tags.get(key)
        return _number(values[0][0]) if values and values[0] else None  # trkn/disk: [(3, 12)]

    return Tags(
        artist=text("\xa9ART"),
        albumartist=text("aART"),
        album=text("\xa9alb"),
        title=text("\xa9nam"),
        track=pair("trkn"),
        disc=pair("disk"),
        year=_year(text("\xa9day")),
        genre=text("\xa9gen"),  # mutagen reads a numeric 'gnre' atom into '\xa9gen' too
    )


def _join(values: Iterable[object] | None) -> str | None:
    """Non-empty values, stripped, duplicates dropped, joined with "; "; None when none are left."""
    seen: list[str] = []
    for value in values or ():
        text = str(value).strip()
        if text and text not in seen:
            seen.append(text)
    return "; ".join(seen) or None


_LEADING_NUMBER = re.compile(r"\s*(\d+)")
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")


def _number(value: str | int | None) -> int | None:
    """A track or disc number: "3/12" and "03" give 3; 0 and junk give None."""
    if isinstance(value, int):
        return value or None
    match = _LEADING_NUMBER.match(value or "")
    return (int(match.group(1)) or None) if match else None


def _year(value: str | None) -> int | None:
    """The year of a date tag: "1999", "1999-05-01" and "1999-05-01T10:00" give 1999."""
    match = _YEAR.search(value or "")
    return (int(match.group(1)) or None) if match else None


def _os_error(exc: BaseException) -> OSError | None:
    """The real OS error (one with an errno) behind a mutagen exception, if there is one."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno is not None:
            return err
        todo.extend(e for e in (err.__cause__, err.__context__, *_exception_args(err)) if e is not None)
    return None


def _exception_args(exc: BaseException) -> Sequence[BaseException]:
    return [a for a in exc.args if isinstance(a, BaseException)]
