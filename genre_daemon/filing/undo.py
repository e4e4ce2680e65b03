"""``genre-daemon undo``: put moved files back where they came from.

**Only the file a move placed.** The journal keeps, for every placed file, its identity (device,
inode, size, mtime) and the content hash of the placed copy. Something at the move's address is
its file when it is the same inode (also after a tag edit in place), the same content, or, when
no hash was recorded, the same size and mtime; a file that is another live placement's file (the
daemon put a later song at the same address) never is. When the address holds a different file
or nothing, undo looks for the file where the user may have taken it (the library with review,
quarantine and ``retrain.labelled_dirs``, walked once per command, symlinks never followed):
the same full identity (a ``mv``), else the same content hash (a copy, a move across file
systems). Found once: that file is put back. Not found, or found as several copies: the move is
refused, naming it, the address and what sits there; nothing is moved.

**Moves that cannot be undone do not block the others.** ``undo`` undoes the newest move that
*can* be undone and ``undo --last N`` N of them, each skipped move reported once. Nothing about a
failure is written to the journal: the causes (a deleted file, an unmounted disk, a permission)
may be temporary, and a move marked un-undoable for good would hide one that became undoable
again; the price is one check per skipped move per command.

An undone file is marked *held* in the journal with its restored identity, so the daemon (running
or not) does not take it again unless it changes.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from genre_daemon.filing import album_mover, mover
from genre_daemon.config import Settings
from genre_daemon.errors import MoveError
from genre_daemon.filing.journal import FileIdentity, FileRow, Journal, MoveRow, content_hash
from genre_daemon.tags import GenreSnapshot, TagWriteError, restore_genre

__all__ = ["UndoResult", "Undoer", "undo_move"]


@dataclass(frozen=True)
class UndoResult:
    """One move undone (``restored`` is where its file is now) or not (``error`` says why).
    ``taken_from`` is where the file was found when that was not the move's address, ``note``
    what was at the address instead."""

    move: MoveRow
    restored: Path | None
    error: str | None = None
    taken_from: Path | None = None
    note: str | None = None
    album: bool = False  # a whole album folder went back (``taken_from`` is where it was)


def undo_move(journal: Journal, move: MoveRow, settings: Settings | None = None) -> UndoResult:
    """Undo one move (see the module docstring); without ``settings`` only its address is
    looked at."""
    return Undoer(journal, settings).undo(move)


class Undoer:
    """Undoes moves of one journal; caches the library walk and the placements for one command."""

    def __init__(self, journal: Journal, settings: Settings | None = None) -> None:
        self.journal = journal
        self.settings = settings
        self._index: _Index | None = None
        self._claimed: dict[FileIdentity, int] | None = None
        self._hashes: dict[tuple[str, FileIdentity], str | None] = {}

    # -- selection ---------------------------------------------------------------------------

    def newest(self, count: int) -> Iterator[UndoResult]:
        """Undo the newest ``count`` moves that can be undone, newest first, yielding every move
        tried (skipped ones with their ``error``). Moves made after the first look (by a running
        daemon) are left alone."""
        if count < 1:
            return
        limit, done = max(2 * count, 16), 0
        tried: set[int] = set()
        newest: int | None = None
        while True:
            batch = self.journal.history(limit, include_undone=False)
            if newest is None:
                if not batch:
                    return
                newest = batch[0].id
            for move in batch:
                if move.id in tried or move.id > newest:
                    continue
                tried.add(move.id)
                if move.album_id is not None and (fresh := self.journal.move(move.id)) is not None and fresh.undone:
                    continue  # undone with its album a moment ago
                result = self.undo(move)
                yield result
                if result.error is None:
                    done += 1
                    if done == count:
                        return
            if len(batch) < limit:
                return
            limit *= 2

    # -- one move ----------------------------------------------------------------------------

    def undo(self, move: MoveRow) -> UndoResult:
        """Move the file ``move`` placed back to its source path (``name (2).ext`` if that is
        taken now), or say why not; nothing is moved on refusal. A track of an album brings the
        whole album folder back (:meth:`undo_album`)."""
        move = self.journal.move(move.id) or move  # an album undone a moment ago undid this one too
        if move.undone:
            return UndoResult(move, None, f"move {move.id}: already undone")
        if move.album_id is not None:
            return self.undo_album(move)
        row = self.journal.get(move.file_id)
        if row is None:
            return UndoResult(move, None, f"move {move.id}: the journal has no file row {move.file_id}")
        address = Path(move.destination)
        here = _regular_identity(address)
        if here is not None and self._is_its_file(address, here, row, at_address=True):
            return self._put_back(move, address, here, None)
        what = (f"{address} holds a different file now, not the one move {move.id} placed there"
                if here is not None else f"{address} is gone (deleted or moved)")
        found = self._search(row, exclude=address)
        if not found:
            where = "the library, review and quarantine folders" if self.settings is not None else "its folder"
            return UndoResult(move, None, f"move {move.id}: {what}, and its file was not found in {where}; "
                                          "nothing moved")
        if len(found) > 1:
            shown = ", ".join(str(p) for p, _ in found[:3]) + (", ..." if len(found) > 3 else "")
            return UndoResult(move, None, f"move {move.id}: {what}; {len(found)} copies of its file were found "
                                          f"({shown}); nothing moved: put the one you mean back by hand")
        path, ident = found[0]
        return self._put_back(move, path, ident, what)

    def _put_back(self, move: MoveRow, path: Path, ident: FileIdentity, why_elsewhere: str | None) -> UndoResult:
        if _regular_identity(path) != ident:
            return UndoResult(move, None, f"move {move.id}: {path} changed while undo looked at it; nothing moved")
        if (problem := _restore_tag(move, path)) is not None:
            return UndoResult(move, None, problem)
        try:
            result = mover.move(path, Path(move.source), "rename")
        except MoveError as exc:
            return UndoResult(move, None, f"move {move.id}: {exc}")
        assert result.destination is not None
        reason_file = path.with_name(path.name + mover.REASON_SUFFIX)
        if move.kind == "quarantine" and why_elsewhere is None and reason_file.is_file():
            reason_file.unlink()
        self.journal.mark_undone(move.id, str(result.destination), FileIdentity.of(result.destination),
                                 content_hash=content_hash(result.destination))
        if why_elsewhere is None:
            return UndoResult(move, result.destination)
        return UndoResult(move, result.destination, taken_from=path, note=f"move {move.id}: {why_elsewhere}")

    def undo_album(self, move: MoveRow) -> UndoResult:
        """Put the album folder ``move``'s track was placed with back where it was in the inbox
        (`` (2)`` if that name is taken now), whole, its tracks' genre tags restored first
        (``write_tags``); or say why not, moving nothing."""
        assert move.album_id is not None
        album = self.journal.album(move.album_id)
        if album is None or album.destination is None:
            return UndoResult(move, None, f"move {move.id}: the journal has no placed album {move.album_id}")
        folder, source = Path(album.destination), Path(album.source)
        moves = self.journal.album_moves(album.id)
        if not folder.is_dir() or os.path.islink(folder):
            return UndoResult(move, None, f"move {move.id}: the album folder {folder} is gone (deleted or "
                                          "moved); nothing moved")
        for m in moves:
            if (problem := _restore_tag(m, Path(m.destination))) is not None:
                return UndoResult(move, None, problem)
        inbox = self.settings.inbox if self.settings is not None else source.parent
        root = inbox if source.is_relative_to(inbox) else source.parent
        try:
            back = album_mover.move_album(folder, source, root=root, expect=album_mover.snapshot(folder))
        except MoveError as exc:
            return UndoResult(move, None, f"move {move.id}: {exc}")
        for m in moves:
            restored = back.destination / Path(m.destination).relative_to(folder)
            if restored.is_file():
                self.journal.mark_undone(m.id, str(restored), FileIdentity.of(restored),
                                         content_hash=content_hash(restored))
        self.journal.mark_album_undone(album.id)
        others = sum(1 for p in back.destination.rglob("*") if p.is_file()) - len(moves)
        return UndoResult(move, back.destination, taken_from=folder, album=True,
                          note=f"the album {folder.name} ({len(moves)} tracks, {others} other files) went back whole")

    # -- recognising the file ----------------------------------------------------------------

    def _is_its_file(self, path: Path, ident: FileIdentity, row: FileRow, *, at_address: bool) -> bool:
        """Whether the regular file ``path`` (identity ``ident``) is the file ``row`` describes."""
        placed = row.identity
        if self._claimed_by_other(ident, row):
            return False
        same_inode = (ident.dev, ident.ino) == (placed.dev, placed.ino)
        same_stamp = (ident.size, ident.mtime_ns) == (placed.size, placed.mtime_ns)
        if same_inode and same_stamp:
            return True
        if row.content_hash is not None:
            if ident.size == placed.size and self._hash(path, ident) == row.content_hash:
                return True
        elif same_stamp:
            return True  # no hash recorded: a copy with the same size and ns mtime
        return same_inode and at_address  # its own inode, edited in place (tags)

    def _claimed_by_other(self, ident: FileIdentity, row: FileRow) -> bool:
        """``ident`` is the recorded identity of another file the daemon placed and nobody undid."""
        if self._claimed is None:
            self._claimed = {p.identity: p.file_id for p in
                             self.journal.placements(("genre", "review", "quarantine"))}
        owner = self._claimed.get(ident)
        return owner is not None and owner != row.id

    def _hash(self, path: Path, ident: FileIdentity) -> str | None:
        key = (os.fspath(path), ident)
        if key not in self._hashes:
            try:
                self._hashes[key] = content_hash(path)
            except OSError:
                self._hashes[key] = None
        return self._hashes[key]

    def _search(self, row: FileRow, exclude: Path) -> list[tuple[Path, FileIdentity]]:
        """Files in the searched folders that are ``row``'s file: the exact identity if present
        (one inode, maybe several hard-linked names: the first), else every matching copy."""
        if self.settings is None:
            return []
        if self._index is None:
            s = self.settings
            self._index = _Index([s.library, s.review_dir, s.quarantine_dir, *s.retrain.labelled_dirs],
                                 skip=[s.inbox, s.state_dir])
        exact = [(p, i) for p, i in self._index.same_size(row.identity.size)
                 if i == row.identity and p != exclude]
        if exact:
            return exact[:1]
        return [(p, i) for p, i in self._index.same_size(row.identity.size)
                if p != exclude and self._is_its_file(p, i, row, at_address=False)]


def _regular_identity(path: Path) -> FileIdentity | None:
    """The identity of ``path`` if it is a regular file (never a symlink), else None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileIdentity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class _Index:
    """Every regular file under ``roots`` (any depth, symlinks and the mover's partial files
    skipped, ``skip`` folders not entered), by size; built on first use."""

    def __init__(self, roots: Sequence[Path], skip: Sequence[Path]) -> None:
        self._by_size: dict[int, list[tuple[Path, FileIdentity]]] | None = None
        self._roots = list(roots)
        self._skip = list(skip)

    def same_size(self, size: int) -> list[tuple[Path, FileIdentity]]:
        if self._by_size is None:
            self._by_size = self._build()
        return self._by_size.get(size, [])

    def _build(self) -> dict[int, list[tuple[Path, FileIdentity]]]:
        out: dict[int, list[tuple[Path, FileIdentity]]] = {}
        visited: set[tuple[int, int]] = set()
        for folder in self._skip:
            try:
                st = os.stat(folder)
            except OSError:
                continue
            visited.add((st.st_dev, st.st_ino))
        for root in self._roots:
            try:
                st = os.stat(root)
            except OSError:
                continue
            stack = [(os.fspath(root), (st.st_dev, st.st_ino))]
            while stack:
                folder, key = stack.pop()
                if key in visited:
                    continue
                visited.add(key)
                try:
                    with os.scandir(folder) as it:
                        entries = list(it)
                except OSError:
                    continue
                for entry in sorted(entries, key=lambda e: e.name):
                    if mover.PARTIAL_MARKER in entry.name:
                        continue
                    try:
                        est = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(est.st_mode):
                        stack.append((entry.path, (est.st_dev, est.st_ino)))
                    elif stat.S_ISREG(est.st_mode):
                        ident = FileIdentity(est.st_dev, est.st_ino, est.st_size, est.st_mtime_ns)
                        out.setdefault(est.st_size, []).append((Path(entry.path), ident))
        return out


def _restore_tag(move: MoveRow, path: Path) -> str | None:
    """Put back the genre tag ``write_tags`` replaced when ``move`` placed the file (left alone
    when the user has changed the genre since); a reason when that fails, else None."""
    if not move.tag_snapshot:
        return None
    try:
        restore_genre(path, GenreSnapshot.from_json(json.loads(move.tag_snapshot)))
    except (OSError, TagWriteError, ValueError) as exc:
        return f"move {move.id}: cannot restore the genre tag of {path} ({exc}); nothing moved"
    return None
