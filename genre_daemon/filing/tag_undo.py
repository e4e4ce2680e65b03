"""Undo of a genre tag written in place (``genre-daemon tag``): the old tag put back, nothing moved.

A tag entry is one file's move of kind ``tag`` or an album's (one genre for its tracks). Each file
is recognised where it was tagged, as undo recognises a placed file at its address: its own inode
(a tag editor that saves in place keeps it) or the content the tag write left. The tag is put back
with :func:`~genre_daemon.tags.restore_genre`, which leaves alone a genre the user changed since.
A file no longer there (moved, deleted, rewritten) keeps its entry and is named; the others are
undone. The daemon's own placement of a file follows it through the rewrite
(:meth:`~genre_daemon.filing.journal.in_place.InPlace.follow_rewrite`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from genre_daemon.filing.fsutil import is_regular
from genre_daemon.filing.journal import FileIdentity, FileRow, Journal, MoveRow, content_hash
from genre_daemon.tags import GenreSnapshot, TagWriteError, restore_genre

__all__ = ["TagsUndone", "undo_in_place"]


@dataclass(frozen=True)
class TagsUndone:
    """What undoing one tag entry did: the files whose tag went back (``restored``), or why
    none did (``error``); ``note`` says it in a line."""

    restored: list[Path]
    error: str | None
    note: str


def undo_in_place(journal: Journal, move: MoveRow) -> TagsUndone:
    """Put back the genre tag(s) of ``move``'s entry (its album's tracks, when it has one)."""
    moves = journal.album_moves(move.album_id) if move.album_id is not None else [move]
    restored: list[tuple[int, FileIdentity]] = []
    paths: list[Path] = []
    kept: list[str] = []
    left: list[str] = []
    for m in moves:
        path = Path(m.destination)
        row = journal.get(m.file_id)
        before = FileIdentity.of_or_none(path) if is_regular(path) else None
        if row is None or before is None or not _same_file(path, before, row):
            left.append(f"{path} (not there as it was tagged: moved, deleted or changed since)")
            continue
        try:
            ours = restore_genre(path, GenreSnapshot.from_json(json.loads(m.tag_snapshot))) if m.tag_snapshot else True
            after = FileIdentity.of(path)
        except (OSError, TagWriteError, ValueError) as exc:
            left.append(f"{path} (its tag cannot be put back: {exc})")
            continue
        if not ours:
            kept.append(path.name)
        if after != before:
            journal.follow_rewrite(m.file_id, before, after, _hash(path))
        restored.append((m.id, after))
        paths.append(path)
    what = _album_name(journal, move) if move.album_id is not None else str(Path(move.destination))
    if not restored:
        return TagsUndone([], f"move {move.id}: no genre tag of {what} was put back: " + "; ".join(left), "")
    album = move.album_id if move.album_id is not None else None
    journal.mark_tags_undone(restored, album)
    note = (f"{what}: the genre tag of {len(restored)} file{'s' if len(restored) != 1 else ''} put back"
            if album is not None else f"{what}: its genre tag put back")
    if kept:
        note += f"; left as you changed it since: {', '.join(kept)}"
    if left:
        note += f"; not undone: {'; '.join(left)}"
    return TagsUndone(paths, None, note + " (nothing moved)")


def _album_name(journal: Journal, move: MoveRow) -> str:
    assert move.album_id is not None
    album = journal.album(move.album_id)
    return f"the album {Path(album.source if album is not None else Path(move.destination).parent).name}"


def _same_file(path: Path, ident: FileIdentity, row: FileRow) -> bool:
    """Whether ``path`` is the file the tag write left: its inode (edited in place since, or
    not), or its content."""
    if (ident.dev, ident.ino) == (row.identity.dev, row.identity.ino):
        return True
    return row.content_hash is not None and ident.size == row.identity.size and _hash(path) == row.content_hash


def _hash(path: Path) -> str | None:
    try:
        return content_hash(path)
    except OSError:
        return None

