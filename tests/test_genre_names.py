"""genre_daemon.config.names: the user's names for the model's genres, both ways (pure), and the
one placement decision filing by them."""

from __future__ import annotations

from pathlib import Path

import pytest

from genre_daemon.config import Settings
from genre_daemon.config.names import GenreNames, fold, label_genre, model_genres_of, resolve, shown_name, shown_names
from genre_daemon.filer import decision

KNOWN = ["blues", "classical", "disco", "hiphop", "jazz", "pop", "rock"]
NAMES = GenreNames((("classical", "Classical"), ("disco", "Pop"), ("hiphop", "Hip-Hop"), ("pop", "Pop")))


def settings(tmp_path: Path, **names: str) -> Settings:
    return Settings(inbox=tmp_path / "inbox", library=tmp_path / "library", review_dir=tmp_path / "review",
                    quarantine_dir=tmp_path / "q", state_dir=tmp_path / "state",
                    genre_names=tuple(sorted(names.items())))


def test_a_mapped_genre_shows_by_the_users_name_and_an_unmapped_one_by_its_own() -> None:
    assert shown_name(NAMES, "hiphop") == "Hip-Hop"
    assert shown_name(NAMES, "jazz") == "jazz"
    assert shown_names(NAMES, KNOWN) == ["blues", "Classical", "Pop", "Hip-Hop", "jazz", "rock"]  # a merge once


@pytest.mark.parametrize("folder, genres, how", [
    ("Hip-Hop", ["hiphop"], "exact"),  # the mapped name
    ("hip-hop", ["hiphop"], "case"),  # the mapped name but for case
    ("hiphop", ["hiphop"], "case"),  # the genre's own name: a folder from before the rename
    ("Hip Hop", ["hiphop"], "alike"),
    ("HIP_HOP", ["hiphop"], "alike"),
    ("Pop", ["disco", "pop"], "exact"),  # a merge
    ("jazz", ["jazz"], "exact"),
    ("Rhythm and Blues", ["Rhythm and Blues"], "new"),
    ("chiptune", ["chiptune"], "new"),
])
def test_a_folder_name_means_the_genres_it_names(folder: str, genres: list[str], how: str) -> None:
    assert model_genres_of(NAMES, folder, KNOWN) == genres
    assert resolve(NAMES, folder, KNOWN).how == how


def test_with_no_mapping_a_folder_alike_a_known_genre_is_that_genre() -> None:
    none = GenreNames()
    assert model_genres_of(none, "Hip-Hop", KNOWN) == ["hiphop"]
    assert model_genres_of(none, "Jazz", KNOWN) == ["jazz"]
    assert fold("Drum & Bass") == fold("drum and bass") == fold("Drum-and-Bass") == "drumbass"
    assert fold("Band") == "band"  # "and" only as a word


def test_a_label_in_a_merged_folder_teaches_the_merged_genre_of_that_name_else_the_first() -> None:
    assert label_genre(NAMES, "Pop", KNOWN) == "pop"
    dance = GenreNames((("disco", "Dance"), ("pop", "Dance")))
    assert label_genre(dance, "Dance", KNOWN) == "disco"  # none is named so: the first
    assert label_genre(NAMES, "Hip-Hop", KNOWN) == "hiphop"


def test_a_name_that_is_another_genres_own_name_keeps_both_apart() -> None:
    names = GenreNames((("disco", "Pop"),))  # pop unmapped: its own folder is pop/
    assert model_genres_of(names, "Pop", KNOWN) == ["disco"]
    assert model_genres_of(names, "pop", KNOWN) == ["pop"]


def test_the_placement_decision_files_by_the_users_name(tmp_path: Path) -> None:
    s = settings(tmp_path, hiphop="Hip-Hop", disco="Pop", pop="Pop")
    song = tmp_path / "inbox" / "a.flac"
    assert decision.for_file(s, song, "hiphop", 0.9).path == s.library / "Hip-Hop" / "a.flac"
    assert decision.for_file(s, song, "disco", 0.9).path == s.library / "Pop" / "a.flac"
    assert decision.for_file(s, song, "jazz", 0.9).path == s.library / "jazz" / "a.flac"
    assert decision.for_album(s, "Album", "hiphop", [{}]).path == s.library / "Hip-Hop" / "Album"
    low = decision.for_file(s, song, "hiphop", 0.1)
    assert low.outcome == "review" and low.reason is not None and low.reason.startswith("Hip-Hop 0.10")
    templated = Settings(**{**s.__dict__, "path_template": "{genre}/{artist|Unknown}/{filename}"})
    assert decision.for_file(templated, song, "hiphop", 0.9, {"artist": "X"}).path == s.library / "Hip-Hop" / "X" / "a.flac"
