"""Output a person reads: on a real terminal (a pty) the progress bar of ``import`` and the log
lines of each file it places never share a line; text ``status`` names the genres waiting for
examples (a label folder below ``retrain.min_per_genre``), from the real library and journal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from conftest import write_tone
from support import Tree, pytestmark  # noqa: F401  (pytestmark: needs the shipped model)

STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) ")


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path)
    yield t
    t.reap()


def on_a_terminal(argv: list[str], timeout: float = 300) -> tuple[int, str]:
    """Run ``argv`` with stdout and stderr on a pty of 100 columns; its exit status and all it
    wrote to the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout), b"".join(chunks).decode(errors="replace")


def test_log_lines_never_break_the_progress_bar_on_a_terminal(tree: Tree, tmp_path: Path) -> None:
    music = tmp_path / "music"
    for i in range(4):
        write_tone(music / f"song{i}.wav", seconds=4.0, sr=22050, freq=300.0 + 120 * i)
    code, screen = on_a_terminal([sys.executable, "-m", "genre_daemon.cli", "import", str(music), "--workers", "1",
                                  "--config", str(tree.config)])
    assert code == 0, screen
    pieces = re.split(r"[\r\n]", screen)
    assert any("file/s" in p or "%|" in p for p in pieces), screen  # the bar was drawn
    placed = [p for p in pieces if re.search(r"song\d\.wav -> ", p)]
    assert len(placed) == 4, screen
    glued = [p for p in placed if not STAMP.match(p)]  # a line that does not start where a line starts
    assert glued == [], screen


def test_text_status_names_the_genres_waiting_for_examples(tree: Tree) -> None:
    for i in range(2):
        write_tone(tree.library / "chiptune" / f"tune{i}.wav", seconds=4.0, sr=22050, freq=700.0 + 50 * i)
    assert tree.cli("run", "--once").returncode == 0  # the journal: what the daemon placed (nothing yet)
    text = tree.cli("status")
    assert text.returncode == 3, text
    assert "genres waiting for examples: chiptune 2 of 10" in text.stdout.splitlines(), text.stdout
    got = json.loads(tree.cli("status", "--json").stdout)
    assert got["waiting_genres"] == {"chiptune": 2}
