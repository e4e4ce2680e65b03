"""Issue 19 (A3, parts of A7) and the last round's leftovers, on the real daemon.

Each test runs ``genre-daemon run`` as a subprocess on its own tree (``Tree`` from
tests/support.py) with real audio (GTZAN and Emotify clips from ../shared/data, tones) and real
signals: titles that begin with dots are filed while hidden temporary names are left alone and
said once; an album quarantined as a duplicate gets its reason file; an album renamed while it is
classified, and an undo, leave no false lines in the log; a loose file three outside SIGKILLs
landed on is checked in a separate process and placed; an inbox deleted and made again is locked
again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import GTZAN_DIR, write_tone
from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)

from genre_daemon.daemon.settling import is_candidate, is_hidden

EMOTIFY_POP = GTZAN_DIR.parent / "emotify-dev" / "pop"


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    t = Tree(tmp_path)
    yield t
    t.reap()


def logged(t: Tree) -> str:
    return t.log.read_text(errors="replace")


def clips(folder: Path, pattern: str, n: int) -> list[Path]:
    """The first ``n`` real recordings in ``folder``; the test is skipped without them."""
    found = sorted(folder.glob(pattern))[:n]
    if len(found) < n:
        pytest.skip(f"../shared/data absent: fewer than {n} {pattern} files in {folder}")
    return found


def journal_row(t: Tree, path: Path) -> sqlite3.Row | None:
    """The newest journal row of ``path``, read-only (the daemon keeps writing meanwhile)."""
    c = sqlite3.connect(f"file:{t.state / 'journal.sqlite3'}?mode=ro", uri=True, timeout=10)
    c.row_factory = sqlite3.Row
    try:
        rows = [r for r in c.execute("SELECT * FROM files ORDER BY id") if os.fsdecode(r["path"]) == str(path)]
    finally:
        c.close()
    return rows[-1] if rows else None


def album_tones(folder: Path, n: int, seconds: float = 4.0) -> Path:
    """An album folder of ``n`` tones (each its own pitch) in ``folder``'s parent's staging."""
    for i in range(n):
        tone(folder / f"{i + 1:02} - track.wav", seconds=seconds, freq=220.0 + 110 * i)
    return folder


# ---------------------------------------------------------------------------------------------
# A3: names that begin with dots.


def test_titles_that_begin_with_dots_are_filed_and_hidden_temporary_names_are_left_alone(tree: Tree) -> None:
    """``...And Justice for All/``, ``...Ready for It.mp3`` and ``Pop/...Baby One More Time.mp3``
    sat in the inbox for ever with nothing said. They are real titles: filed. What downloaders and
    copiers name a file while writing it (rsync's ``.name.XXXXXX``, macOS's ``._name``) is not."""
    metal = clips(GTZAN_DIR / "metal", "*.flac", 3)
    pop = clips(EMOTIFY_POP, "*.mp3", 2)
    staging = tree.root / "staging"
    album = staging / "...And Justice for All"
    album.mkdir(parents=True)
    for i, clip in enumerate(metal):
        shutil.copyfile(clip, album / f"{i + 1:02} - {clip.stem}.flac")
    shutil.copyfile(pop[0], staging / "...Ready for It.mp3")
    (staging / "Pop").mkdir()
    shutil.copyfile(pop[1], staging / "Pop" / "...Baby One More Time.mp3")
    hidden = {".Ready for It.mp3.Xa81kq": pop[0], "._...Ready for It.mp3": pop[0]}
    for name, src in hidden.items():
        shutil.copyfile(src, staging / name)
    tree.start()
    for name in ("...And Justice for All", "...Ready for It.mp3", "Pop", *hidden):
        os.rename(staging / name, tree.inbox / name)
    wait_for(lambda: len(tree.placed()) == 5 and sorted(p.name for p in tree.in_inbox()) == sorted(hidden), 120,
             "the album and both songs filed")
    (filed_album,) = {p.parent for p in tree.placed() if p.suffix == ".flac"}
    assert "And Justice for All" in filed_album.name
    assert sorted(p.name for p in filed_album.iterdir()) == sorted(f"{i + 1:02} - {c.stem}.flac"
                                                                   for i, c in enumerate(metal))
    songs = sorted(p.name for p in tree.placed() if p.suffix == ".mp3")
    assert songs == ["Baby One More Time.mp3", "Ready for It.mp3"]  # shown, not hidden, in the library
    sources = {Path(str(h["source"])).name for h in tree.history()}
    assert {"...Ready for It.mp3", "...Baby One More Time.mp3"} <= sources
    assert tree.quarantined() == []


@pytest.mark.parametrize(("name", "hidden"), [
    ("...Ready for It.mp3", False), (". Intro.flac", False), ("..Two Dots.wav", False),
    (".song.mp3", True), ("._...Ready for It.mp3", True), (".Ready for It.mp3.Xa81kq", True),
    ("....Ready for It.mp3.Xa81kq", True),  # rsync's temporary name of a title with dots
    ("...Ready for It.mp3.part", True), ("....Ready for It.mp3.genre-daemon-partial-1a2b3c4d-x.mp3", True),
    (".", True), ("..", True), (".quarantine", True), ("plain.mp3", False),
])
def test_which_names_beginning_with_dots_are_hidden(name: str, hidden: bool) -> None:
    assert is_hidden(name, ["mp3", "flac", "wav"]) is hidden


def test_a_folder_titled_with_dots_is_looked_into_and_a_hidden_one_is_not() -> None:
    inbox = Path("/in")
    assert is_candidate(inbox / "...And Justice for All" / "01.flac", inbox, ["flac"])
    assert is_candidate(inbox / "Pop" / "...Baby One More Time.mp3", inbox, ["mp3"])
    assert not is_candidate(inbox / ".stash" / "01.flac", inbox, ["flac"])
    assert not is_candidate(inbox / ".." / "elsewhere" / "01.flac", inbox, ["flac"])
    assert not is_hidden("...And Justice for All") and is_hidden(".genre-daemon-album-x.tmp")


def stale_temp(folder: Path, name: str) -> Path:
    """A download's temporary file named ``name`` (audio inside), untouched for two hours: as a
    download that died leaves it."""
    path = tone(folder / "being-written.wav").rename(folder / name)
    old = time.time() - 7200
    os.utime(path, (old, old))
    return path


def test_a_hidden_file_that_never_becomes_audio_is_said_once_not_on_every_rescan(tree: Tree) -> None:
    """A hidden temporary file left behind (a download that died) sat in the inbox with nothing
    said. Once it has not changed for a while, one line says it is left alone; the rescans
    every 2 s do not say it again. A hidden file still being written is not said at all."""
    tree.start()
    staging = tree.root / "staging"
    staging.mkdir()
    first = stale_temp(staging, ".Song.mp3.Qx81ab")
    os.rename(first, tree.inbox / first.name)
    fresh = tone(staging / "Other.wav").rename(tree.inbox / ".Other.mp3.part")
    said = f"{tree.inbox / first.name}: left alone"
    wait_for(lambda: said in logged(tree), 30, "the left-alone line")
    # Each of these is said by a rescan (events say nothing of hidden files): once two more have
    # been said, the first one was passed over by at least two rescans.
    for i in range(2):
        later = stale_temp(staging, f".later-{i}.wav.tmp")
        os.rename(later, tree.inbox / later.name)
        wait_for(lambda n=later.name: f"{tree.inbox / n}: left alone" in logged(tree), 30, f"rescan {i + 1}")
    assert tree.stop() == 0
    log = logged(tree)
    assert log.count(said) == 1
    assert f"{fresh}: left alone" not in log
    assert (tree.inbox / first.name).is_file() and fresh.is_file()


# ---------------------------------------------------------------------------------------------
# A7: an album quarantined as a duplicate; an album renamed while classified; undo.


def quarantine_a_duplicate_album(tree: Tree) -> Path:
    """With ``duplicates: quarantine``, the album ``First`` (two tones) filed, then its copy
    ``Again`` quarantined whole; returns the quarantined folder."""
    tree.settings["duplicates"] = "quarantine"
    tree.write_config()
    staging = tree.root / "staging"
    album_tones(staging / "First", 2)
    shutil.copytree(staging / "First", staging / "Again")
    tree.start()
    os.rename(staging / "First", tree.inbox / "First")
    wait_for(lambda: len(tree.placed()) == 2 and not tree.in_inbox(), 60, "the first album filed")
    os.rename(staging / "Again", tree.inbox / "Again")
    again = tree.quarantine / "Again"
    wait_for(lambda: again.is_dir() and not tree.in_inbox(), 60, "the duplicate album quarantined")
    return again


def test_an_album_quarantined_as_a_duplicate_has_a_reason_file_as_a_loose_file_does(tree: Tree) -> None:
    again = quarantine_a_duplicate_album(tree)
    note = tree.quarantine / "Again.reason.txt"
    wait_for(note.is_file, 10, "the album's reason file")
    text = note.read_text()
    assert "every track is already in the library" in text and str(tree.inbox / "Again") in text
    assert sorted(p.name for p in again.iterdir()) == ["01 - track.wav", "02 - track.wav"]


def test_an_album_renamed_while_it_is_classified_is_filed_under_its_new_name_with_no_false_errors(
        tree: Tree) -> None:
    """Renaming the folder midway made every track not yet classified fail to decode, then fail
    to move to quarantine: four false ``cannot move ... to '.quarantine/...'`` lines."""
    album = album_tones(tree.root / "staging" / "Slow", 6, seconds=30.0)
    tree.start()
    os.rename(album, tree.inbox / "Slow")
    wait_for(lambda: "album Slow: 6 tracks and 0 other files settled; classifying" in logged(tree), 60,
             "the album's classification to begin")
    os.rename(tree.inbox / "Slow", tree.inbox / "Renamed")
    wait_for(lambda: len(tree.placed()) == 6 and not tree.in_inbox(), 180, "the renamed album filed")
    assert {p.parent.name for p in tree.placed()} == {"Renamed"}
    assert tree.quarantined() == []
    log = logged(tree)
    assert "cannot move" not in log and "-> quarantine" not in log


def test_an_album_filed_again_after_an_undo_leaves_no_runtime_warning_in_the_log(tree: Tree) -> None:
    """watchdog warned (``RuntimeWarning: Callback ... already exists``) when a folder it had
    watched came back into the library: undo took the album out and removed its emptied genre
    folder first, so watchdog kept the album's watch; filed again, the album met it."""
    tree.settings["rescan_interval"] = 3600  # label scans come from the library watcher alone
    tree.write_config()
    album = album_tones(tree.root / "staging" / "Back Again", 2)
    tree.start()
    os.rename(album, tree.inbox / "Back Again")
    wait_for(lambda: len(tree.placed()) == 2 and not tree.in_inbox(), 60, "the album filed")
    out = tree.cli("undo")
    assert out.returncode == 0, out.stderr
    back = tree.in_inbox()
    assert len(back) == 2
    for track in back:  # changed after the undo: taken again
        os.utime(track)
    wait_for(lambda: len(tree.placed()) == 2 and not tree.in_inbox(), 60, "the album filed again")
    # A label of the user's, after the album came back: once the library watcher has woken the
    # label scan for it, it has handled the album's events before it (inotify keeps their order).
    tone(tree.library / "blues" / "mine.wav", freq=150)
    status = tree.state / "daemon.json"
    wait_for(lambda: status.exists() and json.loads(status.read_text()).get("new_labels"), 60,
             "the library watcher to see the user's label")
    assert tree.stop() == 0
    assert "RuntimeWarning" not in logged(tree), logged(tree)


# ---------------------------------------------------------------------------------------------
# Left from the last round: outside kills of a loose file; the inbox lock after a new inbox.


def test_a_loose_file_the_daemon_was_killed_on_three_times_is_checked_apart_and_placed_when_healthy(
        tree: Tree) -> None:
    """Three SIGKILLs from outside, each while the file is ``classifying``: a 44 s, 44.1 kHz
    stereo wav (seconds of work). The stops are blamed on the file, but it is classified in a
    separate process before it is called poison, as an album's track is: it is fine there, so it
    is placed, not quarantined."""
    src = write_tone(tree.root / "healthy.wav", seconds=44, sr=44100, channels=2, freq=220)
    data = src.read_bytes()
    path = tree.inbox / "healthy.wav"
    src.rename(path)
    for kill in range(1, 4):
        tree.start()
        wait_for(lambda n=kill: (r := journal_row(tree, path)) is not None and r["state"] == "classifying"
                 and r["attempts"] == n, 60, f"classification number {kill}")
        tree.stop(signal.SIGKILL)
        assert journal_row(tree, path)["state"] == "classifying", "killed outside the classification"
    tree.start()
    wait_for(lambda: tree.placed() and not tree.in_inbox(), 120, "the file placed")
    (placed,) = tree.placed()
    assert placed.read_bytes() == data and tree.quarantined() == []
    assert "classified in a separate process it is fine" in logged(tree)
    assert tree.stop() == 0


def test_an_inbox_deleted_and_made_again_is_locked_again_so_a_second_daemon_is_refused(
        tree: Tree, tmp_path: Path) -> None:
    tree.settings["rescan_interval"] = 1
    tree.write_config()
    tree.start()
    shutil.rmtree(tree.inbox)
    wait_for(lambda: "is gone; waiting for it to come back" in logged(tree), 30, "the daemon to notice")
    tree.inbox.mkdir()
    wait_for(lambda: "watcher restarted" in logged(tree), 30, "the daemon to watch the new inbox")
    (tmp_path / "second").mkdir()
    other = Tree(tmp_path / "second", inbox=tree.inbox)
    second = subprocess.Popen([sys.executable, "-m", "genre_daemon.cli", "run", "--config", str(other.config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: second.poll() is not None or (other.state / "daemon.json").exists(), 60,
                 "the second daemon to start or be refused")
    finally:
        if second.poll() is None:
            second.kill()
    _, err = second.communicate(timeout=30)
    assert second.returncode == 2, err
    assert f"is watching inbox {tree.inbox}" in err and f"pid {tree.proc.pid}" in err
    tone(tree.inbox / ".a.wav")
    os.rename(tree.inbox / ".a.wav", tree.inbox / "a.wav")
    wait_for(lambda: tree.placed() and not tree.in_inbox(), 60, "the first daemon still files")
    assert tree.stop() == 0
