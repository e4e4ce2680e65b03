"""Small filesystem helpers the mover and the crash recovery share: a missing name is not an error,
a folder's entries are made durable, a name we made is removed quietly."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["CLOEXEC", "COPY_CHUNK", "entries", "fsync_dir", "is_regular", "lstat", "same_inode",
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
    """Whether ``path`` lies strictly below ``folder``, judged lexically on absolute, normalised
    paths (no disk access: it runs once per review row per request)."""
    p, f = os.path.abspath(path), os.path.abspath(folder).rstrip(os.sep)
    return p.startswith(f + os.sep) and len(p) > len(f) + 1
