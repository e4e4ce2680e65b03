"""``genre-daemon undo``: put moved files back where they came from.

An undone file is marked *held* in the journal with its restored identity, so the daemon (running
or not) does not take it again unless it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import mover
from .errors import MoveError
from .journal import FileIdentity, Journal, MoveRow, content_hash


@dataclass(frozen=True)
class UndoResult:
    move: MoveRow
    restored: Path | None
    error: str | None = None


def undo_move(journal: Journal, move: MoveRow) -> UndoResult:
    """Move one file back to its source path (``name (2).ext`` if that is taken now)."""
    if move.undone:
        return UndoResult(move, None, f"move {move.id} was already undone")
    dest, source = Path(move.destination), Path(move.source)
    if not dest.is_file() or dest.is_symlink():
        return UndoResult(move, None, f"{dest} is no longer there (moved or deleted since)")
    try:
        result = mover.move(dest, source, "rename")
    except MoveError as exc:
        return UndoResult(move, None, str(exc))
    assert result.destination is not None
    reason_file = dest.with_name(dest.name + mover.REASON_SUFFIX)
    if move.kind == "quarantine" and reason_file.is_file():
        reason_file.unlink()
    journal.mark_undone(move.id, str(result.destination), FileIdentity.of(result.destination),
                        content_hash=content_hash(result.destination))
    return UndoResult(move, result.destination)


def moves_to_undo(journal: Journal, move_id: int | None, last: int | None) -> list[MoveRow]:
    """The move with ``move_id``, or the newest ``last`` moves not yet undone (default 1)."""
    if move_id is not None:
        row = journal.move(move_id)
        return [row] if row is not None else []
    return journal.history(last or 1, include_undone=False)
