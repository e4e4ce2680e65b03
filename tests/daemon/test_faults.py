"""Faults injected for real into the real daemon process: nothing is lost, nothing is partial.

Each test runs ``genre-daemon run`` as a subprocess (``Tree`` from tests/support.py) and breaks
something real under it: a full filesystem (a small tmpfs mounted as the library), a file it may
not read, its inbox deleted, its library on another filesystem, its journal locked by another
process, SIGKILLs in the middle of journal writes and of a classification.

Covered elsewhere, not repeated here: SIGKILL at every step of a move, on one filesystem and
across two (``tests/filing/test_mover.py::test_sigkill_at_every_step_leaves_one_complete_copy``,
``::test_sigkill_midway_through_the_copy_leaves_only_a_hidden_partial``); SIGKILL of the real
daemon at random moments (``tests/daemon/test_service.py::test_sigkill_then_restart_places_every_file_exactly_once``,
``benchmarks/bench_daemon.py --parts kills``); SIGKILL at every step of a model promotion
(``tests/learning/test_versions.py::test_sigkill_at_every_promotion_step_leaves_a_loadable_active_model``,
``::test_sigkill_while_activating_leaves_the_old_pointer``); a full disk and a write error in
the mover alone (``tests/filing/test_mover.py::test_full_disk_is_enospc_and_leaves_everything``,
``::test_write_error_midway_leaves_the_source_and_no_temp``).
"""

from __future__ import annotations

import ctypes
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, write_tone
from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)

from genre_daemon.filing.journal import MAX_INTERRUPTIONS, Journal, State
from genre_daemon.filing.media_servers import MARKERS

# The media servers' ignore markers the daemon writes into review (issue 22): its own, not a file.
MARKER_NAMES = frozenset(name for name, _, _ in MARKERS)

JOURNAL = "journal.sqlite3"


class FaultTree(Tree):
    """A Tree whose daemon can be started with a ``preexec_fn`` (resource limits, capabilities)."""

    preexec: Callable[[], None] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genre_daemon.cli", "run", "--config", str(self.config)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),  # noqa: SIM115 - the child keeps it
            preexec_fn=self.preexec, cwd=PROJECT_ROOT,  # noqa: PLW1509 - no threads of ours in the child
        )
        wait_for(lambda: (self.state / "daemon.json").exists() or self.proc.poll() is not None,
                 60, "the daemon to start")
        assert self.proc.poll() is None, self.log.read_text()

    def rows(self) -> list[sqlite3.Row]:
        """Every journal row, read-only (the daemon keeps writing meanwhile)."""
        c = sqlite3.connect(f"file:{self.state / JOURNAL}?mode=ro", uri=True, timeout=10)
        c.row_factory = sqlite3.Row
        try:
            return c.execute("SELECT * FROM files ORDER BY id").fetchall()
        finally:
            c.close()

    def row(self, name: str) -> sqlite3.Row | None:
        """The newest journal row of the inbox file ``name``."""
        mine = [r for r in self.rows() if os.fsdecode(r["path"]) == str(self.inbox / name)]
        return mine[-1] if mine else None

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def ftree(tmp_path: Path) -> Iterator[FaultTree]:
    t = FaultTree(tmp_path)
    yield t
    t.reap()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# The destination filesystem full.


def _mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``where``; None when it worked, else why not."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return "mounting needs root and mount(8)"
    where.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"mount exited {proc.returncode}")


def _fsize_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, kept across exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return preexec


def test_full_library_keeps_the_file_in_the_inbox_and_places_it_once_space_is_freed(tmp_path: Path) -> None:
    """A 2 MB tmpfs as the library, 1.5 MB of it taken: a 1 MB file cannot fit. It stays
    byte-identical in the inbox, nothing partial is left in the library, the log and the journal
    say "No space left on device"; once the filler is deleted, a later rescan places it.
    Fallback where no tmpfs can be mounted: the library on /dev/shm and a file-size limit
    (RLIMIT_FSIZE) on the daemon, lifted with prlimit to "free the space" (EFBIG, same path)."""
    lib = tmp_path / "lib-mnt"
    why_not = _mount_tmpfs(lib, "2m")
    shm: Path | None = None
    tree = FaultTree(tmp_path)
    try:
        if why_not is None:
            filler = lib / "filler.bin"
            filler.write_bytes(os.urandom(1_500_000))
            data = tone(tmp_path / "big.wav", seconds=23).read_bytes()  # ~1.0 MB
            expected = "No space left on device"
        else:
            if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
                pytest.skip(f"cannot mount a tmpfs ({why_not}) and /dev/shm is not another filesystem")
            shm = Path(tempfile.mkdtemp(prefix="genre-daemon-test-", dir="/dev/shm"))
            lib, filler = shm, None
            tree.preexec = _fsize_limit(2_000_000)  # the journal and the log stay far below this
            data = tone(tmp_path / "big.wav", seconds=68).read_bytes()  # ~3.0 MB
            expected = "File too large"
        tree.library, tree.review = lib, lib / "_review"
        tree.settings.update(library=str(lib), review_dir=str(lib / "_review"), rescan_interval=1)
        tree.write_config()
        tree.start()
        (tmp_path / "big.wav").rename(tree.inbox / "big.wav")
        wait_for(lambda: expected in tree.logged(), 30, "the daemon to report the full disk")
        wait_for(lambda: (r := tree.row("big.wav")) is not None and expected in (r["reason"] or ""),
                 30, "the journal to record why")
        # A retry happens at every rescan (1 s): let two more fail before looking again.
        wait_for(lambda: tree.logged().count(expected) >= 3, 30, "the retries at later rescans")
        assert tree.proc.poll() is None
        assert (tree.inbox / "big.wav").read_bytes() == data
        assert tree.placed() == [] and tree.quarantined() == []
        assert tree.no_partials() and not [p for p in lib.rglob("*") if p.is_file() and p != filler
                                           and p.name not in MARKER_NAMES]
        assert "retried at the next rescan" in tree.logged()

        if filler is not None:
            filler.unlink()  # space freed
        else:
            resource.prlimit(tree.proc.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        placed = wait_for(tree.placed, 30, "the file once space is free")
        assert len(placed) == 1 and placed[0].read_bytes() == data
        assert tree.in_inbox() == [] and tree.no_partials()
        assert [m["kind"] for m in tree.history()] == ["genre"]
        assert tree.stop() == 0
    finally:
        tree.reap()
        if why_not is None:
            subprocess.run(["umount", "-l", str(tmp_path / "lib-mnt")], capture_output=True, check=False)
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# A file that cannot be read.


def _drop_dac_capabilities() -> None:
    """In the child before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding
    set, so the exec'd root process obeys file permission bits like any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_file_is_skipped_with_the_reason_and_placed_once_it_can_be_read(ftree: FaultTree) -> None:
    """Mode 000: skipped (log line naming it, journal reason), not quarantined, not moved, left
    in the inbox, not retried in a loop; ``chmod 644`` (which changes only the ctime, not the
    identity) gets it placed.

    Root reads anything, so as root the daemon runs as root without the two capabilities that
    bypass permission bits (the brief's alternative, user 65534, cannot even reach this
    machine's interpreter under /root, which is mode 0700)."""
    ftree.settings["rescan_interval"] = 1
    ftree.write_config()
    if os.geteuid() == 0:
        try:
            probe = subprocess.run([sys.executable, "-c", "open(__import__('sys').argv[1])", str(ftree.config)],
                                   preexec_fn=_drop_dac_capabilities, capture_output=True, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot drop the permission-bypass capabilities here: {exc}")
        if probe.returncode != 0:
            pytest.skip(f"a process without CAP_DAC_OVERRIDE cannot run here: {probe.stderr[-300:]!r}")
        ftree.preexec = _drop_dac_capabilities
    ftree.start()
    locked = tone(ftree.root / "locked.wav", freq=330)
    data = locked.read_bytes()
    os.chmod(locked, 0o000)
    locked.rename(ftree.inbox / "locked.wav")
    tone(ftree.inbox / "fine.wav", freq=660)
    wait_for(lambda: [p.name for p in ftree.placed()] == ["fine.wav"], 30, "the readable file")
    wait_for(lambda: "locked.wav: cannot be read" in ftree.logged(), 30, "the skip to be logged")
    row = ftree.row("locked.wav")
    assert row["state"] == State.GONE.value and row["reason"].startswith("cannot be read (Permission denied)")
    # Two more rescans (every second) pass over it: still there, still one log line, one row.
    first_rows = len(ftree.rows())
    deadline = time.monotonic() + 2 * ftree.settings["rescan_interval"] + 0.5
    wait_for(lambda: time.monotonic() > deadline, 10, "two rescans")
    assert ftree.logged().count("locked.wav: cannot be read") == 1
    assert len(ftree.rows()) == first_rows
    assert (ftree.inbox / "locked.wav").exists() and ftree.quarantined() == []
    assert [p.name for p in ftree.placed()] == ["fine.wav"]

    before = os.stat(ftree.inbox / "locked.wav")
    os.chmod(ftree.inbox / "locked.wav", 0o644)
    after = os.stat(ftree.inbox / "locked.wav")
    assert (before.st_ino, before.st_size, before.st_mtime_ns) == (after.st_ino, after.st_size, after.st_mtime_ns)
    wait_for(lambda: len(ftree.placed()) == 2, 30, "the file once it can be read")
    placed = next(p for p in ftree.placed() if p.name == "locked.wav")
    assert placed.read_bytes() == data and ftree.in_inbox() == []
    assert sorted(m["kind"] for m in ftree.history()) == ["genre", "genre"]
    assert ftree.stop() == 0


# ---------------------------------------------------------------------------------------------
# The inbox deleted and made again.


def test_inbox_deleted_and_created_again_while_running(ftree: FaultTree) -> None:
    ftree.settings["rescan_interval"] = 1
    ftree.write_config()
    ftree.start()
    tone(ftree.inbox / "before.wav")
    wait_for(lambda: len(ftree.placed()) == 1, 30, "the first file")
    shutil.rmtree(ftree.inbox)
    wait_for(lambda: "is gone; waiting for it to come back" in ftree.logged(), 30, "the daemon to notice")
    # While it waits: alive, quiet (one warning, not one per tick) and not spinning.
    cpu0, t0 = cpu_seconds(ftree.proc.pid), time.monotonic()
    deadline = t0 + 2.0
    wait_for(lambda: time.monotonic() > deadline, 10, "two idle seconds")
    busy = (cpu_seconds(ftree.proc.pid) - cpu0) / (time.monotonic() - t0)
    assert ftree.proc.poll() is None
    assert busy < 0.5, f"the daemon used {busy:.0%} of a core while its inbox was missing"
    assert ftree.logged().count("is gone; waiting for it to come back") == 1

    ftree.inbox.mkdir()
    tone(ftree.inbox / "after.wav", freq=880)
    wait_for(lambda: len(ftree.placed()) == 2, 30, "a file dropped into the new inbox")
    assert sorted(p.name for p in ftree.placed()) == ["after.wav", "before.wav"]
    assert ftree.in_inbox() == [] and len(ftree.history()) == 2
    assert ftree.stop() == 0


# ---------------------------------------------------------------------------------------------
# The library on another filesystem.


def test_library_on_another_filesystem(tmp_path: Path) -> None:
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("/dev/shm is absent or on the same filesystem as tmp_path")
    lib = Path(tempfile.mkdtemp(prefix="genre-daemon-test-", dir="/dev/shm"))
    tree = FaultTree(tmp_path)
    try:
        tree.library, tree.review = lib, lib / "_review"
        tree.settings.update(library=str(lib), review_dir=str(lib / "_review"))
        tree.write_config()
        tree.start()
        src = tone(tmp_path / "far.wav")
        os.utime(src, ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
        data, inbox_dev = src.read_bytes(), os.stat(tree.inbox).st_dev
        src.rename(tree.inbox / "far.wav")
        placed = wait_for(tree.placed, 30, "the file on the other filesystem")
        assert len(placed) == 1 and placed[0].read_bytes() == data
        assert os.stat(placed[0]).st_dev != inbox_dev  # the copy path, not a rename
        assert os.stat(placed[0]).st_mtime_ns == 1_600_000_000_123_456_789
        assert not (tree.inbox / "far.wav").exists() and tree.in_inbox() == []
        assert tree.no_partials() and not [p for p in lib.rglob(".*") if p.is_file() and p.name not in MARKER_NAMES]
        assert tree.history()[0]["destination"] == str(placed[0])
        assert tree.stop() == 0
    finally:
        tree.reap()
        shutil.rmtree(lib, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The journal locked by another process.

HOLD_LOCK = r"""
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
c.execute("COMMIT")
print("released", flush=True)
"""


class LockHolder:
    """Another process holding ``BEGIN EXCLUSIVE`` on a journal until :meth:`release`."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            assert self.proc.stdout.readline().strip() == "released"
        self.proc.wait(10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def test_journal_locked_by_another_process_pauses_the_daemon_and_drops_nothing(ftree: FaultTree) -> None:
    """Another process holds ``BEGIN EXCLUSIVE`` on the journal for longer than the busy
    timeout while files arrive: the daemon stays up, says so, places nothing meanwhile (every
    write waits), and places every file exactly once after the lock is released. Locked again,
    a SIGTERM still stops it within 10 s with status 0, the new file left in the inbox."""
    ftree.start()
    tone(ftree.inbox / "warm.wav")
    wait_for(lambda: len(ftree.placed()) == 1, 30, "a first file")
    holder = LockHolder(ftree.state / JOURNAL)
    try:
        names = [f"locked-{i}.wav" for i in range(5)]
        for i, n in enumerate(names):
            tone(ftree.inbox / n, freq=300 + 100 * i)
        wait_for(lambda: "is locked by another process" in ftree.logged(), 30, "the daemon to say why it waits")
        # Hold it past one more busy timeout: the daemon keeps retrying, places nothing, lives.
        deadline = time.monotonic() + Journal.BUSY_TIMEOUT + 0.5
        wait_for(lambda: time.monotonic() > deadline, 10, "the lock to be held a while")
        assert ftree.proc.poll() is None
        assert len(ftree.placed()) == 1 and len(ftree.in_inbox()) == len(names)
        holder.release()
    finally:
        holder.kill()
    wait_for(lambda: len(ftree.placed()) == 1 + len(names), 60, "every file after the lock is released")
    assert sorted(p.name for p in ftree.placed()) == sorted(["warm.wav", *names])
    assert ftree.in_inbox() == [] and len(ftree.history()) == 1 + len(names)
    assert "is writable again" in ftree.logged()

    holder = LockHolder(ftree.state / JOURNAL)
    try:
        tone(ftree.inbox / "late.wav", freq=990)
        wait_for(lambda: ftree.logged().count("is locked by another process") == 2, 30, "the second wait")
        assert ftree.stop(signal.SIGTERM, timeout=10) == 0
        holder.release()
    finally:
        holder.kill()
    assert [p.name for p in ftree.in_inbox()] == ["late.wav"] and len(ftree.placed()) == 1 + len(names)
    assert "Traceback" not in ftree.logged()


# ---------------------------------------------------------------------------------------------
# SIGKILL during journal writes.

HAMMER = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
from genre_daemon.filing.journal import FileIdentity, Journal, State
j = Journal(sys.argv[2], retry_for=None)
base = int(sys.argv[3])
print("open", flush=True)

def work(t):
    i = 0
    while True:
        n = base + t * 100_000 + i
        path = f"/inbox/{t}/{n}.mp3"
        row, _ = j.observe(path, FileIdentity(9, n, 1000 + n, n))
        j.set_state(row.id, State.QUEUED, via=[State.SETTLING])
        j.set_state(row.id, State.CLASSIFYING)
        if i % 5 == 0:  # a retry later (disk full)
            j.requeue(row.id, "No space left on device")
            j.set_state(row.id, State.CLASSIFYING)
        end = (State.MOVED, State.REVIEW, State.QUARANTINED)[i % 3]
        j.begin_move(row.id, f"/library/{n}.mp3", state=end, genre="jazz", confidence=0.5,
                     scores={"jazz": 0.5, "blues": 0.25}, model_version="v1")
        j.finish(row.id, end, source=path, destination=f"/library/{n}.mp3", genre="jazz",
                 confidence=0.5, scores={"jazz": 0.5, "blues": 0.25}, model_version="v1")
        j.set_meta("last", str(n))
        i += 1

for t in range(3):
    threading.Thread(target=work, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_sigkill_during_journal_writes_never_corrupts_it() -> None:
    """A child hammering the journal from three threads (every kind of write) is SIGKILLed at a
    random moment, 20 times over one journal: each time it opens, passes ``integrity_check``,
    every row's state (and planned state) is a valid one, every placed row has exactly one
    move, and the next child carries on where it stopped."""
    rng = random.Random(20261126)
    valid = {s.value for s in State}
    placed = {State.MOVED.value, State.REVIEW.value, State.QUARANTINED.value}
    with tempfile.TemporaryDirectory(prefix="genre-daemon-kill-") as tmp:
        db = Path(tmp) / JOURNAL
        Journal(db).close()
        total = last_id = 0
        for round_ in range(20):
            child = subprocess.Popen([sys.executable, "-c", HAMMER, str(PROJECT_ROOT), str(db), str(round_ * 1_000_000)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert child.stdout.readline() == b"open\n", child.stderr.read()
            time.sleep(rng.uniform(0.0, 0.25))  # the random moment of the kill
            child.send_signal(signal.SIGKILL)
            assert child.wait(10) == -signal.SIGKILL
            c = sqlite3.connect(db)
            try:
                assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                states = c.execute("SELECT state, pending_state FROM files").fetchall()
                assert {s for s, _ in states} <= valid
                assert {p for _, p in states if p is not None} <= placed
                assert c.execute(
                    "SELECT count(*) FROM files f WHERE f.state IN ('moved', 'review', 'quarantined') "
                    "AND (SELECT count(*) FROM moves m WHERE m.file_id = f.id) != 1").fetchone()[0] == 0
                assert c.execute("SELECT count(*) FROM moves m LEFT JOIN files f ON f.id = m.file_id "
                                 "WHERE f.id IS NULL OR f.state NOT IN ('moved', 'review', 'quarantined')"
                                 ).fetchone()[0] == 0
                n = c.execute("SELECT count(*) FROM moves").fetchone()[0]
                unfinished = c.execute("SELECT count(*) FROM files WHERE id > ? AND state NOT IN "
                                       "('moved', 'review', 'quarantined', 'gone')", (last_id,)).fetchone()[0]
                last_id = c.execute("SELECT coalesce(max(id), 0) FROM files").fetchone()[0]
            finally:
                c.close()
            assert n >= total  # nothing committed was lost
            total = n
            assert unfinished <= 3  # at most the three files in hand
            with Journal(db) as j:  # it opens and writes, and the interrupted work is listed
                j.set_meta("checked", str(round_))
                assert len(j.recoverable()) >= unfinished
        assert total > 0


# ---------------------------------------------------------------------------------------------
# A poison file: the daemon dies every time it classifies it.


def test_a_file_the_daemon_dies_on_three_times_goes_to_quarantine(
        ftree: FaultTree, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL while the file is ``classifying`` (a 44 s, 44.1 kHz stereo wav: seconds of work),
    three times: at the next start it is classified in a separate process, which here gets no
    memory beyond what the model needs (a real rlimit), so it fails there too: that is poison;
    it goes to quarantine with the reason instead of being tried again, and the daemon carries
    on with other files (no crash loop). A file that classifies apart is placed instead:
    tests/daemon/test_names_and_leftovers.py."""
    write_tone(ftree.root / "poison.wav", seconds=44, sr=44100, channels=2, freq=220)
    data = (ftree.root / "poison.wav").read_bytes()
    (ftree.root / "poison.wav").rename(ftree.inbox / "poison.wav")
    for kill in range(1, MAX_INTERRUPTIONS + 1):
        ftree.start()
        wait_for(lambda n=kill: (r := ftree.row("poison.wav")) is not None and r["state"] == "classifying"
                 and r["attempts"] == n, 60, f"classification number {kill}")
        ftree.stop(signal.SIGKILL)
        r = ftree.row("poison.wav")
        assert r["state"] == "classifying" and r["destination"] is None, "killed outside the classification"
    monkeypatch.setenv("GENRE_DAEMON_PROBE_MEMORY_MB", "0")
    ftree.start()
    tone(ftree.inbox / "healthy.wav")
    # Placed = linked into the library AND gone from the inbox (a move links, then unlinks).
    wait_for(lambda: len(ftree.quarantined()) == 1 and ftree.placed() and not ftree.in_inbox(), 60,
             "poison in quarantine, healthy placed")
    (q,) = ftree.quarantined()
    assert q.read_bytes() == data
    reason = f"the daemon stopped {MAX_INTERRUPTIONS} times while classifying it"
    wait_for(lambda: q.with_name(q.name + ".reason.txt").exists(), 10, "the reason file")
    assert reason in q.with_name(q.name + ".reason.txt").read_text()
    assert "in a separate process too" in q.with_name(q.name + ".reason.txt").read_text()
    assert ftree.row("poison.wav")["state"] == "quarantined" and reason in ftree.row("poison.wav")["reason"]
    assert [p.name for p in ftree.placed()] == ["healthy.wav"] and ftree.in_inbox() == []
    assert ftree.logged().count("the daemon stopped while classifying it") == MAX_INTERRUPTIONS - 1
    assert ftree.stop() == 0


def test_stops_during_a_long_move_never_count_towards_quarantine(ftree: FaultTree) -> None:
    """Issue 10 D3: a long copy into the library killed three times. What each kill leaves is
    built here exactly (a row classifying with its planned move recorded, the attempts of three
    interrupted runs, the hidden partial copy in the genre folder): classification had
    finished, so the restart tries the move again instead of quarantining a good file."""
    from genre_daemon.filing.journal import FileIdentity
    from genre_daemon.filing.mover import PARTIAL_MARKER, temp_prefix as _temp_prefix

    src = write_tone(ftree.inbox / "long.wav", seconds=20, sr=22050, freq=300)
    data = src.read_bytes()
    dest = ftree.library / "rock" / "long.wav"
    ftree.state.mkdir(parents=True, exist_ok=True)
    with Journal(ftree.state / JOURNAL) as j:
        row, _ = j.observe(src, FileIdentity.of(src))
        j.set_state(row.id, State.QUEUED, via=[State.SETTLING])
        for n in range(MAX_INTERRUPTIONS):
            j.set_state(row.id, State.CLASSIFYING)  # each run counts an attempt
            if n < MAX_INTERRUPTIONS - 1:
                j.set_state(row.id, State.QUEUED)
        j.begin_move(row.id, str(dest), state=State.MOVED, genre="rock", confidence=0.9,
                     scores={"rock": 0.9}, model_version="test")
        assert j.get(row.id).attempts == MAX_INTERRUPTIONS
    dest.parent.mkdir(parents=True)
    partial = dest.parent / (_temp_prefix(dest.name) + "killed.tmp")
    partial.write_bytes(data[: len(data) // 3])
    assert PARTIAL_MARKER in partial.name
    ftree.start()
    wait_for(lambda: ftree.placed() and not ftree.in_inbox(), 60, "the file placed")
    (placed,) = ftree.placed()
    assert placed.read_bytes() == data and ftree.quarantined() == [] and ftree.no_partials()
    assert "stopped while moving it" in ftree.logged()
    assert "times while classifying it" not in ftree.logged()
    assert ftree.stop() == 0


# ---------------------------------------------------------------------------------------------
# The journal's own parts of these faults, in-process (fast).


def _hold(db: Path) -> sqlite3.Connection:
    """Another connection holding the journal's write lock (as another process would)."""
    c = sqlite3.connect(db, isolation_level=None, timeout=10, check_same_thread=False)
    c.execute("BEGIN EXCLUSIVE")
    return c


def test_a_write_waits_out_a_lock_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    import threading

    db = tmp_path / JOURNAL
    j = Journal(db, busy_timeout=0.1, retry_for=None)
    holder = _hold(db)
    done = threading.Event()
    t = threading.Thread(target=lambda: (j.set_meta("k", "v"), done.set()), daemon=True)
    t.start()
    wait_for(lambda: j._busy_since is not None, 10, "the writer to find the journal locked")
    assert not done.is_set() and j.get_meta("k") is None  # waiting; reads still work (WAL)
    holder.execute("COMMIT")
    assert done.wait(10) and j.get_meta("k") == "v" and j._busy_since is None
    holder.close()
    j.close()


def test_stop_waiting_and_retry_for_end_the_wait_with_a_clear_error(tmp_path: Path) -> None:
    import threading

    from genre_daemon.filing.journal import JournalError

    db = tmp_path / JOURNAL
    j = Journal(db, busy_timeout=0.1, retry_for=None)
    holder = _hold(db)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            j.set_meta("k", "v")
        except JournalError as e:
            errors.append(e)

    t = threading.Thread(target=write, daemon=True)
    t.start()
    wait_for(lambda: j._busy_since is not None, 10, "the writer to wait")
    j.stop_waiting()
    t.join(5)
    assert not t.is_alive() and len(errors) == 1
    assert str(db) in str(errors[0]) and "locked" in str(errors[0]) and "stopping" in str(errors[0])
    bounded = Journal(db, busy_timeout=0.1, retry_for=0.3)  # opening needs no write lock
    assert bounded.get_meta("k") is None
    with pytest.raises(JournalError, match="database is locked"):
        bounded.set_meta("k", "v")
    holder.execute("COMMIT")
    holder.close()
    bounded.set_meta("k", "v")  # free again: writes work
    assert bounded.get_meta("k") == "v"
    bounded.close()
    j.close()


def test_requeue_refunds_the_attempt_and_reopen_makes_new_work(tmp_path: Path) -> None:
    from genre_daemon.filing.journal import FileIdentity, TransitionError

    with Journal(tmp_path / JOURNAL) as j:
        f = tmp_path / "a.wav"
        f.write_bytes(b"x")
        row, _ = j.observe(f, FileIdentity.of(f))
        row = j.set_state(row.id, State.CLASSIFYING, via=[State.SETTLING, State.QUEUED])
        assert row.attempts == 1
        j.begin_move(row.id, tmp_path / "lib" / "a.wav", state=State.MOVED, genre="jazz")
        row = j.requeue(row.id, "No space left on device")
        assert (row.state, row.attempts, row.destination, row.genre) == (State.QUEUED, 0, None, None)
        assert row.reason == "No space left on device"
        with pytest.raises(TransitionError):
            j.requeue(row.id)  # only while classifying
        row = j.set_state(row.id, State.CLASSIFYING)
        assert row.attempts == 1  # an interrupted attempt would stay counted: set_state(QUEUED)
        gone = j.set_state(row.id, State.GONE, reason="cannot be read (Permission denied)")
        assert j.observe(f, FileIdentity.of(f)) == (gone, False)  # same identity: not new work
        fresh = j.reopen(gone.id)
        assert fresh.id != gone.id and fresh.state is State.SEEN and fresh.identity == gone.identity
        assert j.observe(f, FileIdentity.of(f)) == (fresh, True)
        assert j.get(gone.id).state is State.GONE  # the old row stays as history
        with pytest.raises(TransitionError):
            j.reopen(fresh.id)  # only a gone row
