"""Start-up checks: the daemon's folders made (or one line saying why not), and the locks that
keep one daemon per state_dir and one per inbox."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
from pathlib import Path

from genre_daemon.config import DEFAULT_FOLDERS, Settings, missing_folders
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing.fsutil import make_folders
from genre_daemon.filing.media_servers import mark_ignored, marked_folders

__all__ = ["LOCK_FILE", "flock_holder", "folder_error", "lock_file", "mark_media_folders", "prepare_folders",
           "take_inbox_lock", "take_state_lock"]

# The daemon's one logger (journald's LOGGER field), whichever of its modules speaks.
log = logging.getLogger("genre_daemon.daemon.service")

LOCK_FILE = "daemon.lock"


def prepare_folders(s: Settings) -> None:
    """Create the five folders (saying so: a typo in the config would otherwise mean a new,
    empty folder watched in silence): state_dir private (0700), the others exactly
    ``folder_mode`` whatever the umask (a media server reads the library as another user);
    then the media servers' ignore markers in review (and quarantine) when inside the library.
    A folder that cannot be made or used is one line naming it, the reason and the fix
    (GenreDaemonError)."""
    # Only the user's folders are worth a word: the daemon's own are made on a first start.
    missing = {key for key, _ in missing_folders(s)} & {"inbox", "library"}
    # state_dir first: when it cannot be used, nothing else is made and one line says why.
    for key in sorted(DEFAULT_FOLDERS, key=lambda k: k != "state_dir"):
        folder = getattr(s, key)
        try:
            make_folders(folder, 0o700 if key == "state_dir" else s.folder_mode)
            if key == "state_dir":
                os.chmod(folder, 0o700)
        except OSError as exc:
            raise folder_error(key, folder, exc, s) from None
        if key in missing:
            log.warning("%s %s did not exist; created it (if that is a typo, fix %s in %s)", key, folder,
                        key, s.source or "the config")
    mark_media_folders(s)


def mark_media_folders(s: Settings) -> None:
    """The media servers' ignore markers in review and quarantine when they lie inside the
    library (:mod:`genre_daemon.filing.media_servers`); a user's own marker is kept."""
    for folder in marked_folders(s.library, s.review_dir, s.quarantine_dir):
        mark_ignored(folder)


def take_state_lock(s: Settings) -> int:
    """One daemon per state_dir: an exclusive lock on state_dir/daemon.lock, holding our pid; its fd."""
    return lock_file(s.state_dir / LOCK_FILE, "state_dir", s,
                     "another genre-daemon uses state_dir {folder} (pid {pid}, lock {path})")


def take_inbox_lock(s: Settings) -> int | None:
    """One daemon per inbox, whatever their state dirs: two would race for every file (two
    journals, moves recorded twice, false errors). The lock is a flock on the inbox folder
    itself, so nothing is written into the user's inbox; the holder's pid is read from
    /proc/locks. Where a folder cannot be locked (some network filesystems) it says so and
    goes on (None)."""
    inbox = s.inbox
    try:
        fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise folder_error("inbox", inbox, exc, s) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = flock_holder(os.fstat(fd))
        os.close(fd)
        raise GenreDaemonError(f"another genre-daemon (pid {holder or 'unknown'}) is watching inbox {inbox}; "
                               "stop it, or give this one another inbox") from None
    except OSError as exc:
        os.close(fd)
        log.warning("cannot lock inbox %s (%s): a second daemon on it would not be refused", inbox, exc)
        return None
    return fd


def folder_error(key: str, folder: Path, exc: OSError, s: Settings) -> GenreDaemonError:
    """One line for a folder the daemon cannot make or use: which, why, and what to do."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.EROFS,):
        fix = f"mount it read-write or set {key} in {s.source or 'the config'} to a writable folder"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        fix = (f"give the daemon's user (uid {os.geteuid()}) write access to it, or set {key} in "
               f"{s.source or 'the config'} to a folder it may write")
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = f"{key} must be a folder: remove the file in its way or set {key} elsewhere"
    else:
        fix = f"check the folder, or set {key} in {s.source or 'the config'} to another one"
    return GenreDaemonError(f"cannot use {key} {folder}: {why}; {fix}")


def lock_file(path: Path, key: str, s: Settings, held_message: str) -> int:
    """Take an exclusive, non-blocking flock on ``path`` and write our pid into it; the fd.
    Held by another process: GenreDaemonError with ``held_message`` (its pid read from the file)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise folder_error(key, path.parent, exc, s) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            pid = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
        finally:
            os.close(fd)
        raise GenreDaemonError(held_message.format(folder=path.parent, pid=pid, path=path)) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # the lock is what counts; the pid is only for the message
    return fd


def flock_holder(st: os.stat_result, locks: str = "/proc/locks") -> int | None:
    """The pid holding a flock on the file with this stat, read from /proc/locks (Linux), or
    None. Lines look like ``1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF``."""
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        text = Path(locks).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == want and fields[4].isdigit():
            return int(fields[4])
    return None
