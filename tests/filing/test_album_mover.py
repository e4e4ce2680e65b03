"""Moving an album folder whole: bytes and layout kept, a clash never merges, a kill -9 at any
step leaves it whole in one place once :func:`settle_album` has run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from genre_daemon.errors import MoveError, SourceChangedError
from genre_daemon.filing.album_mover import (
    ALBUM_TEMP_MARKER,
    Snapshot,
    move_album,
    remove_emptied,
    settle_album,
    snapshot,
)

SHM = Path("/dev/shm")


def make_album(folder: Path, tracks: int = 3) -> dict[str, str]:
    """An album with discs and sidecars; returns relative path -> sha256 of every file."""
    (folder / "CD1").mkdir(parents=True)
    (folder / "CD2").mkdir()
    (folder / "Scans").mkdir()
    files = {f"CD{d}/{i:02} - Track.flac": os.urandom(50_000 + i) for d in (1, 2) for i in range(1, tracks + 1)}
    files |= {"cover.jpg": os.urandom(20_000), "folder.jpg": os.urandom(9_000), "album.cue": b"FILE \"01.flac\"\n",
              "rip.log": b"EAC log\n", "playlist.m3u": b"CD1/01 - Track.flac\n", "info.nfo": b"nfo",
              "Scans/back.png": os.urandom(4_000)}
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}


def contents(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


@pytest.fixture(params=["same filesystem", "across filesystems"])
def places(request, tmp_path: Path):
    if request.param == "across filesystems":
        if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("no second filesystem (/dev/shm) here")
        inbox = Path(os.environ.get("TMPDIR_SHM", SHM)) / f"gd-album-{os.getpid()}-{tmp_path.name}"
        inbox.mkdir()
        yield inbox, tmp_path / "library"
        subprocess.run(["rm", "-rf", "--one-file-system", str(inbox)], check=False)
    else:
        yield tmp_path / "inbox", tmp_path / "library"


def test_an_album_moves_whole_with_its_sidecars_and_the_emptied_folders_go(places) -> None:
    inbox, library = places
    album = inbox / "Artist" / "Comp A (1999)"
    expected = make_album(album)
    (album / "cover link.jpg").symlink_to("cover.jpg")
    result = move_album(album, library / "jazz" / album.name, root=library, expect=snapshot(album), inbox=inbox)
    assert result.destination == library / "jazz" / "Comp A (1999)"
    assert contents(result.destination) == expected
    assert os.readlink(result.destination / "cover link.jpg") == "cover.jpg"  # a link stays a link
    assert not (inbox / "Artist").exists() and inbox.is_dir()  # emptied folders removed, never the inbox
    assert not [p for p in library.rglob("*") if ALBUM_TEMP_MARKER in p.name]


def test_a_clash_with_an_existing_album_folder_gets_a_number_never_a_merge(places) -> None:
    inbox, library = places
    existing = library / "jazz" / "Album"
    existing.mkdir(parents=True)
    (existing / "01.flac").write_bytes(b"the user's own")
    album = inbox / "Album"
    expected = make_album(album)
    result = move_album(album, existing, root=library, expect=snapshot(album), inbox=inbox)
    assert result.destination == library / "jazz" / "Album (2)"
    assert contents(result.destination) == expected
    assert contents(existing) == {"01.flac": hashlib.sha256(b"the user's own").hexdigest()}


def test_an_album_that_changed_since_it_settled_is_not_moved(places) -> None:
    inbox, library = places
    album = inbox / "Album"
    expected = make_album(album)
    snap = snapshot(album)
    (album / "CD1" / "01 - Track.flac").write_bytes(b"rewritten")
    expected["CD1/01 - Track.flac"] = hashlib.sha256(b"rewritten").hexdigest()
    with pytest.raises(SourceChangedError, match="changed since it settled: CD1/01 - Track.flac changed"):
        move_album(album, library / "jazz" / "Album", root=library, expect=snap, inbox=inbox)
    assert contents(album) == expected
    assert not (library / "jazz" / "Album").exists()


def test_an_album_a_writer_holds_open_is_not_moved(places) -> None:
    inbox, library = places
    album = inbox / "Album"
    make_album(album)
    snap = snapshot(album)
    with open(album / "cover.jpg", "ab"):
        with pytest.raises(SourceChangedError, match="holds cover.jpg open for writing"):
            move_album(album, library / "rock" / "Album", root=library, expect=snap, inbox=inbox)
    assert album.is_dir() and not (library / "rock" / "Album").exists()


def test_a_pipe_inside_an_album_stops_the_move_naming_it(tmp_path: Path) -> None:
    album = tmp_path / "inbox" / "Album"
    make_album(album)
    os.mkfifo(album / "fifo")
    with pytest.raises(MoveError, match="fifo is not a file, folder or link"):
        snapshot(album)


def test_a_symlinked_genre_folder_cannot_steer_an_album_out_of_the_library(tmp_path: Path) -> None:
    album = tmp_path / "inbox" / "Album"
    make_album(album)
    (tmp_path / "library").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "library" / "jazz").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(MoveError, match="not a real folder"):
        move_album(album, tmp_path / "library" / "jazz" / "Album", root=tmp_path / "library", expect=snapshot(album))
    assert album.is_dir() and list((tmp_path / "elsewhere").iterdir()) == []


def test_remove_emptied_stops_at_a_folder_with_anything_left_and_never_removes_the_stop(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "keep.txt").write_text("x")
    assert remove_emptied(tmp_path / "a" / "b" / "c", tmp_path) == [tmp_path / "a" / "b" / "c", tmp_path / "a" / "b"]
    assert (tmp_path / "a" / "keep.txt").exists()
    (tmp_path / "empty").mkdir()
    assert remove_emptied(tmp_path, tmp_path) == [] and tmp_path.is_dir()


CHILD = r"""
import os, signal, sys, json
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from genre_daemon.filing.album_mover import move_album, snapshot
album, dest, root, kill_at = Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
snap = snapshot(album)
Path(sys.argv[6]).write_text(json.dumps({"files": snap.files, "links": snap.links, "dirs": snap.dirs}))
def hook(step):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
names = snap.library_names() if sys.argv[7:] == ["names"] else None
move_album(album, dest, root=root, expect=snap, hook=hook, names=names)
"""

SAME_STEPS = ["claimed", "renamed", "none"]
COPY_STEPS = ["claimed", "copied", "placed", "source_removed", "none"]


def skip_unless_a_step_of_this_path(places: tuple[Path, Path], step: str) -> None:
    """A same-filesystem move has its steps, a copy across filesystems others."""
    inbox, library = places
    across = os.stat(inbox.parent if not inbox.exists() else inbox).st_dev != os.stat(library.parent).st_dev
    if step not in (COPY_STEPS if across else SAME_STEPS):
        pytest.skip(f"no step {step!r} on this path")


def move_killed_at(step: str, album: Path, dest: Path, library: Path, *names: str) -> Snapshot:
    """Move ``album`` in a child SIGKILLed at ``step`` (``names``: under library names); the
    snapshot it moved by."""
    snap_file = library.parent / f"snap-{step}.json"
    project = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(project), str(album), str(dest), str(library), step,
                           str(snap_file), *names], capture_output=True, text=True, timeout=60)
    assert proc.returncode == (0 if step == "none" else -signal.SIGKILL), proc.stderr
    return Snapshot.from_json(album, json.loads(snap_file.read_text()))


@pytest.mark.parametrize("step", sorted(set(SAME_STEPS + COPY_STEPS)))
def test_a_kill_at_every_step_leaves_the_album_whole_in_one_place_after_settling(places, step: str) -> None:
    skip_unless_a_step_of_this_path(places, step)
    inbox, library = places
    album = inbox / "Album"
    expected = make_album(album)
    dest = library / "jazz" / "Album"
    snap = move_killed_at(step, album, dest, library)
    state = settle_album(album, dest, snap)
    in_library = contents(dest) if dest.is_dir() else {}
    in_inbox = contents(album) if album.is_dir() else {}
    if state == "placed":
        assert in_library == expected and in_inbox == {}
    else:
        assert state == "in_inbox"
        assert in_inbox == expected and not dest.exists()
    assert not [p for p in library.rglob("*") if ALBUM_TEMP_MARKER in p.name]
    if state == "in_inbox":  # and the move can be done again
        move_album(album, dest, root=library, expect=snapshot(album))
        assert contents(dest) == expected


DOTTED = {"...Blackened.flac": "Blackened.flac", "Blackened.flac": "Blackened.flac",
          "..Bonus/...One.flac": "Bonus/One.flac", ". Intro.flac": "Intro.flac", ".DS_Store": ".DS_Store",
          "02 ...And Justice.flac": "02 ...And Justice.flac"}


@pytest.mark.parametrize("step", sorted(set(SAME_STEPS + COPY_STEPS)))
def test_an_album_with_names_that_begin_with_dots_lands_whole_under_library_names_whatever_step_a_kill_hits(
        places, step: str) -> None:
    """Issue 19: such an album was torn (filed track by track). It moves whole; a title's leading
    dots go as a loose file's do (one taken name: `` (2)``), a hidden ``.DS_Store`` stays hidden,
    and a kill at any step is finished by :func:`settle_album` under the same names."""
    skip_unless_a_step_of_this_path(places, step)
    inbox, library = places
    album = inbox / "...And Justice for All"
    (album / "..Bonus").mkdir(parents=True)
    data = {rel: os.urandom(1000 + i) for i, rel in enumerate(DOTTED)}
    for rel, blob in data.items():
        (album / rel).write_bytes(blob)
    renamed = {"Blackened (2).flac" if rel == "...Blackened.flac" else new: hashlib.sha256(data[rel]).hexdigest()
               for rel, new in DOTTED.items()}
    dest = library / "metal" / "And Justice for All"
    snap = move_killed_at(step, album, dest, library, "names")
    state = settle_album(album, dest, snap, snap.library_names())
    if state == "in_inbox":
        move_album(album, dest, root=library, expect=snapshot(album), names=snapshot(album).library_names())
    assert contents(dest) == renamed and not album.exists()
    assert not [p for p in library.rglob("*") if ALBUM_TEMP_MARKER in p.name]
