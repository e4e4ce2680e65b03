"""Removing the inbox folders a move emptied (issue 19 A1): never one a program works in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from genre_daemon.filing.album_mover import remove_emptied


def test_an_emptied_folder_that_a_program_works_in_is_kept_until_it_leaves(tmp_path: Path) -> None:
    """A shell ``cd``'d into ``inbox/Slow Album`` to copy the next track: removing the folder
    under it would make that copy fail. A real process with its working folder there."""
    inbox = tmp_path / "inbox"
    folder = inbox / "Artist" / "Slow Album"
    folder.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], cwd=folder,
                            stdin=subprocess.PIPE)
    try:
        assert remove_emptied(folder, inbox) == []
        assert folder.is_dir()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(30)
    assert remove_emptied(folder, inbox) == [folder, folder.parent]
    assert list(inbox.iterdir()) == []

