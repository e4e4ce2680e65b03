"""The evidence beside the sound (pure): the artist's lean, the file's own genre tag, an album's."""

from __future__ import annotations

import pytest

from genre_daemon.filer import evidence
from genre_daemon.filer.evidence import lean, lean_weight, weigh, weigh_album

SOUND = {"blues": 0.55, "jazz": 0.30, "rock": 0.10, "metal": 0.05}


def test_no_evidence_changes_nothing() -> None:
    w = weigh(SOUND)
    assert (w.genre, w.confidence, w.scores, w.review, w.vouched, w.changed) == ("blues", 0.55, SOUND, None, False,
                                                                               False)
    assert not weigh(SOUND, tag="Jazz").changed  # use_existing_genre off: the tag is not read


def test_the_lean_grows_with_the_songs_known_and_is_bounded() -> None:
    weights = [lean_weight(n) for n in range(0, 200)]
    assert weights[0] == 0.0 and weights == sorted(weights) and max(weights) < evidence.LEAN_MAX
    assert lean_weight(int(evidence.LEAN_HALF)) == pytest.approx(evidence.LEAN_MAX / 2)


def test_an_artist_known_for_jazz_pulls_an_unsure_song_to_jazz() -> None:
    w = weigh(SOUND, artist={"jazz": 6})
    assert w.genre == "jazz" and w.changed and "jazz 6" in w.note
    assert sum(w.scores.values()) == pytest.approx(1.0)


def test_a_song_that_sounds_clearly_enough_like_another_genre_is_not_pulled_over() -> None:
    """Bounded: a one-genre artist with n songs (weight w) moves a song only when the sound's lead
    over the artist's genre is below w / (1 - w)."""
    w = lean_weight(1000)
    bound = w / (1 - w)
    for lead, moved in ((bound * 1.05, False), (bound * 0.95, True)):
        jazz = (1 - lead) / 2
        sound = {"metal": jazz + lead, "jazz": jazz}
        assert (weigh(sound, artist={"jazz": 1000}).genre == "jazz") is moved, lead


def test_genres_the_model_does_not_have_do_not_count() -> None:
    scores, w = lean(SOUND, {"polka": 9})
    assert (scores, w) == (SOUND, 0.0)


def test_a_tag_the_sound_agrees_with_vouches_even_below_min_confidence() -> None:
    w = weigh({"blues": 0.3, "jazz": 0.28, "rock": 0.42}, tag="Blues", use_tag=True)
    assert (w.genre, w.vouched, w.review) == ("blues", True, None)
    assert "Blues" in w.note


def test_a_tag_the_sound_strongly_disagrees_with_goes_to_review_naming_both() -> None:
    w = weigh({"metal": 0.95, "classical": 0.01, "rock": 0.04}, tag="Classical", use_tag=True)
    assert w.review is not None and not w.vouched
    assert "classical" in w.review and "metal 0.95" in w.review and "'Classical'" in w.review


def test_strong_disagreement_is_the_tags_genre_below_tag_ratio_of_the_top_score() -> None:
    top = 0.8
    below = {"rock": top, "pop": top * evidence.TAG_RATIO * 0.9, "jazz": 1 - top - top * evidence.TAG_RATIO * 0.9}
    above = {"rock": top, "pop": top * evidence.TAG_RATIO * 1.1, "jazz": 1 - top - top * evidence.TAG_RATIO * 1.1}
    assert weigh(below, tag="Pop", use_tag=True).review is not None
    assert weigh(above, tag="Pop", use_tag=True).genre == "pop"


def test_a_tag_naming_several_genres_lets_the_sound_pick_among_them_and_unknown_tags_count_for_nothing() -> None:
    assert weigh(SOUND, tag="Rock; Jazz", use_tag=True).genre == "jazz"
    assert not weigh(SOUND, tag="Podcast", use_tag=True).changed
    assert weigh({"hiphop": 0.2, "pop": 0.7, "rock": 0.1}, tag="Rap", use_tag=True).genre == "hiphop"


def test_the_users_names_read_the_tag() -> None:
    w = weigh({"hiphop": 0.2, "pop": 0.7, "rock": 0.1}, tag="Urban", use_tag=True, names={"hiphop": "Urban"})
    assert w.genre == "hiphop"


def test_an_album_leans_by_its_tracks_artists_then_its_tags_are_checked_as_one() -> None:
    tracks = [{"blues": 0.5, "jazz": 0.4, "rock": 0.1}, {"blues": 0.45, "jazz": 0.45, "rock": 0.1}]
    plain, _ = weigh_album(tracks, [{}, {}], [], 0.4)
    assert plain.genre == "blues"
    leaned, _ = weigh_album(tracks, [{}, {}], [{"jazz": 4}, {"jazz": 4}], 0.4)
    assert leaned.genre == "jazz" and not leaned.to_review
    tagged, checked = weigh_album(tracks, [{"genre": "Jazz"}, {"genre": "Jazz"}], [], 0.4, use_tag=True)
    assert tagged.genre == "jazz" and checked is not None and checked.vouched
    clash, _ = weigh_album([{"metal": 0.97, "classical": 0.01, "rock": 0.02}] * 2,
                           [{"genre": "Classical"}, {}], [], 0.4, use_tag=True)
    assert clash.to_review and "classical" in clash.why and "metal" in clash.why
