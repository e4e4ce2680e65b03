"""``tag_mode`` and several genres on real files of every format: what each mode writes, as a
real multi-valued tag read back by mutagen, by ffprobe and from the file's bytes; nothing else in
the file changes (every other tag, the streams, the decoded audio); undo restores exactly.

Each file is encoded by ffmpeg from a tone, then tagged by mutagen (a genre or none, and a tag of
mutagen's own beside ffmpeg's), as a tagger would have left it."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import mutagen
import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TCON, TXXX
from mutagen.mp4 import MP4, MP4FreeForm

from conftest import FFPROBE
from genre_daemon.tags import GenreSnapshot, restore_genre, write_genre
from genre_daemon.tags.write import merge_genres

from .conftest import FFMPEG_KINDS, METADATA, ffprobe_tags, genre_values, pcm_digests, raw_tags, without_genre

OURS = ["jazz", "Blues"]  # the daemon's genres, best first (tag_genres: 2)
NO_GENRE = {k: v for k, v in METADATA.items() if k != "genre"}


def mutagen_tagged(tagged, kind: str, genres: list[str] | None) -> Path:
    """An ffmpeg-encoded file of ``kind`` whose genre (``genres``, or none) and a mood tag were
    then written by mutagen, each format in its own way (ID3 in the file's own version)."""
    path = tagged(kind, metadata=NO_GENRE)
    audio = mutagen.File(path)
    if isinstance(audio.tags, ID3):
        tags = ID3(path, translate=False)
        v23 = tags.version[:2] == (2, 3)
        if genres:
            tags.add(TCON(encoding=1 if v23 else 3, text=genres))
        tags.add(TXXX(encoding=1 if v23 else 3, desc="MOOD", text=["calm"]))
        tags.save(path, v2_version=3 if v23 else 4, v23_sep=None)
    elif isinstance(audio, MP4):
        if genres:
            audio["\xa9gen"] = genres
        audio["----:com.apple.iTunes:MOOD"] = [MP4FreeForm(b"calm")]
        audio.save()
    else:
        if genres:
            audio["genre"] = genres
        audio["mood"] = "calm"
        audio.save()
    assert genre_values(path) == (genres or None)
    return path


def expected(kind: str, theirs: list[str] | None, mode: str) -> list[str]:
    """What the file's genre tag holds after writing OURS in ``mode`` (mutagen's reading)."""
    if mode == "fill" and theirs:
        return theirs
    values = (theirs or []) + OURS if mode == "append" else list(OURS)
    return ["/".join(values)] if kind == "mp3-v23" else values


def probe(path: Path) -> tuple[dict[str, str], dict[str, object]]:
    """One ffprobe -show_format -show_streams: the tags (as ``ffprobe_tags`` gives them), and the
    rest less what a bigger tag block must change (the file size, the overall bit rate from it)."""
    out = subprocess.run([FFPROBE, "-v", "error", "-show_format", "-show_streams", "-print_format", "json",
                          str(path)], capture_output=True, check=True, timeout=60).stdout
    info = json.loads(out)
    tags = {k.lower(): v for k, v in info["format"].get("tags", {}).items()}
    for stream in info["streams"][:1]:
        tags.update({k.lower(): v for k, v in stream.get("tags", {}).items()})
    fmt = {k: v for k, v in info["format"].items() if k not in ("tags", "size", "bit_rate", "filename")}
    return tags, {"format": fmt, "streams": [{k: v for k, v in s.items() if k != "tags"} for s in info["streams"]]}


def id3v24_genre_bytes(path: Path) -> bytes:
    """The TCON frame's payload as it is in the file (ID3v2.4: a syncsafe frame size), less the
    NUL that may end the last value."""
    data = path.read_bytes()
    assert data[:4] == b"ID3\x04"
    at = data.index(b"TCON", 10)
    size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[at + 4:at + 8]))
    return data[at + 10:at + 10 + size].removesuffix(b"\x00")


def mp4_genre_items(path: Path) -> list[str]:
    """The text of every ``data`` atom inside the file's ``\\xa9gen`` atom, read from its bytes."""
    data = path.read_bytes()
    at = data.index(b"\xa9gen") - 4
    end = at + struct.unpack(">I", data[at:at + 4])[0]
    items, pos = [], at + 8
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        assert kind == b"data"
        items.append(data[pos + 16:pos + size].decode("utf-8"))
        pos += size
    return items


def check_multi_valued(kind: str, path: Path, values: list[str], probed: str | None = None) -> None:
    """The genre tag holds ``values`` as each format's own multi-valued form, by outside readers:
    ffprobe (its genre ``probed``, asked for when not given) and the file's bytes."""
    probed = ffprobe_tags(path)["genre"] if probed is None else probed
    if kind in ("flac", "ogg", "opus"):
        assert probed == ";".join(values)  # ffmpeg joins repeated Vorbis comments with ";"
    elif kind == "mp3-v23":
        assert probed == values[0] and len(values) == 1  # one text, the values joined by "/"
    else:  # ffmpeg 5.1 shows the first value of a v2.4 TCON and of a ©gen; newer ones may join them
        assert probed in (values[0], ";".join(values))
    if kind == "mp3":
        assert id3v24_genre_bytes(path) == b"\x03" + "\x00".join(values).encode("utf-8")
    if kind == "m4a":
        assert mp4_genre_items(path) == values


@pytest.mark.parametrize("mode", ["replace", "fill", "append"])
@pytest.mark.parametrize("kind", FFMPEG_KINDS)
@pytest.mark.parametrize("theirs", [["Rock"], None], ids=["their-genre", "no-genre"])
def test_each_mode_writes_a_real_multi_valued_genre_and_nothing_else_and_undo_is_exact(
        tagged, tmp_path, kind, mode, theirs):
    path = mutagen_tagged(tagged, kind, theirs)
    original = path.read_bytes()
    raw, (probed, shape) = raw_tags(path), probe(path)
    inode = path.stat().st_ino

    snapshot = write_genre(path, OURS, mode=mode)

    want = expected(kind, theirs, mode)
    assert genre_values(path) == want
    assert snapshot.values == (tuple(theirs) if theirs else None)
    assert snapshot.written_values == tuple(want)
    if mode == "fill" and theirs:  # their genre stands: the file is not even rewritten
        assert not snapshot.changed
        assert path.read_bytes() == original and path.stat().st_ino == inode
        return
    assert snapshot.changed
    tags_after, shape_after = probe(path)
    check_multi_valued(kind, path, want, tags_after["genre"])
    assert without_genre(raw_tags(path)) == without_genre(raw)  # every other tag, and the ID3 version
    assert without_genre(tags_after) == without_genre(probed)
    assert shape_after == shape
    after = shutil.copyfile(path, tmp_path / f"after{path.suffix}")

    stored = GenreSnapshot.from_json(json.loads(json.dumps(snapshot.to_json())))  # as the journal keeps it
    assert stored == snapshot
    assert restore_genre(path, stored) is True
    assert raw_tags(path) == raw  # the genre as it was, or no genre tag at all; the version kept
    assert probe(path) == (probed, shape)
    before_pcm = (tmp_path / f"before{path.suffix}")
    before_pcm.write_bytes(original)
    assert len(set(pcm_digests(before_pcm, after, path))) == 1  # the audio, tagged and restored


@pytest.mark.parametrize("kind", FFMPEG_KINDS)
def test_append_adds_only_what_the_file_lacks_compared_without_case(tagged, kind):
    path = mutagen_tagged(tagged, kind, ["Rock"] if kind == "mp3-v23" else ["Rock", "JAZZ"])
    write_genre(path, OURS, mode="append")
    if kind == "mp3-v23":
        assert genre_values(path) == ["Rock/jazz/Blues"]
        before = path.read_bytes()
        snapshot = write_genre(path, ["BLUES", "rock"], mode="append")  # each already in the "/" text
        assert not snapshot.changed and path.read_bytes() == before
    else:
        assert genre_values(path) == ["Rock", "JAZZ", "Blues"]  # their JAZZ is our jazz: not twice
        before = path.read_bytes()
        assert not write_genre(path, ["blues "], mode="append").changed and path.read_bytes() == before


def test_a_v23_frame_with_several_texts_keeps_its_convention(tagged):
    """A v2.3 TCON that a tagger wrote as several NUL-separated texts (Mp3tag) keeps that form."""
    path = mutagen_tagged(tagged, "mp3-v23", ["Rock", "Pop"])
    assert ID3(path, translate=False).version[:2] == (2, 3)
    snapshot = write_genre(path, OURS, mode="append")
    assert genre_values(path) == ["Rock", "Pop", "jazz", "Blues"]
    assert ID3(path, translate=False).version[:2] == (2, 3)
    assert restore_genre(path, snapshot) and genre_values(path) == ["Rock", "Pop"]


def test_an_empty_genre_comment_is_no_genre_to_fill_and_undo_brings_back_the_empty_comment(tagged):
    """Absent and empty are two states: fill writes over an empty GENRE comment, and undo puts
    the empty comment back, not nothing."""
    path = tagged("flac", metadata=NO_GENRE)
    f = FLAC(path)
    f["genre"] = [""]
    f.save()
    raw = raw_tags(path)
    snapshot = write_genre(path, OURS, mode="fill")
    assert genre_values(path) == OURS and snapshot.values == ("",)
    restore_genre(path, GenreSnapshot.from_json(snapshot.to_json()))
    assert genre_values(path) == [""] and raw_tags(path) == raw


def test_an_untagged_mp3_gets_a_multi_valued_tag_and_undo_leaves_its_bytes(tagged):
    from .conftest import UNTAGGED_MP3

    path = tagged("mp3", metadata={}, extra=UNTAGGED_MP3)
    original = path.read_bytes()
    snapshot = write_genre(path, OURS, mode="append")
    assert genre_values(path) == OURS and id3v24_genre_bytes(path) == b"\x03jazz\x00Blues"
    assert restore_genre(path, snapshot) is True
    assert path.read_bytes() == original


@pytest.mark.parametrize("mode", ["fill", "append"])
def test_a_correction_of_our_own_write_drops_the_genre_we_wrote(tagged, mode):
    """The user's genre over the daemon's (the page): with ``earlier``, fill and append start from
    the file's own genre again, so the wrong genre goes; undo still gets the file's own back."""
    theirs = ["Rock"] if mode == "append" else None
    path = mutagen_tagged(tagged, "flac", theirs)
    raw = raw_tags(path)
    first = write_genre(path, ["jazz"], mode=mode)
    assert genre_values(path) == (theirs or []) + ["jazz"]
    second = write_genre(path, ["blues"], mode=mode, earlier=first)
    assert genre_values(path) == (theirs or []) + ["blues"]
    assert second.values == first.written_values  # what it replaced: the daemon's write
    restore_genre(path, GenreSnapshot(first.format, first.version, first.had_tags, first.values,
                                      second.written, first.id3v1))
    assert raw_tags(path) == raw


def test_restore_leaves_alone_a_multi_valued_genre_the_user_changed(tagged):
    path = mutagen_tagged(tagged, "ogg", ["Rock"])
    snapshot = write_genre(path, OURS, mode="append")
    audio = mutagen.File(path)
    audio["genre"] = ["Rock", "jazz"]  # the user dropped one of ours since
    audio.save()
    inode = path.stat().st_ino
    assert restore_genre(path, snapshot) is False
    assert genre_values(path) == ["Rock", "jazz"] and path.stat().st_ino == inode


def test_bad_genres_and_modes_are_refused_before_the_file_is_touched(tagged):
    path = mutagen_tagged(tagged, "flac", ["Rock"])
    before = path.read_bytes()
    for genres, mode, said in [([], "replace", "no genre"), (["jazz", " "], "replace", "not a genre"),
                               (["a\x00b"], "append", "not a genre"), (["jazz"], "merge", "not a tag mode")]:
        with pytest.raises(ValueError, match=said):
            write_genre(path, genres, mode=mode)
    assert path.read_bytes() == before
    assert not [n for n in os.listdir(path.parent) if n.endswith(".tmp")]


def test_old_journal_snapshots_still_read_and_several_values_round_trip():
    old = {"format": "id3", "version": "2.4", "had_tags": True, "genre": ["Rock"], "written": "jazz"}
    snap = GenreSnapshot.from_json(old)
    assert snap.written == "jazz" and snap.written_values == ("jazz",) and snap.to_json() == old
    many = GenreSnapshot("vorbis", None, True, None, ("Rock", "jazz"))
    assert many.to_json()["written"] == ["Rock", "jazz"] and many.to_json()["genre"] == "absent"
    assert GenreSnapshot.from_json(many.to_json()) == many
    assert GenreSnapshot("mp4", None, True, None, ("jazz",)) == GenreSnapshot("mp4", None, True, None, "jazz")


@pytest.mark.parametrize("old, ours, mode, sep, want", [
    (["Rock"], ["jazz", "blues"], "replace", None, ["jazz", "blues"]),
    (None, ["jazz"], "fill", None, ["jazz"]),
    (["  "], ["jazz"], "fill", None, ["jazz"]),
    (["Rock"], ["jazz"], "fill", None, ["Rock"]),
    (["Rock", "Jazz"], ["jazz", "blues"], "append", None, ["Rock", "Jazz", "blues"]),
    (["Rock/Jazz"], ["jazz", "blues"], "append", "/", ["Rock/Jazz", "blues"]),
    (["Rock/Jazz"], ["jazz"], "append", None, ["Rock/Jazz", "jazz"]),
    (None, ["jazz", "blues"], "append", None, ["jazz", "blues"]),
])
def test_merge_genres(old, ours, mode, sep, want):
    assert merge_genres(old, ours, mode, sep=sep) == want


@pytest.mark.parametrize("kind", FFMPEG_KINDS)
def test_undo_gives_back_the_genre_frame_as_ffmpeg_wrote_it(tagged, kind):
    """ffmpeg's own genre tag (ID3v2.3 in Latin-1, v2.4 in UTF-8) comes back in its own encoding."""
    path = tagged(kind)
    raw = raw_tags(path)
    snapshot = write_genre(path, ["Musique québécoise", "jazz"], mode="replace")
    restore_genre(path, GenreSnapshot.from_json(json.loads(json.dumps(snapshot.to_json()))))
    assert raw_tags(path) == raw
