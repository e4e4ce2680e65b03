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

**An album: only what it placed.** Its tracks are recognised as files are (above), its other files
by the signature the album's snapshot recorded (same inode, or same size and mtime for a copy).
What undo placed goes back to the album's inbox folder (`` (2)`` if that name is taken now), in one
folder rename when the library folder holds nothing else; a file you added stays, and so does a
track you moved elsewhere (a correction: it keeps its move). An album folder that is no longer
where it was placed is followed as a file is: to the folder holding one of its tracks at its place
(moved whole by hand, or filed by the review page). The message names the album by its inbox folder
and says what went back and what stayed.

**A genre tag written in place** (``genre-daemon tag``, a move of kind ``tag``): the old tag is
put back and nothing moves (:mod:`genre_daemon.filing.tag_undo`).

**History entries.** ``undo --last N`` undoes the newest N entries of ``history`` that can be
undone: a file's move is an entry, an album (all its tracks) is one.

**Folders.** The folders undo leaves empty on the way from a placement's address up to the
library, review or quarantine folder (a genre folder, a path template's artist and album folders)
are removed; never those folders themselves, the inbox or a labelled folder, nor one holding
anything.

An undone file is marked *held* in the journal with its restored identity, so the daemon (running
or not) does not take it again unless it changes.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from genre_daemon.filing import album_mover, mover
from genre_daemon.config import Settings
from genre_daemon.errors import MoveError
from genre_daemon.filing.journal import (
    AlbumRow,
    FileIdentity,
    FileRow,
    HistoryEntry,
    Journal,
    MoveRow,
    RestoredTrack,
    content_hash,
)
from genre_daemon.filing.tag_undo import undo_in_place
from genre_daemon.tags import GenreSnapshot, TagWriteError, restore_genre

__all__ = ["UndoResult", "Undoer", "counted", "undo_move"]

SHOWN = 8  # files named in a message before "and N more"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 track``, ``2 tracks``, ``0 albums``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


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
        """Undo the newest ``count`` entries of ``history`` that can be undone (an album is one),
        newest first, yielding every entry tried (skipped ones with their ``error``). Entries
        recorded after the first look (by a running daemon) are left alone."""
        if count < 1:
            return
        limit, done = max(2 * count, 16), 0
        tried: set[int] = set()
        newest: int | None = None
        while True:
            batch = self.journal.history_entries(limit, include_undone=False)
            if newest is None:
                if not batch:
                    return
                newest = batch[0].id
            for entry in batch:
                if entry.id in tried or entry.id > newest:
                    continue
                tried.add(entry.id)
                result = self.undo_entry(entry)
                yield result
                if result.error is None:
                    done += 1
                    if done == count:
                        return
            if len(batch) < limit:
                return
            limit *= 2

    def undo_entry(self, entry: HistoryEntry) -> UndoResult:
        """Undo one entry of ``history``: an album (:meth:`undo_album`) or one move."""
        if entry.album is not None and entry.moves[0].kind != "tag":
            return self.undo_album(entry.moves[0])
        return self.undo(entry.moves[0])

    # -- one move ----------------------------------------------------------------------------

    def undo(self, move: MoveRow) -> UndoResult:
        """Move the file ``move`` placed back to its source path (``name (2).ext`` if that is
        taken now), or say why not; nothing is moved on refusal. A track of an album brings the
        whole album folder back (:meth:`undo_album`)."""
        move = self.journal.move(move.id) or move  # an album undone a moment ago undid this one too
        if move.undone:
            return UndoResult(move, None, f"move {move.id}: already undone")
        if move.kind == "tag":  # a genre tag written in place: put back, nothing moved
            done = undo_in_place(self.journal, move)
            return UndoResult(move, done.restored[0] if done.restored else None, done.error, note=done.note)
        if move.album_id is not None:
            return self.undo_album(move)
        return self._undo_file(move)

    def _undo_file(self, move: MoveRow) -> UndoResult:
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
        if move.kind == "quarantine" and why_elsewhere is None:
            _remove_reason_file(path)
        self.journal.mark_undone(move.id, str(result.destination), FileIdentity.of(result.destination),
                                 content_hash=content_hash(result.destination))
        if why_elsewhere is None:
            self._remove_emptied(path.parent, move.kind)
            return UndoResult(move, result.destination)
        return UndoResult(move, result.destination, taken_from=path, note=f"move {move.id}: {why_elsewhere}")

    def undo_album(self, move: MoveRow) -> UndoResult:
        """Put back what the album of ``move``'s track placed (see the module docstring), its
        tracks' genre tags restored first (``write_tags``); or say why not, moving nothing. A
        track that stayed when its album went back is undone on its own."""
        assert move.album_id is not None
        album = self.journal.album(move.album_id)
        if album is None or album.destination is None:
            return UndoResult(move, None, f"move {move.id}: the journal has no placed album {move.album_id}")
        if album.undone:
            return self._undo_file(move)
        placed_at, source = Path(album.destination), Path(album.source)
        name = source.name
        names = album_mover.Snapshot.from_json(source, album.snapshot).library_names()
        own = {new: old for old, new in names.items()}  # its names in the library -> its own
        folder = placed_at if placed_at.is_dir() and not os.path.islink(placed_at) else None
        try:
            plan = self._album_plan(album, folder, names, placed_at) if folder is not None else None
            if plan is None or not plan.tracks:  # moved whole since (another album may have its name now)
                if (moved := self._album_now(album, placed_at)) is not None:
                    folder, plan = moved, self._album_plan(album, moved, names, placed_at)
        except MoveError as exc:
            return UndoResult(move, None, f"move {move.id}: {exc}")
        if folder is None or plan is None:
            return UndoResult(move, None, f"move {move.id}: the folder of the album {name}, {placed_at}, is gone "
                                          "(deleted or moved); nothing moved")
        if not plan.tracks:
            return UndoResult(move, None, f"move {move.id}: no track of the album {name} is where it was placed "
                                          f"({_listed(plan.stayed)}); nothing moved")
        for m, rel in plan.tracks:
            if (problem := _restore_tag(m, folder / rel)) is not None:
                return UndoResult(move, None, problem)
        inbox = self.settings.inbox if self.settings is not None else source.parent
        root = inbox if source.is_relative_to(inbox) else source.parent
        try:
            if plan.stayed_here:
                back = _move_files_back(folder, plan.back, plan.links, source, root, own)
            else:
                back = album_mover.move_album(folder, source, root=root, expect=album_mover.snapshot(folder),
                                              names=own).destination
        except MoveError as exc:
            return UndoResult(move, None, f"move {move.id}: {exc}")
        restored = [RestoredTrack(m.id, str(p), FileIdentity.of(p), content_hash(p))
                    for m, rel in plan.tracks if (p := album_mover.placed_path(back, rel, own)).is_file()]
        self.journal.mark_album_undone(album.id, restored)
        if move.kind == "quarantine":
            _remove_reason_file(folder)
        emptied = _deepest_first((folder / rel).parent for rel in plan.back) if plan.stayed_here else [folder.parent]
        for d in emptied:
            self._remove_emptied(d, move.kind)
        went = counted(len(plan.tracks), "track") + (
            f" and {counted(len(plan.back) - len(plan.tracks), 'other file')}" if len(plan.back) > len(plan.tracks)
            else "")
        if plan.stayed:
            note = f"the album {name}: {went} went back; stayed: {_listed(plan.stayed)}"
        else:
            note = f"the album {name} went back whole ({went})"
        return UndoResult(move, back, taken_from=folder, album=True, note=note)

    def _album_now(self, album: AlbumRow, placed_at: Path) -> Path | None:
        """Where the album folder placed at ``placed_at`` went, moved whole (by the user, or by the
        review page filing it): a folder holding at least half of its tracks at their places,
        found from one of them as a file is (:meth:`_search`). Never a genre folder or a root (a
        track moved there alone is a correction, which stays)."""
        s = self.settings
        if s is None:
            return None
        roots = {s.library, s.review_dir, s.quarantine_dir, s.inbox, s.state_dir, *s.retrain.labelled_dirs}
        tracks = [(m, row, Path(m.destination).relative_to(placed_at)) for m in self.journal.album_moves(album.id)
                  if (row := self.journal.get(m.file_id)) is not None and Path(m.destination).is_relative_to(placed_at)]
        for m, row, rel in tracks:
            found = self._search(row, exclude=Path(m.destination))
            if len(found) != 1 or len(found[0][0].parts) <= len(rel.parts):
                continue
            folder = Path(*found[0][0].parts[:-len(rel.parts)])
            if folder in roots or folder.parent == s.library or not folder.is_dir() or os.path.islink(folder):
                continue
            there = sum(1 for _, r, rr in tracks if (i := _regular_identity(folder / rr)) is not None
                        and self._is_its_file(folder / rr, i, r, at_address=False))
            if 2 * there >= len(tracks):
                return folder
        return None

    def _album_plan(self, album: AlbumRow, folder: Path, names: Mapping[str, str],
                    placed_at: Path | None = None) -> _AlbumPlan:
        """Which files in ``folder`` the album's move placed (they go back) and what stays; its
        other files are where ``names`` (its own relative path -> the library's) put them.
        ``placed_at``: where its move put the folder, when it has been moved whole since."""
        back: dict[str, str] = {}  # relative path -> "track" | "file" | "link"
        tracks: list[tuple[MoveRow, str]] = []
        stayed: list[str] = []
        moves = [m if placed_at is None or not Path(m.destination).is_relative_to(placed_at)
                 else replace(m, destination=str(folder / Path(m.destination).relative_to(placed_at)))
                 for m in self.journal.album_moves(album.id)]
        for m in moves:
            address = Path(m.destination)
            if not address.is_relative_to(folder):
                stayed.append(f"{address} (placed outside the album folder {folder})")
                continue
            rel = address.relative_to(folder).as_posix()
            row = self.journal.get(m.file_id)
            here = _regular_identity(address)
            if row is not None and here is not None and self._is_its_file(address, here, row, at_address=True):
                tracks.append((m, rel))
                back[rel] = "track"
                continue
            found = self._search(row, exclude=address) if row is not None else []
            if len(found) == 1:
                stayed.append(f"{rel} (you moved it to {found[0][0]}: a correction, kept there)")
            elif found:
                stayed.append(f"{rel} ({len(found)} copies of it found elsewhere, none at its place)")
            else:
                stayed.append(f"{rel} (not found: deleted or moved out of the library)")
        snap = album.snapshot or {}
        tracks_at = {Path(m.destination).relative_to(folder).as_posix() for m in moves
                     if Path(m.destination).is_relative_to(folder)}
        for own, sig in dict(snap.get("files", {})).items():  # type: ignore[call-overload]
            rel = names.get(own, own)
            if rel in tracks_at:
                continue
            if _placed_file(folder / rel, tuple(sig)):
                back[rel] = "file"
            elif not os.path.lexists(folder / rel):
                stayed.append(f"{rel} (not found: deleted or moved)")
        links: dict[str, str] = dict(snap.get("links", {}))  # type: ignore[call-overload]
        for own, target in links.items():
            rel = names.get(own, own)
            if os.path.islink(folder / rel) and os.readlink(folder / rel) == target:
                back[rel] = "link"
        now = album_mover.snapshot(folder)
        others = sorted(rel for rel in (*now.files, *now.links) if rel not in back)
        stayed += [f"{rel} (not a file genre-daemon placed)" for rel in others]
        return _AlbumPlan(tracks, back, {r for r, k in back.items() if k == "link"}, stayed, bool(others))

    def _remove_emptied(self, folder: Path, kind: str) -> None:
        """Remove ``folder`` and its parents while empty, up to the folder ``kind``'s placements
        go to (library, review or quarantine), never it, the inbox or a labelled folder."""
        s = self.settings
        if s is None:
            return
        root = {"genre": s.library, "review": s.review_dir, "quarantine": s.quarantine_dir}.get(kind)
        if root is None or not folder.is_relative_to(root):
            return
        kept = (root, s.library, s.review_dir, s.quarantine_dir, s.inbox, s.state_dir, *s.retrain.labelled_dirs)
        stop = max((p for p in kept if folder.is_relative_to(p)), key=lambda p: len(p.parts))
        album_mover.remove_emptied(folder, stop)

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


@dataclass(frozen=True)
class _AlbumPlan:
    """What an album undo moves: ``tracks`` (each move, its path in the album folder), ``back``
    (every path that goes back, tracks included; ``links`` among them), and ``stayed`` (one
    phrase per file left where it is); ``stayed_here``: the album folder holds files of yours."""

    tracks: list[tuple[MoveRow, str]]
    back: dict[str, str]
    links: set[str]
    stayed: list[str]
    stayed_here: bool


def _placed_file(path: Path, sig: tuple[int, ...]) -> bool:
    """Whether ``path`` is the album file the snapshot recorded as ``sig`` (dev, ino, size,
    mtime): the same inode (edited in place or not), or a copy with its size and mtime."""
    ident = _regular_identity(path)
    if ident is None or len(sig) != 4:
        return False
    return (ident.dev, ident.ino) == sig[:2] or (ident.size, ident.mtime_ns) == sig[2:]


def _move_files_back(folder: Path, back: dict[str, str], links: set[str], source: Path, root: Path,
                     own: Mapping[str, str]) -> Path:
    """Move the files ``back`` (paths in ``folder``) into a new folder claimed at ``source``
    (`` (2)`` if taken), each under its own name (``own``: library path -> its own), by the
    careful mover; on a failure the ones moved go back to ``folder`` and :class:`MoveError`
    says why. Returns the new folder."""
    claimed = album_mover.claim(source, root)
    done: list[tuple[Path, Path]] = []
    try:
        for rel in sorted(back):
            src, dst = folder / rel, claimed / own.get(rel, rel)
            if rel in links:
                mover.makedirs(dst.parent)
                os.symlink(os.readlink(src), dst)
                os.unlink(src)
            else:
                result = mover.move(src, dst, "rename", root=claimed)
                assert result.destination is not None
                dst = result.destination
            done.append((src, dst))
    except (MoveError, OSError) as exc:
        for src, dst in reversed(done):
            try:
                if os.path.islink(dst):
                    os.symlink(os.readlink(dst), src)
                    os.unlink(dst)
                else:
                    mover.move(dst, src, "rename", root=folder)
            except (MoveError, OSError):
                pass  # it stays in the inbox folder, whole: never lost
        for d in _deepest_first((claimed / own.get(rel, rel)).parent for rel in back):
            album_mover.remove_emptied(d, root)
        if isinstance(exc, MoveError):
            raise
        raise MoveError(f"cannot put the album {folder} back: {exc}") from exc
    return claimed


def _remove_reason_file(placed: Path) -> None:
    """Remove the reason file the daemon wrote beside a quarantined file or album folder that
    went back (it starts ``reason:``; anything else of that name is the user's and stays)."""
    note = mover.reason_path(placed)
    try:
        fd = os.open(note, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    with open(fd, "rb") as f:
        ours = stat.S_ISREG(os.fstat(f.fileno()).st_mode) and f.read(8) == b"reason: "
    if ours:
        try:
            os.unlink(note)
        except OSError:
            pass  # what went back is back; a note left behind costs nothing


def _deepest_first(folders: Iterable[Path]) -> list[Path]:
    return sorted(set(folders), key=lambda d: (-len(d.parts), d))


def _listed(items: Sequence[str]) -> str:
    """``a; b; c``: at most :data:`SHOWN` items, then ``and N more``."""
    shown = "; ".join(items[:SHOWN])
    return shown + (f"; and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


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
