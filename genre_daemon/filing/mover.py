"""Getting a file where it goes without ever losing or clobbering anything.

Deciding and doing are kept apart, as in beets:

* **Deciding** -- :func:`genre_daemon.names.safe_component` and
  :mod:`genre_daemon.filing.destination` (``destination``, ``quarantine_destination``,
  ``unique_path``) are functions of values. They never touch the disk, so every hostile genre or
  file name can be tested directly.
* **Doing** -- :func:`move` and :func:`quarantine` here (their copy across filesystems in
  :mod:`genre_daemon.filing.copying`), and the crash recovery in
  :mod:`genre_daemon.filing.recovery` (``settle_interrupted``, ``clean_partials``), are the only
  code in genre-daemon that renames, links or unlinks a user's file.

The promises :func:`move` keeps, whatever happens (an error, a full disk, a SIGKILL, a power cut
after the last fsync):

1. **Never clobbered.** An existing file is replaced only with ``on_conflict="overwrite"``. Names
   are claimed with ``link()``, which fails with ``EEXIST`` rather than replace anything, so two
   workers racing for one name cannot overwrite each other either.
2. **Never lost, never partial under a real name.** On one filesystem the file gets its new name
   by a hard link and loses the old one by an unlink: in between, both names are the same inode.
   Across filesystems (or where the source cannot be hard-linked: another user's file under
   ``fs.protected_hardlinks``, vfat) it is copied to a hidden temporary file in the destination
   folder (``"." + name + PARTIAL_MARKER + token + ".tmp"``), fsynced, checked for size, linked
   under its real name, and only then removed from the source. At every instant the source or the complete
   destination exists under a real name; a crash leaves at worst a second name or a temporary
   file, which :func:`~genre_daemon.filing.recovery.settle_interrupted` tidies on the next start.
3. **Never through a link.** A symlink source is refused, never followed or moved. With ``root``
   given, every existing folder between ``root`` and the destination must be a real directory, so
   a symlink planted in the library cannot steer a file out of it.
4. **Hard links disclose nothing.** A hard link in the inbox is one more name of a file that
   may live anywhere on the same filesystem. Moving it only renames that name (the other names
   and their folders are never touched); reading it, though, could show the daemon's output --
   and, across filesystems, a copy -- of a file its dropper could not read, when the daemon runs
   with more privileges than the dropper. So, see :func:`read_refusal`: a regular file with more
   than one link whose owner is not the daemon's effective user is not read but quarantined, with
   the link count in the reason; a hard link owned by the daemon's user (a torrent client
   hard-linking its downloads into the inbox, the common legitimate case) is taken normally.
   ``on_conflict="overwrite"`` replaces a destination *name* (a rename over it), so a destination
   that is a hard link to a file elsewhere, or a symlink, is never written into or through.
5. **Nothing world-writable, every folder readable.** Folders are made exactly ``folder_mode``
   (0o755 by default: a media server reads the library as another user) whatever the umask,
   temporary files 0o644; a copy keeps the source's mode less the world-write bit, and its owner
   where allowed.
6. **Nothing still being written is placed.** Just before the source's old name goes, the
   source must be the file the move started with (``expect``: the signature it had when it
   settled) and no process may hold it open for writing (:mod:`genre_daemon.filing.writers`);
   otherwise the new name is removed again and :class:`SourceChangedError` raised, the file
   whole in the inbox. On one filesystem the file is checked once more after the unlink (a
   writer's open descriptor follows the inode), and a file that grew meanwhile is put back.
7. **Errors leave the source alone.** Every failure is a :class:`MoveError` naming the verb and
   both paths (``cannot move '/in/a.mp3' to '/lib/jazz/a.mp3': No space left on device``), the
   source intact, no temporary file left. ``err.errno`` (and ``err.__cause__``) keep the
   ``OSError``'s errno, so the daemon can tell a full disk (retry later) from a broken file.

``hook(step)`` is called after each step a move takes, so the tests can SIGKILL a child process
at each one and check the promises above:

* same filesystem, rename/skip: start, linked, source_removed
* same filesystem, overwrite:   start, linked (to a temporary name), placed, source_removed
* copy, rename/skip:            start, temp_written, temp_synced, placed, temp_removed,
                                source_removed
* copy, overwrite:              start, temp_written, temp_synced, placed, source_removed

After a crash, :func:`genre_daemon.filing.recovery.settle` finds which side of "placed" (or
"linked" for rename) the move was on and finishes or undoes it.

Concurrency: moves into the same folder may run in parallel threads or processes. The recovery
removes temporary files, so it runs before workers start moving into the folders concerned (at
start-up).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from genre_daemon.errors import MoveError, SourceChangedError
from genre_daemon.filing.copying import (
    NO_LINK,
    PARTIAL_MARKER,
    CannotLink,
    Hook,
    claim,
    copy_across,
    is_partial_name,
    move_error,
    os_move_error,
    temp_path,
    temp_prefix,
    write_atomically,
)
from genre_daemon.filing.destination import quarantine_destination, unique_path
from genre_daemon.filing.fsutil import FOLDER_MODE, fsync_dir, lstat, make_folder, make_folders, same_inode, unlink_quietly
from genre_daemon.filing.writers import open_for_writing
from genre_daemon.names import NAME_MAX, cut_bytes

__all__ = [
    "MoveError",
    "makedirs",
    "OnConflict",
    "PARTIAL_MARKER",
    "REASON_SUFFIX",
    "reason_path",
    "temp_prefix",
    "is_partial_name",
    "MoveResult",
    "Signature",
    "signature",
    "read_refusal",
    "hard_link_refusal",
    "move",
    "quarantine",
]

log = logging.getLogger(__name__)

# ``os.makedirs(folder, exist_ok=True)`` with every folder it makes exactly ``mode`` (0o755).
makedirs = make_folders

OnConflict = Literal["rename", "skip", "overwrite"]
ON_CONFLICT: tuple[str, ...] = get_args(OnConflict)

REASON_SUFFIX = ".reason.txt"


def reason_path(placed: Path) -> Path:
    """The reason file beside a quarantined file or album folder: ``<name>.reason.txt``, the
    name cut to fit in 255 bytes."""
    return placed.with_name(cut_bytes(placed.name, NAME_MAX - len(REASON_SUFFIX)) + REASON_SUFFIX)

# What makes a file the same file as when it settled: (device, inode, size, mtime_ns).
Signature = tuple[int, int, int, int]


# ---------------------------------------------------------------------------------------------
# Refusing: what the daemon must not read.


def hard_link_refusal(st: os.stat_result, euid: int) -> str | None:
    """Why a file with this ``lstat`` must not be read by a daemon running as ``euid``, or None.

    Pure. The policy (module docstring, promise 4): a regular file with ``st_nlink > 1`` whose
    owner is not ``euid`` may be a second name of a file outside the inbox that its dropper
    could not read; it is refused (quarantined unread). One link, or the daemon's own file:
    None. A daemon running as root therefore takes root's own hard links (the kernel's
    ``protected_hardlinks`` keeps users from linking files they cannot read); run it as its own
    user, as the shipped system unit does (``User=genre-daemon``).
    """
    if not stat.S_ISREG(st.st_mode) or st.st_nlink <= 1 or st.st_uid == euid:
        return None
    return (f"a hard link ({st.st_nlink} links) owned by uid {st.st_uid}, not by the daemon's "
            f"user (uid {euid}): not read, since its other names may be files outside the inbox")


def read_refusal(path: Path, *, euid: int | None = None) -> str | None:
    """Why the daemon must not read the inbox file ``path``, or None when it may.

    A symlink is refused (never followed); a foreign hard link is refused (see
    :func:`hard_link_refusal`). A missing file or anything else is left to the decoder, which
    names its own reason. ``euid`` defaults to the process's effective uid.
    """
    st = lstat(Path(path))
    if st is None:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "a symbolic link (never followed)"
    return hard_link_refusal(st, os.geteuid() if euid is None else euid)


# ---------------------------------------------------------------------------------------------
# Doing: the only code that links, renames and unlinks a user's files.


@dataclass(frozen=True)
class MoveResult:
    """What :func:`move` did. ``destination`` is the final name (``None`` when skipped);
    ``cross_device`` is True when the bytes were copied (another filesystem, or one where the
    source could not be hard-linked) rather than linked."""

    source: Path
    destination: Path | None
    skipped: bool
    cross_device: bool


def move(
    source: Path,
    dest: Path,
    on_conflict: OnConflict = "rename",
    *,
    hook: Hook | None = None,
    root: Path | None = None,
    copy: bool = True,
    expect: Signature | None = None,
    folder_mode: int = FOLDER_MODE,
) -> MoveResult:
    """Move the regular file ``source`` to ``dest`` safely (see the module docstring).

    ``expect``: the source's :func:`signature` when it was judged complete; a source that no
    longer matches it, or that a writer holds open, is not moved (:class:`SourceChangedError`).

    ``on_conflict`` decides what happens when ``dest`` is taken: ``rename`` picks
    ``name (2).mp3``, ``skip`` leaves the source where it is (``skipped=True``), ``overwrite``
    replaces it atomically. Missing destination folders are created, exactly ``folder_mode``
    whatever the umask; with ``root``,
    ``dest`` must lie inside it and no existing folder between them may be a symlink.
    Raises :class:`MoveError` (with ``.errno``) and leaves the source untouched on failure.
    ``copy=False``: links only, never reads the bytes (EXDEV when a copy would be needed).
    """
    if on_conflict not in ON_CONFLICT:
        choices = ", ".join(ON_CONFLICT)
        raise ValueError(f"on_conflict must be one of {choices}, got {on_conflict!r}")
    step = hook or _no_hook
    source, dest = Path(source), Path(dest)
    step("start")
    src_st = _check_source(source, dest)
    if expect is not None and signature(src_st) != tuple(expect):
        raise _changed(source, dest, "it changed after it settled")
    if os.path.normpath(source) == os.path.normpath(dest):
        raise move_error("move", source, dest, "source and destination are the same file")
    _make_folder(dest.parent, root, source, dest, folder_mode)

    dst_st = lstat(dest)
    if dst_st is not None and same_inode(dst_st, src_st):
        # Already there under both names (an earlier move was interrupted): finish it.
        _unlink_source(source, src_st, dest, None, step)
        return MoveResult(source, dest, skipped=False, cross_device=False)
    if dst_st is not None and on_conflict == "skip":
        return MoveResult(source, None, skipped=True, cross_device=False)

    try:
        final = _link_same_device(source, src_st, dest, on_conflict, step)
    except CannotLink:
        if not copy:
            why = "it may not be read, and a move here would copy it"
            raise move_error("move", source, dest, why, errno.EXDEV) from None
        final = copy_across(source, src_st, dest, on_conflict, step, _ensure_unchanged)
        cross = True
    else:
        cross = False
    if final is None:
        return MoveResult(source, None, skipped=True, cross_device=cross)
    placed = lstat(final)
    _ensure_unchanged(source, src_st, final, placed)
    _unlink_source(source, src_st, final, placed, step)
    if not cross:
        _ensure_still_unchanged(source, src_st, final)
    return MoveResult(source, final, skipped=False, cross_device=cross)


def signature(st: os.stat_result) -> Signature:
    """A file's (device, inode, size, mtime_ns): what must not change while it is moved."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def quarantine(
    source: Path, quarantine_dir: Path, reason: str, *, hook: Hook | None = None, copy: bool = True,
    expect: Signature | None = None, folder_mode: int = FOLDER_MODE,
) -> Path:
    """Put an undecodable file aside in ``quarantine_dir`` (never deleted, never clobbered) and
    write ``<final name>.reason.txt`` beside it (reason, time, original path). Returns its path.

    The reason file is best effort: the file itself is already safe when it is written, so a
    failure there is logged, not raised.
    """
    quarantine_dir = Path(quarantine_dir)
    result = move(
        source, quarantine_destination(Path(source), quarantine_dir), "rename",
        hook=hook, root=quarantine_dir, copy=copy, expect=expect, folder_mode=folder_mode,
    )
    assert result.destination is not None  # "rename" never skips
    final = result.destination
    note = (
        f"reason: {reason}\n"
        f"time: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
        f"original: {os.fspath(source)}\n"
    )
    note_path = reason_path(final)
    try:
        write_atomically(note_path, note.encode("utf-8", "backslashreplace"))
    except OSError as exc:
        log.warning("could not write %r: %s (quarantined because: %s)", str(note_path), exc, reason)
    return final


# ---------------------------------------------------------------------------------------------
# Move steps.


def _no_hook(step: str) -> None:
    """The default hook: do nothing."""


def _check_source(source: Path, dest: Path) -> os.stat_result:
    """The source's lstat; refuses anything but a regular file (symlinks are never followed)."""
    try:
        st = os.lstat(source)
    except OSError as exc:
        raise os_move_error("move", source, dest, exc) from exc
    if stat.S_ISLNK(st.st_mode):
        raise move_error("move", source, dest, "the source is a symbolic link (never followed)")
    if not stat.S_ISREG(st.st_mode):
        raise move_error("move", source, dest, "the source is not a regular file")
    return st


def _make_folder(folder: Path, root: Path | None, source: Path, dest: Path, mode: int) -> None:
    """Create ``folder`` (exactly ``mode``); with ``root``, refuse symlinks and non-folders below ``root``."""
    try:
        if root is None:
            make_folders(os.path.normpath(folder), mode)
            return
        root_s, folder_s = os.path.normpath(root), os.path.normpath(folder)
        if os.path.commonpath([root_s, folder_s]) != root_s:
            raise move_error("move", source, dest, f"the destination is outside {root_s!r}")
        make_folders(root_s, mode)
        current = root_s
        for part in Path(os.path.relpath(folder_s, root_s)).parts:
            if part == ".":
                continue
            current = os.path.join(current, part)
            _make_real_dir(current, source, dest, mode)
    except OSError as exc:
        raise os_move_error("move", source, dest, exc) from exc


def _make_real_dir(path: str, source: Path, dest: Path, mode: int) -> None:
    """Ensure ``path`` is a real directory (not a symlink), creating it (exactly ``mode``) when missing."""
    for _ in range(2):
        st = lstat(Path(path))
        if st is None:
            try:
                make_folder(path, mode)
                return
            except FileExistsError:
                continue  # made by someone else meanwhile: check what it is
        elif stat.S_ISLNK(st.st_mode):
            raise move_error("move", source, dest,
                             f"{path!r} is a symbolic link (not written through)")
        elif not stat.S_ISDIR(st.st_mode):
            raise move_error("move", source, dest, f"{path!r} is not a folder")
        else:
            return
    raise move_error("move", source, dest, f"{path!r} keeps changing")


def _link_same_device(
    source: Path, src_st: os.stat_result, dest: Path, on_conflict: str, step: Hook
) -> Path | None:
    """Give the source its new name by a hard link (no clobber). Returns the final name, or None
    when skipped. Raises CannotLink when the link is across devices or unsupported."""
    if on_conflict == "overwrite":
        temp = _link_temp(source, src_st, dest)
        step("linked")
        _ensure_unchanged(source, src_st, temp, lstat(temp))  # before anything is replaced
        try:
            os.replace(temp, dest)
        except OSError as exc:
            unlink_quietly(temp)
            raise os_move_error("move", source, dest, exc) from exc
        fsync_dir(dest.parent)
        step("placed")
        return dest
    final = claim(dest, on_conflict, lambda name: os.link(source, name, follow_symlinks=False),
                  source, dest)
    if final is None:
        return None
    if not same_inode(lstat(final), src_st):
        # The source was swapped between our check and the link: undo our link, touch nothing.
        unlink_quietly(final)
        raise move_error("move", source, dest, "the source changed while it was being moved")
    fsync_dir(final.parent)
    step("linked")
    return final


def _link_temp(source: Path, src_st: os.stat_result, dest: Path) -> Path:
    """Hard-link the source to a fresh temporary name beside ``dest`` (for overwrite)."""
    for _ in range(100):
        temp = temp_path(dest)
        try:
            os.link(source, temp, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in NO_LINK:
                raise CannotLink from exc
            raise os_move_error("move", source, dest, exc) from exc
        if not same_inode(lstat(temp), src_st):
            unlink_quietly(temp)
            raise move_error("move", source, dest, "the source changed while it was being moved")
        return temp
    raise move_error("move", source, dest, "cannot create a temporary name")


def _ensure_unchanged(
    source: Path, src_st: os.stat_result, final: Path, placed: os.stat_result | None
) -> None:
    """Before the source's name goes: it must be the file we started with, unchanged, and no
    writer may hold it. Otherwise the name we placed is removed and SourceChangedError raised."""
    now = lstat(source)
    if now is not None and not same_inode(now, src_st):
        return  # another file took the old name meanwhile; _unlink_source leaves it alone
    why = None
    if now is not None and signature(now) != signature(src_st):
        why = "it changed while it was being moved"
    elif now is not None and open_for_writing(source):
        why = "a program still holds it open for writing"
    if why is None:
        return
    if placed is not None and same_inode(lstat(final), placed):
        unlink_quietly(final)
        fsync_dir(final.parent)
    raise _changed(source, final, why)


def _ensure_still_unchanged(source: Path, src_st: os.stat_result, final: Path) -> None:
    """After a same-filesystem move: a writer whose descriptor was open (opened in the instant
    after the check) writes into the moved inode. If it grew, it goes back to the inbox."""
    now = lstat(final)
    if now is None or not same_inode(now, src_st) or signature(now) == signature(src_st):
        return
    back = unique_path(source)
    try:
        os.link(final, back, follow_symlinks=False)
    except OSError as exc:
        log.warning("%r changed while it was moved and cannot go back to the inbox (%s); left at %r",
                    os.fspath(source), exc, os.fspath(final))
        return
    fsync_dir(back.parent)
    unlink_quietly(final)
    fsync_dir(final.parent)
    raise _changed(source, final, "it changed while it was being moved; put back", returned=back)


def _unlink_source(
    source: Path, src_st: os.stat_result, final: Path, placed: os.stat_result | None, step: Hook
) -> None:
    """Remove the source's old name once the file is complete at ``final``.

    If the name now holds another file (dropped in meanwhile), it is left alone. If the unlink
    fails, the name we just placed (``placed``: its lstat) is removed again -- the source still
    holds every byte -- and the error raised, so a retry does not make a second copy.
    """
    now = lstat(source)
    if now is None or not same_inode(now, src_st):
        return
    try:
        os.unlink(source)
    except OSError as exc:
        if placed is not None and same_inode(lstat(final), placed):
            unlink_quietly(final)
        raise os_move_error("move", source, final, exc) from exc
    fsync_dir(source.parent)
    step("source_removed")


# ---------------------------------------------------------------------------------------------
# Errors (MoveError's constructors are in genre_daemon.filing.copying, shared with the copy).


def _changed(source: Path, dest: Path, reason: str, returned: Path | None = None) -> SourceChangedError:
    """A SourceChangedError naming both paths; the file is (back) in the inbox."""
    where = f"; it is in the inbox as {os.fspath(returned)!r}" if returned not in (None, source) else ""
    return SourceChangedError(
        f"not moving {os.fspath(source)!r} to {os.fspath(dest)!r}: {reason}{where}", returned)
