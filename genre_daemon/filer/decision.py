"""Where a file or an album goes: the one decision every way of filing asks.

The daemon, ``import``, ``import --dry-run``, the review page (filing a song or an album,
correcting a genre: :mod:`.by_hand`) and the review folder's re-check after a model switch all
call :func:`for_file` or :func:`for_album`, so a
review threshold, the ``path_template``, the duplicates policy, quarantine and name clashes are
weighed in one place. Pure: values in, a :class:`Placement` out; nothing is read from the disk
(a name clash is the mover's, which numbers the name as ``on_conflict`` says).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from genre_daemon.config import Settings
from genre_daemon.config.names import shown_name
from genre_daemon.filing.destination import destination, quarantine_destination
from genre_daemon.filing.journal import State
from genre_daemon.names import safe_component
from genre_daemon.path_template import Template, album_values, file_values

__all__ = ["Outcome", "Placement", "for_album", "for_file", "for_quarantine"]

Outcome = Literal["moved", "review", "quarantined", "skip"]
_STATES: dict[str, State] = {"moved": State.MOVED, "review": State.REVIEW, "quarantined": State.QUARANTINED}


@dataclass(frozen=True)
class Placement:
    """What becomes of a file (``path`` is its wanted path) or an album (``path`` is its wanted
    folder): ``outcome``, the folder it must stay inside (``root``), how a clash there is met
    (``on_conflict``), and why it goes to review, quarantine or nowhere (``reason``)."""

    outcome: Outcome
    path: Path
    root: Path
    on_conflict: str
    reason: str | None = None
    duplicate: str | None = None  # an earlier copy in the library (duplicates: keep files it anyway)

    @property
    def state(self) -> State:
        """The journal state of the placed file (``skip`` has none: the file stays)."""
        if self.outcome == "skip":
            raise ValueError("a skipped file has no placed state")
        return _STATES[self.outcome]

    @property
    def tagged(self) -> bool:
        """Whether the placed file's genre tag is written (``write_tags``, genre folders only)."""
        return self.outcome == "moved"


def for_file(settings: Settings, source: Path, genre: str | None, confidence: float,
             tags: Mapping[str, object] | None = None, *, duplicate: str | None = None,
             by_user: bool = False, review: str | None = None, vouched: bool = False) -> Placement:
    """Where the file ``source`` goes with ``genre`` at ``confidence``.

    ``duplicate``: a placed file with the same content (the duplicates policy decides: skip it,
    quarantine it, or file it anyway). ``by_user``: the genre is the user's (the review page, a
    correction): never review, and a clash is always renamed, whatever ``on_conflict`` says (a click
    never replaces a file). ``review``: the evidence beside the sound disagrees with it (the file's
    own genre tag, :mod:`.evidence`): review with this reason. ``vouched``: the file's own genre tag
    agrees: filed under ``genre`` even below ``min_confidence``.
    """
    s = settings
    if duplicate is not None and s.duplicates == "skip":
        return Placement("skip", source, source.parent, "skip", f"duplicate of {duplicate}; left in the inbox "
                                                                 "(duplicates: skip)", duplicate)
    if duplicate is not None and s.duplicates == "quarantine":
        return for_quarantine(settings, source, f"duplicate of {duplicate} (duplicates: quarantine)")
    sure = genre is not None and (by_user or vouched or (not math.isnan(confidence) and confidence >= s.min_confidence))
    if review is not None and not by_user:
        path = destination(source, None, confidence, library=s.library, review_dir=s.review_dir,
                           min_confidence=s.min_confidence)
        return Placement("review", path, s.review_dir, s.on_conflict, review, duplicate)
    if not sure or genre is None:
        path = destination(source, genre, confidence, library=s.library, review_dir=s.review_dir,
                           min_confidence=s.min_confidence)
        why = "no genre" if genre is None else f"{shown_name(s, genre)} {confidence:.2f} < {s.min_confidence:.2f}"
        return Placement("review", path, s.review_dir, s.on_conflict, why, duplicate)
    rel = Template.parse(s.path_template).file_path(file_values(source, _folder(s, genre), tags or {}),
                                                    source.suffix)
    return Placement("moved", s.library / rel, s.library, "rename" if by_user else s.on_conflict, None, duplicate)


def _folder(settings: Settings, genre: str) -> str:
    """The genre's folder: the user's name for it (``genre_names``), made one safe name."""
    return safe_component(shown_name(settings, genre))


def for_quarantine(settings: Settings, source: Path, reason: str) -> Placement:
    """A file that cannot be filed (undecodable, poison, a duplicate the policy quarantines)."""
    return Placement("quarantined", quarantine_destination(source, settings.quarantine_dir),
                     settings.quarantine_dir, "rename", reason)


def for_album(settings: Settings, folder_name: str, genre: str | None, track_tags: Sequence[Mapping[str, object]],
              *, to_review: bool = False, why: str | None = None, tracks: int | None = None,
              duplicates: Sequence[str] = (), by_user: bool = False) -> Placement:
    """Where an album folder named ``folder_name`` goes: its genre (the verdict's, or the user's
    with ``by_user``), ``to_review`` with ``why`` when its tracks could not agree. ``duplicates``:
    earlier copies of its ``tracks`` tracks; only an album that is all duplicates meets the policy
    (skip: left in the inbox; quarantine); one with new tracks is filed whole. A clash of folder
    names is always numbered (`` (2)``): albums are never merged or replaced."""
    s = settings
    name = safe_component(folder_name, max_bytes=255, normalize=False, fallback="album")
    n = len(track_tags) if tracks is None else tracks
    if duplicates and len(duplicates) >= n and s.duplicates != "keep" and not by_user:
        if s.duplicates == "skip":
            return Placement("skip", Path(folder_name), Path(folder_name), "skip",
                             f"skipped, all {n} tracks are already in the library (duplicates: skip)", duplicates[0])
        return Placement("quarantined", s.quarantine_dir / name, s.quarantine_dir, "rename",
                         f"every track is already in the library (e.g. {duplicates[0]}; duplicates: quarantine)",
                         duplicates[0])
    first = duplicates[0] if duplicates else None
    if genre is None or (to_review and not by_user):
        return Placement("review", s.review_dir / name, s.review_dir, "rename", why or "no genre", first)
    rel = Template.parse(s.path_template).album_path(
        album_values(folder_name, _folder(s, genre), list(track_tags)))
    return Placement("moved", s.library / rel, s.library, "rename", None, first)
