"""Which files form an album, and the one genre an album gets (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from genre_daemon.filing.albums import decide, group, home_folder, is_disc_folder, is_part_folder

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


def _songs(folder: Path, *names: str) -> list[Path]:
    return [folder / n for n in names]


def test_a_downloads_folder_is_a_container_its_sub_folders_albums_and_its_songs_loose() -> None:
    """Issue 19 A2: Downloads/{bob, rap, Bach/, Metallica/, Slayer/} is not one album."""
    dl = IN / "Downloads"
    bach = _songs(dl / "Bach", "1.flac", "2.flac", "3.flac")
    metallica = _songs(dl / "Metallica", "a.mp3", "b.mp3")
    slayer = _songs(dl / "Slayer", "x.mp3", "y.mp3", "z.mp3")
    loose = _songs(dl, "bob.mp3", "rap.mp3")
    g = group(IN, [*bach, *metallica, *slayer, *loose])
    assert dict(g.albums) == {dl / "Bach": tuple(bach), dl / "Metallica": tuple(metallica),
                              dl / "Slayer": tuple(slayer)}
    assert g.loose == tuple(loose)
    assert g.album_of(dl / "bob.mp3") is None and g.album_of(bach[0]) == dl / "Bach"


def test_songs_judged_loose_beside_a_containers_albums_stay_loose_once_the_albums_are_gone() -> None:
    """Issue 19: after a restart, ``Downloads/{bob, rap}`` (its albums filed) was one album."""
    dl = IN / "Downloads"
    loose = _songs(dl, "bob.mp3", "rap.mp3")
    assert dict(group(IN, loose).albums) == {dl: tuple(loose)}  # from the disk alone: an album
    g = group(IN, [*loose, dl / "new.mp3"], judged_loose=loose)
    assert g.albums == {} and set(g.loose) == {*loose, dl / "new.mp3"}


def test_a_container_may_hold_artist_folders_and_containers_nest() -> None:
    """An album anywhere below a sub-folder makes a container: Downloads/Metallica/Master/ is
    an album, and the songs of Downloads and of the artist folder beside it are loose."""
    dl = IN / "Downloads"
    master = _songs(dl / "Metallica" / "Master", "1.mp3", "2.mp3", "3.mp3")
    artist_songs = _songs(dl / "Metallica", "single.mp3", "live.mp3")
    loose = _songs(dl, "bob.mp3", "rap.mp3")
    g = group(IN, [*master, *artist_songs, *loose])
    assert dict(g.albums) == {dl / "Metallica" / "Master": tuple(master)}
    assert set(g.loose) == {*artist_songs, *loose}


def test_an_album_in_a_container_keeps_its_discs_and_bonus_tracks() -> None:
    """Parts of an album (discs, bonus tracks, extras) never make it a container: the album
    beside its sibling in Downloads is filed whole with them."""
    dl = IN / "Downloads"
    album = [*_songs(dl / "Album", "01.flac", "02.flac"), *_songs(dl / "Album" / "CD2", "01.flac", "02.flac"),
             *_songs(dl / "Album" / "Bonus Tracks", "b1.flac", "b2.flac"),
             *_songs(dl / "Album" / "Extras", "e1.flac", "e2.flac")]
    other = _songs(dl / "Other", "o1.mp3", "o2.mp3")
    g = group(IN, [*album, *other, dl / "bob.mp3", dl / "rap.mp3"])
    assert dict(g.albums) == {dl / "Album": tuple(sorted(album)), dl / "Other": tuple(other)}
    assert g.loose == (dl / "bob.mp3", dl / "rap.mp3")


def test_bonus_tracks_count_as_the_album_s_own() -> None:
    """One track of its own and two bonus tracks: an album of three, not an album named Bonus."""
    tracks = [IN / "Album" / "01.mp3", *_songs(IN / "Album" / "Bonus Tracks", "b1.mp3", "b2.mp3")]
    g = group(IN, tracks)
    assert dict(g.albums) == {IN / "Album": tuple(sorted(tracks))}
    assert home_folder(IN, tracks[1]) == IN / "Album"


@pytest.mark.parametrize("name, part", [("Bonus", True), ("Bonus Tracks", True), ("bonus_disc", True),
                                        ("Extras", True), ("B-Sides", True), ("CD2", True),
                                        ("Bach", False), ("Bonus Army", False), ("Extraordinary", False)])
def test_part_folders_are_discs_sides_bonus_tracks_and_extras(name: str, part: bool) -> None:
    assert is_part_folder(name) is part


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
