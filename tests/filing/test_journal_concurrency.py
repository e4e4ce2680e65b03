"""genre_daemon.filing.journal under real concurrency: threads sharing one journal, other
processes reading and writing the same file, a writer killed with SIGKILL mid-write and the
journal resumed after it. No sleeps: children report progress on stdout and the tests wait on
that with a deadline. Shared helpers and fixtures come from test_journal."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from genre_daemon.filing.journal import PLACED, FileIdentity, FileRow, Journal, MoveRow, State
from test_journal import ROUTE, db, finish, journal, raw  # noqa: F401 (fixtures)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0  # seconds; only reached when something is broken


def resume(j: Journal, row: FileRow) -> None:
    """Finish an interrupted row the way the daemon does on start-up."""
    if row.state is State.CLASSIFYING and row.destination:
        j.finish_pending(row.id)
        return
    route = ROUTE[State.CLASSIFYING]
    for step in route[route.index(row.state) + 1:] if row.state in route else route:
        j.set_state(row.id, step)
    finish(j, row.id)


def placed_rows_without_one_move(db: Path) -> list[tuple]:
    with raw(db) as c:
        return c.execute(
            "SELECT id, state, (SELECT count(*) FROM moves m WHERE m.file_id = f.id) AS n "
            "FROM files f WHERE (state IN ('moved', 'review', 'quarantined') AND n != 1) "
            "OR (state NOT IN ('moved', 'review', 'quarantined') AND held = 0 AND n != 0)"
        ).fetchall()


def lifecycle(j: Journal, path: str, i: int) -> MoveRow:
    row, _ = j.observe(path, FileIdentity(7, i, 100 + i, i))
    j.set_state(row.id, State.SETTLING)
    j.set_state(row.id, State.QUEUED)
    j.set_state(row.id, State.CLASSIFYING)
    end = (State.MOVED, State.REVIEW, State.QUARANTINED)[i % 3]
    j.begin_move(row.id, path.replace("inbox", "library"), state=end, genre="jazz",
                 confidence=0.5, scores={"jazz": 0.5, "rock": 0.5}, model_version="v1")
    return finish(j, row.id, end, destination=path.replace("inbox", "library"))


def test_four_threads_share_one_journal(journal: Journal, db: Path) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for n in range(15):
                lifecycle(journal, f"/inbox/t{t}/{n}.mp3", t * 1000 + n)
                journal.counts()
                journal.history(3)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = journal.counts()
    assert counts["moved"] + counts["review"] + counts["quarantined"] == 60 == len(journal.history())
    assert placed_rows_without_one_move(db) == []


CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from genre_daemon.filing.journal import FileIdentity, Journal, State
db, mode, start, count = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
j = Journal(db)
print("open", flush=True)
if mode == "write":  # count lifecycles (count < 0: forever), printing each one done
    i = start
    while count < 0 or i < start + count:
        path = f"/inbox/{i}.mp3"
        row, _ = j.observe(path, FileIdentity(7, i, 100 + i, i))
        j.set_state(row.id, State.SETTLING)
        j.set_state(row.id, State.QUEUED)
        j.set_state(row.id, State.CLASSIFYING)
        end = (State.MOVED, State.REVIEW, State.QUARANTINED)[i % 3]
        dest = f"/library/{i}.mp3"
        j.begin_move(row.id, dest, state=end, genre="jazz", confidence=0.5,
                     scores={"jazz": 0.5}, model_version="v1")
        j.finish(row.id, end, source=path, destination=dest, genre="jazz", confidence=0.5,
                 scores={"jazz": 0.5}, model_version="v1")
        print(i, flush=True)
        i += 1
else:  # read until `count` files are placed; placed counts never go down
    seen, reads = 0, 0
    while seen < count:
        c = j.counts()
        placed = c["moved"] + c["review"] + c["quarantined"]
        assert placed >= seen, (placed, seen)
        assert len(j.history(include_undone=False)) >= placed
        seen, reads = placed, reads + 1
    print("reads", reads, flush=True)
j.close()
"""


class Child:
    """A Python child process running CHILD, with line reads that wait on a deadline."""

    def __init__(self, db: Path, mode: str, start: int = 0, count: int = -1) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(PROJECT_ROOT), str(db), mode, str(start), str(count)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
        )
        self._buf = b""

    def line(self) -> str:
        deadline = time.monotonic() + DEADLINE
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(remaining, 0))
            if not ready:
                raise AssertionError("child process printed nothing before the deadline")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"child ended early: {self.proc.stderr.read().decode()}")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def wait(self) -> int:
        try:
            rc = self.proc.wait(timeout=DEADLINE)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return rc

    def stderr(self) -> str:
        return self.proc.stderr.read().decode()


def test_another_process_reads_while_this_one_writes(db: Path) -> None:
    with Journal(db) as j:
        reader = Child(db, "read", count=30)
        assert reader.line() == "open"
        for n in range(30):
            lifecycle(j, f"/inbox/{n}.mp3", n)
        assert reader.wait() == 0, reader.stderr()
        assert reader.line().startswith("reads ")


def test_two_writer_processes_and_a_reader_at_once(db: Path) -> None:
    Journal(db).close()
    writers = [Child(db, "write", start=s, count=25) for s in (0, 10_000)]
    with Journal(db) as j:
        reads = 0
        while any(w.proc.poll() is None for w in writers):
            c = j.counts()
            assert c["seen"] + c["settling"] + c["queued"] + c["classifying"] <= 2
            reads += 1
        for w in writers:
            assert w.wait() == 0, w.stderr()
        assert len(j.history()) == 50 and reads > 0
        assert sorted(int(Path(r.path).stem) for r in j.in_states(*PLACED)) == [
            *range(25), *range(10_000, 10_025)]
    assert placed_rows_without_one_move(db) == []


def test_sigkill_mid_write_leaves_a_consistent_resumable_journal(db: Path) -> None:
    rng = random.Random(1234)
    done: set[int] = set()
    for round_ in range(5):
        child = Child(db, "write", start=round_ * 1000)
        assert child.line() == "open"
        for _ in range(rng.randint(1, 6)):
            done.add(int(child.line()))
        child.proc.send_signal(signal.SIGKILL)  # wherever it is in its loop right now
        assert child.wait() == -signal.SIGKILL
        with raw(db) as c:
            assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert placed_rows_without_one_move(db) == []
        with Journal(db) as j:
            placed = {int(Path(r.path).stem) for r in j.in_states(*PLACED)}
            assert done <= placed  # every lifecycle the child reported survived
            unfinished = j.recoverable()
            assert len(unfinished) <= 1  # the child had at most one file in hand
            for row in unfinished:
                resume(j, row)
            assert j.recoverable() == []
            done |= {int(Path(r.path).stem) for r in j.in_states(*PLACED)}
            assert len(j.history()) == len(done)
    assert placed_rows_without_one_move(db) == []
