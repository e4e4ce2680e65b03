"""Small filesystem helpers the filing code and its callers share: a missing name is not an error,
a folder's entries are made durable, a name we made is removed quietly, a path is judged inside a
folder by its names alone, a folder is made with its mode whatever the umask."""

from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

__all__ = ["CLOEXEC", "COPY_CHUNK", "FOLDER_MODE", "entries", "fsync_dir", "inside", "is_regular", "lstat",
           "make_folder", "make_folders", "same_inode", "set_folder_mode", "unlink_quietly"]

log = logging.getLogger(__name__)

CLOEXEC = getattr(os, "O_CLOEXEC", 0)
COPY_CHUNK = 1 << 20
# The mode of every folder the daemon makes in the user's tree (``folder_mode``'s default):
# readable by a media server running as another user, whatever the service's umask.
FOLDER_MODE = 0o755
# chmod failures that mean "this filesystem keeps no modes" (vfat, some FUSE): the folder stays.
_NO_MODES = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})


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



def set_folder_mode(folder: str | os.PathLike[str], mode: int = FOLDER_MODE) -> None:
    """Give the real folder ``folder`` exactly ``mode`` (the umask does not apply to chmod).

    Through a descriptor opened with ``O_NOFOLLOW | O_DIRECTORY``, so a symlink swapped in for
    the folder is refused (``OSError``), never followed to chmod something else. A filesystem
    that keeps no modes (vfat) is not an error: the folder is usable as it is.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | CLOEXEC)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.fchmod(fd, mode)
    except OSError as exc:
        if exc.errno not in _NO_MODES:
            raise
        log.debug("%s: its mode cannot be set here (%s)", os.fspath(folder), exc)
    finally:
        os.close(fd)



def make_folder(folder: str | os.PathLike[str], mode: int = FOLDER_MODE) -> None:
    """``os.mkdir(folder)`` with the folder made exactly ``mode``: mkdir's own mode is masked by
    the umask (``UMask=0077`` in the shipped user unit would give 0700, a folder no media server
    may enter), so the mode is set again once the folder exists. Raises what ``os.mkdir`` raises
    (``FileExistsError`` when the name is taken: a claim never reuses a folder)."""
    os.mkdir(folder, mode)
    set_folder_mode(folder, mode)



def make_folders(folder: str | os.PathLike[str], mode: int = FOLDER_MODE) -> None:
    """``os.makedirs(folder, exist_ok=True)`` with every folder it makes exactly ``mode``
    (:func:`make_folder`); folders that already exist keep theirs (they are the user's)."""
    folder = os.fspath(folder)
    if os.path.isdir(folder):
        return
    parent = os.path.dirname(folder)
    if parent and parent != folder:
        make_folders(parent, mode)
    try:
        make_folder(folder, mode)
    except FileExistsError:
        if not os.path.isdir(folder):
            raise
