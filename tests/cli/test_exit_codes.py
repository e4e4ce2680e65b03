"""The exit statuses of docs/cli.md, each through the real ``genre-daemon`` run as a subprocess on
a real config, journal and audio: 0 success, 1 some files failed, 2 bad usage or config, 3 from
``status`` when no daemon runs for the config; a closed stdout ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_tone
from support import Tree, pytestmark  # noqa: F401  (pytestmark: needs the shipped model)


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genre_daemon.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path)
    yield t
    t.reap()


def test_status_of_a_stopped_daemon_exits_3_and_still_prints_what_it_knows(tree: Tree) -> None:
    write_tone(tree.inbox / "song.wav", seconds=4.0, sr=22050, freq=300.0)
    assert tree.cli("run", "--once").returncode == 0  # a journal with one move in it
    text = tree.cli("status")
    assert text.returncode == 3, text
    assert text.stdout.splitlines()[0] == "not running" and "moved 1" in text.stdout and text.stderr == ""
    as_json = tree.cli("status", "--json")
    assert as_json.returncode == 3, as_json
    got = json.loads(as_json.stdout)
    assert got["running"] is False and got["counts"]["moved"] == 1 and as_json.stderr == ""


def test_status_of_a_running_daemon_exits_0_and_a_second_sorter_on_its_inbox_exits_2(tree: Tree) -> None:
    tree.start()
    text = tree.cli("status")
    assert text.returncode == 0, text
    assert text.stdout.startswith(f"running: pid {tree.proc.pid}") and "new labels: 0 since the last retrain" \
        in text.stdout, text.stdout
    assert json.loads(tree.cli("status", "--json").stdout)["running"] is True
    once = tree.cli("run", "--once")
    assert once.returncode == 2 and "inbox" in once.stderr, once
    assert tree.stop() == 0


def test_check_config_of_a_file_that_does_not_exist_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    out = cli("check-config", str(missing))
    assert out.returncode == 2 and out.stdout == "", out
    assert out.stderr.splitlines() == [f"genre-daemon: error: {missing}: no such config file (start from "
                                       "config.example.yaml, or pass the path of an existing one)"]


def test_evaluate_exits_2_when_the_folder_holds_nothing_to_evaluate(tmp_path: Path) -> None:
    (tmp_path / "data" / "jazz").mkdir(parents=True)
    (tmp_path / "data" / "jazz" / "notes.txt").write_text("no audio here")
    out = cli("evaluate", "--data", str(tmp_path / "data"), "--workers", "1")
    assert out.returncode == 2 and out.stdout == "", out
    assert str(tmp_path / "data") in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_evaluate_exits_1_when_every_file_failed_and_0_with_a_score(tmp_path: Path) -> None:
    bad = tmp_path / "bad" / "jazz"
    bad.mkdir(parents=True)
    (bad / "a.wav").write_bytes(b"RIFF" + b"\0" * 60)
    (bad / "b.mp3").write_bytes(b"not audio" * 50)
    failed = cli("evaluate", "--data", str(tmp_path / "bad"), "--workers", "1", "--json")
    assert failed.returncode == 1 and failed.stdout == "", failed
    assert "evaluated nothing" in failed.stderr and str(bad / "a.wav") in failed.stderr, failed.stderr

    good = tmp_path / "good"
    write_tone(good / "jazz" / "tone.wav", seconds=4.0, sr=22050, freq=440.0)
    (good / "jazz" / "broken.wav").write_bytes(b"RIFF" + b"\0" * 60)
    scored = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "evaluate", "--data", str(good), "--workers",
                             "1", "--json", "--plot", "confusion.png"], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert scored.returncode == 0, scored
    assert json.loads(scored.stdout)["n"] == 1
    png = tmp_path / "confusion.png"
    assert png.stat().st_size > 0
    assert f"wrote the confusion matrix to {png}\n" in scored.stderr, scored.stderr  # absolute, though given relative


def test_history_into_a_pipe_whose_reader_has_gone_ends_quietly(tree: Tree) -> None:
    """``genre-daemon history | head -1``, the real ``head`` at the far end of a real pipe, gone
    before the command writes (see tests/test_cli_exit.py for status)."""
    for i in range(3):
        write_tone(tree.inbox / f"song{i}.wav", seconds=4.0, sr=22050, freq=300.0 + 100 * i)
    assert tree.cli("run", "--once").returncode == 0
    read_end, write_end = os.pipe()
    head = subprocess.Popen(["head", "-1"], stdin=read_end, stdout=subprocess.PIPE)
    os.close(read_end)
    try:
        os.write(write_end, b"first line\n")
        got, _ = head.communicate(timeout=30)
        assert head.returncode == 0 and got == b"first line\n"
        out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "history", "--config", str(tree.config)],
                             stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert out.stderr == "" and out.returncode == 141, out
