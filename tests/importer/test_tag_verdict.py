"""What ``genre-daemon tag`` writes (pure): the top genre in the user's name at or above
``min_confidence``, nothing below; an album's one genre from all its tracks (those judged before
included), nothing for an album too mixed; a genre of the file's own kept under ``fill``,
replaced under ``replace``, and ours added after it under ``append`` (the writer keeps theirs)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from genre_daemon.config import Settings
from genre_daemon.importer.tag_verdict import for_album, for_file

BASE = Settings(inbox=Path("/i"), library=Path("/l"), review_dir=Path("/l/_r"), quarantine_dir=Path("/i/.q"),
                state_dir=Path("/s"), min_confidence=0.4, genre_names=(("hiphop", "Hip-Hop"),))
A, B = Path("/m/a.mp3"), Path("/m/b.mp3")


def test_a_file_gets_its_top_genre_in_the_users_name_or_nothing_below_min_confidence() -> None:
    v = for_file(BASE, A, "hiphop", 0.7, {"hiphop": 0.7, "pop": 0.3}, None)
    assert (v.genre, v.name, v.write, dict(v.left)) == ("hiphop", "Hip-Hop", (A,), {})
    low = for_file(BASE, A, "jazz", 0.3, {"jazz": 0.3, "blues": 0.25}, None)
    assert low.genre is None and low.write == ()
    assert low.left[A].startswith("left untagged: confidence 0.30 below min_confidence 0.40 (jazz 0.30, blues 0.25")


def test_a_genre_of_the_files_own_is_kept_under_fill_added_to_under_append_and_replaced_under_replace() -> None:
    assert for_file(BASE, A, "jazz", 0.9, {"jazz": 0.9}, "Rock").write == (A,)
    v = for_file(replace(BASE, tag_mode="fill"), A, "jazz", 0.9, {"jazz": 0.9}, "Rock")
    assert v.write == () and v.left == {A: "kept its genre: Rock (tag_mode: fill)"}
    assert for_file(replace(BASE, tag_mode="append"), A, "jazz", 0.9, {"jazz": 0.9}, "Rock").write == (A,)
    for mode in ("fill", "append"):
        assert for_file(replace(BASE, tag_mode=mode), A, "jazz", 0.9, {"jazz": 0.9}, None).write == (A,)


def test_an_album_gets_one_genre_from_every_track_including_those_judged_before() -> None:
    tracks = [(A, {"jazz": 0.45, "blues": 0.55}), (B, {"jazz": 0.9, "blues": 0.1})]
    v = for_album(BASE, tracks, [], {})
    assert (v.genre, v.write) == ("jazz", (A, B))  # B's own top genre is not A's: one genre for both
    before = for_album(BASE, tracks[:1], [{"jazz": 0.9, "blues": 0.1}], {})
    assert (before.genre, before.write) == ("jazz", (A,))  # only the track not judged before is written
    fill = for_album(replace(BASE, tag_mode="fill"), tracks, [], {A: "Bebop", B: None})
    assert fill.write == (B,) and fill.left == {A: "kept its genre: Bebop (tag_mode: fill)"}


def test_an_album_too_mixed_is_left_untagged_as_a_whole() -> None:
    tracks = [(A, {"jazz": 0.5, "metal": 0.5}), (B, {"metal": 0.3, "pop": 0.7})]
    v = for_album(replace(BASE, min_confidence=0.6), tracks, [], {})
    assert v.genre is None and v.write == ()
    assert set(v.left) == {A, B} and v.why.startswith("left untagged: too mixed to decide")
