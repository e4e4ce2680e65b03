"""The library watch: a real observer on a real folder; the quiet period on an injected clock."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from support import wait_for

from genre_daemon.daemon.libwatch import LibraryWatcher


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_due_once_after_a_burst_settles() -> None:
    clock = Clock()
    w = LibraryWatcher([], quiet_seconds=3.0, clock=clock)
    assert not w.due()  # nothing changed
    for _ in range(50):  # a drag-and-drop of fifty files
        w.changed()
        clock.now += 0.1
    assert not w.due()  # still busy
    clock.now += 3.0
    assert w.due()
    assert not w.due()  # one scan per burst


@pytest.mark.parametrize("polling", [False, True])
def test_a_move_between_genre_folders_is_noticed(tmp_path: Path, polling: bool) -> None:
    library = tmp_path / "library"
    (library / "jazz").mkdir(parents=True)
    (library / "blues").mkdir()
    song = library / "jazz" / "song.flac"
    song.write_bytes(b"x")
    w = LibraryWatcher([library], polling=polling, quiet_seconds=0.0, poll_seconds=0.5)
    w.start()
    try:
        assert w.watching == [library] and w.is_alive()
        song.rename(library / "blues" / "song.flac")
        wait_for(w.due, 15, "the move to be noticed")
    finally:
        w.stop()
    assert not w.is_alive()


def test_a_missing_folder_is_left_to_the_rescans_and_the_others_are_still_watched(tmp_path: Path) -> None:
    w = LibraryWatcher([tmp_path / "absent"])
    w.start()
    assert w.watching == [] and not w.is_alive()
    w.stop()
    library = tmp_path / "library"
    (library / "jazz").mkdir(parents=True)
    before = {t.ident for t in threading.enumerate()}
    w = LibraryWatcher([tmp_path / "absent", library], quiet_seconds=0.0)
    w.start()
    try:
        assert w.watching == [library] and w.is_alive()
        (library / "jazz" / "song.flac").write_bytes(b"x")
        wait_for(w.due, 15, "the new file to be noticed")
    finally:
        w.stop()
    # No observer thread outlives stop() (a half-started observer used to leak its emitters).
    wait_for(lambda: {t.ident for t in threading.enumerate() if t.is_alive()} <= before, 10, "threads to end")


def test_the_daemons_own_placements_do_not_wake_the_scan(tmp_path: Path) -> None:
    library = tmp_path / "library"
    (library / "jazz").mkdir(parents=True)
    w = LibraryWatcher([library], quiet_seconds=0.0)
    w.start()
    try:
        placed = library / "jazz" / "placed.flac"
        w.expect(placed)
        (library / "jazz" / ".x.genre-daemon-partial-1.tmp").write_bytes(b"x")  # the mover's temporary file
        os.rename(library / "jazz" / ".x.genre-daemon-partial-1.tmp", placed)
        marker = library / "jazz" / "user.flac"
        marker.write_bytes(b"y")  # then a user's file: its events are the first to count
        wait_for(w.due, 15, "the user's file to be noticed")
        # Events arrive in order: by the time the user's file counted, ours had been seen and let go.
        assert str(marker) in w.recent and str(placed) not in w.recent
        assert not any(".genre-daemon-" in p for p in w.recent)
    finally:
        w.stop()
