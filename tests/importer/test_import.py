"""``genre-daemon import DIR``: an existing collection sorted into the library through the journal
and the careful mover (albums whole, loose files, undecodable files quarantined), a dry run that
changes nothing, a kill -9 resumed without classifying anything twice, progress in ``status``; an
import stopped beside a running daemon is left to the next import (issue 19 I1), and the inbox
is never imported (I2)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import GTZAN_DIR, PROJECT_ROOT, write_tone
from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def collection(root: Path, real: bool) -> Path:
    """A small collection: an album with disc folders and sidecars, an artist folder holding
    another album, loose songs, and a file that is not audio."""
    src = root / "collection"
    if real:
        metal = sorted((GTZAN_DIR / "metal").glob("*"))[:3]
        jazz = sorted((GTZAN_DIR / "jazz").glob("*"))[:3]
    else:
        metal = [write_tone(root / f"m{i}.wav", seconds=4.0, sr=22050, freq=200.0 + 50 * i) for i in range(3)]
        jazz = [write_tone(root / f"j{i}.wav", seconds=4.0, sr=22050, freq=700.0 + 50 * i) for i in range(3)]
    for i, clip in enumerate(metal):
        disc = src / "Heavy (2001)" / f"CD{1 + i % 2}"
        disc.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, disc / f"{i + 1:02} {clip.name}")
    (src / "Heavy (2001)" / "cover.jpg").write_bytes(b"\xff\xd8 cover")
    (src / "Heavy (2001)" / "album.cue").write_text("FILE \"01.flac\" WAVE\n")
    for i, clip in enumerate(jazz[:2]):
        (src / "Artist" / "Smooth").mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, src / "Artist" / "Smooth" / f"{i + 1:02} {clip.name}")
    shutil.copy(jazz[2], src / jazz[2].name)
    (src / "notes.mp3").write_bytes(b"this is not audio")
    return src


def run_import(tree: Tree, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genre_daemon.cli", "import", *args, "--config", str(tree.config)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path)
    yield t
    t.reap()


@pytest.mark.parametrize("real", [True, False], ids=["real music", "tones"])
def test_a_collection_is_sorted_whole_and_undoable(tree: Tree, tmp_path: Path, real: bool) -> None:
    if real and not GTZAN_DIR.is_dir():
        pytest.skip("../shared/data absent: no real music to import")
    src = collection(tmp_path, real)
    before = digests(src)
    out = run_import(tree, str(src), "--workers", "2")
    assert out.returncode == 0, out.stderr
    assert "6 placed, 0 to review, 1 quarantined" in out.stdout
    assert [p for p in src.rglob("*")] == []  # every file taken, the emptied folders removed, the folder kept
    assert src.is_dir()
    heavy = [p for p in tree.library.rglob("Heavy (2001)") if p.is_dir()]
    smooth = [p for p in tree.library.rglob("Smooth") if p.is_dir()]
    assert len(heavy) == 1 and len(smooth) == 1
    assert digests(heavy[0]) == {k.removeprefix("Heavy (2001)/"): v for k, v in before.items() if k.startswith("Heavy")}
    assert (tree.quarantine / "notes.mp3").is_file() and "not an audio file" in (
        tree.quarantine / "notes.mp3.reason.txt").read_text()
    history = tree.history()
    assert len(history) == 7  # six tracks and the quarantined file, each a move
    undo = tree.cli("undo", "--last", "4")  # two albums (each one undo), the loose song, the quarantined file
    assert undo.returncode == 0, undo.stderr
    assert undo.stdout.count("went back whole") == 2
    assert digests(src) == before  # everything back where it was, bytes and layout


def test_a_dry_run_prints_the_plan_and_changes_nothing(tree: Tree, tmp_path: Path) -> None:
    src = collection(tmp_path, real=False)
    before = digests(src)
    out = run_import(tree, str(src), "--dry-run", "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert f"{src / 'Heavy (2001)'}/ -> " in out.stdout and f"{src / 'Artist' / 'Smooth'}/ -> " in out.stdout
    assert f"{src / 'notes.mp3'} -> quarantine" in out.stdout
    assert "nothing was changed" in out.stdout
    assert digests(src) == before
    assert not tree.state.exists() or not (tree.state / "journal.sqlite3").exists()
    assert not tree.library.exists() or not any(tree.library.rglob("*.wav"))


def test_a_killed_import_goes_on_where_it_stopped_without_classifying_twice(tree: Tree, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    n = 60
    for i in range(n):
        write_tone(src / f"{i:02}.wav", seconds=4.0, sr=22050, freq=150.0 + 40 * i)
    cmd = [sys.executable, "-m", "genre_daemon.cli", "import", str(src), "--config", str(tree.config),
           "--workers", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.log", "wb"))
    try:
        def progress() -> dict | None:
            shown = json.loads(tree.cli("status", "--json").stdout)["import"]
            return shown if shown is not None and shown["done"] >= 3 else None

        status = wait_for(progress, 120, "status to show the import's progress")
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    assert status["total"] == n and status["rate"] > 0  # progress is shown in status
    done = len(tree.placed())
    left = len(list(src.glob("*.wav")))
    assert done + left == n  # nothing lost, nothing twice at the moment of the kill
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{left} audio files" in second.stderr  # the second run plans only what the first left
    names = sorted(p.name for p in tree.placed())
    assert names == sorted(f"{i:02}.wav" for i in range(n))
    assert len(tree.history()) == n
    assert json.loads(tree.cli("status", "--json").stdout)["import"] is None


def test_import_refuses_the_library_and_a_folder_holding_it(tree: Tree, tmp_path: Path) -> None:
    tree.library.mkdir(parents=True, exist_ok=True)
    for folder, says in ((tree.library, "is library"), (tmp_path, "holds library")):
        out = run_import(tree, str(folder), "--workers", "1")
        assert out.returncode == 2 and says in out.stderr, out.stderr


def test_import_refuses_the_inbox_a_folder_holding_it_and_one_inside_it(tmp_path: Path) -> None:
    t = Tree(tmp_path, inbox=tmp_path / "incoming" / "inbox")
    (t.inbox / "Album").mkdir()
    for folder, says in ((t.inbox, "is inbox"), (tmp_path / "incoming", "holds inbox"), (t.inbox / "Album", "is inbox")):
        out = run_import(t, str(folder), "--workers", "1")
        assert out.returncode == 2 and says in out.stderr and str(t.inbox) in out.stderr, out.stderr
        assert len(out.stderr.splitlines()) == 1, out.stderr


def test_a_second_import_is_refused_while_one_runs(tree: Tree, tmp_path: Path) -> None:
    """One inside the other's folder would take the same files: one import at a time."""
    src = tmp_path / "many"
    (src / "sub").mkdir(parents=True)
    for i in range(60):
        write_tone(src / ("sub" if i < 2 else "") / f"{i:02}.wav", seconds=4.0, sr=22050, freq=150.0 + 40 * i)
    cmd = [sys.executable, "-m", "genre_daemon.cli", "import", str(src), "--config", str(tree.config),
           "--workers", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.log", "wb"))
    try:
        wait_for(lambda: (json.loads(tree.cli("status", "--json").stdout)["import"] or {}).get("state") == "running",
                 120, "the first import to run")
        out = run_import(tree, str(src / "sub"), "--workers", "1")
        assert out.returncode == 2 and f"another import (pid {first.pid}) is running" in out.stderr, out.stderr
        first.send_signal(signal.SIGINT)
        assert first.wait(120) == 130
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert sorted(p.name for p in (src / "sub").iterdir()) == ["00.wav", "01.wav"]


def album_and_loose_songs(root: Path, gtzan_dir: Path) -> Path:
    """Real music: an album folder of three metal tracks and four loose songs of four genres."""
    src = root / "coll"
    album = src / "Heavy (2001)"
    album.mkdir(parents=True)
    for i, clip in enumerate(sorted((gtzan_dir / "metal").glob("*.flac"))[:3]):
        shutil.copy(clip, album / f"{i + 1:02} {clip.name}")
    for genre in ("jazz", "blues", "country", "reggae"):
        clip = sorted((gtzan_dir / genre).glob("*.flac"))[0]
        shutil.copy(clip, src / clip.name)
    return src


def test_an_import_stopped_beside_the_daemon_is_left_to_the_next_import(tree: Tree, tmp_path: Path,
                                                                        gtzan_dir: Path) -> None:
    """Issue 19 I1: the daemon (running, then restarted) takes nothing of an import's folder; the
    next import finishes it, the album whole, with no error on either side."""
    src = album_and_loose_songs(tmp_path, gtzan_dir)
    before = digests(src)
    tree.start()
    cmd = [sys.executable, "-m", "genre_daemon.cli", "import", str(src), "--config", str(tree.config),
           "--workers", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.log", "wb"))
    try:
        wait_for(lambda: tree.placed() or first.poll() is not None, 300, "the import's first placement")
        first.send_signal(signal.SIGINT)  # loose songs go first: the album is still to do
        assert first.wait(120) == 130, (tmp_path / "first.log").read_text()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    left = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.flac"))
    assert len(left) + len(tree.placed()) == 7 and sum(x.startswith("Heavy") for x in left) == 3

    shown = json.loads(tree.cli("status", "--json").stdout)["import"]
    assert shown["state"] == "stopped" and shown["source"] == str(src) and shown["waiting"] == len(left), shown
    text = tree.cli("status").stdout
    assert f"{len(left)} files wait for `genre-daemon import {src}`" in text, text

    # A daemon started now finds the import's rows at its start-up and at every rescan: it
    # leaves them to the import. Its one worker takes the queue in order, so once this file of
    # its inbox is placed, anything of the import's it had queued would have been taken first.
    assert tree.stop() == 0
    tree.start()
    tone(tmp_path / "marker.wav").rename(tree.inbox / "marker.wav")
    wait_for(lambda: any(p.name == "marker.wav" for p in tree.placed()), 120, "the daemon to file its inbox's file")
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*.flac")) == left

    second = run_import(tree, str(src), "--workers", "1")  # beside the running daemon
    assert second.returncode == 0 and "Traceback" not in second.stderr, second.stderr
    assert f"{len(left)} placed, 0 to review, 0 quarantined" in second.stdout, second.stdout
    assert list(src.rglob("*.flac")) == []
    heavy = [p for p in tree.library.rglob("Heavy (2001)") if p.is_dir()]
    assert len(heavy) == 1  # the album whole, in one place
    assert digests(heavy[0]) == {k.removeprefix("Heavy (2001)/"): v for k, v in before.items() if k.startswith("Heavy")}
    assert sorted(p.name for p in tree.placed()) == sorted([*(Path(k).name for k in before), "marker.wav"])
    assert json.loads(tree.cli("status", "--json").stdout)["import"] is None
    assert tree.stop() == 0
    log = tree.log.read_text()
    assert "cannot go from" not in log and "Traceback" not in log, log


def test_status_shows_a_running_imports_progress(tree: Tree) -> None:
    tree.state.mkdir(parents=True, exist_ok=True)
    (tree.state / "import.json").write_text(json.dumps({
        "pid": os.getpid(), "source": "/music/old", "total": 2000, "done": 500, "rate": 2.5,
        "eta_seconds": 600.0, "started": time.time() - 200}))
    out = tree.cli("status")
    assert "import: /music/old: 500/2000 files, 2.50 files/s, 10m 0s left" in out.stdout, out.stdout


# ``genre-daemon import`` on the real local engine, its results handed on in an order a process
# pool or a Ray cluster gives when the loose songs are the slow ones: every other file first.
# Once those are placed, the import gets a real SIGINT (Ctrl-C), as a user stopping it then.
ALBUMS_FIRST = r"""
import os, signal, sys
import genre_daemon.engines as engines
from genre_daemon.cli import main
from genre_daemon.engines.base import Engine

opened = engines.open_engine

class AlbumsFirst(Engine):
    def __init__(self, inner):
        self.inner, self.model_version = inner, inner.model_version

    def classify(self, paths):
        paths = [os.fspath(p) for p in paths]
        loose = [p for p in paths if os.path.basename(os.path.dirname(p)) == "Downloads"]
        yield from self.inner.classify([p for p in paths if p not in loose])
        os.kill(os.getpid(), signal.SIGINT)
        yield from self.inner.classify(loose)

    def close(self):
        self.inner.close()

engines.open_engine = lambda *a, **k: AlbumsFirst(opened(*a, **k))
sys.exit(main(sys.argv[1:]))
"""


def test_an_import_stopped_after_a_containers_album_keeps_the_songs_beside_it_loose(tree: Tree,
                                                                                   tmp_path: Path) -> None:
    """Issue 19: ``Downloads/{bob, rap, Bach/}``, its album Bach/ placed first and the import
    stopped. The next run grouped the songs from the disk, where they are now alone in
    ``Downloads/``: an album called Downloads. They are filed as the loose files first planned."""
    src = tmp_path / "music"
    downloads = src / "Downloads"
    (downloads / "Bach").mkdir(parents=True)
    for i, name in enumerate(["bob.wav", "rap.wav", "Bach/01.wav", "Bach/02.wav"]):
        tone(downloads / name, freq=220.0 + 110 * i)
    args = ["import", str(src), "--config", str(tree.config), "--workers", "1"]
    first = subprocess.run([sys.executable, "-c", ALBUMS_FIRST, *args], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 130, first.stderr
    assert sorted(p.name for p in downloads.iterdir()) == ["bob.wav", "rap.wav"]  # Bach/ placed whole
    assert sorted(p.parent.name for p in tree.placed()) == ["Bach", "Bach"]

    second = run_import(tree, str(src), "--workers", "1")
    assert second.returncode == 0, second.stderr
    assert "2 audio files (0 albums, 2 loose)" in second.stderr, second.stderr
    songs = [p for p in tree.placed() if p.name in ("bob.wav", "rap.wav")]
    assert len(songs) == 2 and {p.parent.parent for p in songs} == {tree.library}, songs  # <genre>/bob.wav
    assert not [p for p in tree.library.rglob("Downloads")]
    assert not list(src.rglob("*.wav"))
