"""Which names are hidden: temporary and system names a walk of the inbox or of the library leaves
alone, while titles that begin with dots (``...Ready for It.mp3``) are real music.

Pure functions of strings, low in the package so the inbox's watcher and album grouping
(:mod:`genre_daemon.daemon.settling` re-exports them), the import walk and the label scan
(:mod:`genre_daemon.learning.labels`) share one rule.
"""

from __future__ import annotations

import os
from collections.abc import Collection

__all__ = ["OWN_MARK", "TITLE_STARTS", "is_hidden", "normalized_extensions"]

# In the name of every temporary file and folder the daemon makes itself (the mover's, the album
# mover's, the tag writer's): hidden by design, never taken and never reported.
OWN_MARK = ".genre-daemon"

# How titles may begin with dots ("...And Justice for All", ". Intro"): a temporary name is one
# dot and the name it becomes (".x.mp3.XXXXXX" from rsync, "._x.mp3" from macOS).
TITLE_STARTS = ("..", ". ")


def normalized_extensions(extensions: Collection[str]) -> frozenset[str]:
    """Extensions lower-cased and without their dot (``".MP3"`` -> ``"mp3"``)."""
    return frozenset(e.lower().lstrip(".") for e in extensions)


def is_hidden(name: str, extensions: Collection[str] | None = None) -> bool:
    """Whether a name (below the inbox, or in a genre folder) is hidden: a temporary or system name.

    A name that begins with one dot is hidden (what downloaders, rsync and macOS write while a
    file arrives: ``.x.mp3.XXXXXX``, ``._x.mp3``), and so are ``.``, ``..`` and the daemon's own
    temporary names. A title that begins with dots (``...Ready for It.mp3``, ``. Intro.flac``) is
    not: for a file (``extensions`` given) only when it ends in one of them, since rsync's
    temporary name of such a title (``....Ready for It.mp3.Xa81kq``) begins the same way.
    """
    if not name.startswith("."):
        return False
    if name in (".", "..") or OWN_MARK in name or not name.startswith(TITLE_STARTS):
        return True
    if extensions is None:
        return False
    return os.path.splitext(name)[1][1:].lower() not in normalized_extensions(extensions)
