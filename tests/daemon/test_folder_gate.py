"""The folder-level quiet period (issue 19 A1): a folder of the inbox is not touched until nothing
in it was written for ``folder_quiet_seconds`` and no program holds a file in it open for writing.

Real files and real writer processes; only the clocks are injected (ctimes cannot be set, so the
gate is asked as if that much time had passed), as for the Settler's tests."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genre_daemon.daemon.settling import HELD_RECHECK, FolderGate

QUIET = 300.0


class Clock:
    """Wall and monotonic time moved by hand, starting at the real wall time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir()
    return tmp_path / "inbox"


def gate_for(inbox: Path, clock: Clock, **kw: object) -> FolderGate:
    return FolderGate(inbox, QUIET, clock=clock, wall=clock, **kw)  # type: ignore[arg-type]


def test_a_folder_written_to_just_now_is_held_and_goes_once_quiet_a_loose_file_goes_at_once(inbox: Path) -> None:
    clock = Clock()
    album = inbox / "Slow Album"
    album.mkdir()
    (album / "01.flac").write_bytes(b"track one")
    (inbox / "single.flac").write_bytes(b"loose")
    gate = gate_for(inbox, clock)
    assert gate.allows(inbox / "single.flac")
    assert not gate.allows(album / "01.flac")
    assert abs(gate.busy_for(album) - QUIET) < 5  # the whole quiet period from its last write
    clock.now += QUIET / 2  # a ripper's pause, however much longer than settle_seconds
    assert not gate.allows(album / "01.flac")
    clock.now += QUIET
    assert gate.allows(album / "01.flac")


@pytest.mark.parametrize("name", ["cover.jpg", "02.flac.part", ".02.flac.XXXXXX", "CD2/01.flac"])
def test_anything_written_in_the_folder_keeps_it_busy_sidecars_partials_and_hidden_files_too(
        inbox: Path, name: str) -> None:
    clock = Clock()
    album = inbox / "Album"
    (album / name).parent.mkdir(parents=True)
    (album / name).write_bytes(b"arriving")
    assert gate_for(inbox, clock).busy_for(album) > QUIET - 5


def test_a_quiet_folder_is_looked_at_again_after_an_event_under_it(inbox: Path) -> None:
    """The walk's verdict is kept (no walk per file per tick) until an event says something
    arrived: then the folder is walked again."""
    clock = Clock()
    album = inbox / "Album"
    album.mkdir()
    (album / "01.flac").write_bytes(b"one")
    clock.now += QUIET + 1
    held = {"now": False}
    gate = gate_for(inbox, clock, writers=lambda p: held["now"])
    assert gate.ready(album)
    held["now"] = True  # a writer opened a file in it
    assert gate.ready(album)  # no event yet: the verdict stands
    gate.changed(album / "02.flac")
    assert not gate.ready(album)


@pytest.fixture
def writer(inbox: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """A real process holding ``Album/02.flac`` open for writing, silent, until its stdin closes."""
    album = inbox / "Album"
    album.mkdir()
    (album / "01.flac").write_bytes(b"one")
    code = "import sys; f = open(sys.argv[1], 'ab'); print('open', flush=True); sys.stdin.read()"
    proc = subprocess.Popen([sys.executable, "-c", code, str(album / "02.flac")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"open\n"
    yield album, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_a_folder_in_which_a_program_holds_a_file_open_for_writing_is_held_however_quiet(
        inbox: Path, writer: tuple[Path, subprocess.Popen[bytes]]) -> None:
    album, proc = writer
    clock = Clock()
    clock.now += QUIET + 1  # nothing written for longer than the quiet period
    gate = gate_for(inbox, clock)
    assert not gate.allows(album / "01.flac")
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(30)
    clock.now += HELD_RECHECK
    assert gate.allows(album / "01.flac")
