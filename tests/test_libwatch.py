"""The library watch: a real observer on a real folder; the quiet period on an injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_daemon import wait_for

from genre_daemon.libwatch import LibraryWatcher


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
    w = LibraryWatcher([library], polling=polling, quiet_seconds=0.0)
    w.start()
    try:
        assert w.watching == [library] and w.is_alive()
        song.rename(library / "blues" / "song.flac")
        wait_for(w.due, 15, "the move to be noticed")
    finally:
        w.stop()
    assert not w.is_alive()


def test_a_missing_folder_is_left_to_the_rescans(tmp_path: Path) -> None:
    w = LibraryWatcher([tmp_path / "absent"])
    w.start()
    assert w.watching == [] and not w.is_alive()
    w.stop()
