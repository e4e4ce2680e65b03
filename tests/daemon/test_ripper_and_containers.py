"""Issue 19 on the real daemon, with real music: a ripper's slow copy (A1) and a Downloads folder
(A2).

A1: a CD ripper writes a track, pauses (longer than ``settle_seconds``), writes the next. Until
the folder has been quiet for ``folder_quiet_seconds`` nothing of it is filed and the folder
stays, so every write succeeds and the album lands whole with its cover.
A2: ``Downloads/{bob, rap, Bach/, Metallica/, Slayer/}`` is a container: each sub-folder is
filed as its own album, the two songs beside them as loose files; ``import`` does the same."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GTZAN_DIR
from support import Tree, pytestmark, wait_for  # noqa: F401  (pytestmark: needs the model)

real_music = pytest.mark.skipif(not GTZAN_DIR.is_dir(), reason="../shared/data absent: no real music")

SETTLE = 0.3
QUIET = 12.0  # folder_quiet_seconds here: far beyond a pause, so the ripper is never overtaken
PAUSE = 2.0  # the ripper reading the next track: many times settle_seconds


def clips(genre: str, n: int, skip: int = 0) -> list[Path]:
    found = sorted((GTZAN_DIR / genre).glob("*"))[skip:skip + n]
    assert len(found) == n, f"not enough {genre} clips in {GTZAN_DIR}"
    return found


def rip(source: Path, dest: Path) -> None:
    """Write ``dest`` as a ripper does: opened, written in pieces, closed."""
    data = source.read_bytes()
    with open(dest, "xb") as out:
        for start in range(0, len(data), 64 * 1024):
            out.write(data[start:start + 64 * 1024])
            out.flush()


def album_folders(library: Path) -> dict[str, Path]:
    """Folder name -> folder, for every album folder in the library (<library>/<genre>/<album>/)."""
    return {p.name: p for p in library.glob("*/*") if p.is_dir()}


@real_music
def test_a_ripper_writing_a_track_at_a_time_gets_its_album_filed_whole_with_its_cover(tmp_path: Path) -> None:
    tree = Tree(tmp_path, settle_seconds=SETTLE, folder_quiet_seconds=QUIET)
    tracks = clips("classical", 4)
    tree.start()
    try:
        album = tree.inbox / "Slow Album"
        album.mkdir()
        for i, clip in enumerate(tracks):
            rip(clip, album / f"{i + 1:02} {clip.name}")  # raises if the folder was taken away
            time.sleep(PAUSE)  # the scenario itself: a pause longer than settle_seconds
            assert tree.placed() == [], "a track was filed while its album was still being ripped"
        (album / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 cover art, fetched last")
        wait_for(lambda: "album Slow Album ->" in tree.log.read_text(), 120, "the album to be filed")
        placed = album_folders(tree.library)
        assert list(placed) == ["Slow Album"], placed
        assert sorted(p.name for p in placed["Slow Album"].iterdir()) == \
            sorted([f"{i + 1:02} {c.name}" for i, c in enumerate(tracks)] + ["cover.jpg"])
        assert tree.in_inbox() == [] and not album.exists() and len(tree.history()) == 4
        assert "Slow Album: waiting until nothing in it has changed" in tree.log.read_text()
    finally:
        tree.reap()


def downloads(folder: Path) -> dict[str, list[str]]:
    """``folder`` made a Downloads folder: two songs and three album folders (Bach with its
    cover). Returns what must land: album name -> its files, and "" -> the loose songs."""
    folder.mkdir(parents=True)
    shutil.copy(clips("reggae", 1)[0], folder / "bob.flac")
    shutil.copy(clips("hiphop", 1)[0], folder / "rap.flac")
    expected: dict[str, list[str]] = {"": ["bob.flac", "rap.flac"]}
    for name, genre, n, skip in (("Bach", "classical", 3, 4), ("Metallica", "metal", 2, 0), ("Slayer", "metal", 2, 2)):
        (folder / name).mkdir()
        expected[name] = []
        for clip in clips(genre, n, skip):
            shutil.copy(clip, folder / name / clip.name)
            expected[name].append(clip.name)
    (folder / "Bach" / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0 Bach")
    expected["Bach"].append("cover.jpg")
    return expected


def assert_filed_as_container(library: Path, expected: dict[str, list[str]]) -> None:
    """Each album folder whole in a genre folder of its own choosing, the loose songs in genre
    folders directly, no folder named Downloads anywhere."""
    placed = album_folders(library)
    assert sorted(placed) == sorted(k for k in expected if k), placed
    for name, folder in placed.items():
        assert sorted(p.name for p in folder.iterdir()) == sorted(expected[name])
    for song in expected[""]:
        where = list(library.rglob(song))
        assert len(where) == 1 and where[0].parent.parent == library, where
    assert not list(library.rglob("Downloads"))


@real_music
def test_a_downloads_folder_gets_each_album_filed_on_its_own_and_its_songs_as_loose_files(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    expected = downloads(tmp_path / "staging" / "Downloads")
    tree.start()
    try:
        shutil.copytree(tmp_path / "staging" / "Downloads", tree.inbox / "Downloads")
        wait_for(lambda: len(tree.placed()) == 9 and not tree.in_inbox(), 180, "all of Downloads to be filed")
        assert_filed_as_container(tree.library, expected)
        wait_for(lambda: len(tree.history()) == 9 and not (tree.inbox / "Downloads").exists(), 30,
                 "every move recorded and the emptied Downloads removed")
    finally:
        tree.reap()


@real_music
def test_import_sorts_a_downloads_folder_the_same_way(tmp_path: Path) -> None:
    tree = Tree(tmp_path)
    expected = downloads(tmp_path / "collection" / "Downloads")
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "import", str(tmp_path / "collection"),
                          "--config", str(tree.config)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert_filed_as_container(tree.library, expected)
