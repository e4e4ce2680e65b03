"""The real daemon with its review page on keeps its journal whole while the CLI reads it (issue 19
J1). The page runs in the daemon's process on a second journal connection; opening that one used
to drop the POSIX locks of the first, so the first `genre-daemon status` to close found no reader
left and deleted the WAL the daemon went on journalling into: later moves were missing from
`history` and lost for good at a kill -9. Real audio files, the real daemon and CLI as
subprocesses, a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)
from genre_daemon.config.settings import JOURNAL_NAME
from genre_daemon.web.tokens import ENDPOINT_FILE

ROUNDS = 3
PER_ROUND = 2


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    t = Tree(tmp_path, web={"enabled": True, "listen": "127.0.0.1:0"})
    yield t
    t.reap()


def journal_fds(pid: int, journal: Path) -> list[str]:
    """Where the daemon's open descriptors of the journal's files point (``... (deleted)`` when
    the file was unlinked under it)."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed since the listing
        if target.startswith(str(journal)):
            found.append(target)
    return found


def test_cli_calls_while_files_flow_lose_no_move_with_the_page_on(tree: Tree) -> None:
    tree.start()
    assert tree.proc is not None
    assert json.loads((tree.state / ENDPOINT_FILE).read_text())["pid"] == tree.proc.pid  # the page is on
    journal = tree.state / JOURNAL_NAME
    for r in range(ROUNDS):
        for i in range(PER_ROUND):
            src = tone(tree.root / f"r{r}-{i}.wav", seconds=3.0, freq=220.0 * (1 + r + i))
            os.rename(src, tree.inbox / src.name)
        # The CLI reads (and closes) the journal while the daemon files these.
        for command in ("status", "history"):
            out = tree.cli(command)
            assert out.returncode == 0, out.stderr
        done = (r + 1) * PER_ROUND
        wait_for(lambda: len(tree.placed()) + len(tree.quarantined()) == done, 60, f"{done} files filed")
    filed = {str(p) for p in tree.placed() + tree.quarantined()}
    assert len(filed) == ROUNDS * PER_ROUND and tree.in_inbox() == []

    open_files = journal_fds(tree.proc.pid, journal)
    assert open_files and not [f for f in open_files if f.endswith("(deleted)")], open_files
    tree.stop(signal.SIGKILL)

    moves = tree.history()
    assert {m["destination"] for m in moves} == filed
    c = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=10)
    try:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        c.close()
