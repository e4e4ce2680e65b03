"""Deciding where a file goes: pure functions of values.

:func:`destination`, :func:`quarantine_destination` and :func:`unique_path` never touch the disk
(``unique_path`` asks an injectable ``exists``), so every hostile genre or file name can be
tested directly. Getting the file there is :mod:`genre_daemon.filing.mover`'s job.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

from genre_daemon.errors import MoveError
from genre_daemon.filing.fsutil import inside
from genre_daemon.names import NAME_MAX, cut_bytes, nbytes, safe_component, safe_filename, split_suffix

__all__ = ["destination", "numbered", "quarantine_destination", "unique_path"]


def destination(
    source: Path,
    genre: str | None,
    confidence: float,
    *,
    library: Path,
    review_dir: Path,
    min_confidence: float,
) -> Path:
    """Where a classified file belongs: ``library/<genre>/<name>``, or ``review_dir/<name>``
    when there is no genre or the confidence is below ``min_confidence`` (or not a number).

    Pure: nothing is read from the disk. Genre and file name each become one safe component, so
    the result is always directly inside the genre folder or the review folder.
    """
    name = safe_filename(source.name)
    sure = genre is not None and not math.isnan(confidence) and confidence >= min_confidence
    folder = library / safe_component(genre) if sure and genre is not None else review_dir
    result = folder / name
    top = library if folder != review_dir else review_dir
    if not inside(result, top) or result.parent != folder:
        raise AssertionError(f"destination {str(result)!r} escapes {str(top)!r}")
    return result



def quarantine_destination(source: Path, quarantine_dir: Path) -> Path:
    """Where an undecodable file is put aside: ``quarantine_dir/<safe name>``. Pure."""
    result = quarantine_dir / safe_filename(source.name)
    if result.parent != quarantine_dir:
        raise AssertionError(f"{str(result)!r} escapes {str(quarantine_dir)!r}")
    return result



def unique_path(path: Path, exists: Callable[[Path], bool] = os.path.lexists) -> Path:
    """``path`` if it is free, else the first free ``name (2).mp3``, ``name (3).mp3``, ...

    The extension is kept and the name stays within 255 bytes (the stem is shortened). Only
    ``exists`` is consulted, so this is pure when given a pure ``exists``.
    """
    if not exists(path):
        return path
    for n in range(2, 1_000_000):
        candidate = numbered(path, n)
        if not exists(candidate):
            return candidate
    raise MoveError(f"cannot find a free name for {str(path)!r}: a million variants are taken")



def numbered(path: Path, n: int) -> Path:
    """``name (n).ext`` beside ``path``, shortened to fit in 255 bytes."""
    stem, suffix = split_suffix(path.name)
    tail = f" ({n}){suffix}"
    stem = cut_bytes(stem, NAME_MAX - nbytes(tail))
    return path.with_name(stem + tail)

