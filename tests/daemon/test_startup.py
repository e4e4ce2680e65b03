"""Start-up refusals, names and log lines of the real daemon (issue 10: D5-D9, formats).

Each test runs ``genre-daemon run`` as a subprocess on its own tree (``Tree`` from tests/support.py):
a read-only state_dir (a real read-only tmpfs), a second daemon on the same inbox with its own
state_dir, names that are legal as they are (255 bytes, NFD), a typo'd inbox, a full state disk
(a real 1 MB tmpfs filled up), and files with an extension the daemon does not take.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Tree]:
    t = Tree(tmp_path)
    yield t
    t.reap()


def _mount(where: Path, *options: str) -> str | None:
    """Mount a tmpfs at ``where`` with ``options``; None when it worked, else why not."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting needs root and mount(8)"
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"mount exited {proc.returncode}")


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def run_to_exit(t: Tree, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genre_daemon.cli", "run", "--config", str(t.config)],
                          capture_output=True, text=True, timeout=timeout)


def test_a_read_only_state_dir_is_one_line_naming_folder_reason_and_fix(tree: Tree) -> None:
    """D5: was a traceback from os.chmod. Now: exit 2, one line, the folder, the reason, a fix."""
    why = _mount(tree.state, "ro", "size=1m")
    if why is not None:
        pytest.skip(f"cannot mount a read-only tmpfs: {why}")
    try:
        done = run_to_exit(tree)
    finally:
        _umount(tree.state)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    line = lines[0]
    assert f"state_dir {tree.state}" in line and "Read-only file system" in line
    assert "read-write" in line  # the fix


def test_a_second_daemon_on_the_same_inbox_is_refused_naming_the_inbox_and_pid(tree: Tree, tmp_path: Path) -> None:
    """D6: two daemons with their own state dirs on one inbox raced for every file."""
    tree.start()
    (tmp_path / "second").mkdir()
    other = Tree(tmp_path / "second", inbox=tree.inbox)
    done = run_to_exit(other)
    assert done.returncode == 2
    assert f"is watching inbox {tree.inbox}" in done.stderr
    assert f"pid {tree.proc.pid}" in done.stderr
    tone(tree.inbox / ".a.wav")
    os.rename(tree.inbox / ".a.wav", tree.inbox / "a.wav")
    wait_for(lambda: tree.placed() and not tree.in_inbox(), 60, "the first daemon still works")
    assert tree.stop() == 0
    # Once the first one stops, the second may take the inbox.
    other.start()
    assert other.proc.poll() is None
    assert other.stop() == 0


def test_legal_names_are_kept_exactly_and_a_renamed_file_is_logged_with_its_final_path(tree: Tree) -> None:
    """D7: a 255-byte name was cut to 199 bytes; an NFD name became NFC and then clashed with
    its NFC twin, becoming ``(2)``; the log never showed the final name."""
    long = "é" * 125 + ".flac"
    nfd, nfc = (unicodedata.normalize(form, "Café Noël.wav") for form in ("NFD", "NFC"))
    assert len(long.encode()) == 255 and nfd != nfc
    tree.start()
    for i, name in enumerate((long, nfd, nfc)):
        tone(tree.inbox / f".{i}{Path(name).suffix}", freq=300 + 100 * i)
        os.rename(tree.inbox / f".{i}{Path(name).suffix}", tree.inbox / name)
    wait_for(lambda: len(tree.placed()) == 3 and not tree.in_inbox(), 60, "three files placed")
    assert {p.name for p in tree.placed()} == {long, nfd, nfc}
    # The same name again: it gets " (2)", shortened to fit 255 bytes, and the log says so.
    tone(tree.inbox / ".again.flac", freq=300)
    placed_before = {p for p in tree.placed()}
    genre_dir = next(p.parent for p in placed_before if p.name == long)
    os.rename(tree.inbox / ".again.flac", tree.inbox / long)
    wait_for(lambda: len(tree.placed()) == 4 and not tree.in_inbox(), 60, "the fourth file placed")
    (second,) = set(tree.placed()) - placed_before
    assert second.parent == genre_dir  # the same audio as the first: the same genre
    assert second.name.endswith(" (2).flac") and len(second.name.encode()) <= 255
    wait_for(lambda: f"as {str(second)!r}" in tree.log.read_text(), 10, "the final path in the log")
    assert tree.stop() == 0


def test_a_missing_inbox_is_created_and_said_at_start(tmp_path: Path) -> None:
    """D8: a typo in ``inbox`` silently meant watching a new empty folder."""
    t = Tree(tmp_path)
    shutil.rmtree(t.inbox)
    t.start()
    try:
        wait_for(lambda: f"inbox {t.inbox} did not exist; created it" in t.log.read_text(), 30, "the warning")
        assert str(t.config) in t.log.read_text()
        assert t.stop() == 0
    finally:
        t.reap()


def test_a_full_state_disk_is_said_once_not_on_every_retry(tree: Tree) -> None:
    """D9: 59 identical lines in 12 s, naming one of three waiting files. Now one line with the
    count; the next comes 30 s later at the earliest. The files wait whole in the inbox."""
    why = _mount(tree.state, "size=1m")
    if why is not None:
        pytest.skip(f"cannot mount a small tmpfs: {why}")
    try:
        tree.start()
        filler = tree.state / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        names = ["a.wav", "b.wav", "c.wav"]
        for i, name in enumerate(names):
            tone(tree.root / name, freq=300 + 50 * i)
        data = {n: (tree.root / n).read_bytes() for n in names}
        for name in names:
            shutil.copy(tree.root / name, tree.inbox / name)
        wait_for(lambda: "not recorded yet" in tree.log.read_text(), 60, "the journal error")
        started = time.monotonic()
        # The old code said it again every tick (about 5 a second): give it 3 s to repeat.
        time.sleep(3)  # absence over time has no condition to wait on
        text = tree.log.read_text()
        assert time.monotonic() - started < 30
        assert text.count("not recorded yet") == 1, text
        assert {p.name: p.read_bytes() for p in tree.in_inbox()} == data
        filler.unlink()
        wait_for(lambda: len(tree.placed()) == 3 and not tree.in_inbox(), 90, "all placed once space is back")
        assert tree.stop() == 0
    finally:
        tree.reap()
        _umount(tree.state)


def test_repeated_problem_says_it_once_then_every_interval_with_the_count() -> None:
    from genre_daemon.system.logs import RepeatedProblem

    now = [0.0]
    problem = RepeatedProblem(30.0, clock=lambda: now[0])
    assert problem.note("a") == 1
    for t in range(1, 30):
        now[0] = float(t)
        assert problem.note("abc"[t % 3]) is None
    now[0] = 30.0
    assert problem.note("a") == 3  # a, b and c were hit meanwhile
    assert problem.clear() is True and problem.clear() is False
    assert problem.note("z") == 1  # a new episode is said at once


def test_opus_and_aiff_are_taken_and_other_files_are_said_once_to_be_left_alone(tree: Tree) -> None:
    """Formats people drop: ``.opus`` and ``.aiff`` were left in the inbox in silence."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    tree.start()
    src = tone(tree.root / "src.wav")
    for ext, codec in (("opus", "libopus"), ("aiff", "pcm_s16be")):
        out = tree.root / f"song.{ext}"
        subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(src), "-c:a", codec, str(out)], check=True)
        shutil.copy(out, tree.inbox / f".song.{ext}")
        os.rename(tree.inbox / f".song.{ext}", tree.inbox / f"song.{ext}")
    (tree.inbox / "notes.txt").write_text("liner notes")
    wait_for(lambda: len(tree.placed()) == 2, 60, "the opus and aiff files placed")
    assert sorted(p.suffix for p in tree.placed()) == [".aiff", ".opus"]
    wait_for(lambda: "notes.txt: left alone in the inbox" in tree.log.read_text(), 30, "the left-alone line")
    tree.stop()
    assert tree.log.read_text().count("notes.txt: left alone") == 1
    assert (tree.inbox / "notes.txt").read_text() == "liner notes"
