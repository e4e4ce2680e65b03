"""The user's own filing: a song, or a whole album folder, put where the one placement decision
says for the genre the user chose (the review page now; a command line could call it too).

A song is one :func:`genre_daemon.filing.mover.move` to the path
:func:`genre_daemon.filer.decision.for_file` gives; an album folder is one
:func:`genre_daemon.filing.album_mover.move_album` to the folder
:func:`~genre_daemon.filer.decision.for_album` gives: whole, a clash numbered `` (2)``, never a
merge. Both go through the decision with ``by_user=True``, so a click never goes to review and
never replaces a file, whatever ``on_conflict`` says. The ``path_template`` is filled from the
files' own tags as they are now (the user may have fixed them since the daemon read them).

With ``write_tags`` every filed track gets the genre in its genre tag, the way the daemon writes
it (:func:`genre_daemon.tags.write_genre`: a copy, renamed over the file): the user's one genre
(:func:`genre_daemon.filer.tag_choice.for_user`), meeting the file's own genre as ``tag_mode`` says. ``keep_tag`` is handed
the tag a write replaces just before the tagged copy takes the file's place, as
:mod:`genre_daemon.filing.tagging` records it for the daemon, so a caller that keeps it there
can put the tag back even after a kill right after the write. A file that cannot be tagged stays
filed; the result says which and why.

Nothing here reads or writes the journal: the caller records what was done (the page, in its
``web.placed.<id>`` notes and the files' rows). ``expect`` is told every path created in the
library just before it is made (the daemon's library watch ignores announced paths); callers
acting for the user may leave it a no-op, since the user's moves are exactly what the watch is for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genre_daemon.config import Settings
from genre_daemon.config.names import shown_name
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filer import decision, tag_choice
from genre_daemon.filing import album_mover, mover
from genre_daemon.filing.hidden import is_hidden
from genre_daemon.filing.journal import FileIdentity
from genre_daemon.tags import GenreSnapshot, TagWriteError, tags_dict, write_genre

__all__ = ["EarlierTag", "Expect", "Filed", "FiledFile", "KeepTag", "file_album", "file_song", "tidy"]

Expect = Callable[[Path], None]
KeepTag = Callable[[Path, Path, GenreSnapshot], None]  # (where it was, where it is, the tag replaced)
EarlierTag = Callable[[Path], "GenreSnapshot | None"]  # where it was -> the daemon's earlier write of its tag


def _nothing(path: Path) -> None:
    pass


def _no_earlier(path: Path) -> GenreSnapshot | None:
    return None


@dataclass(frozen=True)
class FiledFile:
    """One file the user's filing moved: from ``source`` to ``path``, its ``identity`` there now
    (after its tag write; None if it could not be looked at), whether it is a ``track`` (tagged
    with ``write_tags``; an album's cover or cue sheet is not), the genre tag a write replaced
    (``tag``; None when nothing was rewritten) and why its tag could not be written
    (``tag_error``; the file stays filed)."""

    source: Path
    path: Path
    identity: FileIdentity | None
    track: bool = True
    tag: GenreSnapshot | None = None
    tag_error: str | None = None


@dataclass(frozen=True)
class Filed:
    """What the user's filing did: a song or an album (``kind``) filed as ``genre`` at
    ``destination`` (the file, or the album's folder), where the decision wanted it at ``wanted``
    (a clash numbered it), with every file it moved."""

    kind: Literal["file", "album"]
    genre: str
    wanted: Path
    destination: Path
    files: tuple[FiledFile, ...]
    tags_written: bool  # write_tags was on for this placement

    @property
    def renamed(self) -> bool:
        return self.destination.name != self.wanted.name

    @property
    def tracks(self) -> list[FiledFile]:
        return [f for f in self.files if f.track]

    @property
    def untagged(self) -> list[FiledFile]:
        """Tracks whose genre tag could not be written (they are filed all the same)."""
        return [f for f in self.files if f.tag_error is not None]

    def moved(self, source: Path) -> FiledFile | None:
        """The file that was at ``source``, if this filing moved it."""
        return next((f for f in self.files if f.source == source), None)


def file_song(settings: Settings, source: Path, genre: str, *, expect_source: mover.Signature | None = None,
              expect: Expect = _nothing, keep_tag: KeepTag | None = None,
              earlier_tag: EarlierTag = _no_earlier) -> Filed:
    """File the song ``source`` as ``genre`` where the decision puts it (``path_template``, the
    song's own tags), then write its genre tag (``write_tags``; ``earlier_tag``: the tag write of
    the daemon's that this filing corrects, if any, so ``fill``/``append`` drop the genre it wrote).

    ``expect_source``: the song's signature as the caller identified it; a file that no longer
    matches is not moved. Raises what :func:`mover.move` raises (FileNotFoundError,
    :class:`~genre_daemon.errors.SourceChangedError`, :class:`~genre_daemon.errors.MoveError`),
    with the song untouched."""
    _check_genre(genre)
    st = os.lstat(source)
    placement = decision.for_file(settings, source, genre, 1.0, tags_dict(source), by_user=True)
    expect(placement.path)
    result = mover.move(source, placement.path, placement.on_conflict, root=placement.root,
                        expect=expect_source if expect_source is not None else mover.signature(st),
                        folder_mode=settings.folder_mode)
    assert result.destination is not None  # "rename" never skips
    tagging = settings.write_tags and placement.tagged
    files = _tag_all([(source, result.destination, True)], genre, settings if tagging else None, expect, keep_tag,
                     earlier_tag)
    tidy(settings, source.parent)
    return Filed("file", genre, placement.path, result.destination, tuple(files), tagging)


def file_album(settings: Settings, folder: Path, genre: str, *, tracks: Collection[str] | None = None,
               expect: Expect = _nothing, keep_tag: KeepTag | None = None,
               earlier_tag: EarlierTag = _no_earlier) -> Filed:
    """File the album folder ``folder`` as ``genre``, whole, where the decision puts it
    (``path_template`` from the tags its tracks share; `` (2)`` on a clash, never a merge),
    then write every track's genre tag (``write_tags``; ``earlier_tag`` as for :func:`file_song`).

    ``tracks``: the tracks' paths relative to ``folder`` (the album's audio files as the caller
    knows them); None: every file of it whose extension is one of ``extensions`` and whose name
    is not hidden. Everything in the folder moves, tracks or not (a cover, a cue sheet). Raises
    FileNotFoundError when the folder is gone, :class:`~genre_daemon.errors.SourceChangedError`
    when it changes or a program writes to it, :class:`~genre_daemon.errors.MoveError`
    otherwise; the album is then whole where it was."""
    _check_genre(genre)
    expected = album_mover.snapshot(folder)
    rels = sorted(tracks) if tracks is not None else [rel for rel in expected.files if _audio(rel, settings)]
    placement = decision.for_album(settings, folder.name, genre, [tags_dict(folder / rel) for rel in rels],
                                   by_user=True)
    names = expected.library_names()

    def claimed(where: Path) -> None:
        for rel in expected.files:  # its files arrive under their names, then the library's
            expect(where / rel)
            expect(where / names.get(rel, rel))

    moved = album_mover.move_album(folder, placement.path, root=placement.root, expect=expected,
                                   on_claimed=claimed, names=names, folder_mode=settings.folder_mode)
    dest = moved.destination
    wanted = set(rels)
    pairs = [(folder / rel, album_mover.placed_path(dest, rel, names), rel in wanted) for rel in sorted(expected.files)]
    tagging = settings.write_tags and placement.tagged
    files = _tag_all(pairs, genre, settings if tagging else None, expect, keep_tag, earlier_tag)
    tidy(settings, folder.parent)
    return Filed("album", genre, placement.path, dest, tuple(files), tagging)


def tidy(settings: Settings, folder: Path) -> list[Path]:
    """Remove ``folder`` and its parents while a move left them empty, up to the library, review,
    quarantine or labelled folder holding them (never one of those, the inbox or the state
    folder, nor a folder with anything in it). Returns what was removed."""
    s = settings
    roots = [s.library, s.review_dir, s.quarantine_dir, s.inbox, s.state_dir, *s.retrain.labelled_dirs]
    holding = [r for r in roots if folder.is_relative_to(r)]
    if not holding:
        return []
    return album_mover.remove_emptied(folder, max(holding, key=lambda r: len(r.parts)))


def _tag_all(moved: list[tuple[Path, Path, bool]], genre: str, tagging: Settings | None, expect: Expect,
             keep_tag: KeepTag | None, earlier_tag: EarlierTag = _no_earlier) -> list[FiledFile]:
    """Each moved (source, path, is a track): its genre tag written when ``tagging`` (the settings
    then, for ``tag_mode``)."""
    out: list[FiledFile] = []
    for source, path, track in moved:
        tag: GenreSnapshot | None = None
        error: str | None = None
        if tagging is not None and track:
            expect(path)
            keep = (lambda snap, s=source, p=path: keep_tag(s, p, snap)) if keep_tag is not None else None
            try:
                snap = write_genre(path, tag_choice.for_user(genre, names=lambda g: shown_name(tagging, g)), mode=tagging.tag_mode, before_change=keep,
                                   earlier=earlier_tag(source))
                tag = snap if snap.changed else None  # None: it had this genre already (or fill left it)
            except TagWriteError as exc:
                error = exc.reason
            except OSError as exc:
                error = exc.strerror or str(exc)
            except GenreDaemonError as exc:  # keep_tag could not record it: the file was left as it was
                error = f"the tag it would replace could not be kept ({exc}), so it was not written"
        out.append(FiledFile(source, path, FileIdentity.of_or_none(path), track, tag, error))
    return out


def _check_genre(genre: str) -> None:
    if not genre.strip() or "\x00" in genre:
        raise ValueError(f"not a genre: {genre!r}")


def _audio(rel: str, settings: Settings) -> bool:
    name = rel.rpartition("/")[2]
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    return ext in {e.lower().lstrip(".") for e in settings.extensions} and not is_hidden(name, settings.extensions)
