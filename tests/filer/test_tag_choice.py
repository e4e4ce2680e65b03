"""Which genres go into a placed file's tag (``tag_genres``, ``min_confidence``), pure."""

from __future__ import annotations

from pathlib import Path

from genre_daemon.config import Settings
from genre_daemon.filer.tag_choice import chosen, for_placement, for_user

SCORES = {"jazz": 0.45, "blues": 0.41, "rock": 0.08, "pop": 0.06}


def test_the_top_genre_then_others_past_min_confidence_best_first_up_to_n():
    assert chosen("jazz", SCORES, min_confidence=0.4, most=1) == ("jazz",)
    assert chosen("jazz", SCORES, min_confidence=0.4, most=3) == ("jazz", "blues")  # rock is below 0.4
    assert chosen("jazz", SCORES, min_confidence=0.05, most=3) == ("jazz", "blues", "rock")
    assert chosen("jazz", SCORES, min_confidence=0.05, most=10) == ("jazz", "blues", "rock", "pop")


def test_the_top_genre_comes_first_even_below_the_threshold_and_none_gives_nothing():
    """The user's or the album's genre is written whatever its own score (it was placed there)."""
    assert chosen("pop", SCORES, min_confidence=0.4, most=3) == ("pop", "jazz", "blues")
    assert chosen("metal", {}, min_confidence=0.4, most=3) == ("metal",)
    assert chosen(None, SCORES, min_confidence=0.0, most=3) == ()


def test_ties_by_name_and_non_numbers_ignored():
    scores = {"b": 0.3, "a": 0.3, "c": float("nan"), "top": 0.4}
    assert chosen("top", scores, min_confidence=0.1, most=5) == ("top", "a", "b")


def test_names_map_each_genre_and_a_merge_is_written_once():
    names = {"disco": "Pop", "pop": "Pop", "jazz": "Jazz"}.get
    scores = {"disco": 0.5, "pop": 0.3, "jazz": 0.2}
    assert chosen("disco", scores, min_confidence=0.1, most=2,
                  names=lambda g: names(g) or g) == ("Pop", "Jazz")  # disco and pop are one name


def test_settings_give_the_threshold_and_the_count_and_the_page_writes_the_users_one_genre():
    s = Settings(inbox=Path("/i"), library=Path("/l"), review_dir=Path("/r"), quarantine_dir=Path("/q"),
                 state_dir=Path("/s"), min_confidence=0.4, tag_genres=2)
    assert for_placement(s, "jazz", SCORES) == ("jazz", "blues")
    assert for_user("blues") == ("blues",)
    assert for_user("blues", names=str.title) == ("Blues",)
