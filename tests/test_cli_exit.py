"""How ``genre-daemon`` ends on bad input and on a closed stdout, through the real command run
as a subprocess on a real config and journal: one line on stderr and exit status 2 for bad usage
(no usage block, no traceback); a reader that has gone (``status | head -1``) ends it quietly
with 141 (``genre_daemon/system/exits.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from genre_daemon.config import load_settings
from genre_daemon.filing.journal import Journal
from support import Tree


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    t = Tree(tmp_path)
    for folder in (t.library, t.review, t.quarantine, t.state):
        folder.mkdir(parents=True, exist_ok=True)  # check-config warns on stderr of missing ones
    Journal(load_settings(t.config).journal_path).close()  # a journal: history reads it
    return t


@pytest.mark.parametrize("argv, says", [
    (("history", "--limit", "-1"), "argument --limit: expected a whole number >= 0, got '-1'"),
    (("history", "--limit", "ten"), "argument --limit: expected a whole number >= 0, got 'ten'"),
    (("history", "--json", "--limit"), "argument --limit: expected one argument"),
    (("status", "--no-such-option"), "unrecognized arguments: --no-such-option"),
    (("no-such-command",), "invalid choice: 'no-such-command'"),
], ids=["history-limit-negative", "history-limit-not-a-number", "history-limit-missing", "status-unknown-option",
        "unknown-command"])
def test_bad_usage_is_one_line_on_stderr_and_exit_status_2(tree: Tree, argv: tuple[str, ...], says: str) -> None:
    out = tree.cli(*argv)
    assert out.returncode == 2, out
    assert len(out.stderr.splitlines()) == 1 and says in out.stderr, out.stderr
    assert out.stderr.startswith("genre-daemon") and "--help" in out.stderr and out.stdout == ""


@pytest.mark.parametrize("argv", [("status",), ("status", "--json"), ("check-config",)],
                         ids=["status", "status-json", "check-config"])
def test_output_into_a_pipe_whose_reader_has_gone_ends_quietly_with_141(tree: Tree, argv: tuple[str, ...]) -> None:
    """``genre-daemon status | head -1`` where head has its line and has gone: a real pipe, with
    the real ``head`` at its far end, whose reader has exited before the command writes (the
    test gives head its line and waits for it to end, so the write always meets the closed pipe)."""
    read_end, write_end = os.pipe()
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.PIPE)
    os.close(read_end)
    try:
        os.write(write_end, b"first line\n")
        got, _ = head.communicate(timeout=30)
        assert head.returncode == 0 and got == b"first line\n"
        cmd = [sys.executable, "-m", "genre_daemon.cli", *argv, *(["--config"] if argv[0] != "check-config" else []),
               str(tree.config)]
        out = subprocess.run(cmd, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert out.stderr == "" and out.returncode == 141, out
