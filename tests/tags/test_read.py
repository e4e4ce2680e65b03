"""read_tags on real files ffmpeg tagged: every format, the odd forms, and files without tags."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TCON

from conftest import write_tone
from genre_daemon.tags import Tags, current_genre, read_tags, tags_dict

from .conftest import DATED, EXPECTED, FFMPEG_KINDS, UNTAGGED, UNTAGGED_MP3


@pytest.mark.parametrize("kind", [*FFMPEG_KINDS, "aiff"])
def test_reads_what_ffmpeg_wrote(tagged, sources, kind):
    path = tagged(kind)
    assert sources.probe(kind)["genre"] == "Rock"  # the file really carries the tags
    tags = read_tags(path)
    assert tags.to_json() == EXPECTED
    assert tags == Tags(**EXPECTED)
    assert current_genre(path) == "Rock"


@pytest.mark.parametrize("kind", ["mp3", "mp3-v23", "flac", "m4a"])
def test_full_dates_and_bare_track_numbers(tagged, kind):
    path = tagged(kind, metadata=DATED)
    tags = read_tags(path)
    assert (tags.year, tags.track, tags.disc) == (1999, 7, 2)


def test_numeric_id3_genre_reads_as_its_name(tagged):
    path = tagged("mp3")
    tags = ID3(path)
    tags["TCON"] = TCON(encoding=0, text=["(17)"])  # the old ID3v1-number form some taggers write
    tags.save(v2_version=4)
    assert read_tags(path).genre == "Rock"


def test_partial_tags_give_only_those_fields(tagged):
    path = tagged("flac", metadata={}, extra=UNTAGGED)
    audio = FLAC(path)
    if audio.tags is None:
        audio.add_tags()
    audio.tags.extend([("TITLE", "Only a title"), ("TRACKNUMBER", "5")])
    audio.save()
    assert read_tags(path).to_json() == {"title": "Only a title", "track": 5}


def strip_id3v2(path: Path) -> None:
    """Cut the ID3v2 tag off the front of an mp3 (its size is a syncsafe int in the header)."""
    data = path.read_bytes()
    assert data[:3] == b"ID3"
    size = 10 + sum(b << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
    path.write_bytes(data[size:])


def test_id3v1_only_mp3(tagged):
    # ID3v1 holds 30 latin-1 bytes a field (ffmpeg puts UTF-8 there): plain ASCII values
    v1 = {"artist": "Plain Artist", "album": "Plain Album", "title": "Plain Title", "track": "3",
          "date": "1999", "genre": "Rock"}
    path = tagged("mp3", metadata=v1, extra=("-write_id3v1", "1"))
    strip_id3v2(path)
    assert path.read_bytes()[-128:-125] == b"TAG"
    assert read_tags(path).to_json() == {"artist": "Plain Artist", "album": "Plain Album",
                                         "title": "Plain Title", "track": 3, "year": 1999, "genre": "Rock"}


@pytest.mark.parametrize("kind", ["mp3", "flac", "m4a"])
def test_untagged_files_read_empty(tagged, kind):
    path = tagged(kind, metadata={}, extra=UNTAGGED_MP3 if kind == "mp3" else UNTAGGED)
    tags = read_tags(path)
    assert tags == Tags() and tags.to_json() == {}
    assert current_genre(path) is None


def test_plain_wav_reads_empty(tmp_path):
    assert read_tags(write_tone(tmp_path / "plain.wav")) == Tags()


@pytest.mark.parametrize("content", [b"", b"not audio at all " * 100, bytes(range(256)) * 40])
def test_not_audio_reads_empty(tmp_path, content):
    path = tmp_path / "fake.mp3"
    path.write_bytes(content)
    assert read_tags(path) == Tags()


def test_corrupt_header_reads_empty(tagged):
    path = tagged("flac")
    path.write_bytes(path.read_bytes()[:60])  # a metadata block that promises more than is there
    assert read_tags(path) == Tags()
    m4a = tagged("m4a", name="cut.m4a")
    data = m4a.read_bytes()
    moov = data.index(b"moov") - 4
    m4a.write_bytes(data[:moov] + struct.pack(">I", 1 << 30) + data[moov + 4:])  # atom runs past the end
    assert read_tags(m4a) == Tags()


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_tags(tmp_path / "nope.mp3")
    with pytest.raises(FileNotFoundError):
        current_genre(tmp_path / "nope.flac")


def test_unreadable_file_raises_the_os_error(tagged):
    if os.geteuid() == 0:
        pytest.skip("root reads a mode-000 file anyway")
    path = tagged("flac")
    path.chmod(0)
    try:
        with pytest.raises(PermissionError):
            read_tags(path)
    finally:
        path.chmod(0o644)


def test_reads_gnre_atom_as_genre_name(gnre_m4a: Path):
    assert read_tags(gnre_m4a).genre == "Rock"


def test_to_json_is_plain_data():
    assert Tags(title="x", album="", year=2001).to_json() == {"title": "x", "year": 2001}
    with pytest.raises(AttributeError):
        Tags().title = "frozen"  # type: ignore[misc]


def test_tags_dict_is_read_tags_as_json(tagged):
    path = tagged("flac")
    assert tags_dict(path) == read_tags(path).to_json() == EXPECTED


def test_tags_dict_of_a_file_that_cannot_be_read_is_empty(tmp_path):
    not_a_folder = tmp_path / "plain.txt"
    not_a_folder.write_text("not audio\n")
    for path in (tmp_path / "missing.mp3", tmp_path, not_a_folder / "x.mp3"):
        with pytest.raises(OSError):
            read_tags(path)  # read_tags says why
        assert tags_dict(path) == {}  # tags_dict files it anyway, untagged
    assert tags_dict(not_a_folder) == {}  # not audio: no tags, not an error
