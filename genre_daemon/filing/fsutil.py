"""Small filesystem helpers the filing code and its callers share: a missing name is not an error,
a folder's entries are made durable, a name we made is removed quietly, a path is judged inside a
folder by its names alone."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["CLOEXEC", "COPY_CHUNK", "entries", "fsync_dir", "inside", "is_regular", "lstat", "same_inode",
           "unlink_quietly"]

log = logging.getLogger(__name__)

CLOEXEC = getattr(os, "O_CLOEXEC", 0)
COPY_CHUNK = 1 << 20


def lstat(path: Path) -> os.stat_result | None:
    """``os.lstat`` or None when the name does not exist."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None



def is_regular(path: Path) -> bool:
    st = lstat(path)
    return st is not None and stat.S_ISREG(st.st_mode)



def same_inode(a: os.stat_result | None, b: os.stat_result | None) -> bool:
    return a is not None and b is not None and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)



def entries(folder: Path) -> list[Path]:
    """The entries of ``folder`` (empty when it is missing or unreadable)."""
    try:
        with os.scandir(folder) as it:
            return [folder / e.name for e in it]
    except OSError:
        return []



def unlink_quietly(path: Path) -> None:
    """Remove a name we made; a name already gone is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove %r: %s", os.fspath(path), exc)



def fsync_dir(folder: Path) -> None:
    """Make a folder's entries durable; filesystems that cannot do it are ignored."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies strictly below ``folder`` (``folder`` itself is not inside it).

    Judged on the names alone: both are made absolute and normalised by :func:`os.path.abspath`
    (a relative path is taken from the current directory; ``.``, ``..``, doubled and trailing
    separators are resolved, so none is left), then compared as strings. No disk access and no
    ``Path`` objects, because the review page asks it once per row per request. Lexical means
    symlinks are not followed (``folder/link/../x`` counts as ``folder/x``): a caller that goes
    on to open the file checks the file itself (``O_NOFOLLOW``, its inode).
    """
    p, f = os.path.abspath(path), os.path.abspath(folder)
    prefix = f if f.endswith(os.sep) else f + os.sep  # "/" is the one folder that ends in one
    return len(p) > len(prefix) and p.startswith(prefix)
