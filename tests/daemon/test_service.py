"""The real daemon as a subprocess on a tmp_path tree, fed real audio files.

Each test starts ``genre-daemon run`` with its own config, drops files the way users and
downloaders do, and waits (on conditions, with deadlines) until every file is in exactly one
place: a genre folder, review or quarantine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import GTZAN_DIR
from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)
from genre_daemon.names import safe_component


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    t = Tree(tmp_path)
    yield t
    t.reap()


def test_copied_file_lands_in_a_genre_folder(tree: Tree) -> None:
    tree.start()
    src = tone(tree.root / "song.wav")
    shutil.copy(src, tree.inbox / "song.wav")
    placed = wait_for(tree.placed, 30, "the file to be placed")
    assert [p.name for p in placed] == ["song.wav"]
    assert placed[0].parent.parent == tree.library
    assert placed[0].read_bytes() == src.read_bytes()
    assert tree.in_inbox() == []
    moves = tree.history()
    assert len(moves) == 1 and moves[0]["genre"] == placed[0].parent.name
    assert tree.stop() == 0


def test_low_confidence_goes_to_review(tmp_path: Path) -> None:
    tree = Tree(tmp_path, min_confidence=1.0)
    tree.start()
    try:
        tone(tree.inbox / "unsure.wav")
        placed = wait_for(tree.placed, 30, "the file to be placed")
        assert placed == [tree.review / "unsure.wav"]
        assert tree.history()[0]["kind"] == "review"
    finally:
        tree.stop()


def test_downloader_part_rename_nested_and_odd_names(tree: Tree) -> None:
    tree.start()
    part = tone(tree.inbox / "download.mp3.part.wav").rename(tree.inbox / "dl.wav.part")
    nested = tree.inbox / "a" / "b" / "c"
    nested.mkdir(parents=True)
    names = ["with space.wav", "ünïcødé ♫.wav", "new\nline.wav", ("x" * 196) + ".wav"]
    for n in names:
        tone(nested / n)
    wait_for(lambda: len(tree.placed()) == len(names), 60, "the odd names to be placed")
    assert part.exists(), "a .part file must not be taken"
    part.rename(tree.inbox / "dl.wav")
    wait_for(lambda: len(tree.placed()) == len(names) + 1, 30, "the renamed download")
    # Names are kept, but made safe: a newline becomes "_" (mover.safe_component).
    assert sorted(p.name for p in tree.placed()) == sorted(safe_component(n) for n in [*names, "dl.wav"])
    assert "new_line.wav" in {p.name for p in tree.placed()}
    assert tree.stop() == 0


def test_two_different_files_with_one_name_are_both_kept(tree: Tree) -> None:
    tree.settings["min_confidence"] = 1.0  # both go to review: one folder, a real name clash
    tree.write_config()
    tree.start()
    (tree.inbox / "x").mkdir()
    (tree.inbox / "y").mkdir()
    a = tone(tree.inbox / "x" / "same.wav", freq=300)
    b = tone(tree.inbox / "y" / "same.wav", freq=900)
    contents = {a.read_bytes(), b.read_bytes()}
    placed = wait_for(lambda: len(tree.placed()) == 2 and tree.placed(), 30, "both files")
    assert sorted(p.name for p in placed) == ["same (2).wav", "same.wav"]
    assert {p.read_bytes() for p in placed} == contents
    tree.stop()


def test_broken_files_go_to_quarantine_with_a_reason(tree: Tree) -> None:
    tree.start()
    (tree.inbox / "empty.mp3").write_bytes(b"")
    (tree.inbox / "text.mp3").write_text("this is not audio\n" * 100)
    tone(tree.inbox / "short.wav", seconds=0.5)
    # The reason file is written just after the move: wait for both.
    wait_for(lambda: len(tree.quarantined()) == 3 and len(list(tree.quarantine.glob("*.reason.txt"))) == 3,
             30, "three files in quarantine, each with its reason")
    for f in tree.quarantined():
        reason = f.with_name(f.name + ".reason.txt").read_text()
        assert reason.strip()
    assert tree.placed() == [] and tree.in_inbox() == []
    kinds = {m["kind"] for m in tree.history()}
    assert kinds == {"quarantine"}
    tree.stop()


def test_slow_writer_is_not_taken_until_complete(tree: Tree) -> None:
    tree.start()
    data = tone(tree.root / "slow.wav", seconds=6).read_bytes()
    dst = tree.inbox / "slow.wav"
    with open(dst, "wb") as fh:
        for i in range(0, len(data), len(data) // 6):
            fh.write(data[i : i + len(data) // 6])
            fh.flush()
            time.sleep(0.4)  # a slow network copy: more than settle_seconds between chunks
            assert tree.placed() == [], "taken while still being written"
    placed = wait_for(tree.placed, 30, "the slow file")
    assert placed[0].read_bytes() == data
    tree.stop()


def test_symlink_in_inbox_is_never_followed_or_moved(tree: Tree) -> None:
    outside = tone(tree.root / "outside.wav")
    tree.start()
    (tree.inbox / "link.wav").symlink_to(outside)
    tone(tree.inbox / "real.wav")
    wait_for(tree.placed, 30, "the real file")
    time.sleep(tree.settings["rescan_interval"] + 0.5)  # a full rescan passes over the link too
    assert [p.name for p in tree.placed()] == ["real.wav"]
    assert (tree.inbox / "link.wav").is_symlink() and outside.exists()
    tree.stop()


def test_sigterm_ends_within_ten_seconds_with_status_zero(tree: Tree) -> None:
    tree.start()
    for i in range(20):
        tone(tree.inbox / f"t{i}.wav", seconds=8)
    wait_for(tree.placed, 30, "work to start")
    t0 = time.monotonic()
    assert tree.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - t0 < 10
    assert tree.no_partials()
    tree.start()  # the rest is taken at the next start
    wait_for(lambda: len(tree.placed()) == 20, 60, "all files after restart")
    assert len(tree.history()) == 20
    tree.stop()


def test_sigkill_then_restart_places_every_file_exactly_once(tree: Tree) -> None:
    names = [f"k{i:02d}.wav" for i in range(12)]
    for n in names:
        tone(tree.root / "src" / n, freq=200 + 50 * len(n))
    for kill in range(3):
        tree.start()
        for n in names[kill * 4 : kill * 4 + 4]:
            shutil.copy(tree.root / "src" / n, tree.inbox / n)
        wait_for(lambda: len(tree.placed()) > kill * 4, 30, "progress before the kill")
        tree.stop(signal.SIGKILL)
    tree.start()
    wait_for(lambda: len(tree.placed()) == len(names), 60, "every file after the last restart")
    assert sorted(p.name for p in tree.placed()) == names
    assert tree.in_inbox() == [] and tree.no_partials()
    assert len([m for m in tree.history() if not m["undone"]]) == len(names)
    tree.stop()


def test_cross_filesystem_inbox(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir() or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is absent or on the same filesystem as tmp_path")
    inbox = Path(f"/dev/shm/genre-daemon-test-{os.getpid()}")
    try:
        tree = Tree(tmp_path, inbox=inbox)
        tree.start()
        src = tone(tmp_path / "x.wav")
        shutil.copy(src, inbox / "x.wav")
        placed = wait_for(tree.placed, 30, "the file across filesystems")
        assert placed[0].read_bytes() == src.read_bytes()
        assert not (inbox / "x.wav").exists() and tree.no_partials()
        tree.stop()
    finally:
        shutil.rmtree(inbox, ignore_errors=True)


def test_status_history_and_undo(tree: Tree) -> None:
    tree.start()
    tone(tree.inbox / "u.wav")
    placed = wait_for(tree.placed, 30, "the file")[0]
    status = json.loads(tree.cli("status", "--json").stdout)
    assert status["running"] and status["pid"] == tree.proc.pid
    assert status["counts"]["moved"] == 1 and status["model_version"]
    out = tree.cli("undo", "--last", "1")
    assert out.returncode == 0, out.stderr
    assert (tree.inbox / "u.wav").exists() and not placed.exists()
    time.sleep(tree.settings["rescan_interval"] + 1)  # a rescan sees it and must leave it alone
    assert (tree.inbox / "u.wav").exists() and tree.placed() == []
    assert tree.history()[0]["undone"] is True
    # The undone file waiting in the inbox must not hold up the files dropped after it.
    tone(tree.inbox / "v.wav", freq=660.0)
    assert [p.name for p in wait_for(tree.placed, 30, "a file dropped after the undo")] == ["v.wav"]
    assert (tree.inbox / "u.wav").exists()
    tree.stop()


@pytest.mark.skipif(not GTZAN_DIR.is_dir(), reason="../shared/data absent: no real music to sort")
def test_real_music_is_sorted_by_genre(tree: Tree) -> None:
    tree.start()
    clips = [sorted((GTZAN_DIR / g).glob("*.flac"))[0] for g in ("classical", "metal", "reggae")]
    for c in clips:
        shutil.copy(c, tree.inbox / c.name)
    wait_for(lambda: len(tree.placed()) == 3, 60, "three real clips")
    assert sorted((p.parent.name, p.name) for p in tree.placed()) == sorted((c.parent.name, c.name) for c in clips)
    tree.stop()


def test_sighup_reloads_the_config(tree: Tree) -> None:
    tree.start()
    tone(tree.inbox / "before.wav")
    wait_for(tree.placed, 30, "the first file")
    assert not (tree.review / "before.wav").exists()
    tree.settings["min_confidence"] = 1.0  # from now on everything goes to review
    tree.write_config()
    tree.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in tree.log.read_text(), 20, "the reload")
    tone(tree.inbox / "after.wav", freq=660)
    wait_for(lambda: (tree.review / "after.wav").exists(), 30, "the second file in review")
    tree.settings["min_confidence"] = "high"  # a bad config is refused, the running one kept
    tree.write_config()
    tree.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in tree.log.read_text(), 20, "the refusal")
    assert tree.proc.poll() is None
    assert tree.stop() == 0


def test_check_config_and_status_without_a_daemon(tree: Tree) -> None:
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "check-config", str(tree.config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "OK" in out.stdout and str(tree.inbox) in out.stdout
    status = json.loads(tree.cli("status", "--json").stdout)
    assert status["running"] is False and status["pid"] is None
    tree.config.write_text(tree.config.read_text() + "workerz: 2\n")
    bad = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "check-config", str(tree.config)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "workerz" in bad.stderr and "workers" in bad.stderr
