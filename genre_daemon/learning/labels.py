"""Labels: what the user taught the daemon, found by comparing the journal with the disk.

A label is a file in a genre folder that says "this is <genre>" in the user's own words:

* ``correction``: a file the daemon placed (in a genre folder or in review) that the user moved
  into another genre folder. The strongest signal: the model was wrong, or unsure, there.
* ``added``: a file in ``library/<genre>/`` that the daemon did not put there.
* ``labelled_dir``: a file in ``<labelled_dir>/<genre>/`` of ``retrain.labelled_dirs``.

A file the daemon placed and the user left alone (in place, or moved within the same genre
folder, or with its tags edited in place) is *not* a label: the model never trains on its own
guesses. Detection works from the journal and the disk alone, so a correction made while the
daemon was stopped counts just the same at the next scan.

**Recognising a daemon-placed file.** First by full identity (device, inode, size, mtime): a
``mv`` on one file system keeps all four. A file that sits at a placement's destination path is
the daemon's file even if it changed (tag editors rewrite files). When the inode changed but
size and mtime did not (``mv`` across file systems, ``cp -p``), the content hash decides, when
the journal has one for that placement; when it has none, a single placement with that size and
mtime whose file is no longer at its destination is taken to be it (nanosecond mtimes make a
false match unlikely; an ambiguous one is left as ``added``, which still carries the right genre).

**Cost.** The scan runs at every rescan over libraries of 100k files: ``os.scandir`` (the file
type comes from the directory entry), one ``lstat`` per candidate file, one light journal query,
and a content hash only for the rare inode-changed lookalike. :class:`HashCache` lets callers
(``new_labels``, the feature cache) hash each unchanged file once per process.

**Safety.** Symlinks (files or folders) are never followed and never labels; hidden names (the
inbox's rule, :func:`genre_daemon.filing.hidden.is_hidden`: ``.x.mp3``, ``._x.mp3``, ``.cache/`` are
hidden; a title that begins with dots, ``...Ready for It.mp3`` or ``...And Justice for All/``, is
not), partial-copy temporaries and non-audio extensions are skipped; a genre folder whose name is
not one safe path component (see :func:`genre_daemon.names.safe_component`) is skipped with a
warning, since its name would become a model class and then a folder name. A folder is read
through ``genre_names`` (:mod:`genre_daemon.config.names`): ``Hip-Hop/`` with ``{hiphop: Hip-Hop}``
holds labels of ``hiphop``, and so does a ``Hip-Hop/`` or ``hip hop/`` beside a known ``hiphop``
with no mapping (said in the log once); a merged name (``Pop/`` of ``{disco: Pop, pop: Pop}``)
teaches the merged genre of that name (``pop``), else the first merged one. Folder names that differ
only by case (``Jazz`` and ``jazz``) are one genre, spelt as a known genre where one matches, else
as the first spelling in sorted order (a model refuses two classes that one folder on macOS or SMB
would hold; see :func:`genre_daemon.model.files.check_genres`). Hard links are read like any file: a
label's bytes only ever become features inside ``state_dir``, never a file others can read (the
inbox's stricter policy is :func:`genre_daemon.filing.mover.read_refusal`).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from genre_daemon.config import Settings
from genre_daemon.config.names import label_genre, resolve
from genre_daemon.filing.hidden import is_hidden
from genre_daemon.filing.journal import FileIdentity, Journal, Placement, content_hash
from genre_daemon.filing.mover import PARTIAL_MARKER
from genre_daemon.names import safe_component

__all__ = [
    "HashCache",
    "Label",
    "LabelKind",
    "genre_counts",
    "genre_name",
    "new_labels",
    "scan_labels",
    "trainable_genres",
]

log = logging.getLogger("genre_daemon.learning.labels")

LabelKind = Literal["correction", "added", "labelled_dir"]
REVIEW = "review"  # ``Label.was`` of a file the user took out of review

_DirKey = tuple[int, int]  # (st_dev, st_ino) of a folder
_warned_lock = threading.Lock()
_warned: set[str] = set()  # bad genre folders already reported (once per process, not per rescan)


@dataclass(frozen=True)
class Label:
    """One labelled file: where it is, which genre the user says it is, and how we know."""

    path: Path
    genre: str
    kind: LabelKind
    identity: FileIdentity
    was: str | None = None  # correction: the genre the daemon had put it in, or "review"


class HashCache:
    """A :func:`content_hash` that hashes each unchanged file once: memoised by file identity
    (device, inode, size, mtime), so a renamed file is not hashed again and a changed one is.
    Thread-safe; usable wherever a ``hasher`` is taken."""

    def __init__(self, hasher: Callable[[Path], str] = content_hash) -> None:
        self._hasher = hasher
        self._lock = threading.Lock()
        self._known: dict[FileIdentity, str] = {}

    def __call__(self, path: Path) -> str:
        before = FileIdentity.of(path)
        with self._lock:
            known = self._known.get(before)
        if known is not None:
            return known
        digest = self._hasher(Path(path))
        if FileIdentity.of(path) == before:  # not rewritten while we read it
            with self._lock:
                self._known[before] = digest
        return digest

    def __len__(self) -> int:
        return len(self._known)


def genre_name(folder: str) -> str | None:
    """The genre a folder name stands for (NFC, so a macOS NFD name means the same genre), or
    None when the name is not one safe path component and must not become a class."""
    name = unicodedata.normalize("NFC", folder)
    return name if name and safe_component(name) == name else None


# --- the scan ---------------------------------------------------------------------------------


class _Placements:
    """The journal's placements, indexed the three ways a file on disk is matched to them."""

    def __init__(self, placements: Iterable[Placement]) -> None:
        self.by_identity: dict[FileIdentity, Placement] = {}
        self.destinations: set[str] = set()
        self.by_size_mtime: dict[tuple[int, int], list[Placement]] = {}
        for p in placements:  # oldest first: the newest placement of an identity wins
            self.by_identity[p.identity] = p
            self.destinations.add(p.destination)
            self.by_size_mtime.setdefault((p.identity.size, p.identity.mtime_ns), []).append(p)

    def lookalike(self, path: Path, ident: FileIdentity, hasher: Callable[[Path], str]) -> Placement | None:
        """The placement a file with a new inode is a move or copy of, if any (see the module
        docstring): by content hash where the journal has one, else a unique departed candidate."""
        candidates = self.by_size_mtime.get((ident.size, ident.mtime_ns))
        if not candidates:
            return None
        hashed = [p for p in candidates if p.content_hash]
        if hashed:
            try:
                digest = hasher(path)
            except OSError as exc:
                log.debug("cannot hash %s: %s", path, exc)
                return None
            same = [p for p in hashed if p.content_hash == digest]
            return same[-1] if same else None
        # No hash to compare: only an unambiguous match (one candidate, and its file has left
        # its destination). Many candidates (files cut to one length, unpacked with one mtime)
        # would make this a guess, and a quadratic one.
        if len(candidates) == 1 and not os.path.lexists(candidates[0].destination):
            return candidates[0]
        return None


def scan_labels(
    settings: Settings,
    journal: Journal,
    *,
    hasher: Callable[[Path], str] = content_hash,
    known: Collection[str] = (),
) -> list[Label]:
    """Every label on disk now, sorted by (genre, path): the library's genre folders compared
    with the journal's placements, then each of ``retrain.labelled_dirs``. A file reachable
    twice (hard link, overlapping folders) counts once, library first. Genre folders whose
    names differ only by case are one genre (spelt as in ``known``, the current model's
    genres, where one matches)."""
    placements = _Placements(journal.placements())
    meant = _FolderGenres(settings, known)
    seen: set[_DirKey] = set()
    labels: list[Label] = []
    library_skip = _dir_keys(
        settings.review_dir, settings.quarantine_dir, settings.state_dir, settings.inbox,
        *settings.retrain.labelled_dirs,
    )
    for genre, where, ident in _walk_genre_folders(settings.library, settings.extensions, library_skip):
        if (ident.dev, ident.ino) in seen:
            continue
        seen.add((ident.dev, ident.ino))
        label = _library_label(where, genre, ident, placements, hasher, meant)
        if label is not None:
            labels.append(label)

    library_key = _dir_keys(settings.library)
    for root in settings.retrain.labelled_dirs:
        if _dir_keys(root) & library_key:
            log.warning("retrain.labelled_dirs: %s is the library itself; its files are labels only "
                        "where the user put or moved them", root)
            continue
        others = [d for d in settings.retrain.labelled_dirs if d != root]
        skip = _dir_keys(settings.library, settings.review_dir, settings.quarantine_dir,
                         settings.state_dir, settings.inbox, *others)
        for genre, where, ident in _walk_genre_folders(root, settings.extensions, skip):
            if (ident.dev, ident.ino) in seen:
                continue
            seen.add((ident.dev, ident.ino))
            labels.append(Label(Path(where), meant(genre), "labelled_dir", ident))
    labels = _merge_case_variants(labels, known)
    labels.sort(key=lambda lab: (lab.genre, os.fsencode(lab.path)))
    return labels


def _merge_case_variants(labels: list[Label], known: Collection[str]) -> list[Label]:
    """Labels whose genres differ only by case, given one spelling (see :func:`scan_labels`)."""
    spellings: dict[str, set[str]] = {}
    for label in labels:
        spellings.setdefault(label.genre.casefold(), set()).add(label.genre)
    known_by_key = {g.casefold(): g for g in sorted(known, reverse=True)}
    canonical: dict[str, str] = {}
    for key, names in spellings.items():
        chosen = known_by_key.get(key) or sorted(names)[0]
        for name in names:
            if name != chosen:
                canonical[name] = chosen
                _warn_once(f"case:{name}", f"labels: genre folder {name!r} counts as genre {chosen!r} "
                                           "(names that differ only by case are one genre)")
    if not canonical:
        return labels
    return [replace(lab, genre=canonical[lab.genre]) if lab.genre in canonical else lab for lab in labels]


class _FolderGenres:
    """The genre a genre folder's files are labels of (:func:`genre_daemon.config.names.label_genre`:
    a name of ``genre_names``, a known genre's name by case or alike, else the folder's own name),
    remembered per folder name; a folder read as a genre by another spelling is said in the log
    once (``Hip-Hop/`` beside a known ``hiphop``)."""

    def __init__(self, settings: Settings, known: Collection[str]) -> None:
        self.settings = settings
        self.known = known
        self._seen: dict[str, str] = {}

    def covers(self, folder: str, genre: str | None) -> bool:
        """Whether the folder ``folder`` holds the model's ``genre`` (by any name of it; of a
        merge, each merged genre)."""
        return genre is not None and (genre == self(folder)
                                      or genre in resolve(self.settings, folder, self.known).genres)

    def __call__(self, folder: str) -> str:
        genre = self._seen.get(folder)
        if genre is not None:
            return genre
        match = resolve(self.settings, folder, self.known)
        genre = label_genre(self.settings, folder, self.known)
        if match.how in ("case", "alike") and genre != folder:
            _warn_once(f"alike:{folder}", f"labels: genre folder {folder!r} counts as genre {genre!r} "
                                          "(the same name but for case, '-', '_', spaces or '&'; "
                                          "name it in genre_names to say so yourself)")
        elif len(match.genres) > 1:
            _warn_once(f"merge:{folder}", f"labels: genre folder {folder!r} holds the genres "
                                          f"{', '.join(match.genres)} (genre_names); its files are labels of {genre!r}")
        self._seen[folder] = genre
        return genre


def _library_label(
    where: str, folder: str, ident: FileIdentity, placements: _Placements, hasher: Callable[[Path], str],
    meant: _FolderGenres,
) -> Label | None:
    """The label a file in ``library/<folder>/`` is (of the genre the folder means), or None when
    it is the daemon's own guess."""
    genre = meant(folder)
    placed = placements.by_identity.get(ident)
    if placed is None:
        if where in placements.destinations:
            return None  # the daemon's file, changed in place (tags edited, rewritten)
        placed = placements.lookalike(Path(where), ident, hasher)
        if placed is None:
            return Label(Path(where), genre, "added", ident)
    elif placed.destination == where:
        return None  # placed by the daemon and left alone
    path = Path(where)
    if placed.kind == "review":
        return Label(path, genre, "correction", ident, was=REVIEW)
    daemon_folder = Path(placed.destination).parent.name
    old = genre_name(daemon_folder)
    if meant.covers(folder, placed.genre) or (old is not None and meant(old) == genre):
        return None  # moved within the genre the daemon chose (by any name of it): still its guess
    return Label(path, genre, "correction", ident, was=placed.genre or daemon_folder)


def _dir_keys(*folders: Path) -> set[_DirKey]:
    """(device, inode) of each existing folder (a configured root: followed if a symlink)."""
    keys: set[_DirKey] = set()
    for folder in folders:
        try:
            st = os.stat(folder)
        except OSError:
            continue
        keys.add((st.st_dev, st.st_ino))
    return keys


def _walk_genre_folders(
    root: Path, extensions: Collection[str], skip: set[_DirKey]
) -> Iterator[tuple[str, str, FileIdentity]]:
    """(genre, path, identity) of every audio file in ``root/<genre>/**``. Files directly in
    ``root`` belong to no genre; folders in ``skip`` and symlinks are never entered."""
    for entry in _entries(root):
        if is_hidden(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in skip:
            continue
        genre = genre_name(entry.name)
        if genre is None:
            _warn_once(entry.path)
            continue
        for where, ident in _audio_files(entry.path, extensions, skip):
            yield genre, where, ident


def _audio_files(
    top: str, extensions: Collection[str], skip: set[_DirKey]
) -> Iterator[tuple[str, FileIdentity]]:
    """Regular audio files under ``top`` (any depth), with their ``lstat`` identity."""
    exts = {e.lower() for e in extensions}
    stack = [top]
    while stack:
        for entry in _entries(stack.pop()):
            name = entry.name
            if PARTIAL_MARKER in name:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if is_hidden(name):
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) not in skip:
                        stack.append(entry.path)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue  # a symlink, socket, fifo, device
                _, dot, ext = name.rpartition(".")
                if not dot or ext.lower() not in exts or is_hidden(name, exts):
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while we looked
            if stat.S_ISREG(st.st_mode):
                yield entry.path, FileIdentity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _entries(folder: str | os.PathLike[str]) -> list[os.DirEntry[str]]:
    """The folder's entries; none (with a warning unless it simply is not there) if unreadable."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("labels: cannot read folder %s: %s", os.fspath(folder), exc.strerror or exc)
        return []


def _warn_once(key: str, message: str | None = None) -> None:
    """Log ``message`` (default: the bad-folder-name warning for ``key``) once per process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    if message is not None:
        log.warning("%s", message)
        return
    log.warning("labels: skipping folder %r: its name is not a usable genre name (it must be one "
                "path component without control characters, leading dots or dashes, or trailing "
                "dots or spaces); rename it to make its files labels", key)


# --- counting ---------------------------------------------------------------------------------


def genre_counts(labels: Sequence[Label]) -> dict[str, int]:
    """Labels per genre, genres sorted."""
    counts = Counter(label.genre for label in labels)
    return {genre: counts[genre] for genre in sorted(counts)}


def trainable_genres(
    labels: Sequence[Label], known: Sequence[str], min_per_genre: int
) -> tuple[list[str], dict[str, int]]:
    """The genres of the next model, and the new genres still waiting for examples.

    ``known``: the genres the current model's network has an output for (a round-3 model's
    prior-only genres, given by AudioSet alone, are new to it). Every one of those stays (its
    rehearsal data carries it even with no labels); any other genre becomes a class once it has
    ``min_per_genre`` labels (``retrain.min_per_genre``); below that it waits, reported with its
    count. Returns ``(sorted genres of the next model's network, {waiting genre: label count})``.
    """
    if isinstance(min_per_genre, bool) or not isinstance(min_per_genre, int) or min_per_genre < 1:
        raise ValueError(f"retrain.min_per_genre must be a whole number >= 1, not {min_per_genre!r}")
    counts = genre_counts(labels)
    known_set = set(known)
    new = {g: n for g, n in counts.items() if g not in known_set}
    ready = {g for g, n in new.items() if n >= min_per_genre}
    waiting = {g: n for g, n in new.items() if g not in ready}
    return sorted(known_set | ready), waiting


def new_labels(
    labels: Sequence[Label], used_hashes: Collection[str], hasher: Callable[[Path], str] = content_hash
) -> list[Label]:
    """The labels whose content the last training did not use (``used_hashes``: content hashes
    of its training files). A file that vanished since the scan is dropped. Pass a
    :class:`HashCache` as ``hasher`` when calling this at every rescan."""
    out: list[Label] = []
    for label in labels:
        try:
            digest = hasher(label.path)
        except OSError as exc:
            log.debug("labels: %s is gone or unreadable (%s); not counted", label.path, exc)
            continue
        if digest not in used_hashes:
            out.append(label)
    return out
