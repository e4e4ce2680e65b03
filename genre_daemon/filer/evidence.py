"""What a file's own genre tag and its artist's songs already in the library add to the sound.

Pure: scores, tags and what the library knows about the artist in, adjusted scores and a reason
out; called before the one placement decision (:mod:`.decision`) by the daemon's filer
(``Filer.place``, ``AlbumFiler``) and by ``import --dry-run``, so the run and its plan agree.

**The artist's lean** (``use_artist_genre``): a song whose artist (or album artist) already has
songs in the library is pulled towards that artist's genres: its scores become
``(1 - w) * sound + w * artist``, where ``artist`` is the share of the artist's known songs in
each genre and ``w = LEAN_MAX * n / (n + LEAN_HALF)`` grows with the ``n`` songs known, never
above :data:`LEAN_MAX`. Bounded: the sound keeps more than ``1 - LEAN_MAX`` of its say; a song
moves to a one-genre artist's genre only when the sound's lead over that genre is below
``w / (1 - w)`` (0.67 with two songs known, 1.5 at most). The shipped model's scores are
confident (0.99 when wrong, on music it never heard), so a weight small enough to leave every
such song alone changes nothing at all: the measurement picked the larger weight.

**The file's own genre tag** (``use_existing_genre``): a tag that names one of the model's genres
(:mod:`genre_daemon.tags.genres`: the user's names, the model's, the usual aliases) is believed
unless the sound strongly disagrees: when the tag's genre scores below :data:`TAG_RATIO` times the
top genre's score, the file goes to review with both named; otherwise it is filed under the
tag's genre, even below ``min_confidence`` (the tag vouches for it).

The constants were chosen by measurement (``benchmarks/bench_evidence.py``; the figures are in
``docs/learning.md``, "Evidence beside the sound").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from genre_daemon.config import Settings
from genre_daemon.filing.albums import AlbumVerdict, decide
from genre_daemon.tags.genres import tag_genres

__all__ = ["LEAN_HALF", "LEAN_MAX", "TAG_RATIO", "Weighed", "for_album", "for_song", "lean", "lean_weight",
           "weigh", "weigh_album"]

LEAN_MAX = 0.6  # the most the artist's genres weigh against the sound (measured)
LEAN_HALF = 1.0  # known songs at which the lean is half its most (measured)
TAG_RATIO = 0.02  # the tag's genre below this fraction of the top score: the sound strongly disagrees (measured)


@dataclass(frozen=True)
class Weighed:
    """The outcome for one song (or an album): its ``genre`` and ``confidence`` after the
    evidence, the adjusted ``scores``, ``review`` (why it goes to review although the sound may be
    sure: the tag and the sound disagree) or None, ``vouched`` (its own tag agrees: filed even
    below ``min_confidence``), and ``notes`` saying what the evidence did, for the log."""

    genre: str | None
    confidence: float
    scores: dict[str, float]
    review: str | None = None
    vouched: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """Whether the evidence did anything (else the sound's own verdict stands as it is)."""
        return bool(self.notes) or self.review is not None or self.vouched

    @property
    def note(self) -> str:
        """The notes as one phrase ("" when the evidence changed nothing)."""
        return "; ".join(self.notes)


def _top(scores: Mapping[str, float]) -> str | None:
    return max(scores, key=lambda g: (scores[g], g)) if scores else None


def lean_weight(known: int, *, most: float = LEAN_MAX, half: float = LEAN_HALF) -> float:
    """How much an artist with ``known`` songs in the library weighs: 0 with none, ``most / 2`` at
    ``half`` songs, approaching ``most``."""
    return most * known / (known + half) if known > 0 else 0.0


def lean(scores: Mapping[str, float], artist: Mapping[str, int], *, most: float = LEAN_MAX,
         half: float = LEAN_HALF) -> tuple[dict[str, float], float]:
    """``scores`` mixed with the artist's genres (``artist``: songs known per genre; genres the
    model does not have are not counted). Returns the new scores and the weight used."""
    counts = {g: n for g, n in artist.items() if g in scores and n > 0}
    total = sum(counts.values())
    w = lean_weight(total, most=most, half=half)
    if w == 0.0:
        return dict(scores), 0.0
    return {g: (1.0 - w) * float(p) + w * counts.get(g, 0) / total for g, p in scores.items()}, w


def _artist_note(artist: Mapping[str, int], w: float) -> str:
    known = sorted(((n, g) for g, n in artist.items() if n > 0), reverse=True)
    spread = ", ".join(f"{g} {n}" for n, g in known[:3])
    return f"its artist's songs in the library ({spread}) weigh {w:.2f}"


def _check_tag(scores: dict[str, float], tag: str | None, names: Mapping[str, str] | None,
               ratio: float) -> tuple[str | None, str | None, str | None]:
    """(genre the tag vouches for, why it goes to review, a note) for a song with ``scores``."""
    named = tag_genres(tag, scores.keys(), names)
    top = _top(scores)
    if not named or top is None:
        return None, None, None
    best = max(named, key=lambda g: (scores[g], g))  # a tag naming several: the sound picks among them
    if best == top:
        return best, None, f"its genre tag {tag!r} agrees"
    if scores[best] >= ratio * scores[top]:
        return best, None, f"its genre tag {tag!r} says {best} (the sound: {top} {scores[top]:.2f}, " \
                           f"{best} {scores[best]:.2f})"
    return None, (f"its genre tag says {best} ({tag!r}) but the sound says {top} {scores[top]:.2f} "
                  f"({best} only {scores[best]:.2f})"), None


def weigh(scores: Mapping[str, float], *, tag: str | None = None, artist: Mapping[str, int] | None = None,
          names: Mapping[str, str] | None = None, use_tag: bool = False, ratio: float = TAG_RATIO,
          most: float = LEAN_MAX, half: float = LEAN_HALF) -> Weighed:
    """One song: the sound's ``scores``, its genre ``tag`` (read only with ``use_tag``), its
    artist's known songs per genre ``artist`` (empty: unknown, or ``use_artist_genre`` off), and
    ``names`` (``genre_names``: the model's genre -> the user's name) to read the tag by."""
    adjusted, w = lean(scores, artist or {}, most=most, half=half)
    notes = [_artist_note(artist or {}, w)] if w > 0 else []
    if use_tag:
        vouched, review, note = _check_tag(adjusted, tag, names, ratio)
        if review is not None:
            top = _top(adjusted)
            return Weighed(top, adjusted[top] if top else 0.0, adjusted, review, False, tuple(notes))
        if vouched is not None:
            return Weighed(vouched, adjusted[vouched], adjusted, None, True, (*notes, note or ""))
    top = _top(adjusted)
    return Weighed(top, adjusted[top] if top is not None else 0.0, adjusted, None, False, tuple(notes))


def weigh_album(track_scores: Sequence[Mapping[str, float]], track_tags: Sequence[Mapping[str, object]],
                artists: Sequence[Mapping[str, int]], min_confidence: float, *,
                names: Mapping[str, str] | None = None, use_tag: bool = False,
                ratio: float = TAG_RATIO) -> tuple[AlbumVerdict, Weighed | None]:
    """An album: each track leaned by its artist, the album's genre decided on the leaned scores
    (:func:`genre_daemon.filing.albums.decide`), then the tracks' genre tags checked against it as
    one tag (the genre most of its tagged tracks name). Returns the verdict to file by (its
    ``to_review``/``why`` set by the tag check where it decides) and the tag check's outcome
    (None when no tag counted)."""
    leaned = [lean(s, a)[0] for s, a in zip(track_scores, artists)] if artists else [dict(s) for s in track_scores]
    verdict = decide(leaned, min_confidence)
    if not use_tag or not verdict.scores:
        return verdict, None
    votes: dict[str, int] = {}
    for tags in track_tags:
        raw = tags.get("genre")
        named = tag_genres(raw if isinstance(raw, str) else None, verdict.scores.keys(), names)
        if named:
            votes[named[0]] = votes.get(named[0], 0) + 1
    if not votes:
        return verdict, None
    tag = max(votes, key=lambda g: (votes[g], verdict.scores[g]))
    checked = weigh(verdict.scores, tag=tag, use_tag=True, ratio=ratio)
    if checked.review is not None:
        why = f"{checked.review}, over {len(leaned)} tracks"
        return AlbumVerdict(verdict.genre, verdict.confidence, verdict.scores, verdict.agreement, True, why), checked
    genre = checked.genre
    assert genre is not None
    why = f"{genre} {verdict.scores[genre]:.2f} mean over {len(leaned)} tracks; {checked.note}"
    return AlbumVerdict(genre, verdict.scores[genre], verdict.scores, verdict.agreement, False, why), checked


def for_song(settings: Settings, scores: Mapping[str, float], tags: Mapping[str, object],
             artist: Mapping[str, int]) -> Weighed:
    """:func:`weigh` as the settings say: the tag read with ``use_existing_genre`` through
    ``genre_names``; ``artist`` (its songs per genre) counted with ``use_artist_genre``."""
    raw = tags.get("genre")
    return weigh(scores, tag=raw if isinstance(raw, str) else None,
                 artist=artist if settings.use_artist_genre else None, names=dict(settings.genre_names),
                 use_tag=settings.use_existing_genre)


def for_album(settings: Settings, track_scores: Sequence[Mapping[str, float]],
              track_tags: Sequence[Mapping[str, object]], artists: Sequence[Mapping[str, int]]) -> AlbumVerdict:
    """:func:`weigh_album` as the settings say (see :func:`for_song`): the album's verdict."""
    leaning = list(artists) if settings.use_artist_genre else []
    return weigh_album(track_scores, track_tags, leaning, settings.min_confidence, names=dict(settings.genre_names),
                       use_tag=settings.use_existing_genre)[0]
