"""``genre-daemon status`` on a real running daemon (``Tree`` from tests/support.py): the files it
left alone in the inbox are counted in its status file and printed, in text and in ``--json``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    t = Tree(tmp_path)
    yield t
    t.reap()


def daemon_json(t: Tree) -> dict[str, object]:
    """The running daemon's status file (replaced atomically, so never half-written)."""
    return json.loads((t.state / "daemon.json").read_text())


def test_status_prints_how_many_files_the_daemon_left_alone(tree: Tree) -> None:
    """Issue 19: the daemon counts what it leaves alone in the inbox (an unsupported extension, a
    download's temporary file that never became audio) and says each once in its log, but
    ``status`` printed no word of it, so the files sat there unexplained."""
    tree.start()
    staging = tree.root / "staging"
    staging.mkdir()
    (staging / "liner notes.txt").write_text("not music\n")
    dead = tone(staging / "song.wav").rename(staging / ".Song.mp3.Qx81ab")  # a download that died
    old = time.time() - 7200
    os.utime(dead, (old, old))
    for f in (staging / "liner notes.txt", dead):
        os.rename(f, tree.inbox / f.name)
    wait_for(lambda: daemon_json(tree).get("left_alone") == 2, 30, "a rescan to count both files")
    text = tree.cli("status")
    assert text.returncode == 0, text.stderr
    assert "left alone: 2 (see the log)" in text.stdout.splitlines()
    as_json = tree.cli("status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["left_alone"] == 2
    log = tree.log.read_text(errors="replace")
    assert f"{tree.inbox / 'liner notes.txt'}: left alone" in log and f"{tree.inbox / dead.name}: left alone" in log
    assert sorted(p.name for p in tree.in_inbox()) == sorted(["liner notes.txt", dead.name])
