"""Keeping media servers out of the review and quarantine folders.

The default ``review_dir`` is ``<library>/_review``: a media server pointed at the library would
index the songs the daemon was not sure of (and any quarantine folder put inside the library)
as music. Each server honours a marker file in a folder, and the daemon writes all of them into
review and quarantine when those lie inside the library (:func:`marked_folders`), never into a
genre folder and never over a marker the user wrote. What each marker means, by its server's own
documentation (also in ``docs/media-servers.md``):

* ``.ignore`` -- Jellyfin (and Emby, whose rule Jellyfin inherited): an empty ``.ignore`` in a
  folder leaves that folder, its files and its sub-folders out of the library. Since Jellyfin
  10.11 a ``.ignore`` with content is read as ``.gitignore`` patterns instead, so ours is empty.
  https://jellyfin.org/docs/general/server/media/excluding-directory
* ``.ndignore`` -- Navidrome: an empty ``.ndignore`` leaves its folder and the sub-folders out
  (with content, ``.gitignore`` patterns again); ours is empty.
  https://www.navidrome.org/docs/usage/ndignore
* ``.plexignore`` -- Plex: a text file of patterns to leave out, one a line (``#`` starts a
  comment, blank lines are skipped), relative to the folder it is in, ``*`` the wildcard.
  https://plexopedia.com/plex-media-server/general/ignore-file-folder
  Ours holds ``*``, ``*/*``, ``*/*/*`` and ``*/*/*/*``: whether a ``*`` may cross a ``/`` or
  not, every file of the folder and of its sub-folders (an album in review, its disc folders)
  is matched.

The names begin with one dot, so the inbox's walk, ``import``, the label scan and undo already
leave them alone (:func:`genre_daemon.filing.hidden.is_hidden`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from genre_daemon.filing.fsutil import CLOEXEC, fsync_dir, inside

__all__ = ["MARKERS", "PLEXIGNORE", "mark_ignored", "marked_folders"]

log = logging.getLogger(__name__)

PLEXIGNORE = (
    b"# Written by genre-daemon: songs here wait for your decision (review) or could not be\n"
    b"# filed (quarantine); they are not part of the music library yet.\n"
    b"# Plex: one pattern a line, relative to this folder: every file here and below.\n"
    b"*\n*/*\n*/*/*\n*/*/*/*\n"
)

# (file name, content, the server that reads it)
MARKERS: tuple[tuple[str, bytes, str], ...] = (
    (".ignore", b"", "Jellyfin, Emby"),
    (".ndignore", b"", "Navidrome"),
    (".plexignore", PLEXIGNORE, "Plex"),
)

# A marker must be readable by the media server, which runs as another user: 0644 whatever the umask.
MARKER_MODE = 0o644


def marked_folders(library: Path, review_dir: Path, quarantine_dir: Path) -> list[Path]:
    """The folders that get the markers: review and quarantine, each only when it lies inside
    the library (elsewhere no media server pointed at the library sees it). Pure."""
    out: list[Path] = []
    for folder in (review_dir, quarantine_dir):
        if inside(folder, library) and folder not in out:
            out.append(folder)
    return out


def mark_ignored(folder: Path) -> list[Path]:
    """Write each marker that ``folder`` lacks (0644); returns those written. A name already
    there -- the user's own marker, whatever it holds, or a link -- is left exactly as it is.
    A marker that cannot be written is said in one line (the daemon works without it)."""
    written: list[Path] = []
    for name, content, server in MARKERS:
        path = folder / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | CLOEXEC, MARKER_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            log.warning("%s: not written (%s): %s may index this folder as music", path, exc.strerror or exc, server)
            continue
        try:
            os.fchmod(fd, MARKER_MODE)
            if content:
                os.write(fd, content)
            os.fsync(fd)
        except OSError as exc:
            log.warning("%s: %s", path, exc.strerror or exc)
        finally:
            os.close(fd)
        written.append(path)
    if written:
        fsync_dir(folder)
        log.info("%s: wrote %s so that media servers do not index it as music", folder,
                 ", ".join(p.name for p in written))
    return written
