"""Reading a genre tag as one of the model's genres: the alias table, the user's names, several values."""

from __future__ import annotations

import pytest

from genre_daemon.tags.genres import key, read_genre, split_values, tag_genres

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock", "electronic")


@pytest.mark.parametrize("tag, genre", [
    ("Hip Hop", "hiphop"), ("Hip-Hop", "hiphop"), ("hip hop", "hiphop"), ("HIPHOP", "hiphop"), ("Rap", "hiphop"),
    ("Hip Hop/Rap", "hiphop"), ("EDM", "electronic"), ("Electronica", "electronic"), ("Dance", "electronic"),
    ("Drum & Bass", "electronic"), ("Rock & Roll", "rock"), ("rock and roll", "rock"), ("Rock'n'Roll", "rock"),
    ("Classic Rock", "rock"), ("Heavy Metal", "metal"), ("heavy-metal", "metal"), ("Jazz", "jazz"),
    ("Klassik", "classical"), ("Reggae", "reggae"), (" Country & Western ", "country"),
])
def test_the_names_taggers_use_read_as_the_models_genres(tag: str, genre: str) -> None:
    assert read_genre(tag, GENRES) == genre


@pytest.mark.parametrize("tag", ["", None, "Soul", "Podcast", "Audiobook", "R&B", "RnB", "Other"])
def test_a_tag_that_names_none_of_the_models_genres_reads_as_none(tag: str | None) -> None:
    assert read_genre(tag, GENRES) is None  # no R&B genre in the shipped model: R&B is not guessed


def test_rnb_reads_as_a_learnt_genre_of_that_name_whatever_its_spelling() -> None:
    assert read_genre("RnB", (*GENRES, "R&B")) == "R&B"
    assert read_genre("Rhythm & Blues", (*GENRES, "rnb")) == "rnb"
    assert read_genre("Rap", ("Hip-Hop", "jazz")) == "Hip-Hop"  # a learnt "Hip-Hop" gets its group's names


def test_the_users_names_read_as_their_genres_and_win_over_aliases() -> None:
    names = {"hiphop": "Urban", "disco": "Pop", "pop": "Pop"}
    assert read_genre("urban", GENRES, names) == "hiphop"
    assert read_genre("Pop", GENRES, names) in ("disco", "pop")  # a merged name: one of its genres
    assert read_genre("Schlager", GENRES, {"pop": "Schlager"}) == "pop"


def test_several_values_are_read_in_order_each_once() -> None:
    assert tag_genres("Rock; Jazz; rock; Podcast", GENRES) == ["rock", "jazz"]
    assert tag_genres("Metal\x00Rock", GENRES) == ["metal", "rock"]
    assert tag_genres("Pop / Rock", GENRES) == ["pop", "rock"]
    assert split_values("Hip Hop/Rap") == ["Hip Hop/Rap"]


def test_keys_ignore_case_accents_spaces_and_punctuation_in_any_script() -> None:
    assert key("Hip-Hop") == key("hip hop") == key("HipHop") == "hiphop"
    assert key("Música Clásica") == "musicaclasica"
    assert key("Рок") == "рок"  # letters of other scripts are kept, not dropped
    assert key("R&B") == key("R and B")
