"""Recovery after a crash: finish or undo a move that was interrupted, remove what it left.

:func:`settle` (or :func:`settle_interrupted`) finds which side of "placed" (or "linked" for
rename) an interrupted :func:`genre_daemon.filing.mover.move` was on and finishes or undoes it;
:func:`clean_partials` removes the hidden temporary files interrupted copies left. Both remove
temporary files, so call them before workers start moving into the folders concerned (at
start-up). Never deletes the only copy of anything.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genre_daemon.filing.destination import numbered
from genre_daemon.filing.fsutil import (
    CLOEXEC,
    COPY_CHUNK,
    entries,
    fsync_dir,
    is_regular,
    lstat,
    same_inode,
    unlink_quietly,
)
from genre_daemon.filing.mover import is_partial_name, temp_prefix

__all__ = ["Settled", "clean_partials", "settle", "settle_interrupted"]


@dataclass(frozen=True)
class Settled:
    """What :func:`settle` found after a crash: the state and, when moved, where the file is."""

    state: Literal["moved", "not_moved", "missing"]
    destination: Path | None



def clean_partials(folder: Path) -> list[Path]:
    """Remove the temporary files interrupted moves left in ``folder`` (not recursive).

    Only regular files named like this module's temporary files are touched. Returns them.
    Call it before any move into ``folder`` starts (a running copy's temporary file would go).
    """
    removed = []
    for path in entries(Path(folder)):
        if is_partial_name(path.name) and is_regular(path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    if removed:
        fsync_dir(Path(folder))
    return removed



def settle_interrupted(source: Path, dest: Path) -> str:
    """After a crash during ``move(source, dest)``, finish or undo it and say which.

    ``"moved"``: the complete file is at ``dest`` (or at ``dest``'s ``name (n)`` variant); a
    source still present as the same inode or as identical bytes is removed. ``"not_moved"``:
    only the source exists; temporary files are removed. ``"missing"``: neither exists.
    :func:`settle` does the same and also says where a moved file is.
    """
    return settle(source, dest).state



def settle(
    source: Path, dest: Path, *, size: int | None = None, mtime_ns: int | None = None
) -> Settled:
    """:func:`settle_interrupted`, returning where the file ended up.

    With ``on_conflict="rename"`` the interrupted move may have picked ``name (2).mp3``; that
    variant is found by comparing it with the source. When the source is gone, ``size`` and
    ``mtime_ns`` (as the journal recorded them; a move keeps both) pick the right variant;
    without them ``dest`` itself is assumed. Never deletes the only copy of anything: a
    temporary file stays when neither the source nor the destination exists.
    """
    source, dest = Path(source), Path(dest)
    src_st = lstat(source)
    candidates = list(_candidates(dest))
    if src_st is not None:
        if not stat.S_ISREG(src_st.st_mode):
            return Settled("not_moved", None)  # never touch a link or a folder we did not move
        match = _find_copy(source, src_st, candidates)
        if match is None:
            _remove_temps(dest)
            return Settled("not_moved", None)
        if os.path.normpath(match) != os.path.normpath(source):
            unlink_quietly(source)
            fsync_dir(source.parent)
        _remove_temps(dest)
        return Settled("moved", match)
    match = _find_by_identity(dest, candidates, size, mtime_ns)
    if match is None:
        return Settled("missing", None)
    _remove_temps(dest)
    return Settled("moved", match)



def _candidates(dest: Path) -> Iterator[Path]:
    """``dest`` and every ``dest (n)`` variant that exists (the names move() could have used)."""
    names = {p.name for p in entries(dest.parent)}
    if dest.name in names:
        yield dest
    for n in range(2, len(names) + 2):
        variant = numbered(dest, n)
        if variant.name in names:
            yield variant



def _find_copy(source: Path, src_st: os.stat_result, candidates: list[Path]) -> Path | None:
    """The candidate that is the source's inode, else one with identical bytes, else None."""
    regular = [(p, st) for p in candidates
               if (st := lstat(p)) is not None and stat.S_ISREG(st.st_mode)]
    for path, st in regular:
        if same_inode(st, src_st):
            return path
    for path, st in regular:
        if st.st_size == src_st.st_size and _same_bytes(source, path):
            return path
    return None



def _find_by_identity(
    dest: Path, candidates: list[Path], size: int | None, mtime_ns: int | None
) -> Path | None:
    """With the source gone: the first candidate matching the recorded size and mtime, or,
    with nothing recorded, ``dest`` itself when it exists."""
    if size is None and mtime_ns is None:
        return dest if candidates and candidates[0] == dest else None
    for path in candidates:
        st = lstat(path)
        if st is None or not stat.S_ISREG(st.st_mode):
            continue
        if size not in (None, st.st_size) or mtime_ns not in (None, st.st_mtime_ns):
            continue
        return path
    return None



def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two regular files hold the same bytes (read in chunks, links not followed)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | CLOEXEC
    try:
        fa = os.open(a, flags)
    except OSError:
        return False
    try:
        fb = os.open(b, flags)
    except OSError:
        os.close(fa)
        return False
    try:
        while True:
            ca, cb = os.read(fa, COPY_CHUNK), os.read(fb, COPY_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True
    finally:
        os.close(fa)
        os.close(fb)



def _remove_temps(dest: Path) -> None:
    """Remove the temporary files a move to ``dest`` may have left beside it."""
    prefix = temp_prefix(dest.name)
    removed = False
    for path in entries(dest.parent):
        if path.name.startswith(prefix) and path.name.endswith(".tmp") and is_regular(path):
            unlink_quietly(path)
            removed = True
    if removed:
        fsync_dir(dest.parent)
