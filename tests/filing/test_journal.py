"""genre_daemon.filing.journal on real SQLite files in tmp_path: the file and its schema migrations,
the state machine, observe() for every kind of file the inbox can show it, the queries, identities
and odd names. No mocks. Moves and undo are in test_journal_moves, threads and other processes in
test_journal_concurrency; both use the helpers and fixtures defined here."""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from genre_daemon.filing.journal import schema as journal_mod
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing.journal import (
    PLACED,
    TERMINAL,
    TRANSITIONS,
    WAITING,
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
        assert c.execute("PRAGMA user_version").fetchone()[0] == len(journal_mod.MIGRATIONS)
        assert "note" in [r[1] for r in c.execute("PRAGMA table_info(meta)")]


def test_a_version_1_journal_is_upgraded_to_albums_keeping_its_rows(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = journal_mod.MIGRATIONS
    monkeypatch.setattr(journal_mod, "MIGRATIONS", released[:1])
    with Journal(db) as j:
        row = make_row(j, State.MOVED)
    monkeypatch.setattr(journal_mod, "MIGRATIONS", released)
    with Journal(db) as j:
        again = j.get(row.id)
        assert again is not None and again.album_id is None and again.tags is None
        assert [m.file_id for m in j.history()] == [row.id]
    with raw(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == len(released)
        assert "album_id" in [r[1] for r in c.execute("PRAGMA table_info(files)")]
        assert "tag_snapshot" in [r[1] for r in c.execute("PRAGMA table_info(moves)")]


def test_a_failing_migration_changes_nothing(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Journal(db).close()
    released = len(journal_mod.MIGRATIONS)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE meta ADD COLUMN note TEXT")
        conn.execute("this is not SQL")

    monkeypatch.setattr(journal_mod, "MIGRATIONS", [*journal_mod.MIGRATIONS, broken])
    with pytest.raises(JournalError, match="migrate"):
        Journal(db)
    with raw(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == released
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
    assert WAITING == {State.SEEN, State.SETTLING, State.QUEUED}  # recorded, not yet being classified
    assert WAITING == set(State) - TERMINAL - {State.CLASSIFYING}
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
