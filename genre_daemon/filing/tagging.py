"""``write_tags``: the genre tag of a placed file, written so that a stop at any moment is finished
at the next start.

A placement that is to be tagged is recorded with its tag pending, in the same transaction as
the move (``Journal.finish(..., tag=True)``). :func:`tag_placed` then keeps the tag it replaces
in the journal *before* the tagged copy replaces the file, writes it, and records the file's new
identity, which ends the pending state. A kill anywhere in between leaves the move pending, and
:func:`finish_tags` (at start-up) writes it again: a file already tagged is not rewritten, and
the tag kept before the kill is the one undo puts back, not the daemon's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from genre_daemon.filing.journal import FileIdentity, Journal, MoveRow
from genre_daemon.tags import GenreSnapshot, TagWriteError, write_genre

__all__ = ["Writer", "finish_tags", "tag_placed"]

Writer = Callable[..., GenreSnapshot]  # write_genre's shape: (path, genres, *, mode, before_change) -> the old tag


def tag_placed(journal: Journal, move: MoveRow, placed: Path, genre: str | Sequence[str],
               hasher: Callable[[Path], str | None], *, mode: str = "replace",
               writer: Writer = write_genre) -> str | None:
    """Write ``genre`` (one, or several best first) into the file ``move`` placed at ``placed``
    as ``mode`` (``tag_mode``) says; None when done, else why not (the file stays placed,
    untagged, and the move is no longer pending: a later start would fail the same way).
    ``hasher`` gives the tagged file's content hash (None if unreadable); ``writer`` writes the
    tag (``genre-daemon tag`` passes its own, see :func:`genre_daemon.importer.tag_in_place.write_tag`).
    Written again after a kill, the same genres in the same mode leave the file as the first
    write did (``append`` adds nothing twice, ``fill`` sees the genre it wrote), and the tag kept
    before the kill is the one undo restores."""
    kept = _recorded(move)

    def keep(snapshot: GenreSnapshot) -> None:
        if kept is None:
            journal.record_tag_intent(move.id, json.dumps(snapshot.to_json()))

    try:
        snapshot = writer(placed, genre, mode=mode, before_change=keep)
        identity = FileIdentity.of(placed)
    except TagWriteError as exc:
        journal.drop_tag(move.id)
        return exc.reason
    except OSError as exc:
        journal.drop_tag(move.id)
        return exc.strerror or str(exc)
    journal.record_tag_write(move.id, json.dumps((kept or snapshot).to_json()), identity, hasher(placed))
    return None


def finish_tags(journal: Journal, inbox: Path, write: Callable[[MoveRow], None] | None) -> list[MoveRow]:
    """The moves from ``inbox`` whose genre tag a stop kept from being written: each given to
    ``write`` (which calls :func:`tag_placed`), or, with None (``write_tags`` is off now), no
    longer pending. Returns them."""
    pending = [m for m in journal.pending_tags() if Path(m.source).is_relative_to(inbox)]
    for move in pending:
        if write is None or move.genre is None:
            journal.drop_tag(move.id)
        else:
            write(move)
    return pending


def _recorded(move: MoveRow) -> GenreSnapshot | None:
    """The tag a killed write kept before it changed the file, if any."""
    if not move.tag_snapshot:
        return None
    try:
        return GenreSnapshot.from_json(json.loads(move.tag_snapshot))
    except ValueError:  # json.JSONDecodeError included: not one of ours, write it afresh
        return None
