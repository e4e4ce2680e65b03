"""Whether some process holds a file open for writing: the kernel's answer, not an event's guess.

inotify tells of opens and closes but not who opened a file for what, so a reader (a file
manager, a thumbnailer, a second ``cat``) closing the file looks like nothing at all or, worse,
like the end of a write. Linux keeps the count of writers of every inode, and a read lease
(``fcntl(F_SETLEASE, F_RDLCK)``) is refused with ``EAGAIN`` exactly while that count is not
zero. Taking the lease and dropping it at once asks that question without disturbing anyone
(a lease only matters to a writer who opens the file *while* it is held, and it is held for
microseconds). Leases need the file's owner or ``CAP_LEASE`` and a local filesystem; where they
cannot be taken the answer is ``None`` and the caller falls back on events and quiet periods.
"""

from __future__ import annotations

import errno
import fcntl
import os

__all__ = ["open_for_writing"]

_F_SETLEASE = getattr(fcntl, "F_SETLEASE", None)
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_for_writing(path: str | os.PathLike[str]) -> bool | None:
    """True while any process holds ``path`` open for writing, False when none does, None when
    this cannot be told here (not the file's owner, a filesystem without leases, not Linux, the
    file gone or unreadable). Never follows a symlink."""
    if _F_SETLEASE is None:
        return None
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return None
    try:
        try:
            fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_RDLCK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EBUSY):
                return True
            return None  # EACCES (another user's file), EINVAL (no leases on this filesystem)
        try:
            fcntl.fcntl(fd, _F_SETLEASE, fcntl.F_UNLCK)
        except OSError:
            pass  # closing the descriptor drops the lease anyway
        return False
    finally:
        os.close(fd)
