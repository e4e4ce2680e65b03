"""Moving a whole album folder, crash-safe: whole in the inbox or whole in the library, never torn.

The album's files keep their names, bytes and layout. The destination's name is claimed with
``mkdir`` (which fails rather than reuse an existing folder: a clash gets `` (2)``, never a
merge), and the album then takes the claimed, empty folder's place in one ``rename``:

* **One filesystem**: ``rename(album, claimed)``. The kernel swaps the whole tree in at once; a
  SIGKILL before it leaves the album in the inbox (and an empty claimed folder, which
  :func:`settle_album` removes), after it in the library.
* **Across filesystems**: the tree is copied into a hidden folder beside the destination
  (``.<name>.genre-daemon-album-<token>.tmp``), every file fsynced and checked for size, then
  renamed onto the claimed folder in one step. Only then are the inbox's files removed, each one
  only if it is still the file that was copied. A SIGKILL before the rename leaves the album whole
  in the inbox (the hidden copy is removed by :func:`settle_album`); after it, the album is whole
  in the library and :func:`settle_album` removes what is left of the inbox's copy.

**Names.** An album keeps its names, except one that is not a safe name in the library
(:func:`library_name`: the rule for a loose file, so ``...Blackened.flac`` becomes
``Blackened.flac``, a hidden file in the library being invisible to media servers and to the label
scan): with ``names`` (:meth:`Snapshot.library_names`) such an entry is renamed inside the claimed
folder once the album is there (a copy is written under its new name), and :func:`settle_album`
finishes those renames after a crash. An album is therefore never torn for a name.

**Modes.** Every folder of the placed album (the album's own and its disc folders, whether
renamed in or copied) and every folder made on the way to it (genre, artist) is exactly
``folder_mode`` (0o755 by default) whatever the umask, so a media server running as another
user can enter it; the files keep their own modes.

Before anything moves, every file must be as it was when the album settled (``expect``: a
:class:`Snapshot`) and no process may hold one open for writing; otherwise
:class:`SourceChangedError`, with the album untouched. Symbolic links inside an album travel as
links (renamed, or re-created with the same target), never followed and never read through.
Sockets, pipes and devices stop the move (:class:`MoveError` naming them).
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from genre_daemon.errors import MoveError, SourceChangedError
from genre_daemon.filing.destination import numbered
from genre_daemon.filing.fsutil import (
    CLOEXEC,
    COPY_CHUNK,
    FOLDER_MODE,
    fsync_dir,
    lstat,
    make_folder,
    make_folders,
    set_folder_mode,
)
from genre_daemon.filing.hidden import TITLE_STARTS
from genre_daemon.filing.writers import open_for_writing
from genre_daemon.names import safe_filename

log = logging.getLogger(__name__)

ALBUM_TEMP_MARKER = ".genre-daemon-album-"
Hook = Callable[[str], None]
Signature = tuple[int, int, int, int]
Names = Mapping[str, str]  # an entry's path relative to the album folder -> its path in the library


def library_name(name: str) -> str:
    """The name an entry of an album folder gets in the library: the rule for a loose file
    (:func:`~genre_daemon.names.safe_filename`: kept when already safe, so a title that begins
    with dots loses them, ``...Blackened.flac`` -> ``Blackened.flac``), except that a hidden name
    (one leading dot: ``.DS_Store``, ``._01.flac``, never taken as music) stays hidden, made safe
    after its dot: shown in the library it would be clutter."""
    if name.startswith(".") and not name.startswith(TITLE_STARTS):
        return "." + safe_filename(name[1:])
    return safe_filename(name)


def _no_hook(step: str) -> None:
    pass


@dataclass(frozen=True)
class Snapshot:
    """An album folder as it settled: every file's signature and every link, by relative path."""

    root: Path
    files: dict[str, Signature]
    links: dict[str, str]  # relative path -> link target (never followed)
    dirs: tuple[str, ...]

    @property
    def size(self) -> int:
        return sum(sig[2] for sig in self.files.values())

    def library_names(self) -> dict[str, str]:
        """Every entry's path in the library by its path here (both relative to the folder):
        each name made a library name (:func:`library_name`); one that would clash in its folder
        with a name kept or given gets `` (2)``, `` (3)``... Pure and deterministic, so the move,
        the recovery after a crash and undo all find the same names."""
        leaves: dict[str, list[str]] = {}
        for rel in (*self.files, *self.links, *self.dirs):
            parent, _, leaf = rel.rpartition("/")
            leaves.setdefault(parent, []).append(leaf)
        out: dict[str, str] = {}
        for parent in sorted(leaves, key=lambda r: (r.count("/") if r else -1, r)):
            there = out.get(parent, parent)
            used = {leaf for leaf in leaves[parent] if library_name(leaf) == leaf}
            for leaf in sorted(leaves[parent]):
                new = library_name(leaf)
                if new != leaf:
                    wanted, n = new, 2
                    while new in used:
                        new, n = numbered(Path(wanted), n).name, n + 1
                    used.add(new)
                out[f"{parent}/{leaf}" if parent else leaf] = f"{there}/{new}" if there else new
        return out

    def to_json(self) -> dict[str, Any]:
        """The snapshot as the journal keeps it (the folder itself is the album's source)."""
        return {"files": self.files, "links": self.links, "dirs": list(self.dirs)}

    @classmethod
    def from_json(cls, root: Path, raw: Mapping[str, Any] | None) -> Snapshot:
        """A snapshot of the folder ``root`` from :meth:`to_json`'s form (None: empty)."""
        raw = raw or {}
        return cls(root, {k: tuple(v) for k, v in raw.get("files", {}).items()},  # type: ignore[misc]
                   dict(raw.get("links", {})), tuple(raw.get("dirs", ())))

    def changed(self, other: Snapshot) -> str | None:
        """What differs from ``other`` (a later snapshot of the same folder), or None."""
        for rel in sorted(set(self.files) | set(other.files)):
            if rel not in other.files:
                return f"{rel} was removed"
            if rel not in self.files:
                return f"{rel} appeared"
            if self.files[rel] != other.files[rel]:
                return f"{rel} changed"
        if self.links != other.links:
            return "a link inside it changed"
        return None


def snapshot(root: Path) -> Snapshot:
    """Walk ``root`` without following links; :class:`MoveError` on a socket, pipe or device."""
    files: dict[str, Signature] = {}
    links: dict[str, str] = {}
    dirs: list[str] = []
    for path, st in _walk(root):
        rel = path.relative_to(root).as_posix()
        if stat.S_ISREG(st.st_mode):
            files[rel] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        elif stat.S_ISLNK(st.st_mode):
            links[rel] = os.readlink(path)
        elif stat.S_ISDIR(st.st_mode):
            dirs.append(rel)
        else:
            raise MoveError(f"cannot move the album {str(root)!r}: {rel} is not a file, folder or link")
    return Snapshot(root, files, links, tuple(dirs))


def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry under ``root`` (folders before their contents), never through a link."""
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        path = Path(e.path)
        st = os.lstat(path)
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path)


@dataclass(frozen=True)
class AlbumMove:
    """Where the album ended up, and whether it was copied (another filesystem)."""

    destination: Path
    copied: bool


def claim(dest: Path, root: Path, mode: int = FOLDER_MODE) -> Path:
    """Make ``dest`` (or ``dest (2)``, ...) as a new empty folder and return it; every existing
    folder between ``root`` and it must be a real folder (a planted symlink cannot steer it).
    The folders made are exactly ``mode``, whatever the umask."""
    _check_real_dirs(dest.parent, root)
    make_folders(dest.parent, mode)
    _check_real_dirs(dest.parent, root)
    for n in range(1, 10_000):
        candidate = dest if n == 1 else numbered(dest, n)
        try:
            make_folder(candidate, mode)
        except FileExistsError:
            continue
        fsync_dir(candidate.parent)
        return candidate
    raise MoveError(f"cannot claim a folder for {str(dest)!r}: 9,999 names taken")


def move_album(source: Path, dest: Path, *, root: Path, expect: Snapshot, hook: Hook = _no_hook,
               inbox: Path | None = None, on_claimed: Callable[[Path], None] | None = None,
               names: Names | None = None, folder_mode: int = FOLDER_MODE) -> AlbumMove:
    """Move the album folder ``source`` to ``dest`` (a free name under ``root``, `` (2)`` on a
    clash), whole. ``on_claimed(folder)`` runs once the destination's name is claimed and before
    anything moves (the journal records it there). ``names`` (:meth:`Snapshot.library_names`):
    the entries that take another name there. Folders of ``inbox`` that this leaves empty are
    removed (never ``inbox``). Every folder of the placed album is ``folder_mode``."""
    names = names or {}
    _check_unchanged(source, expect)
    claimed = claim(dest, root, folder_mode)
    hook("claimed")
    if on_claimed is not None:
        try:
            on_claimed(claimed)
        except BaseException:
            _remove_claim(claimed)
            raise
    try:
        same_device = os.lstat(source).st_dev == os.lstat(claimed.parent).st_dev
        if same_device:
            _rename_in(source, claimed, expect)
            hook("renamed")
        else:
            _copy_in(source, claimed, expect, hook, names, folder_mode)
    except BaseException:
        _remove_claim(claimed)
        raise
    if same_device:
        rename_entries(claimed, names)
        open_folders(claimed, expect, names, folder_mode)
    else:
        remove_copied_source(source, claimed, expect, names)
        hook("source_removed")
    if inbox is not None:
        remove_emptied(source.parent, inbox)
    return AlbumMove(claimed, copied=not same_device)


def _rename_in(source: Path, claimed: Path, expect: Snapshot) -> None:
    try:
        os.rename(source, claimed)  # replaces the empty claimed folder, atomically
    except OSError as exc:
        raise _error(source, claimed, exc) from exc
    fsync_dir(claimed.parent)
    fsync_dir(source.parent)
    writer = next((rel for rel in sorted(expect.files) if open_for_writing(claimed / rel)), None)
    if writer is not None:  # a writer opened it after the check: put the album back, untouched
        os.rename(claimed, source)
        fsync_dir(source.parent)
        raise SourceChangedError(f"cannot move the album {str(source)!r}: a program holds {writer} open for writing")


def _copy_in(source: Path, claimed: Path, expect: Snapshot, hook: Hook, names: Names, mode: int) -> None:
    """The album copied into a hidden folder (its folders ``mode``), each entry under its name in
    the library, which then takes the claimed folder's place in one rename."""
    temp = _temp_dir(claimed, mode)
    try:
        for rel in expect.dirs:
            make_folder(temp / names.get(rel, rel), mode)
        for rel, target in expect.links.items():
            os.symlink(target, temp / names.get(rel, rel))
        for rel, sig in expect.files.items():
            _copy_file(source / rel, temp / names.get(rel, rel), sig)
        for rel in (*reversed(expect.dirs), ""):
            fsync_dir(temp / names.get(rel, rel) if rel else temp)
        hook("copied")
        _check_unchanged(source, expect)
        os.rename(temp, claimed)  # the whole album appears at once
        fsync_dir(claimed.parent)
        hook("placed")
    except OSError as exc:
        _remove_tree(temp)
        raise _error(source, claimed, exc) from exc
    except BaseException:
        _remove_tree(temp)
        raise


def _copy_file(src: Path, dst: Path, sig: Signature) -> None:
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | CLOEXEC)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != sig:
            raise SourceChangedError(f"{str(src)!r} changed while the album was being copied")
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | CLOEXEC, 0o644)
        try:
            while chunk := os.read(fd, COPY_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
            os.fchmod(out, stat.S_IMODE(st.st_mode) & ~0o002)
            os.fsync(out)
            if os.fstat(out).st_size != st.st_size:
                raise OSError(errno.EIO, "the copy is shorter than the file", os.fspath(dst))
        finally:
            os.close(out)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    finally:
        os.close(fd)


def remove_copied_source(source: Path, placed: Path, expect: Snapshot, names: Names | None = None) -> list[str]:
    """After a copy is in place: remove each inbox file that is still the file that was copied
    (and whose copy is there, same size, under its name in ``names``); returns what was kept
    (changed or new since)."""
    names = names or {}
    kept: list[str] = []
    for path, st in reversed(list(_walk(source))) if source.is_dir() else []:
        rel = path.relative_to(source).as_posix()
        if stat.S_ISDIR(st.st_mode):
            try:
                os.rmdir(path)
            except OSError:
                kept.append(rel + "/")
            continue
        copy = lstat(placed / names.get(rel, rel))
        if stat.S_ISREG(st.st_mode):
            same = expect.files.get(rel) == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            if same and copy is not None and copy.st_size == st.st_size:
                os.unlink(path)
                continue
        elif stat.S_ISLNK(st.st_mode) and rel in expect.links and copy is not None and stat.S_ISLNK(copy.st_mode):
            os.unlink(path)
            continue
        kept.append(rel)
    try:
        os.rmdir(source)
    except OSError:
        pass
    fsync_dir(source.parent)
    if kept:
        log.warning("%s: kept in the inbox, changed or new since the album was copied: %s", source, ", ".join(kept))
    return kept


SettleState = Literal["placed", "in_inbox", "missing"]


def settle_album(source: Path, dest: Path, expect: Snapshot | None = None, names: Names | None = None,
                 folder_mode: int | None = None) -> SettleState:
    """After a crash during :func:`move_album` (``dest`` is the claimed folder the journal
    recorded): finish or undo it. ``placed``: the album is whole at ``dest`` (its entries renamed
    as ``names`` says, any inbox remnant of a copy removed); ``in_inbox``: it is whole at
    ``source`` (the claim and any hidden copy removed); ``missing``: neither exists. With
    ``folder_mode``, a placed album's folders get it (a kill may have come before they did)."""
    for leftover in dest.parent.glob("." + _glob_escape(dest.name) + ALBUM_TEMP_MARKER + "*.tmp"):
        _remove_tree(leftover)
    dest_st = lstat(dest)
    if dest_st is not None and stat.S_ISDIR(dest_st.st_mode) and any(os.scandir(dest)):
        rename_entries(dest, names or {})
        if folder_mode is not None and expect is not None:
            open_folders(dest, expect, names or {}, folder_mode)
        if lstat(source) is not None and expect is not None:
            remove_copied_source(source, dest, expect, names)
        return "placed"
    if dest_st is not None and stat.S_ISDIR(dest_st.st_mode):
        _remove_claim(dest)
    return "in_inbox" if lstat(source) is not None else "missing"


def rename_entries(folder: Path, names: Names) -> None:
    """Give each entry of ``folder`` named by a key of ``names`` (its path there now) the last
    part of its value, deepest first, so every rename finds its parents as ``names`` knows them.
    Run again after a crash it finishes the job: what is renamed already is not there under its
    old name. Never replaces anything: an entry whose new name is taken, or that cannot be
    renamed, keeps its name (said in one line); it is in the folder either way."""
    renames = sorted(((old, new) for old, new in names.items() if old != new),
                     key=lambda pair: (-pair[0].count("/"), pair[0]))
    touched: set[Path] = set()
    for old, new in renames:
        here = folder / old
        there = here.with_name(new.rpartition("/")[2])
        if lstat(here) is None:
            continue
        try:
            if lstat(there) is not None:
                raise FileExistsError(errno.EEXIST, "the name is taken")
            os.rename(here, there)
        except OSError as exc:
            log.warning("%s: kept under this name, not renamed to %r: %s", here, there.name, exc.strerror or exc)
            continue
        touched.add(there.parent)
    for parent in touched:
        fsync_dir(parent)


def open_folders(folder: Path, expect: Snapshot, names: Names, mode: int) -> None:
    """Give the placed album ``folder`` and its sub-folders (disc folders) exactly ``mode``: an
    album renamed in keeps the folders it had in the inbox, made under whatever umask its
    downloader had (0700 under the shipped unit's), which a media server could not enter.
    Never through a link; a folder that cannot be changed is said in one line (the album is
    placed either way)."""
    for rel in ("", *expect.dirs):
        where = placed_path(folder, rel, names) if rel else folder
        try:
            set_folder_mode(where, mode)
        except OSError as exc:
            log.warning("%s: placed, but its mode could not be set to %04o: %s", where, mode, exc.strerror or exc)


def placed_path(folder: Path, rel: str, names: Names) -> Path:
    """Where the entry ``rel`` of an album is in its placed ``folder``: under its library name,
    or under its own where a rename could not be made (:func:`rename_entries`)."""
    new = folder / names.get(rel, rel)
    return new if lstat(new) is not None or lstat(folder / rel) is None else folder / rel


def remove_emptied(folder: Path, stop: Path) -> list[Path]:
    """Remove ``folder`` and its parents while they are empty, up to but never ``stop``.

    Never a folder that a writer may still be filling: one with anything in it (``rmdir``
    refuses it, atomically), and one that a process works in or holds open (a shell ``cd``'d
    into it to copy the next track, a ripper's open folder). That the folder changed recently
    is ruled out before its files are taken at all: the watcher hands on a file of a folder
    only once the folder has been quiet for ``folder_quiet_seconds``, and anything written since
    keeps the folder from being empty."""
    removed: list[Path] = []
    while folder != stop and folder.is_relative_to(stop):
        if _in_use(folder):
            log.info("%s: emptied, but kept: a program works in it", folder)
            break
        try:
            os.rmdir(folder)
        except OSError:
            break
        removed.append(folder)
        folder = folder.parent
    if removed:
        fsync_dir(folder)
    return removed


def _in_use(folder: Path) -> bool:
    """Whether a process (one this user may look at, through ``/proc``) has the empty ``folder``
    as its working folder or holds it open; False where ``/proc`` cannot say, and for a folder
    that is not empty (``rmdir`` refuses that one anyway)."""
    try:
        with os.scandir(folder) as it:
            if any(it):
                return False
        pids = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return False
    real = os.path.realpath(folder)
    for pid in pids:
        try:
            fds = [f"fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            fds = []  # gone, or another user's: its working folder may still be readable
        for link in ("cwd", *fds):
            try:
                if os.readlink(f"/proc/{pid}/{link}") == real:
                    return True
            except OSError:
                continue
    return False


def _check_unchanged(source: Path, expect: Snapshot) -> None:
    st = lstat(source)
    if st is None or not stat.S_ISDIR(st.st_mode):
        raise SourceChangedError(f"the album {str(source)!r} is no longer a folder in the inbox")
    what = expect.changed(snapshot(source))
    if what is not None:
        raise SourceChangedError(f"the album {str(source)!r} changed since it settled: {what}")
    writer = next((rel for rel in sorted(expect.files) if open_for_writing(source / rel)), None)
    if writer is not None:
        raise SourceChangedError(f"the album {str(source)!r}: a program holds {writer} open for writing")


def _check_real_dirs(folder: Path, root: Path) -> None:
    if not folder.is_relative_to(root):
        raise MoveError(f"{str(folder)!r} is not inside {str(root)!r}")
    current = root
    for part in folder.relative_to(root).parts:
        current = current / part
        st = lstat(current)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            raise MoveError(f"cannot place an album under {str(folder)!r}: {str(current)!r} is not a real folder")


def _temp_dir(claimed: Path, mode: int) -> Path:
    temp = claimed.with_name("." + claimed.name + ALBUM_TEMP_MARKER + secrets.token_hex(4) + ".tmp")
    make_folder(temp, mode)
    return temp


def _remove_claim(claimed: Path) -> None:
    try:
        os.rmdir(claimed)  # only ever empty: never remove anything in it
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove the claimed folder %s: %s", claimed, exc)
    fsync_dir(claimed.parent)


def _remove_tree(folder: Path) -> None:
    """Remove our own hidden copy (files we wrote), never following a link."""
    if lstat(folder) is None:
        return
    for path, st in reversed(list(_walk(folder))):
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(path)
        else:
            os.unlink(path)
    os.rmdir(folder)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _error(source: Path, dest: Path, exc: OSError) -> MoveError:
    err = MoveError(f"cannot move the album {str(source)!r} to {str(dest)!r}: {exc.strerror or exc}")
    err.errno = exc.errno  # type: ignore[attr-defined]
    return err
