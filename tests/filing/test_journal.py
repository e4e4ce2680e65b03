"""genre_daemon.filing.journal on real SQLite files in tmp_path: the state machine, observe() for every
kind of file the inbox can show it, finish() atomicity, undo and held files, schema migrations,
and real concurrency (threads, other processes, a writer killed with SIGKILL). No mocks, no
sleeps: children report progress on stdout and the tests wait on that with a deadline."""

from __future__ import annotations

import itertools
import os
import random
import re
import select
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from genre_daemon.filing import journal as journal_mod
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing.journal import (
    PLACED,
    TERMINAL,
    TRANSITIONS,
    FileIdentity,
    FileRow,
    Journal,
    JournalError,
    MoveRow,
    State,
    TransitionError,
    can_transition,
    content_hash,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0  # seconds; only reached when something is broken
KIND = {State.MOVED: "genre", State.REVIEW: "review", State.QUARANTINED: "quarantine"}
# A legal route from a fresh (seen) row to each state.
ROUTE = {
    State.SEEN: [],
    State.SETTLING: [State.SETTLING],
    State.QUEUED: [State.SETTLING, State.QUEUED],
    State.CLASSIFYING: [State.SETTLING, State.QUEUED, State.CLASSIFYING],
    State.MOVED: [State.SETTLING, State.QUEUED, State.CLASSIFYING, State.MOVED],
    State.REVIEW: [State.SETTLING, State.QUEUED, State.CLASSIFYING, State.REVIEW],
    State.QUARANTINED: [State.SETTLING, State.QUEUED, State.CLASSIFYING, State.QUARANTINED],
    State.GONE: [State.GONE],
}
_inodes = itertools.count(1000)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.sqlite3"


@pytest.fixture
def journal(db: Path) -> Iterator[Journal]:
    j = Journal(db)
    yield j
    j.close()


@pytest.fixture(scope="module")
def shared_journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journal]:
    """One journal for the many small state-machine tests (each uses its own path)."""
    j = Journal(tmp_path_factory.mktemp("shared") / "journal.sqlite3")
    yield j
    j.close()


def ident(size: int = 100, mtime_ns: int = 1_700_000_000_000_000_000, *, ino: int | None = None,
          dev: int = 42) -> FileIdentity:
    return FileIdentity(dev, next(_inodes) if ino is None else ino, size, mtime_ns)


def finish(j: Journal, row_id: int, state: State = State.MOVED, **kw: object) -> MoveRow:
    row = j.get(row_id)
    assert row is not None
    args: dict = dict(
        source=row.path,
        destination=f"/library/jazz/{Path(row.path).name}",
        genre="jazz",
        confidence=0.8,
        scores={"jazz": 0.8, "blues": 0.2},
        model_version="v1",
    )
    args.update(kw)
    return j.finish(row_id, state, **args)


def make_row(j: Journal, state: State, path: str = "/inbox/a.mp3",
             identity: FileIdentity | None = None) -> FileRow:
    """A row driven by legal steps from seen to ``state``."""
    row, new = j.observe(path, identity or ident())
    assert new
    for step in ROUTE[state]:
        if step in PLACED:
            finish(j, row.id, step)
        else:
            j.set_state(row.id, step)
    got = j.get(row.id)
    assert got is not None and got.state is state
    return got


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain SQLite connection to the journal file, to look behind the API."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


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


def write_file(path: Path, data: bytes = b"x" * 100, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


# -- the file: creation, WAL, permissions, reopening, schema versions ---------------------------


def test_creates_folder_and_file_private_in_wal_mode(db: Path) -> None:
    with Journal(db):
        pass
    assert stat.S_IMODE(db.parent.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(db.stat().st_mode) & 0o077 == 0
    with raw(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert c.execute("PRAGMA user_version").fetchone()[0] == len(journal_mod.MIGRATIONS)
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"files", "moves", "meta"} <= tables


def test_reopen_after_close_keeps_everything(db: Path) -> None:
    j = Journal(db)
    moved = make_row(j, State.MOVED, "/inbox/one.mp3")
    waiting = make_row(j, State.QUEUED, "/inbox/two.mp3")
    j.set_meta("model_version", "v7")
    before = (j.get(moved.id), j.get(waiting.id), j.history(), j.counts())
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        j.counts()
    with Journal(db) as again:
        assert (again.get(moved.id), again.get(waiting.id), again.history(), again.counts()) == before
        assert again.get_meta("model_version") == "v7"
        assert [r.id for r in again.recoverable()] == [waiting.id]


def test_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    bogus = tmp_path / "journal.sqlite3"
    bogus.write_bytes(b"definitely not sqlite " * 100)
    with pytest.raises(JournalError, match=re.escape(str(bogus))):
        Journal(bogus)


def test_refuses_someone_elses_database(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE songs (x)")
    with pytest.raises(JournalError, match="not a genre-daemon journal"):
        Journal(other)


def test_refuses_a_journal_from_a_newer_version(db: Path) -> None:
    Journal(db).close()
    with raw(db) as c:
        c.execute("PRAGMA user_version = 99")
    with pytest.raises(JournalError, match="newer") as e:
        Journal(db)
    assert str(db) in str(e.value)


def test_migration_hook_upgrades_an_old_journal_and_keeps_its_rows(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Journal(db) as j:
        row = make_row(j, State.REVIEW)

    def v2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE meta ADD COLUMN note TEXT")

    monkeypatch.setattr(journal_mod, "MIGRATIONS", [*journal_mod.MIGRATIONS, v2])
    with Journal(db) as j:
        assert j.get(row.id) == row
    with raw(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 2
        assert "note" in [r[1] for r in c.execute("PRAGMA table_info(meta)")]


def test_a_failing_migration_changes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Journal(db).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE meta ADD COLUMN note TEXT")
        conn.execute("this is not SQL")

    monkeypatch.setattr(journal_mod, "MIGRATIONS", [*journal_mod.MIGRATIONS, broken])
    with pytest.raises(JournalError, match="migrate"):
        Journal(db)
    with raw(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 1
        assert "note" not in [r[1] for r in c.execute("PRAGMA table_info(meta)")]


# -- the state machine ---------------------------------------------------------------------------

LEGAL = [(a, b) for a in State for b in State if b in TRANSITIONS[a]]
ILLEGAL = [(a, b) for a in State for b in State if b not in TRANSITIONS[a]]


def test_state_machine_is_the_designed_one() -> None:
    chain = [State.SEEN, State.SETTLING, State.QUEUED, State.CLASSIFYING]
    for a, b in zip(chain, chain[1:]):
        assert can_transition(a, b)
    for end in TERMINAL:
        assert can_transition(State.CLASSIFYING, end)
        assert not TRANSITIONS[end]  # terminal means terminal
    for s in set(State) - TERMINAL:
        assert can_transition(s, State.GONE) and can_transition(s, State.SEEN)
    assert can_transition(State.CLASSIFYING, State.QUEUED)
    assert can_transition(State.QUEUED, State.SETTLING)
    assert TERMINAL == {State.MOVED, State.REVIEW, State.QUARANTINED, State.GONE}
    assert len(LEGAL) == 17


@pytest.mark.parametrize(("src", "dst"), LEGAL, ids=lambda s: s.value)
def test_every_legal_transition(shared_journal: Journal, src: State, dst: State) -> None:
    journal = shared_journal
    row = make_row(journal, src, f"/inbox/legal {src.value} {dst.value}.mp3")
    if dst in PLACED:
        move = finish(journal, row.id, dst)
        assert move.kind == KIND[dst]
        after = journal.get(row.id)
    else:
        after = journal.set_state(row.id, dst, reason="because")
        assert after == journal.get(row.id)
        assert after.reason == "because"
    assert after is not None and after.state is dst


@pytest.mark.parametrize(("src", "dst"), ILLEGAL, ids=lambda s: s.value)
def test_every_illegal_transition_is_refused_and_changes_nothing(
    shared_journal: Journal, src: State, dst: State
) -> None:
    journal = shared_journal
    path = f"/inbox/illegal {src.value} {dst.value}.mp3"
    row = make_row(journal, src, path)
    history = journal.history()
    with pytest.raises(TransitionError) as e:
        if dst in PLACED:
            finish(journal, row.id, dst)
        else:
            journal.set_state(row.id, dst)
    message = str(e.value)
    assert path in message and src.value in message and dst.value in message
    assert isinstance(e.value, GenreDaemonError)
    assert (e.value.file_id, e.value.src, e.value.dst) == (row.id, src, dst)
    assert journal.get(row.id) == row
    assert journal.history() == history


@pytest.mark.parametrize("dst", sorted(PLACED, key=lambda s: s.value), ids=lambda s: s.value)
def test_placed_states_only_through_finish(shared_journal: Journal, dst: State) -> None:
    journal = shared_journal
    row = make_row(journal, State.CLASSIFYING, f"/inbox/placed {dst.value}.mp3")
    with pytest.raises(TransitionError, match="finish"):
        journal.set_state(row.id, dst)
    assert journal.get(row.id).state is State.CLASSIFYING


def test_finish_to_gone_is_refused(journal: Journal) -> None:
    row = make_row(journal, State.CLASSIFYING)
    with pytest.raises(TransitionError, match="set_state"):
        finish(journal, row.id, State.GONE)
    assert journal.history() == []


def test_attempts_count_entries_into_classifying(journal: Journal) -> None:
    row = make_row(journal, State.CLASSIFYING)
    assert row.attempts == 1
    journal.set_state(row.id, State.QUEUED, reason="disk full")
    again = journal.set_state(row.id, State.CLASSIFYING)
    assert again.attempts == 2 and again.reason is None


def test_unknown_row_is_a_clear_error(journal: Journal) -> None:
    with pytest.raises(JournalError, match="no file row 12345"):
        journal.set_state(12345, State.SETTLING)
    assert journal.get(12345) is None and journal.move(12345) is None


# -- observe() -----------------------------------------------------------------------------------


def test_unknown_path_is_new_work(journal: Journal) -> None:
    i = ident()
    row, new = journal.observe(Path("/inbox/a.mp3"), i)
    assert new and row.state is State.SEEN and row.identity == i and row.path == "/inbox/a.mp3"
    assert not row.held and row.attempts == 0 and row.destination is None


def test_same_file_again_is_the_same_row(journal: Journal) -> None:
    i = ident()
    row, _ = journal.observe("/inbox/a.mp3", i)
    journal.set_state(row.id, State.SETTLING)
    again, new = journal.observe("/inbox/a.mp3", i)
    assert new and again.id == row.id and again.state is State.SETTLING
    assert journal.counts()["settling"] == 1 and sum(journal.counts().values()) == 1


@pytest.mark.parametrize("end", [State.MOVED, State.REVIEW, State.QUARANTINED, State.GONE])
def test_a_finished_file_seen_again_unchanged_is_not_new_work(journal: Journal, end: State) -> None:
    """Placed files that come back, and files the daemon left in the inbox on purpose (gone:
    on_conflict skip, a move that cannot succeed), are not taken again at every rescan."""
    i = ident()
    row = make_row(journal, end, "/inbox/a.mp3", i)
    again, new = journal.observe("/inbox/a.mp3", i)
    assert not new and again == row
    assert sum(journal.counts().values()) == 1
    changed, new = journal.observe("/inbox/a.mp3", ident(size=999))  # until it changes
    assert new and changed.id != row.id


def test_a_changed_file_is_a_new_row_and_the_old_waiting_row_is_gone(journal: Journal) -> None:
    old = make_row(journal, State.QUEUED, "/inbox/a.mp3", ident(size=100))
    row, new = journal.observe("/inbox/a.mp3", ident(size=200))
    assert new and row.id != old.id and row.state is State.SEEN and row.identity.size == 200
    superseded = journal.get(old.id)
    assert superseded.state is State.GONE and f"row {row.id}" in superseded.reason
    assert [r.id for r in journal.recoverable()] == [row.id]


def test_a_changed_file_leaves_a_classifying_row_to_its_worker(journal: Journal) -> None:
    busy = make_row(journal, State.CLASSIFYING, "/inbox/a.mp3", ident(size=100))
    row, new = journal.observe("/inbox/a.mp3", ident(size=200))
    assert new and row.id != busy.id
    assert journal.get(busy.id).state is State.CLASSIFYING
    finish(journal, busy.id)  # the worker can still record what it did


def test_a_changed_file_at_a_placed_path_is_new_work(journal: Journal) -> None:
    placed = make_row(journal, State.MOVED, "/inbox/a.mp3", ident(size=100))
    row, new = journal.observe("/inbox/a.mp3", ident(size=300))
    assert new and row.id != placed.id
    assert journal.get(placed.id).state is State.MOVED


def test_update_identity_keeps_a_slow_write_in_one_row(journal: Journal) -> None:
    row = make_row(journal, State.SETTLING)
    grown = ident(size=5000)
    after = journal.update_identity(row.id, grown)
    assert after.id == row.id and after.identity == grown and after.state is State.SETTLING
    assert journal.observe(row.path, grown) == (after, True)
    journal.set_state(row.id, State.QUEUED)
    journal.set_state(row.id, State.CLASSIFYING)
    with pytest.raises(TransitionError):
        journal.update_identity(row.id, ident(size=6000))


def test_same_path_observed_from_many_threads_makes_one_row(journal: Journal) -> None:
    i = ident()
    barrier = threading.Barrier(4)
    results: list[tuple[FileRow, bool]] = []

    def worker() -> None:
        barrier.wait()
        for _ in range(10):
            results.append(journal.observe("/inbox/same.mp3", i))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({row.id for row, _ in results}) == 1 and len(results) == 40
    assert sum(journal.counts().values()) == 1


# -- finish(), planned moves, crash recovery --------------------------------------------------


def test_finish_records_the_move_and_the_state_together(tmp_path: Path) -> None:
    clock = itertools.count(1000.0, 1.0)
    with Journal(tmp_path / "j.sqlite3", clock=lambda: next(clock)) as j:
        row = make_row(j, State.CLASSIFYING, "/inbox/tune.mp3")
        move = j.finish(
            row.id, State.REVIEW, source="/inbox/tune.mp3", destination="/library/_review/tune.mp3",
            genre="jazz", confidence=0.31, scores={"jazz": 0.31, "rock": 0.3, "pop": 0.39},
            model_version="v3", content_hash="sha256:abc",
        )
        assert move == j.move(move.id) == j.history()[0]
        assert (move.file_id, move.source, move.destination, move.kind) == (
            row.id, "/inbox/tune.mp3", "/library/_review/tune.mp3", "review")
        assert move.scores == {"jazz": 0.31, "rock": 0.3, "pop": 0.39}
        assert list(move.scores) == ["jazz", "rock", "pop"]  # order kept
        assert (move.genre, move.confidence, move.model_version, move.undone) == ("jazz", 0.31, "v3", False)
        placed = j.get(row.id)
        assert placed.state is State.REVIEW and placed.destination == move.destination
        assert placed.content_hash == "sha256:abc" and placed.updated == move.time
        assert placed.first_seen < placed.updated


def test_quarantine_keeps_its_reason(journal: Journal) -> None:
    row = make_row(journal, State.CLASSIFYING)
    move = finish(journal, row.id, State.QUARANTINED, genre=None, confidence=None, scores={},
                  destination="/inbox/.quarantine/a.mp3", reason="not audio: a zip file")
    assert move.kind == "quarantine" and move.reason == "not audio: a zip file"
    assert journal.get(row.id).reason == "not audio: a zip file"


def test_a_failure_inside_finish_leaves_neither_the_state_nor_the_move(
    journal: Journal, db: Path
) -> None:
    row = make_row(journal, State.CLASSIFYING)
    with raw(db) as c:  # the move row is written second; make writing it fail, for real
        c.execute("CREATE TRIGGER no_moves BEFORE INSERT ON moves "
                  "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    with pytest.raises(JournalError, match="disk on fire"):
        finish(journal, row.id)
    assert journal.get(row.id) == row
    assert journal.history() == []
    with raw(db) as c:
        c.execute("DROP TRIGGER no_moves")
    finish(journal, row.id)
    assert journal.get(row.id).state is State.MOVED


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_finish_refuses_non_finite_numbers_before_writing(journal: Journal, bad: float) -> None:
    row = make_row(journal, State.CLASSIFYING)
    with pytest.raises(ValueError, match="finite"):
        finish(journal, row.id, confidence=bad)
    with pytest.raises(ValueError, match="jazz"):
        finish(journal, row.id, scores={"jazz": bad})
    assert journal.get(row.id) == row and journal.history() == []


def test_finish_requires_classifying(journal: Journal) -> None:
    row = make_row(journal, State.QUEUED)
    with pytest.raises(TransitionError, match="queued to moved"):
        finish(journal, row.id)


def test_begin_move_records_the_plan_and_finish_pending_completes_it(journal: Journal) -> None:
    row = make_row(journal, State.CLASSIFYING, "/inbox/b.flac")
    journal.begin_move(row.id, "/library/rock/b.flac", state=State.MOVED, genre="rock",
                       confidence=0.9, scores={"rock": 0.9, "pop": 0.1}, model_version="v2")
    planned = journal.get(row.id)
    assert planned.state is State.CLASSIFYING and planned.destination == "/library/rock/b.flac"
    assert [r.id for r in journal.recoverable()] == [row.id]  # a crash here is resumable
    # ... the daemon died after the rename; on restart it finds the destination complete:
    with Journal(journal.path) as restarted:
        move = restarted.finish_pending(row.id)
    assert (move.source, move.destination, move.genre, move.kind) == (
        "/inbox/b.flac", "/library/rock/b.flac", "rock", "genre")
    assert move.scores == {"rock": 0.9, "pop": 0.1} and move.model_version == "v2"
    assert journal.get(row.id).state is State.MOVED
    with pytest.raises(TransitionError):
        journal.finish_pending(row.id)


def test_a_plan_without_its_outcome_cannot_be_finished_blind(journal: Journal) -> None:
    row = make_row(journal, State.CLASSIFYING)
    journal.begin_move(row.id, "/library/jazz/a.mp3")
    with pytest.raises(TransitionError, match="no planned move"):
        journal.finish_pending(row.id)


def test_begin_move_only_while_classifying(journal: Journal) -> None:
    row = make_row(journal, State.QUEUED)
    with pytest.raises(TransitionError, match="only while classifying"):
        journal.begin_move(row.id, "/library/jazz/a.mp3")
    assert journal.get(row.id).destination is None


def test_leaving_classifying_drops_the_plan(journal: Journal) -> None:
    row = make_row(journal, State.CLASSIFYING)
    journal.begin_move(row.id, "/library/jazz/a.mp3", state=State.MOVED, genre="jazz",
                       confidence=0.7, scores={"jazz": 0.7}, model_version="v1")
    back = journal.set_state(row.id, State.QUEUED, reason="no space left on device")
    assert back.destination is None and back.genre is None and back.confidence is None
    journal.set_state(row.id, State.CLASSIFYING)
    with pytest.raises(TransitionError):
        journal.finish_pending(row.id)


# -- queries ----------------------------------------------------------------------------------


def test_counts_have_every_state(journal: Journal) -> None:
    assert journal.counts() == {s.value: 0 for s in State}
    for s in (State.SEEN, State.QUEUED, State.QUEUED, State.MOVED, State.GONE):
        make_row(journal, s, f"/inbox/{next(_inodes)}.mp3")
    assert journal.counts() == {**{s.value: 0 for s in State},
                                "seen": 1, "queued": 2, "moved": 1, "gone": 1}


def test_in_states_by_path_and_recoverable(journal: Journal) -> None:
    a = make_row(journal, State.SETTLING, "/inbox/a.mp3")
    b = make_row(journal, State.CLASSIFYING, "/inbox/b.mp3")
    make_row(journal, State.MOVED, "/inbox/c.mp3")
    d = make_row(journal, State.SEEN, "/inbox/d.mp3")
    assert [r.id for r in journal.in_states(State.SEEN, State.CLASSIFYING)] == [b.id, d.id]
    assert journal.in_states() == []
    assert [r.id for r in journal.recoverable()] == [a.id, b.id, d.id]
    assert journal.by_path("/inbox/b.mp3") == b and journal.by_path("/inbox/zz.mp3") is None
    newer, _ = journal.observe("/inbox/a.mp3", ident(size=1))
    assert journal.by_path("/inbox/a.mp3") == newer


def test_history_is_newest_first_with_limit(journal: Journal) -> None:
    moves = [finish(journal, make_row(journal, State.CLASSIFYING, f"/inbox/{n}.mp3").id)
             for n in range(5)]
    assert journal.history() == moves[::-1]
    assert journal.history(2) == [moves[4], moves[3]]
    assert journal.history(0) == []
    with pytest.raises(ValueError):
        journal.history(-1)


def test_meta_round_trips_and_overwrites(journal: Journal) -> None:
    assert journal.get_meta("pid") is None
    journal.set_meta("pid", "123")
    journal.set_meta("pid", "456")
    assert journal.get_meta("pid") == "456"
    journal.delete_meta("pid")
    assert journal.get_meta("pid") is None


def test_content_hash_lookup(journal: Journal, tmp_path: Path) -> None:
    f = write_file(tmp_path / "a.mp3", b"some audio bytes")
    h = content_hash(f)
    assert h.startswith("sha256:") and h == content_hash(f)
    assert h != content_hash(write_file(tmp_path / "b.mp3", b"other audio bytes"))
    row, _ = journal.observe(f, FileIdentity.of(f))
    assert journal.find_by_hash(h) == []
    assert journal.set_hash(row.id, h).content_hash == h
    assert [r.id for r in journal.find_by_hash(h)] == [row.id]


# -- undo and held files ------------------------------------------------------------------------


def undo_setup(journal: Journal, inbox: Path) -> tuple[Path, FileRow, MoveRow]:
    """A file the daemon moved and the user then put back into the inbox (as ``undo`` does)."""
    src = write_file(inbox / "song.mp3", b"\x01" * 500, mtime_ns=1_600_000_000_000_000_000)
    row = make_row(journal, State.CLASSIFYING, str(src), FileIdentity.of(src))
    move = finish(journal, row.id, destination=str(inbox.parent / "library" / "jazz" / "song.mp3"))
    journal.mark_undone(move.id, str(src), FileIdentity.of(src), content_hash=content_hash(src))
    return src, journal.get(row.id), move


def test_undo_holds_the_file_until_it_changes(journal: Journal, tmp_path: Path) -> None:
    src, held, move = undo_setup(journal, tmp_path / "inbox")
    assert held.held and held.state is State.SEEN and held.path == str(src)
    assert held.destination is None and "undone" in held.reason
    assert journal.move(move.id).undone
    assert journal.history(include_undone=False) == [] and journal.history()[0].undone
    assert journal.recoverable() == [] and journal.held_count() == 1
    assert journal.observe(src, FileIdentity.of(src)) == (held, False)  # unchanged: left alone
    with pytest.raises(TransitionError, match="undid"):
        journal.set_state(held.id, State.SETTLING)
    with pytest.raises(TransitionError, match="already undone"):
        journal.mark_undone(move.id, str(src), FileIdentity.of(src))
    # The user edits it: now it is new work, and the held row is history.
    write_file(src, b"\x02" * 700)
    row, new = journal.observe(src, FileIdentity.of(src))
    assert new and row.id != held.id and not row.held
    assert journal.get(held.id).state is State.GONE and journal.held_count() == 0


def test_a_held_file_that_vanishes_can_be_marked_gone(journal: Journal, tmp_path: Path) -> None:
    _, held, _ = undo_setup(journal, tmp_path / "inbox")
    assert journal.set_state(held.id, State.GONE, reason="vanished").state is State.GONE


def test_a_held_file_renamed_in_the_inbox_stays_held(journal: Journal, tmp_path: Path) -> None:
    src, held, _ = undo_setup(journal, tmp_path / "inbox")
    renamed = src.with_name("renamed.mp3")
    os.rename(src, renamed)
    calls: list[Path] = []
    row, new = journal.observe(renamed, FileIdentity.of(renamed),
                               hasher=lambda p: calls.append(p) or content_hash(p))
    assert not new and row.id == held.id and row.path == str(renamed) and row.held
    assert calls == []  # same inode: no need to read the file


def test_a_copy_of_a_held_file_stays_held_and_is_hashed_once(
    journal: Journal, tmp_path: Path
) -> None:
    src, held, _ = undo_setup(journal, tmp_path / "inbox")
    copy = tmp_path / "inbox" / "sub" / "song.mp3"
    copy.parent.mkdir()
    shutil.copy2(src, copy)  # same size and mtime, new inode (as across file systems)
    calls: list[Path] = []

    def hasher(p: Path) -> str:
        calls.append(p)
        return content_hash(p)

    row, new = journal.observe(copy, FileIdentity.of(copy), hasher=hasher)
    assert not new and row.held and row.id != held.id and row.path == str(copy)
    assert calls == [copy] and row.content_hash == held.content_hash
    assert journal.observe(copy, FileIdentity.of(copy), hasher=hasher) == (row, False)
    assert calls == [copy]  # known now: not hashed again


def test_a_held_file_replaced_by_its_own_copy_stays_the_same_held_row(
    journal: Journal, tmp_path: Path
) -> None:
    src, held, _ = undo_setup(journal, tmp_path / "inbox")
    tmp = tmp_path / "elsewhere.mp3"
    shutil.copy2(src, tmp)
    os.replace(tmp, src)  # same bytes, size and mtime at the same path; new inode
    row, new = journal.observe(src, FileIdentity.of(src), hasher=content_hash)
    assert not new and row.id == held.id and row.identity == FileIdentity.of(src)
    assert journal.held_count() == 1 and sum(journal.counts().values()) == 1


def test_no_hash_is_computed_when_the_undo_recorded_none(journal: Journal, tmp_path: Path) -> None:
    src = write_file(tmp_path / "inbox" / "song.mp3", b"\x01" * 500)
    row = make_row(journal, State.CLASSIFYING, str(src), FileIdentity.of(src))
    move = finish(journal, row.id)
    journal.mark_undone(move.id, str(src), FileIdentity.of(src))  # no content_hash
    copy = tmp_path / "inbox" / "copy.mp3"
    shutil.copy2(src, copy)
    calls: list[Path] = []
    _, new = journal.observe(copy, FileIdentity.of(copy), hasher=calls.append)
    assert new and calls == []


def test_a_lookalike_with_other_content_is_new_work(journal: Journal, tmp_path: Path) -> None:
    src, held, _ = undo_setup(journal, tmp_path / "inbox")
    other = write_file(tmp_path / "inbox" / "other.mp3", b"\x09" * 500,
                       mtime_ns=src.stat().st_mtime_ns)  # same size and mtime, other bytes
    calls: list[Path] = []
    row, new = journal.observe(other, FileIdentity.of(other),
                               hasher=lambda p: calls.append(p) or content_hash(p))
    assert new and not row.held and calls == [other]
    assert row.content_hash == content_hash(other)
    different = write_file(tmp_path / "inbox" / "third.mp3", b"\x09" * 501)
    journal.observe(different, FileIdentity.of(different),
                    hasher=lambda p: calls.append(p) or content_hash(p))
    assert calls == [other]  # a different size needs no hash


def test_without_a_hasher_a_copy_of_a_held_file_is_new_work(
    journal: Journal, tmp_path: Path
) -> None:
    src, _, _ = undo_setup(journal, tmp_path / "inbox")
    copy = tmp_path / "inbox" / "copy.mp3"
    shutil.copy2(src, copy)
    assert journal.observe(copy, FileIdentity.of(copy))[1]


# -- identities and odd names ---------------------------------------------------------------------


def test_identity_is_lstat_and_never_follows_a_symlink(tmp_path: Path) -> None:
    target = write_file(tmp_path / "outside" / "big.mp3", b"y" * 4096)
    link = tmp_path / "inbox" / "link.mp3"
    link.parent.mkdir()
    link.symlink_to(target)
    i = FileIdentity.of(link)
    st = os.lstat(link)
    assert (i.dev, i.ino, i.size, i.mtime_ns) == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    assert i != FileIdentity.of(target) and i.size != 4096
    with pytest.raises(OSError):
        content_hash(link)


def test_identities_using_all_64_bits_round_trip(journal: Journal) -> None:
    huge = FileIdentity(dev=2**64 - 1, ino=2**63 + 12345, size=2**40, mtime_ns=-5)
    row, _ = journal.observe("/mnt/share/a.mp3", huge)
    assert journal.get(row.id).identity == huge
    assert journal.observe("/mnt/share/a.mp3", huge) == (row, True)


def test_odd_names_round_trip_exactly(journal: Journal, tmp_path: Path) -> None:
    names = [
        "with space.mp3",
        "new\nline.mp3",
        "ünïcödé 音楽.flac",
        os.fsdecode(b"latin1 caf\xe9.mp3"),  # not UTF-8: a lone surrogate in Python
        "x" * 196 + ".mp3",  # 200 bytes
    ]
    for name in names:
        f = write_file(tmp_path / "inbox" / name)
        row, new = journal.observe(f, FileIdentity.of(f))
        assert new and row.path == str(f)
        assert journal.by_path(str(f)) == row
        for step in ROUTE[State.CLASSIFYING]:
            journal.set_state(row.id, step)
        move = finish(journal, row.id, destination=str(tmp_path / "library" / "jazz" / name),
                      reason=f"odd: {name}")
        assert os.fsencode(move.source) == os.fsencode(f)
        assert journal.move(move.id).destination.endswith(name)
        assert journal.observe(f, FileIdentity.of(f)) == (journal.get(row.id), False)
    assert journal.counts()["moved"] == len(names)


# -- concurrency: threads, processes, SIGKILL --------------------------------------------------


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


def test_set_state_via_passes_each_step_in_one_transaction(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as j:
        f = tmp_path / "a.mp3"
        f.write_bytes(b"x")
        row, _ = j.observe(f, FileIdentity.of(f))
        row = j.set_state(row.id, State.QUEUED, via=[State.SETTLING])
        assert row.state is State.QUEUED
        with pytest.raises(TransitionError):
            j.set_state(row.id, State.MOVED, via=[State.CLASSIFYING])  # placed states need finish()
        with pytest.raises(TransitionError):
            j.set_state(row.id, State.CLASSIFYING, via=[State.SEEN])  # seen -> classifying skips steps
        assert j.get(row.id).state is State.QUEUED  # a refused path changes nothing
