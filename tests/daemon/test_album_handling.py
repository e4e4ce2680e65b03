"""Albums on the real daemon: dropped as folders, filed whole under one genre with their sidecars,
nothing left behind in the inbox, bytes unchanged; undone as a whole."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import GTZAN_DIR
from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)

SIDECARS = {"cover.jpg": b"\xff\xd8\xff\xe0 a jpeg", "folder.jpg": b"\xff\xd8\xff another", "rip.log": b"EAC log\n",
            "playlist.m3u": b"#EXTM3U\n01.flac\n", "info.nfo": b"nfo text", "lyrics.txt": b"la la"}


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path, min_confidence=0.0)
    yield t
    t.reap()


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def real_clips(genre: str, n: int) -> list[Path]:
    clips = sorted((GTZAN_DIR / genre).glob("*"))[:n]
    if len(clips) < n:
        pytest.skip(f"../shared/data absent: no {genre} clips of real music to make an album of")
    return clips


def make_album(folder: Path, clips: list[Path], discs: bool = False) -> None:
    for i, clip in enumerate(clips):
        sub = folder / (f"CD{1 + i % 2}" if discs else "")
        sub.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, sub / f"{i + 1:02} - {clip.stem}{clip.suffix}")
    for name, data in SIDECARS.items():
        (folder / name).write_bytes(data)
    (folder / "album.cue").write_text("FILE \"01.flac\" WAVE\n")


def albums_in(library: Path) -> dict[str, Path]:
    """Album folder name -> where it is, for every folder in the library holding a cue sheet."""
    return {cue.parent.name: cue.parent for cue in library.rglob("album.cue")}


@pytest.mark.skipif(not GTZAN_DIR.is_dir(), reason="../shared/data absent: no real music to make albums of")
def test_two_albums_and_a_loose_file_are_filed_whole_with_nothing_left_in_the_inbox(tree: Tree) -> None:
    staging = tree.root / "staging"
    make_album(staging / "Comp A (1999)", real_clips("classical", 4), discs=True)
    make_album(staging / "Artist" / "Second Album", real_clips("metal", 3))
    loose = real_clips("jazz", 1)[0]
    expected = {name: digests(staging / rel) for name, rel in
                (("Comp A (1999)", "Comp A (1999)"), ("Second Album", "Artist/Second Album"))}
    loose_digest = hashlib.sha256(loose.read_bytes()).hexdigest()
    tree.start()
    for entry in ("Comp A (1999)", "Artist"):  # the way a file manager drops folders: a rename into the inbox
        shutil.move(str(staging / entry), str(tree.inbox / entry))
    shutil.copy(loose, tree.inbox / loose.name)
    wait_for(lambda: len(albums_in(tree.library)) == 2 and not tree.in_inbox() and len(tree.placed()) == 8,
             120, "both albums and the loose file to be filed")
    wait_for(lambda: not [p for p in tree.inbox.iterdir() if p != tree.quarantine], 30,
             "the emptied folders to be removed from the inbox")
    found = albums_in(tree.library)
    for name, where in found.items():
        assert digests(where) == expected[name]  # every track and sidecar, layout and bytes kept
        genre_folder = where.parent
        assert genre_folder.parent == tree.library  # <library>/<genre>/<album folder>/
    assert {p.parent.name for p in found.values()} != set() and len({p.parent for p in found.values()}) >= 1
    placed_loose = [p for p in tree.placed() if p.name == loose.name]
    assert len(placed_loose) == 1 and placed_loose[0].parent.parent == tree.library
    assert hashlib.sha256(placed_loose[0].read_bytes()).hexdigest() == loose_digest
    assert tree.inbox.is_dir()
    history = tree.history()
    assert len(history) == 8 and {h["genre"] for h in history if "Comp A" in h["destination"]} == \
        {found["Comp A (1999)"].parent.name}
    log = tree.log.read_text()
    assert "album Comp A (1999) ->" in log and "album Second Album ->" in log


def test_an_album_of_tones_is_held_until_its_last_file_arrives_then_moves_as_one(tree: Tree) -> None:
    tree.start()
    album = tree.inbox / "Slow Album"
    album.mkdir()
    tone(album / "01.wav", freq=330)
    tone(album / "02.wav", freq=440)
    (album / "cover.jpg").write_bytes(b"jpeg")
    wait_for(lambda: len(albums_like(tree.library, "Slow Album")) == 1 and not album.exists(), 60,
             "the album to be filed")
    placed = albums_like(tree.library, "Slow Album")[0]
    assert sorted(p.name for p in placed.iterdir()) == ["01.wav", "02.wav", "cover.jpg"]


def albums_like(library: Path, name: str) -> list[Path]:
    return [p for p in library.rglob(name) if p.is_dir()]


def drop_tone_album(tree: Tree, name: str, freqs: tuple[float, ...] = (300, 500)) -> Path:
    """An album of tones (``a.wav``, ``b.wav``, ...) made beside the inbox and renamed into it whole,
    as a file manager drops a folder; returns its inbox folder."""
    staging = tree.root / "staging" / name
    staging.mkdir(parents=True)
    for letter, freq in zip("abcdefgh", freqs):
        tone(staging / f"{letter}.wav", freq=freq)
    shutil.move(str(staging), str(tree.inbox / name))
    return tree.inbox / name


def test_a_clash_with_an_existing_album_folder_gets_a_number_never_a_merge(tree: Tree) -> None:
    tree.settings["min_confidence"] = 1.0  # everything to review: a known destination
    tree.write_config()
    existing = tree.review / "Same Name"
    existing.mkdir(parents=True)
    (existing / "keep.txt").write_text("the user's")
    tree.start()
    drop_tone_album(tree, "Same Name")
    wait_for(lambda: (tree.review / "Same Name (2)").is_dir() and not (tree.inbox / "Same Name").exists(), 60,
             "the album to go to review beside the existing folder")
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in (tree.review / "Same Name (2)").iterdir()) == ["a.wav", "b.wav"]


def test_undo_puts_the_whole_album_back(tree: Tree) -> None:
    tree.start()
    staging = tree.root / "staging" / "Undo Me"
    staging.mkdir(parents=True)
    tone(staging / "a.wav", freq=300)
    tone(staging / "b.wav", freq=600)
    (staging / "cover.jpg").write_bytes(b"jpeg")
    expected = digests(staging)
    shutil.move(str(staging), str(tree.inbox / "Undo Me"))
    wait_for(lambda: albums_like(tree.library, "Undo Me") and not (tree.inbox / "Undo Me").exists(), 60,
             "the album to be filed")
    out = tree.cli("undo")
    assert out.returncode == 0, out.stderr
    assert "album" in out.stdout
    assert digests(tree.inbox / "Undo Me") == expected
    assert albums_like(tree.library, "Undo Me") == []
    status = json.loads(tree.cli("status", "--json").stdout)
    assert status is not None


def suspect_album(tree: Tree) -> Path:
    """An album whose first track the journal says stopped the daemon three times."""
    from genre_daemon.daemon.albums import album_snapshot_json
    from genre_daemon.filing.album_mover import snapshot
    from genre_daemon.filing.journal import FileIdentity, Journal

    album = tree.inbox / "Suspect"
    album.mkdir()
    for i, freq in enumerate((300, 400, 500)):
        tone(album / f"{i:02}.wav", freq=freq)
    (album / "cover.jpg").write_bytes(b"jpeg")
    tree.state.mkdir(parents=True, exist_ok=True)
    with Journal(tree.state / "journal.sqlite3") as j:
        ids = [j.observe(p, FileIdentity.of(p))[0].id for p in sorted(album.glob("*.wav"))]
        row = j.open_album(album, ids, album_snapshot_json(snapshot(album)))
        j.start_album(row.id)
        for _ in range(3):
            j.begin_track(ids[0])  # three stops while classifying 00.wav
    return album


def test_a_track_the_daemon_stopped_on_three_times_is_checked_apart_and_stays_when_healthy(tree: Tree) -> None:
    """A stop blames the track being classified, but outside kills are not the track's fault:
    after three, it is classified in a separate process; it classifies there, so it stays."""
    album = suspect_album(tree)
    tree.start()
    wait_for(lambda: albums_like(tree.library, "Suspect") and not album.exists(), 90, "the album to be filed")
    placed = albums_like(tree.library, "Suspect")[0]
    assert sorted(p.name for p in placed.iterdir()) == ["00.wav", "01.wav", "02.wav", "cover.jpg"]
    assert "classified in a separate process it is fine" in tree.log.read_text()
    assert tree.quarantined() == []


def test_a_track_that_fails_apart_too_is_poison_and_leaves_its_album_which_stays_whole(
        tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    """The separate process gets no memory beyond what the model needs (a real rlimit), so
    classifying the suspect fails there too: that is poison; it goes to quarantine with the
    reason and the album is filed whole without it."""
    monkeypatch.setenv("GENRE_DAEMON_PROBE_MEMORY_MB", "0")
    album = suspect_album(tree)
    tree.start()
    wait_for(lambda: albums_like(tree.library, "Suspect") and not album.exists(), 90, "the album to be filed")
    placed = albums_like(tree.library, "Suspect")[0]
    assert sorted(p.name for p in placed.iterdir()) == ["01.wav", "02.wav", "cover.jpg"]
    reason = (tree.quarantine / "00.wav.reason.txt").read_text()
    assert "stopped 3 times while classifying it" in reason and "in a separate process too" in reason


# --- issue 19: undo moves only what it placed; history and undo count the same entries -------------


@pytest.mark.skipif(not GTZAN_DIR.is_dir(), reason="../shared/data absent: no real music to make an album of")
def test_album_undo_takes_back_only_what_it_placed_and_says_what_stayed(tree: Tree) -> None:
    """The tester's report: a file the user added to the filed album's folder, and track 01 the user
    moved to jazz/, stay where the user put them; the rest goes back to the inbox folder."""
    staging = tree.root / "staging" / "Three Pieces"
    staging.mkdir(parents=True)
    for i, clip in enumerate(real_clips("classical", 3)):
        shutil.copy(clip, staging / f"{i + 1:02} {clip.stem}{clip.suffix}")
    for name in ("cover.jpg", "rip.log", "album.cue"):
        (staging / name).write_bytes(SIDECARS.get(name, b"FILE \"01.flac\" WAVE\n"))
    expected = digests(staging)
    tree.start()
    shutil.move(str(staging), str(tree.inbox / "Three Pieces"))
    wait_for(lambda: albums_like(tree.library, "Three Pieces") and not (tree.inbox / "Three Pieces").exists(), 120,
             "the album to be filed")
    placed = albums_like(tree.library, "Three Pieces")[0]
    user_file = placed / "99 user added.flac"
    shutil.copy(real_clips("jazz", 1)[0], user_file)
    track_01 = next(placed.glob("01 *"))
    (tree.library / "jazz").mkdir(exist_ok=True)
    corrected = tree.library / "jazz" / track_01.name
    track_01.rename(corrected)

    out = tree.cli("undo")
    assert out.returncode == 0, out.stderr
    back = tree.inbox / "Three Pieces"
    assert digests(back) == {k: v for k, v in expected.items() if not k.startswith("01 ")}
    assert sorted(p.name for p in placed.iterdir()) == ["99 user added.flac"]  # the user's file stays
    assert corrected.is_file()  # the correction stays
    said = out.stdout
    assert "the album Three Pieces: 2 tracks and 3 other files went back" in said and "whole" not in said
    stayed = said.split("stayed:", 1)[1]
    assert f"{track_01.name} (you moved it to {corrected}" in stayed and "99 user added.flac" in stayed
    moves = {Path(str(h["destination"])).name: h for h in tree.history()}
    assert moves[track_01.name]["undone"] is False  # still a placement: the correction is a label
    assert [moves[p.name]["undone"] for p in back.glob("0*")] == [True, True]
    assert json.loads(tree.cli("status", "--json").stdout)["counts"]["held"] == 2


def test_history_shows_an_album_as_one_entry_and_undo_last_n_undoes_those_entries(tree: Tree) -> None:
    tree.start()
    tone(tree.inbox / "loose.wav", freq=250)
    wait_for(lambda: [p.name for p in tree.placed()] == ["loose.wav"], 60, "the loose file to be filed")
    for name, freqs in (("First", (300, 350)), ("Second", (400, 450))):
        drop_tone_album(tree, name, freqs)
        wait_for(lambda: albums_like(tree.library, name) and not (tree.inbox / name).exists(), 60, f"album {name}")

    lines = tree.cli("history").stdout.splitlines()
    assert len(lines) == 3, lines  # two albums and a file, not five moves
    assert "album Second (2 tracks; album " in lines[0] and "album First (2 tracks; album " in lines[1]
    assert "loose.wav" in lines[2] and " album " not in lines[2]
    rows = tree.history()
    albums = {Path(str(r["destination"])).parent.name: r["album_id"] for r in rows}
    assert albums["Second"] != albums["First"] and isinstance(albums["First"], int)
    assert [r["album_id"] for r in rows if str(r["destination"]).endswith("loose.wav")] == [None]
    assert f"album {albums['Second']})" in lines[0] and f"album {albums['First']})" in lines[1]

    out = tree.cli("undo", "--last", "2")  # the top two entries history showed
    assert out.returncode == 0, out.stderr
    assert sorted(p.relative_to(tree.inbox).as_posix() for p in tree.in_inbox()) == [
        "First/a.wav", "First/b.wav", "Second/a.wav", "Second/b.wav"]
    assert [p.name for p in tree.placed()] == ["loose.wav"]
    after = tree.cli("history").stdout.splitlines()
    assert [line.endswith("(undone)") for line in after] == [True, True, False]


def test_undo_removes_the_template_folders_and_names_the_album_by_its_folder(tree: Tree) -> None:
    tree.settings["path_template"] = "{genre}/{artist|Unknown Artist}/{album|Unknown Album}/{filename}"
    tree.write_config()
    tree.start()
    folder = drop_tone_album(tree, "My Rip")
    wait_for(lambda: albums_like(tree.library, "Unknown Album") and not folder.exists(), 60,
             "the album to be filed under the template's folders")
    genre_folder = albums_like(tree.library, "Unknown Album")[0].parent.parent
    (genre_folder / "mine.txt").write_text("the user's")

    out = tree.cli("undo")
    assert out.returncode == 0, out.stderr
    said = out.stdout.splitlines()[0]
    assert "the album My Rip went back whole (2 tracks)" in said and "Unknown Album" not in said
    assert sorted(p.name for p in folder.iterdir()) == ["a.wav", "b.wav"]
    assert sorted(p.name for p in genre_folder.iterdir()) == ["mine.txt"]  # artist and album folders removed
    assert tree.library.is_dir()
