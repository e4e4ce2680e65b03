"""genre_daemon.filing.recovery on its own: settle_interrupted() and clean_partials() after a move
was interrupted (some by a child process SIGKILLed mid-move, as in test_mover.py). Nothing that
may be the only copy of a file is ever removed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from genre_daemon.filing.mover import PARTIAL_MARKER
from genre_daemon.filing.recovery import clean_partials, settle_interrupted
from test_mover import KILL_CHILD, other_fs, payload, put, run_child, temps  # noqa: F401  (other_fs: a fixture)


def test_settle_removes_a_source_that_is_a_second_link(tmp_path: Path) -> None:
    src = put(tmp_path / "inbox" / "a.mp3", b"x")
    dest = tmp_path / "lib" / "a.mp3"
    dest.parent.mkdir()
    os.link(src, dest)
    assert settle_interrupted(src, dest) == "moved"
    assert not src.exists() and dest.read_bytes() == b"x"



def test_settle_removes_a_source_that_is_an_identical_copy(tmp_path: Path) -> None:
    src = put(tmp_path / "inbox" / "a.mp3", b"same bytes")
    dest = put(tmp_path / "lib" / "a.mp3", b"same bytes")
    assert settle_interrupted(src, dest) == "moved"
    assert not src.exists() and dest.read_bytes() == b"same bytes"



def test_settle_keeps_a_source_that_differs(tmp_path: Path) -> None:
    src = put(tmp_path / "inbox" / "a.mp3", b"mine")
    dest = put(tmp_path / "lib" / "a.mp3", b"someone else's")
    assert settle_interrupted(src, dest) == "not_moved"
    assert src.read_bytes() == b"mine" and dest.read_bytes() == b"someone else's"



def test_settle_when_source_is_gone(tmp_path: Path) -> None:
    dest = put(tmp_path / "lib" / "a.mp3", b"x")
    assert settle_interrupted(tmp_path / "inbox" / "a.mp3", dest) == "moved"
    assert settle_interrupted(tmp_path / "inbox" / "b.mp3", tmp_path / "lib" / "b.mp3") == "missing"



def test_settle_never_deletes_a_temp_that_may_be_the_only_copy(tmp_path: Path,
                                                               other_fs: Path) -> None:
    """Crash after the copy was synced, then the user deleted the source: the temporary file
    may be the only copy left, so it stays for a human."""
    src = put(other_fs / "a.mp3", payload())
    dest = tmp_path / "lib" / "a.mp3"
    proc = run_child(KILL_CHILD, str(src), str(dest), "rename", "temp_synced", "0")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    src.unlink()
    assert settle_interrupted(src, dest) == "missing"
    (temp,) = temps(dest.parent)
    assert (dest.parent / temp).read_bytes() == payload()



def test_settle_does_not_touch_a_symlink_source(tmp_path: Path) -> None:
    dest = put(tmp_path / "lib" / "a.mp3", b"x")
    link = tmp_path / "inbox" / "a.mp3"
    link.parent.mkdir()
    link.symlink_to(dest)
    assert settle_interrupted(link, dest) == "not_moved"
    assert link.is_symlink() and dest.read_bytes() == b"x"



def test_clean_partials_removes_only_temporary_files(tmp_path: Path, other_fs: Path) -> None:
    src = put(other_fs / "a.mp3", payload())
    lib = tmp_path / "lib"
    proc = run_child(KILL_CHILD, str(src), str(lib / "a.mp3"), "rename", "temp_synced", "0")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    put(lib / ".hidden user file", b"keep")
    put(lib / f"a{PARTIAL_MARKER}but not ours.mp3", b"keep")
    put(lib / "song.mp3", b"keep")
    (leftover,) = temps(lib)[:1]
    assert clean_partials(lib) == [lib / leftover]
    assert sorted(os.listdir(lib)) == sorted(
        [".hidden user file", f"a{PARTIAL_MARKER}but not ours.mp3", "song.mp3"])
    assert clean_partials(tmp_path / "missing") == []
