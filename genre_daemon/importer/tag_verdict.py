"""What ``genre-daemon tag`` writes into a loose file or an album's tracks (pure: predictions and
the files' own genres in, a :class:`Verdict` out), shared by the run and its dry run so the dry
run prints what the run does.

A loose file gets its top genre when its score reaches ``min_confidence``; below, it is left
untagged. An album gets one genre, the daemon's album verdict
(:func:`genre_daemon.filing.albums.decide`: the highest mean score over its tracks, untagged as a
whole when that is below ``min_confidence``); tracks judged by an earlier run count with the
scores recorded then. With ``tag_mode: fill`` (and ``append``, until tags carry several values) a
file that has a genre of its own keeps it. The name written is the user's (``genre_names``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from genre_daemon.config import Settings
from genre_daemon.config.names import shown_name
from genre_daemon.filing.albums import decide
from genre_daemon.filing.journal.in_place import KEPT, UNTAGGED

__all__ = ["Verdict", "for_album", "for_file", "keeps_own", "shown_name"]


@dataclass(frozen=True)
class Verdict:
    """One loose file's or one album's verdict: the model genre to write (None: none), the name
    written, how sure, why; the files that get it (``write``) and those left as they are, each
    with its reason (``left``: it starts with :data:`UNTAGGED` or :data:`KEPT`)."""

    genre: str | None
    name: str | None
    confidence: float
    scores: Mapping[str, float]
    why: str
    write: tuple[Path, ...] = ()
    left: Mapping[Path, str] = field(default_factory=dict)


def keeps_own(settings: Settings, theirs: str | None) -> str | None:
    """Why a file whose genre tag says ``theirs`` keeps it as it is (``tag_mode: fill``), or
    None when ours is written (``append`` adds ours after theirs: the writer keeps them)."""
    if theirs and settings.tag_mode == "fill":
        return f"{KEPT}{theirs} (tag_mode: {settings.tag_mode})"
    return None


def for_file(settings: Settings, path: Path, genre: str, confidence: float, scores: Mapping[str, float],
             theirs: str | None) -> Verdict:
    """A loose file classified as ``genre`` at ``confidence`` (``theirs``: its genre tag now)."""
    if confidence < settings.min_confidence:
        why = (f"{UNTAGGED}confidence {confidence:.2f} below min_confidence {settings.min_confidence:.2f} "
               f"({_top(scores)})")
        return Verdict(None, None, confidence, scores, why, left={path: why})
    name = shown_name(settings, genre)
    if (kept := keeps_own(settings, theirs)) is not None:
        return Verdict(genre, name, confidence, scores, kept, left={path: kept})
    return Verdict(genre, name, confidence, scores, f"{genre} {confidence:.2f}", write=(path,))


def for_album(settings: Settings, tracks: Sequence[tuple[Path, Mapping[str, float]]],
              before: Sequence[Mapping[str, float]], theirs: Mapping[Path, str | None]) -> Verdict:
    """An album's one genre from its classified ``tracks`` (path, scores) and the recorded scores
    of its tracks judged ``before``; ``theirs``: each classified track's genre tag now."""
    v = decide([*(s for _, s in tracks), *before], settings.min_confidence)
    if v.to_review or v.genre is None:
        why = f"{UNTAGGED}{v.why}"
        return Verdict(None, None, v.confidence, v.scores, why, left={p: why for p, _ in tracks})
    left = {p: kept for p, _ in tracks if (kept := keeps_own(settings, theirs.get(p))) is not None}
    write = tuple(p for p, _ in tracks if p not in left)
    return Verdict(v.genre, shown_name(settings, v.genre), v.confidence, v.scores, v.why, write, left)


def _top(scores: Mapping[str, float], n: int = 3) -> str:
    return ", ".join(f"{g} {p:.2f}" for g, p in sorted(scores.items(), key=lambda kv: -kv[1])[:n])
