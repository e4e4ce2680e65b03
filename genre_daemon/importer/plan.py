"""What ``import DIR`` will sort: every audio file under DIR, grouped into albums and loose files
as the daemon groups an inbox, and the checks that DIR is a folder it may empty."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from genre_daemon.config import Settings
from genre_daemon.daemon.settling import is_candidate, is_hidden
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing.albums import Grouping, group
from genre_daemon.filing.journal import Journal


class ImportRefused(GenreDaemonError):
    """``import`` cannot run on this folder; the message says why and what to do."""


@dataclass(frozen=True)
class Plan:
    """The audio files under the folder being imported, as albums and loose files."""

    source: Path
    grouping: Grouping

    @property
    def tracks(self) -> int:
        return len(self.grouping.loose) + sum(len(t) for t in self.grouping.albums.values())


def check_source(source: Path, settings: Settings) -> Path:
    """``source`` as an absolute real folder that import may sort: not the library, the inbox,
    review, quarantine or state folder, not inside one, and holding none of them (their files
    would be taken for new music; the inbox's are the running daemon's to sort, and two
    sorters of one file race)."""
    if not source.is_dir():
        raise ImportRefused(f"{source}: not a folder")
    real = Path(os.path.realpath(source))
    for key in ("library", "inbox", "review_dir", "quarantine_dir", "state_dir"):
        other = Path(os.path.realpath(getattr(settings, key)))
        fix = "the daemon sorts its inbox itself" if key == "inbox" else "import a folder of new music"
        if real == other or real.is_relative_to(other):
            raise ImportRefused(f"{source}: it is {key} ({other}) or inside it; {fix}")
        if other.is_relative_to(real) and key != "quarantine_dir":
            raise ImportRefused(f"{source}: it holds {key} ({other}); import a folder beside it, not around it")
    return Path(os.path.abspath(source))


def plan(source: Path, settings: Settings, judged_loose: Iterable[Path] = ()) -> Plan:
    """Every audio file the daemon would take under ``source`` (hidden files and folders, the
    quarantine folder and links excluded), grouped as ``settings.albums`` says. ``judged_loose``:
    files a stopped import already judged loose; they stay loose (see :func:`group`), so the
    songs left beside a container's filed albums never become an album of the container."""
    excluded = [d for d in (settings.review_dir, settings.quarantine_dir) if d.is_relative_to(source)]
    found: list[Path] = []
    for folder, dirs, files in os.walk(source, followlinks=False):
        base = Path(folder)
        dirs[:] = sorted(d for d in dirs if not is_hidden(d) and base / d not in excluded)
        for name in sorted(files):
            p = base / name
            if is_candidate(p, source, settings.extensions, excluded) and p.is_file() and not p.is_symlink():
                found.append(p)
    if settings.albums == "together":
        return Plan(source, group(source, found, judged_loose))
    return Plan(source, Grouping({}, tuple(found)))


def loose_before(journal: Journal, source: Path) -> list[Path]:
    """The files under ``source`` that an earlier run (stopped since) judged loose: queued on
    their own, in no album (``FileRow.judged_loose``, the daemon's mark too)."""
    return [Path(r.path) for r in journal.recoverable(under=source) if r.judged_loose]
