"""The cross-filesystem half of :func:`genre_daemon.filing.mover.move`: copying a file's bytes to
a hidden temporary file beside its destination and placing it under its real name.

Used when the source cannot be hard-linked to its new name (another filesystem, another user's
file under ``fs.protected_hardlinks``, vfat). The copy goes to ``"." + name + PARTIAL_MARKER +
token + ".tmp"`` (0o644, exclusive), keeps the source's mode less the world-write bit, its owner
where allowed and its times, is fsynced and checked for size, and only then claimed under its real
name by ``link()`` (never replacing anything), or ``os.replace`` for ``overwrite``. The promises
this keeps are the mover's (its module docstring); the temporary names defined here are the ones
:mod:`genre_daemon.filing.recovery` finds and removes after a crash.

Also here, because both halves of the move use them: the no-clobber claim of a name by link
(:func:`claim`), the temporary names, and the :class:`MoveError` constructors.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from genre_daemon.errors import MoveError
from genre_daemon.filing.destination import unique_path
from genre_daemon.filing.fsutil import (
    CLOEXEC,
    COPY_CHUNK,
    fsync_dir,
    lstat,
    same_inode,
    unlink_quietly,
)
from genre_daemon.names import cut_bytes

__all__ = [
    "PARTIAL_MARKER",
    "Hook",
    "Check",
    "NO_LINK",
    "CannotLink",
    "temp_prefix",
    "temp_path",
    "is_partial_name",
    "claim",
    "copy_across",
    "write_atomically",
    "move_error",
    "os_move_error",
]

PARTIAL_MARKER = ".genre-daemon-partial-"

Hook = Callable[[str], None]
# The mover's check before the source's name goes or anything is replaced:
# (source, its lstat at the start, the name placed, that name's lstat or None).
Check = Callable[[Path, os.stat_result, Path, os.stat_result | None], None]

# link() failures that mean "this filesystem cannot hard-link here": fall back to copying.
NO_LINK = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}
)
# chmod/utime failures that mean "this filesystem keeps no such metadata": copy anyway.
_NO_METADATA = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS})
# Serialises check-then-rename on filesystems without hard links (no atomic no-clobber there).
_PLACE_LOCK = threading.Lock()


class CannotLink(Exception):
    """This move cannot use a hard link (other filesystem, or no hard links there)."""


# ---------------------------------------------------------------------------------------------
# Claiming a name without replacing anything.


def claim(
    dest: Path, on_conflict: str, link: Callable[[Path], None], source: Path, want: Path
) -> Path | None:
    """Create ``dest`` (or its first free variant for "rename") with ``link``, never replacing
    anything. Returns the name made, None when "skip" met a taken name. Raises CannotLink."""
    for _ in range(1000):
        final = unique_path(dest) if on_conflict == "rename" else dest
        try:
            link(final)
        except FileExistsError:
            if on_conflict == "skip":
                return None
            continue  # taken meanwhile (another worker): try the next free name
        except OSError as exc:
            if exc.errno in NO_LINK:
                raise CannotLink from exc
            raise os_move_error("move", source, want, exc) from exc
        return final
    raise move_error("move", source, want, "every free name was taken before it could be claimed")


# ---------------------------------------------------------------------------------------------
# Copying across filesystems.


def copy_across(
    source: Path, src_st: os.stat_result, dest: Path, on_conflict: str, step: Hook,
    ensure_unchanged: Check,
) -> Path | None:
    """Copy to a temporary file beside ``dest``, fsync, check, then give it its real name.
    Returns the final name, or None when skipped. The source is not touched here.
    ``ensure_unchanged`` is the mover's check, run before "overwrite" replaces anything."""
    temp: Path | None = None
    try:
        temp = _copy_to_temp(source, src_st, dest, step)
        final = _place(temp, dest, on_conflict, source, ensure_unchanged)
        if final is None:
            unlink_quietly(temp)
            return None
        fsync_dir(dest.parent)
        step("placed")
        if os.path.lexists(temp):
            os.unlink(temp)
            step("temp_removed")
        return final
    except MoveError:
        if temp is not None:
            unlink_quietly(temp)
        raise
    except OSError as exc:
        if temp is not None:
            unlink_quietly(temp)
        raise os_move_error("move", source, dest, exc) from exc


def _copy_to_temp(source: Path, src_st: os.stat_result, dest: Path, step: Hook) -> Path:
    """Copy the source's bytes, mode and times into a new temporary file beside ``dest``, fsync
    it, and check it is complete and the source did not change meanwhile. Returns its path."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | CLOEXEC
    src_fd = os.open(source, flags)
    temp: Path | None = None
    try:
        before = os.fstat(src_fd)
        if not stat.S_ISREG(before.st_mode) or not same_inode(before, src_st):
            raise move_error("move", source, dest, "the source changed while it was being moved")
        temp, out_fd = _open_temp(dest)
        try:
            _copy_bytes(src_fd, out_fd)
            # Owner first (chown may clear mode bits); never world-writable (promise 5).
            _best_effort(os.fchown, out_fd, before.st_uid, before.st_gid)
            _best_effort(os.fchmod, out_fd, stat.S_IMODE(before.st_mode) & 0o775)
            _best_effort(os.utime, out_fd, ns=(before.st_atime_ns, before.st_mtime_ns))
            step("temp_written")
            os.fsync(out_fd)
            step("temp_synced")
            copied = os.fstat(out_fd).st_size
        finally:
            os.close(out_fd)
        after = os.fstat(src_fd)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise move_error("move", source, dest, "the source changed while it was being copied")
        if copied != before.st_size:
            raise move_error("move", source, dest, f"copied {copied} of {before.st_size} bytes")
        return temp
    except BaseException:
        if temp is not None:
            unlink_quietly(temp)
        raise
    finally:
        os.close(src_fd)


def _open_temp(dest: Path) -> tuple[Path, int]:
    """Create a new, exclusive temporary file beside ``dest``; returns its path and fd."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | CLOEXEC
    for _ in range(100):
        temp = temp_path(dest)
        try:
            return temp, os.open(temp, flags, 0o644)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", os.fspath(dest.parent))


def _copy_bytes(src_fd: int, out_fd: int) -> None:
    """Copy everything from ``src_fd`` to ``out_fd`` (handles short writes)."""
    while chunk := os.read(src_fd, COPY_CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(out_fd, view):]


def _place(
    temp: Path, dest: Path, on_conflict: str, source: Path, ensure_unchanged: Check
) -> Path | None:
    """Give the complete temporary file its real name; None when "skip" met a taken name."""
    if on_conflict == "overwrite":
        ensure_unchanged(source, os.lstat(source), temp, lstat(temp))  # before anything is replaced
        os.replace(temp, dest)
        return dest
    try:
        return claim(dest, on_conflict, lambda name: os.link(temp, name, follow_symlinks=False),
                     source, dest)
    except CannotLink:
        pass
    # No hard links on this filesystem (vfat, some FUSE): check, then rename, under a lock so
    # this daemon's own workers cannot race for a name (another program still could).
    with _PLACE_LOCK:
        if on_conflict == "skip" and os.path.lexists(dest):
            return None
        final = unique_path(dest)
        os.rename(temp, final)
        return final


def write_atomically(path: Path, data: bytes) -> None:
    """Write a small file under a temporary name, fsync, then rename it into place."""
    temp, fd = _open_temp(path)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        unlink_quietly(temp)
        raise
    fsync_dir(path.parent)


def _best_effort(fn: Callable[..., object], *args: object, **kw: object) -> None:
    """Metadata some filesystems refuse (vfat chmod): keep the copy, skip the detail."""
    try:
        fn(*args, **kw)
    except OSError as exc:
        if exc.errno not in _NO_METADATA:
            raise


# ---------------------------------------------------------------------------------------------
# Temporary names (the recovery finds and removes them by these).


def temp_prefix(name: str) -> str:
    """Start of every temporary file name for a move to ``name`` (hidden, marked, hashed)."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return "." + cut_bytes(name, 200) + PARTIAL_MARKER + digest + "-"


def temp_path(dest: Path) -> Path:
    """A fresh temporary name beside ``dest``."""
    return dest.with_name(temp_prefix(dest.name) + secrets.token_hex(4) + ".tmp")


def is_partial_name(name: str) -> bool:
    """Whether ``name`` is one of this module's temporary file names."""
    return name.startswith(".") and PARTIAL_MARKER in name and name.endswith(".tmp")


# ---------------------------------------------------------------------------------------------
# Errors.


def move_error(
    verb: str, source: Path, dest: Path, reason: str, code: int | None = None
) -> MoveError:
    """A MoveError naming the verb and both paths; ``.errno`` is the OS error number or None."""
    err = MoveError(f"cannot {verb} {os.fspath(source)!r} to {os.fspath(dest)!r}: {reason}")
    err.errno = code  # type: ignore[attr-defined]
    return err


def os_move_error(verb: str, source: Path, dest: Path, exc: OSError) -> MoveError:
    """A MoveError from an OSError (its strerror as the reason, its errno kept)."""
    reason = exc.strerror or str(exc)
    named = exc.filename is not None and os.fspath(exc.filename) in map(os.fspath, (source, dest))
    if exc.filename is not None and not named:
        reason = f"{reason} ({os.fspath(exc.filename)!r})"
    return move_error(verb, source, dest, reason, exc.errno)
