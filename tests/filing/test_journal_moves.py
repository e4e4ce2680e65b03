"""genre_daemon.filing.journal's moves on real SQLite files in tmp_path: finish() atomicity, planned
moves and their completion after a crash, undo and the held files it leaves behind. Shared
helpers and fixtures come from test_journal."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest

from genre_daemon.filing.journal import (
    FileIdentity,
    FileRow,
    Journal,
    JournalError,
    MoveRow,
    State,
    TransitionError,
    content_hash,
)
from test_journal import db, finish, journal, make_row, raw, write_file  # noqa: F401 (fixtures)


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
