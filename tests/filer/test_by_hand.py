"""The user's own filing (``filer/by_hand.py``) on real folders and real FLAC files: where the one
placement decision puts a song or an album (``path_template`` from the files' own tags), whole
albums and numbered clashes, the genre tag written with the replaced one handed over before the
tagged copy takes the file's place, files that cannot be tagged still filed, every path made in
the library announced first, and the folders a move empties removed. Tags are read back with
mutagen itself."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mutagen.flac
import pytest

from conftest import write_tone
from genre_daemon.config import Settings, parse_settings
from genre_daemon.errors import SourceChangedError
from genre_daemon.filer import by_hand
from genre_daemon.filing import mover
from genre_daemon.tags import GenreSnapshot

TEMPLATE = "{genre}/{albumartist|artist|Unknown Artist}/{album|album_folder}/{filename}"


def settings_for(root: Path, **overrides: Any) -> Settings:
    s = parse_settings({"inbox": str(root / "inbox"), "library": str(root / "library"),
                        "review_dir": str(root / "library" / "_review"), "quarantine_dir": str(root / "inbox" / ".q"),
                        "state_dir": str(root / "state"), "write_tags": True, "path_template": TEMPLATE, **overrides})
    for folder in (s.inbox, s.library, s.review_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return s


def flac(path: Path, freq: float = 440.0, **tags: str) -> Path:
    write_tone(path, 1.0, freq=freq)
    audio = mutagen.flac.FLAC(path)
    for key, value in tags.items():
        audio[key] = value
    audio.save()
    return path


def genres(path: Path) -> list[str]:
    return list(mutagen.flac.FLAC(path).get("genre", []))


@pytest.fixture
def s(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


def test_a_song_goes_where_the_template_says_and_its_genre_tag_is_written(s: Settings) -> None:
    song = flac(s.review_dir / "song.flac", artist="Ann", album="Loose", genre="Rock", title="T")
    filed = by_hand.file_song(s, song, "jazz")
    placed = s.library / "jazz" / "Ann" / "Loose" / "song.flac"
    assert (filed.kind, filed.destination, filed.wanted, filed.renamed) == ("file", placed, placed, False)
    assert genres(placed) == ["jazz"] and mutagen.flac.FLAC(placed)["artist"] == ["Ann"]
    f = filed.files[0]
    assert f.source == song and f.path == placed and f.tag is not None and f.tag.values == ("Rock",)
    assert f.identity is not None and (f.identity.ino, f.identity.size) == (os.lstat(placed).st_ino, os.lstat(placed).st_size)
    assert not song.exists() and s.review_dir.is_dir()  # the review folder itself always stays


def test_the_replaced_tag_is_handed_over_before_the_tagged_copy_replaces_the_file(s: Settings) -> None:
    song = flac(s.review_dir / "song.flac", genre="Rock")
    seen: list[tuple[Path, Path, GenreSnapshot, list[str]]] = []
    filed = by_hand.file_song(s, song, "blues", keep_tag=lambda src, at, snap: seen.append((src, at, snap, genres(at))))
    placed = filed.destination
    assert seen == [(song, placed, seen[0][2], ["Rock"])]  # the file still had its own genre then
    assert seen[0][2].values == ("Rock",) and seen[0][2].written == "blues" and genres(placed) == ["blues"]


def test_a_clash_is_numbered_and_nothing_is_replaced(s: Settings) -> None:
    theirs = flac(s.library / "jazz" / "Unknown Artist" / "song.flac", 220.0)
    before = theirs.read_bytes()
    filed = by_hand.file_song(s, flac(s.review_dir / "song.flac"), "jazz")
    assert filed.destination == theirs.with_name("song (2).flac") and filed.renamed
    assert theirs.read_bytes() == before


def test_with_write_tags_off_the_file_keeps_its_bytes(tmp_path: Path) -> None:
    s = settings_for(tmp_path, write_tags=False, path_template=None)
    song = flac(s.review_dir / "song.flac", genre="Rock")
    data = song.read_bytes()
    filed = by_hand.file_song(s, song, "jazz")
    assert filed.destination == s.library / "jazz" / "song.flac" and not filed.tags_written
    assert filed.destination.read_bytes() == data and filed.files[0].tag is None


def test_a_file_that_cannot_be_tagged_is_filed_all_the_same_and_says_why(s: Settings) -> None:
    song = write_tone(s.review_dir / "song.au", 1.0)
    filed = by_hand.file_song(s, song, "jazz")
    assert filed.destination.is_file() and not song.exists()
    assert [f.path for f in filed.untagged] == [filed.destination]
    assert "mutagen" in (filed.files[0].tag_error or "")


def test_a_song_that_changed_since_it_was_looked_at_is_not_moved(s: Settings) -> None:
    song = flac(s.review_dir / "song.flac")
    seen = mover.signature(os.lstat(song))
    with open(song, "ab") as f:
        f.write(b"\0" * 10)
    with pytest.raises(SourceChangedError):
        by_hand.file_song(s, song, "jazz", expect_source=seen)
    assert song.is_file() and not (s.library / "jazz").exists()


def test_an_album_moves_whole_to_the_template_folder_and_only_its_tracks_are_tagged(s: Settings) -> None:
    folder = s.review_dir / "Some Folder"
    for i, name in enumerate(["CD1/01.flac", "CD1/02.flac", "CD2/01.flac"]):
        flac(folder / name, 300.0 + 50 * i, artist="Band", album="Record", genre="Rock")
    (folder / "cover.jpg").write_bytes(b"cover")
    flac(folder / "._01.flac")  # a hidden name: travels with the album, never tagged
    announced: list[tuple[Path, bool]] = []
    filed = by_hand.file_album(s, folder, "metal", expect=lambda p: announced.append((p, p.exists())))
    there = s.library / "metal" / "Band" / "Record"
    assert (filed.kind, filed.destination, filed.renamed) == ("album", there, False)
    assert sorted(f.path.relative_to(there).as_posix() for f in filed.files) == \
        ["._01.flac", "CD1/01.flac", "CD1/02.flac", "CD2/01.flac", "cover.jpg"]
    assert [f.path.relative_to(there).as_posix() for f in filed.tracks] == ["CD1/01.flac", "CD1/02.flac", "CD2/01.flac"]
    assert all(genres(there / rel) == ["metal"] for rel in ("CD1/01.flac", "CD1/02.flac", "CD2/01.flac"))
    assert genres(there / "._01.flac") == [] and (there / "cover.jpg").read_bytes() == b"cover"
    assert not folder.exists()
    # every file's path was announced before it was there (the moves), then again for its tag write
    first = {p: existed for p, existed in reversed(announced)}
    assert {p for p in first} >= {f.path for f in filed.files} and not any(first[f.path] for f in filed.files)


def test_an_album_clash_gets_a_number_never_a_merge(s: Settings) -> None:
    folder = s.review_dir / "Record"
    flac(folder / "01.flac", artist="Band", album="Record")
    taken = s.library / "jazz" / "Band" / "Record"
    taken.mkdir(parents=True)
    (taken / "01.flac").write_bytes(b"the user's")
    filed = by_hand.file_album(s, folder, "jazz", tracks=["01.flac"])
    assert filed.destination == taken.with_name("Record (2)") and filed.renamed
    assert (taken / "01.flac").read_bytes() == b"the user's" and sorted(os.listdir(taken)) == ["01.flac"]


def test_a_correction_removes_the_folders_it_emptied_up_to_the_library(s: Settings) -> None:
    old = flac(s.library / "rock" / "Band" / "Record" / "01.flac", artist="Band", album="Record")
    flac(s.library / "rock" / "other.flac")
    filed = by_hand.file_song(s, old, "jazz")
    assert filed.destination == s.library / "jazz" / "Band" / "Record" / "01.flac"
    assert not (s.library / "rock" / "Band").exists() and (s.library / "rock" / "other.flac").is_file()


def test_an_empty_genre_is_refused_before_anything_moves(s: Settings) -> None:
    song = flac(s.review_dir / "song.flac")
    with pytest.raises(ValueError):
        by_hand.file_song(s, song, " ")
    assert song.is_file()


@pytest.mark.parametrize("mode, before, after", [
    ("replace", ["Rock", "Pop"], ["blues"]),
    ("append", ["Rock", "Blues"], ["Rock", "Blues"]),  # theirs already says it (without case)
    ("append", ["Rock"], ["Rock", "blues"]),
    ("fill", ["Rock"], ["Rock"]),  # their genre stands, the file is not rewritten
    ("fill", [], ["blues"]),
])
def test_the_page_writes_the_users_one_genre_as_tag_mode_says(tmp_path: Path, mode: str, before: list[str],
                                                               after: list[str]) -> None:
    s = settings_for(tmp_path, tag_mode=mode, tag_genres=3)
    song = flac(s.review_dir / "song.flac", artist="Ann", **({"genre": before} if before else {}))  # type: ignore[arg-type]
    filed = by_hand.file_song(s, song, "blues")
    assert genres(filed.destination) == after
    f = filed.files[0]
    assert (f.tag is not None) == (after != before) and f.tag_error is None
    if f.tag is not None:
        assert f.tag.values == (tuple(before) or None) and f.tag.written_values == tuple(after)


@pytest.mark.parametrize("mode", ["append", "fill"])
def test_a_correction_drops_the_genre_the_daemon_wrote_whatever_the_mode(tmp_path: Path, mode: str) -> None:
    """The daemon appended (or filled in) jazz; the user says blues: jazz goes, their own stays."""
    from genre_daemon.tags import write_genre

    s = settings_for(tmp_path, tag_mode=mode)
    own = ["Rock"] if mode == "append" else []
    placed = flac(s.library / "jazz" / "song.flac", artist="Ann", **({"genre": own} if own else {}))  # type: ignore[arg-type]
    daemons = write_genre(placed, ["jazz"], mode=mode)
    assert genres(placed) == [*own, "jazz"]
    filed = by_hand.file_song(s, placed, "blues", earlier_tag={placed: daemons}.get)
    assert genres(filed.destination) == [*own, "blues"]
