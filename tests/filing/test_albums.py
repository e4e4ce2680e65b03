"""Which files form an album, and the one genre an album gets (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genre_daemon.filing.albums import decide, group, home_folder, is_disc_folder

IN = Path("/in")


@pytest.mark.parametrize("name", ["CD1", "CD 02", "Disc 2", "disk_3", "Disc 1 - The Early Years", "Side A",
                                  "Vinyl 2", "cd", "CD1 (Remastered)"])
def test_disc_folders_are_recognised(name: str) -> None:
    assert is_disc_folder(name)


@pytest.mark.parametrize("name", ["Disco", "Discography", "Sidewinder", "LP Collection", "Bonus", "Scans", "CDs"])
def test_other_folders_are_not_disc_folders(name: str) -> None:
    assert not is_disc_folder(name)


def test_a_folder_with_two_tracks_is_an_album_and_a_root_file_is_loose() -> None:
    a = [IN / "Album" / "01.flac", IN / "Album" / "02.flac"]
    g = group(IN, [*a, IN / "single.mp3"])
    assert dict(g.albums) == {IN / "Album": tuple(a)}
    assert g.loose == (IN / "single.mp3",)


def test_disc_folders_belong_to_the_album_above_them() -> None:
    tracks = [IN / "Comp A (1999)" / "CD1" / "01.flac", IN / "Comp A (1999)" / "CD2" / "01.flac"]
    g = group(IN, tracks)
    assert list(g.albums) == [IN / "Comp A (1999)"]
    assert g.albums[IN / "Comp A (1999)"] == tuple(sorted(tracks))
    assert home_folder(IN, tracks[0]) == IN / "Comp A (1999)"


def test_a_disc_folder_directly_in_the_inbox_is_an_album_of_its_own() -> None:
    tracks = [IN / "CD1" / "01.flac", IN / "CD1" / "02.flac"]
    assert list(group(IN, tracks).albums) == [IN / "CD1"]


def test_an_artist_folder_holds_two_albums_not_one() -> None:
    a1 = [IN / "Artist" / "First" / f"{i}.mp3" for i in range(3)]
    a2 = [IN / "Artist" / "Second" / f"{i}.mp3" for i in range(2)]
    g = group(IN, [*a1, *a2])
    assert dict(g.albums) == {IN / "Artist" / "First": tuple(a1), IN / "Artist" / "Second": tuple(a2)}
    assert g.loose == ()


def test_an_album_inside_an_album_belongs_to_the_outer_one() -> None:
    outer = [IN / "Album" / "01.mp3", IN / "Album" / "02.mp3"]
    inner = [IN / "Album" / "Bonus" / "b1.mp3", IN / "Album" / "Bonus" / "b2.mp3"]
    g = group(IN, [*outer, *inner])
    assert list(g.albums) == [IN / "Album"]
    assert set(g.albums[IN / "Album"]) == {*outer, *inner}


def test_a_lone_track_in_a_folder_is_loose_and_so_is_one_under_an_artist() -> None:
    g = group(IN, [IN / "Single" / "a.mp3", IN / "Artist" / "b.mp3"])
    assert g.albums == {}
    assert set(g.loose) == {IN / "Single" / "a.mp3", IN / "Artist" / "b.mp3"}


def test_a_lone_track_under_an_album_root_travels_with_the_album() -> None:
    tracks = [IN / "Album" / "01.mp3", IN / "Album" / "02.mp3", IN / "Album" / "Extra" / "x.mp3"]
    assert group(IN, tracks).album_of(IN / "Album" / "Extra" / "x.mp3") == IN / "Album"


def _scores(top: str, p: float, genres=("jazz", "blues", "rock")) -> dict[str, float]:
    rest = (1 - p) / (len(genres) - 1)
    return {g: (p if g == top else rest) for g in genres}


def test_an_album_takes_the_genre_of_the_highest_mean_score() -> None:
    v = decide([_scores("jazz", 0.9), _scores("jazz", 0.5), _scores("blues", 0.6)], min_confidence=0.4)
    assert v.genre == "jazz" and not v.to_review
    assert v.confidence == pytest.approx((0.9 + 0.5 + 0.2) / 3)
    assert v.agreement == pytest.approx(2 / 3)


def test_one_confident_outlier_does_not_outvote_a_consistent_album() -> None:
    tracks = [_scores("jazz", 0.6)] * 5 + [_scores("rock", 0.99)]
    assert decide(tracks, min_confidence=0.4).genre == "jazz"


def test_a_compilation_spanning_genres_goes_to_review_as_a_whole_saying_why() -> None:
    tracks = [_scores("jazz", 0.8), _scores("blues", 0.8), _scores("rock", 0.8)]
    v = decide(tracks, min_confidence=0.4)
    assert v.to_review
    assert "too mixed" in v.why and "3 tracks" in v.why


def test_an_album_with_no_classified_track_goes_to_review() -> None:
    v = decide([], min_confidence=0.4)
    assert v.to_review and v.genre is None
