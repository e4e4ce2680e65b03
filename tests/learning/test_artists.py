"""What the library says of each artist (genre_daemon.learning.artists) from a real journal and real
tagged files: the daemon's kept placements, the user's own files and corrections, nothing undone
or deleted; artist names matched loosely."""

from __future__ import annotations

from pathlib import Path

from mutagen.flac import FLAC

from genre_daemon.config import Settings
from genre_daemon.filing.journal import Journal, State
from genre_daemon.learning.artists import ArtistIndex, artist_key, artist_keys
from genre_daemon.learning.labels import scan_labels
from learning.test_labels import journal, place, settings, tone, user_move  # noqa: F401  (fixtures)


def tagged(path: Path, **tags: str) -> Path:
    tone(path)
    f = FLAC(path)
    for k, v in tags.items():
        f[k] = v
    f.save()
    return path


def placed(journal: Journal, s: Settings, name: str, genre: str, **tags: str) -> Path:
    src = tagged(s.inbox / name, **tags)
    dest = place(journal, s, src, genre)
    row = next(r for r in journal.in_states(State.MOVED) if r.destination == str(dest))
    journal.set_tags(row.id, tags)  # as the filer records the tags it read
    return dest


def index(s: Settings, journal: Journal) -> ArtistIndex:
    i = ArtistIndex()
    i.refresh(journal, scan_labels(s, journal))
    return i


def test_artist_names_are_matched_loosely_and_various_artists_is_no_artist() -> None:
    assert artist_key("The Beatles") == artist_key("beatles") == artist_key("BEATLES!")
    assert artist_key("Björk") == artist_key("Bjork")
    assert artist_key("Miles Davis feat. John Coltrane") == artist_key("Miles Davis")
    assert artist_key("Various Artists") == artist_key("VA") == ""
    assert artist_keys({"artist": "AC/DC; Brian Johnson", "albumartist": "Various Artists"}) == (["acdc",
                                                                                                   "brianjohnson"], [])


def test_the_daemons_kept_placements_count_and_the_users_correction_moves_the_artist(
        settings: Settings, journal: Journal) -> None:
    s = settings
    a = placed(journal, s, "a.flac", "jazz", artist="Miles Davis")
    placed(journal, s, "b.flac", "jazz", artist="Miles Davis")
    i = index(s, journal)
    assert i.genres({"artist": "miles davis"}) == {"jazz": 2}
    user_move(a, s.library / "blues")  # a correction: counts for blues only, at the next scan
    i = index(s, journal)
    assert i.genres({"artist": "Miles Davis"}) == {"jazz": 1, "blues": 1}
    a_now = s.library / "blues" / a.name
    a_now.unlink()  # deleted: counts for nothing
    assert index(s, journal).genres({"artist": "Miles Davis"}) == {"jazz": 1}


def test_the_users_own_files_count_by_their_tags_and_album_artist_is_the_fallback(
        settings: Settings, journal: Journal) -> None:
    s = settings
    (s.library / "metal").mkdir()
    tagged(s.library / "metal" / "x.flac", artist="Metallica", albumartist="Metallica")
    tagged(s.library / "metal" / "y.flac", artist="Metallica feat. Orchestra", albumartist="Metallica")
    i = index(s, journal)
    assert i.genres({"artist": "metallica"}) == {"metal": 2}
    assert i.genres({"artist": "Someone Else", "albumartist": "Metallica"}) == {"metal": 2}
    assert i.genres({"artist": "Unknown Band"}) == {}
    assert i.genres({}) == {}


def test_a_placement_counts_at_once_and_user_names_map_back_to_the_models_genres(
        settings: Settings, journal: Journal) -> None:
    s = settings
    i = index(s, journal)
    i.add({"artist": "Bob Marley"}, "reggae")
    assert i.genres({"artist": "bob marley"}) == {"reggae": 1}
    (s.library / "Roots").mkdir()
    tagged(s.library / "Roots" / "z.flac", artist="Bob Marley")
    i = index(s, journal)
    assert i.genres({"artist": "Bob Marley"}, {"reggae": "Roots"}) == {"reggae": 1}
