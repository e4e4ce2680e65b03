"""Path templates: the default keeps today's layout; any tags give a path inside the library."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genre_daemon.path_template import DEFAULT, Template, TemplateError, album_values, file_values
from genre_daemon.names import safe_component

RICH = "{genre}/{albumartist|artist|Unknown Artist}/{year} - {album|album_folder}/{track:02} {title|stem}"


def test_the_default_keeps_the_layout_of_loose_files_and_albums() -> None:
    t = Template.parse(None)
    assert t.text == DEFAULT
    assert t.file_path(file_values(Path("/in/01 - Intro.flac"), "jazz"), ".flac") == PurePosixPath("jazz/01 - Intro.flac")
    assert t.album_path(album_values("Comp A (1999)", "jazz", [])) == PurePosixPath("jazz/Comp A (1999)")


def test_fields_come_from_the_tags_with_fallbacks_and_padding() -> None:
    t = Template.parse(RICH)
    tags = {"artist": "AC/DC", "title": "Back in Black", "track": 6, "year": 1980, "album": "Back in Black"}
    assert t.file_path(file_values(Path("/in/x.mp3"), "rock", tags), ".mp3") == \
        PurePosixPath("rock/AC_DC/1980 - Back in Black/06 Back in Black.mp3")
    assert t.file_path(file_values(Path("/in/x.mp3"), "rock", {}), ".mp3") == PurePosixPath("rock/Unknown Artist/x.mp3")


def test_an_album_is_named_by_the_template_folders_with_the_tags_its_tracks_share() -> None:
    t = Template.parse(RICH)
    tracks = [{"albumartist": "X", "album": "Y", "year": 1999}, {"albumartist": "X", "album": "Y", "year": 1999},
              {"albumartist": "Z"}]
    assert t.album_path(album_values("folder", "rock", tracks)) == PurePosixPath("rock/X/1999 - Y")
    assert Template.parse("{genre}/{filename}").album_path(album_values("My Album", "rock", [])) == \
        PurePosixPath("rock/My Album")


def test_a_file_name_always_keeps_its_extension() -> None:
    t = Template.parse("{genre}/{title}")
    assert t.file_path(file_values(Path("/in/a.opus"), "pop", {"title": "Song"}), ".opus").name == "Song.opus"


@pytest.mark.parametrize("title", [".", "..", " . ", "-"])
def test_a_title_that_is_only_dots_keeps_the_extension(title: str) -> None:
    """Issue 19 T2: ``..flac`` made safe as a whole lost its leading dots and became ``flac``."""
    tags = {"artist": ".", "album": ".", "title": title}
    for text in ("{genre}/{artist}/{album}/{title}", "{genre}/{title}.{ext}"):
        path = Template.parse(text).file_path(file_values(Path("/in/Song.flac"), "metal", tags), ".flac")
        assert path.name == "Song.flac" and path.suffix == ".flac", (text, path)
    assert Template.parse(DEFAULT).file_path(file_values(Path("/in/song..mp3"), "pop"), ".mp3").name == "song..mp3"


def test_nfc_and_nfd_spellings_of_one_artist_give_one_folder() -> None:
    """Issue 19 T2: tags are normalised (NFC) before they name folders or files; the file's own
    name is not touched (a silent rename would surprise)."""
    nfc, nfd = "Beyonc\u00e9", "Beyonce\u0301"
    t = Template.parse(RICH)
    one = t.file_path(file_values(Path("/in/a.mp3"), "pop", {"artist": nfc, "album": nfd, "title": nfd}), ".mp3")
    two = t.file_path(file_values(Path("/in/b.mp3"), "pop", {"artist": nfd, "album": nfc, "title": nfc}), ".mp3")
    assert one == two == PurePosixPath(f"pop/{nfc}/{nfc}/{nfc}.mp3")
    tracks = [{"albumartist": nfd, "album": nfd}, {"albumartist": nfc, "album": nfc}, {"albumartist": nfd}]
    assert t.album_path(album_values("folder", "pop", tracks)) == PurePosixPath(f"pop/{nfc}/{nfc}")
    own = Template.parse(DEFAULT).file_path(file_values(Path(f"/in/{nfd}.mp3"), "pop", {"title": nfc}), ".mp3")
    assert own.name == f"{nfd}.mp3"


@pytest.mark.parametrize("bad, says", [
    ("/abs/{filename}", "relative"), ("~/{filename}", "relative"), ("{genre}/../{filename}", "'..'"),
    ("{nope}", "unknown field 'nope'"), ("{genre", "unbalanced"), ("{title:02}", "track, disc and year"),
    ("plain", "needs a field"), ("", "non-empty"), ("{genre}/{}", "empty field"), ("{track:x}", "zero-pad"),
])
def test_a_bad_template_is_refused_saying_why(bad: str, says: str) -> None:
    with pytest.raises(TemplateError, match=None) as err:
        Template.parse(bad)
    assert says in str(err.value)


TEXT = st.text(st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({k: st.one_of(st.none(), TEXT) for k in ("artist", "albumartist", "album", "title")}),
       st.one_of(st.none(), st.integers(-5, 10**6)), TEXT, TEXT)
def test_whatever_the_tags_say_the_path_stays_inside_the_library(tags, track, genre, filename) -> None:
    library = Path("/lib")
    name = safe_component(filename or "x", fallback="x") + ".mp3"
    values = file_values(Path("/in") / name, safe_component(genre, fallback="g"), {**tags, "track": track})
    for text in (RICH, DEFAULT, "{artist}/{album}/{title}"):
        t = Template.parse(text)
        for rel in (t.file_path(values, ".mp3"), t.album_path(album_values(name, values["genre"], [tags]))):
            assert not rel.is_absolute()
            full = library / rel
            assert Path(os.path.normpath(full)).is_relative_to(library) and ".." not in rel.parts
            assert all(part == safe_component(part, max_bytes=255, normalize=False, fallback="_") for part in rel.parts)
