"""``genre-daemon undo`` on real files, a real journal and the real command as a subprocess.

Moves are recorded the way ``Daemon._place`` records them (observe -> queued -> classifying ->
begin_move -> mover.move -> finish with the placed file's content hash); one test runs the real
daemon. Undo must move only the file a move placed (found by identity or content hash, at its
address or where the user took it), refuse naming the move when it cannot, and never let a move
it cannot undo block the ones behind it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import write_tone
from genre_daemon.filing import mover
from genre_daemon.resources import default_model_dir
from genre_daemon.config import Settings, load_settings
from genre_daemon.filing.journal import FileIdentity, Journal, State, content_hash

_freq = iter(range(300, 100_000, 11))


def tone(path: Path, seconds: float = 0.05) -> Path:
    """A short real wav with content unique to this test run."""
    return write_tone(path, seconds=seconds, sr=22050, freq=float(next(_freq)))


@pytest.fixture
def tree(tmp_path: Path) -> Settings:
    """Five folders and a config file naming them (``<tmp>/config.yaml``)."""
    paths = {"inbox": tmp_path / "inbox", "library": tmp_path / "library",
             "review_dir": tmp_path / "library" / "_review", "quarantine_dir": tmp_path / "inbox" / ".quarantine",
             "state_dir": tmp_path / "state"}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("".join(f"{k}: {json.dumps(str(v))}\n" for k, v in paths.items()))
    return load_settings(cfg)


def place(s: Settings, src: Path, genre: str, folders: str = "") -> tuple[int, Path]:
    """Do what the daemon does for one classified file (``folders``: a path template's, under the
    genre folder); returns (move id, where it went)."""
    with Journal(s.journal_path) as journal:
        row, new = journal.observe(src, FileIdentity.of(src), hasher=content_hash)
        assert new
        journal.set_state(row.id, State.QUEUED, via=[State.SETTLING])
        journal.set_state(row.id, State.CLASSIFYING)
        dest = s.library / genre / folders / src.name
        journal.begin_move(row.id, str(dest), state=State.MOVED, genre=genre, confidence=0.9,
                           scores={genre: 0.9}, model_version="test-1")
        result = mover.move(src, dest, "rename", root=s.library)
        assert result.destination is not None
        move = journal.finish(row.id, State.MOVED, source=str(src), destination=str(result.destination),
                              genre=genre, confidence=0.9, scores={genre: 0.9}, model_version="test-1",
                              content_hash=content_hash(result.destination))
        return move.id, result.destination


def cli(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``genre-daemon ARGS --config <s>`` as a subprocess."""
    assert s.source is not None
    return subprocess.run([sys.executable, "-m", "genre_daemon.cli", *args, "--config", str(s.source)],
                          capture_output=True, text=True, timeout=60)


def undo(s: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(s, "undo", *args)


def undone(s: Settings) -> set[int]:
    with Journal(s.journal_path) as journal:
        return {m.id for m in journal.history() if m.undone}


# --- D2: only the file the move placed ------------------------------------------------------------


def test_undo_refuses_when_a_different_file_sits_at_the_address_and_its_own_is_gone(
    tree: Settings, tmp_path: Path
) -> None:
    s = tree
    move_id, placed = place(s, tone(s.inbox / "x.wav"), "rock")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.rename(placed, outside / "x.wav")  # the user took it out of the library
    other = tone(placed)  # ... and a different song now sits at the old address
    other_hash = content_hash(other)

    out = undo(s, str(move_id))
    assert out.returncode == 1, out
    assert f"move {move_id}" in out.stderr and str(placed) in out.stderr and "different file" in out.stderr
    assert content_hash(placed) == other_hash  # nothing moved
    assert not (s.inbox / "x.wav").exists() and (outside / "x.wav").exists()
    assert undone(s) == set()

    plain = undo(s)  # the newest move, the same one: refused the same way, nothing moved
    assert plain.returncode == 1 and "different file" in plain.stderr
    assert content_hash(placed) == other_hash and not (s.inbox / "x.wav").exists()


def test_undo_refuses_the_daemons_next_file_at_the_address_even_on_a_reused_inode(tree: Settings) -> None:
    s = tree
    move_id, placed = place(s, tone(s.inbox / "x.wav"), "rock")
    placed.unlink()  # deleted: its inode number is free, and ext4 often hands it to the next file
    second_id, second = place(s, tone(s.inbox / "x.wav"), "rock")
    assert second == placed
    second_hash = content_hash(second)

    out = undo(s, str(move_id))
    assert out.returncode == 1 and f"move {move_id}" in out.stderr and "different file" in out.stderr
    assert content_hash(second) == second_hash and not (s.inbox / "x.wav").exists()
    assert undone(s) == set()
    assert undo(s, str(second_id)).returncode == 0  # the second move is undone normally
    assert content_hash(s.inbox / "x.wav") == second_hash


def test_undo_follows_a_copy_of_the_placed_file_by_its_content_hash(tree: Settings) -> None:
    s = tree
    move_id, placed = place(s, tone(s.inbox / "x.wav"), "rock")
    original = content_hash(placed)
    (s.library / "jazz").mkdir()
    shutil.copy2(placed, s.library / "jazz" / "x.wav")  # a copy (new inode), as across filesystems
    placed.unlink()
    _, second = place(s, tone(s.inbox / "x.wav"), "rock")  # a new song, same address
    assert second == placed
    second_hash = content_hash(second)

    out = undo(s, str(move_id))
    assert out.returncode == 0, out
    assert content_hash(s.inbox / "x.wav") == original
    assert not (s.library / "jazz" / "x.wav").exists()
    assert content_hash(second) == second_hash
    assert str(s.library / "jazz" / "x.wav") in out.stdout + out.stderr
    assert undone(s) == {move_id}


# --- D4: a move that cannot be undone does not block the others --------------------------------------


def test_plain_undo_skips_a_move_it_cannot_undo_and_undoes_the_next_one(tree: Settings) -> None:
    s = tree
    ids, where = zip(*(place(s, tone(s.inbox / f"{n}.wav"), "pop") for n in "abc"))
    where[2].unlink()  # the newest move's file was deleted: that move cannot be undone
    with open(where[1], "ab") as f:  # b's tags edited in place: same inode, still its file
        f.write(b"ID3 edited")

    first = undo(s)
    assert first.returncode == 0, first
    assert (s.inbox / "b.wav").exists() and not where[1].exists()
    skipped = [line for line in first.stderr.splitlines() if f"move {ids[2]}" in line]
    assert len(skipped) == 1 and str(where[2]) in skipped[0]

    second = undo(s)
    assert second.returncode == 0, second
    assert (s.inbox / "a.wav").exists() and not where[0].exists()
    assert undone(s) == {ids[0], ids[1]}

    third = undo(s)  # nothing undoable left: says so, fails, moves nothing
    assert third.returncode == 1 and f"move {ids[2]}" in third.stderr
    assert undone(s) == {ids[0], ids[1]}


def test_undo_last_n_undoes_n_undoable_moves_and_reports_each_skipped_one(tree: Settings, tmp_path: Path) -> None:
    s = tree
    placed = [place(s, tone(s.inbox / f"{n}.wav"), "pop") for n in "abcdefg"]  # moves 1..7
    (m7, p7), (m5, p5) = placed[6], placed[4]
    p7.unlink()
    os.rename(p5, tmp_path / "away.wav")
    tone(p5)  # a different file at move 5's address

    first = undo(s, "--last", "3")
    assert first.returncode == 0, first
    assert undone(s) == {placed[i][0] for i in (5, 3, 2)}
    for m, p in ((m7, p7), (m5, p5)):
        lines = [line for line in first.stderr.splitlines() if f"move {m}" in line]
        assert len(lines) == 1 and str(p) in lines[0]

    second = undo(s, "--last", "3")  # only two undoable moves are left
    assert undone(s) == {placed[i][0] for i in (5, 3, 2, 1, 0)}
    assert second.returncode == 1 and "2 of 3" in second.stderr
    assert sorted(p.name for p in s.inbox.glob("*.wav")) == ["a.wav", "b.wav", "c.wav", "d.wav", "f.wav"]


# --- issue 19: folders undo empties, held files in status ------------------------------------------


def test_undo_removes_the_template_folders_it_empties_but_not_a_genre_folder_holding_a_file(tree: Settings) -> None:
    s = tree
    deep_id, deep = place(s, tone(s.inbox / "x.wav"), "rock", "Some Artist/Some Album")
    flat_id, flat = place(s, tone(s.inbox / "y.wav"), "rock")

    assert undo(s, str(deep_id)).returncode == 0
    assert (s.inbox / "x.wav").is_file()
    assert not (s.library / "rock" / "Some Artist").exists()  # album and artist folders: emptied, removed
    assert flat.is_file()  # the genre folder holds another file: kept

    assert undo(s, str(flat_id)).returncode == 0
    assert not (s.library / "rock").exists()  # emptied by undo now
    assert s.library.is_dir() and s.review_dir.is_dir() and s.inbox.is_dir()


def test_status_counts_undone_files_as_held_not_as_seen(tree: Settings) -> None:
    s = tree
    place(s, tone(s.inbox / "x.wav"), "rock")
    place(s, tone(s.inbox / "y.wav"), "rock")
    assert undo(s).returncode == 0

    counts = json.loads(cli(s, "status", "--json").stdout)["counts"]
    assert (counts["held"], counts["seen"], counts["moved"]) == (1, 0, 1)
    text = cli(s, "status").stdout
    assert "seen 0  held 1" in text and "held: 1 undone by you" in text


# --- the real daemon: the tester's report ---------------------------------------------------------


def wait_for(cond: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.fixture
def daemon(tree: Settings, tmp_path: Path) -> Iterator[Settings]:
    """The real daemon on ``tree``, everything to review (min_confidence 1.0: a fixed address)."""
    if not (default_model_dir() / "model.json").is_file():
        pytest.skip("no shipped model")
    assert tree.source is not None
    with open(tree.source, "a") as f:
        f.write(f"model: {json.dumps(str(default_model_dir()))}\nmin_confidence: 1.0\n"
                "settle_seconds: 0.3\nrescan_interval: 2\n")
    s = load_settings(tree.source)
    log = open(tmp_path / "daemon.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "genre_daemon.cli", "run", "--config", str(s.source)],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: (s.state_dir / "daemon.json").exists() or proc.poll() is not None, 60, "the daemon")
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
        yield s
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_undo_moves_the_placed_file_from_where_the_user_put_it_not_the_new_file_at_its_address(
    daemon: Settings,
) -> None:
    s = daemon
    first = tone(s.inbox.parent / "first.wav", seconds=4.0)
    second = tone(s.inbox.parent / "second.wav", seconds=4.0)
    address = s.review_dir / "x.wav"
    shutil.copy(first, s.inbox / "x.wav")  # move 1 -> review/x.wav
    wait_for(lambda: address.exists() and not (s.inbox / "x.wav").exists(), 30, "move 1")
    (s.library / "jazz").mkdir()
    os.rename(address, s.library / "jazz" / "x.wav")  # the user's correction
    shutil.copy(second, s.inbox / "x.wav")  # move 2 -> review/x.wav, the old address
    wait_for(lambda: address.exists() and not (s.inbox / "x.wav").exists(), 30, "move 2")
    with Journal(s.journal_path) as journal:
        move_1 = journal.history()[-1].id

    out = undo(s, str(move_1))
    assert out.returncode == 0, out
    assert content_hash(s.inbox / "x.wav") == content_hash(first)  # the first song came back
    assert content_hash(address) == content_hash(second)  # the second stayed where it was put
    assert not (s.library / "jazz" / "x.wav").exists()
    assert undone(s) == {move_1}
    time.sleep(3)  # a rescan must leave the undone file alone
    assert content_hash(s.inbox / "x.wav") == content_hash(first)
