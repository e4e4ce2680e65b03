"""An audio file's own tags: read them, and write the genre the daemon chose into them.

Self-contained (mutagen, and the project's error root): :func:`read_tags` gives a file's
artist/album/track/year/genre, :func:`tags_dict` the same as a JSON dict (empty when the file
cannot be read); :func:`write_genre` puts a genre into the file's genre tag with a crash-safe
copy-and-rename and returns a :class:`GenreSnapshot` that :func:`restore_genre` uses to undo it;
:func:`current_genre` tells whether the genre is still the one written; :func:`clean_leftovers`
removes what a killed write left behind.
"""

from __future__ import annotations

from genre_daemon.tags.read import Tags, current_genre, read_tags, tags_dict
from genre_daemon.tags.write import GenreSnapshot, TagWriteError, clean_leftovers, restore_genre, write_genre

__all__ = [
    "GenreSnapshot",
    "TagWriteError",
    "Tags",
    "clean_leftovers",
    "current_genre",
    "read_tags",
    "restore_genre",
    "tags_dict",
    "write_genre",
]
