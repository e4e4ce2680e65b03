"""Files still arriving are never taken as they stand (issue 10, D1), on the real daemon.

The tester's reproductions, each on one filesystem and across two (the inbox on /dev/shm, the
library on disk): a reader opens and closes the file while its writer holds it open and pauses
(a thumbnailer, a second ``cat``); a writer that re-opens the file for every chunk and stalls
between chunks for longer than ``settle_seconds``; ``write, pause, append``. In every case the
whole file ends up placed once, with every byte, and nothing reaches quarantine.

Waiting is on conditions: a later file being placed shows the daemon went through its settle
ticks with the held file in view; a journal row in ``gone`` with the "incomplete" reason shows
it looked at a truncated piece and left it alone.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tone, write_audio
from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)


def _shm_folder(than: Path) -> Path | None:
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(than).st_dev:
        return None
    return Path(tempfile.mkdtemp(prefix="genre-daemon-arrival-", dir="/dev/shm"))


@pytest.fixture(params=["same", "cross"])
def atree(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tree]:
    """A running daemon whose inbox is on the library's filesystem, or on another (tmpfs)."""
    shm = None
    if request.param == "cross":
        shm = _shm_folder(tmp_path)
        if shm is None:
            pytest.skip("/dev/shm is missing or on the same filesystem as tmp_path")
    t = Tree(tmp_path, inbox=shm / "inbox" if shm else None)
    t.start()
    yield t
    t.reap()
    if shm is not None:
        shutil.rmtree(shm, ignore_errors=True)


def song(path: Path, seconds: float = 40.0) -> bytes:
    """A real FLAC (its header states the total length, so a cut piece reads as truncated) of a
    tone under noise, so it does not compress to nothing. Returns its bytes."""
    rng = np.random.default_rng(7)
    data = make_tone(seconds, 22050, freq=330.0, amplitude=0.3)
    data += rng.normal(0, 0.1, data.shape).astype(np.float32)
    write_audio(path, data, 22050)
    return path.read_bytes()


def rows(t: Tree, name: str) -> list[sqlite3.Row]:
    c = sqlite3.connect(f"file:{t.state / 'journal.sqlite3'}?mode=ro", uri=True, timeout=10)
    c.row_factory = sqlite3.Row
    try:
        return [r for r in c.execute("SELECT * FROM files ORDER BY id")
                if os.fsdecode(r["path"]) == str(t.inbox / name)]
    finally:
        c.close()


def placed_whole(t: Tree, name: str, data: bytes) -> list[Path]:
    return [p for p in t.placed() if p.name == name and p.read_bytes() == data]


def test_a_reader_during_a_paused_write_does_not_release_the_file(atree: Tree) -> None:
    """``exec 3>held.flac; head -c N >&3; cat held.flac; sleep; tail >&3; exec 3>&-``."""
    data = song(atree.root / "long.flac")
    cut = len(data) * 2 // 5
    target = atree.inbox / "held.flac"
    with open(target, "wb", buffering=0) as writer:
        writer.write(data[:cut])
        assert target.read_bytes() == data[:cut]  # the reader: an open and a close, no write
        tone(atree.inbox / ".later.wav")  # hidden while written, then renamed in
        os.rename(atree.inbox / ".later.wav", atree.inbox / "later.wav")
        # A file dropped after the read is placed: the held one's quiet period passed too.
        wait_for(lambda: [p for p in atree.placed() if p.name == "later.wav"], 60, "later.wav placed")
        assert target.read_bytes() == data[:cut], "the file was taken while its writer held it"
        assert rows(atree, "held.flac") == [] and atree.quarantined() == []
        writer.write(data[cut:])
    wait_for(lambda: placed_whole(atree, "held.flac", data), 60, "held.flac placed whole")
    assert atree.quarantined() == [] and atree.in_inbox() == []
    assert len([p for p in atree.placed() if p.name.startswith("held")]) == 1


@pytest.mark.parametrize("chunks", [2, 4], ids=["write-pause-append", "reopen-per-chunk"])
def test_a_writer_that_reopens_after_a_stall_loses_nothing(atree: Tree, chunks: int) -> None:
    """The file is written in ``chunks`` pieces, each by a fresh open-append-close, with a stall
    longer than settle_seconds between them: the daemon sees each truncated piece, leaves it in
    the inbox (a writer may come back), and places the whole file once it is complete."""
    data = song(atree.root / "long.flac")
    target = atree.inbox / "chunked.flac"
    bounds = [len(data) * i // chunks for i in range(chunks + 1)]
    for i in range(chunks):
        with open(target, "ab") as f:
            f.write(data[bounds[i]:bounds[i + 1]])
        if i < chunks - 1:
            size = bounds[i + 1]
            wait_for(lambda s=size: [r for r in rows(atree, "chunked.flac") if r["size"] == s
                                     and r["state"] == "gone" and "incomplete" in (r["reason"] or "")],
                     60, f"the daemon to look at piece {i + 1} and leave it")
            assert target.read_bytes() == data[:bounds[i + 1]] and atree.quarantined() == []
    wait_for(lambda: placed_whole(atree, "chunked.flac", data), 60, "the whole file placed")
    assert atree.quarantined() == [] and atree.in_inbox() == []
    assert len(atree.placed()) == 1
