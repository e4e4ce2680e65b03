"""The journal's record of genre tags written in place (``genre-daemon tag``), on real SQLite
files: a version 3 journal upgraded to the ``tag`` kind keeping every row; a verdict recorded in
one transaction with its tag pending (an album as one history entry); an in-place verdict never
keeps the daemon or ``import`` from taking the file; a tag that could not be written leaves no
history; undo marks the moves undone and the files left alone; the daemon's own placement of a
file follows a tag write."""

from __future__ import annotations

from pathlib import Path

import pytest

from genre_daemon.filing.journal import FileIdentity, Journal, JournalError, State, TransitionError
from genre_daemon.filing.journal import schema as journal_mod
from genre_daemon.filing.journal.in_place import NOT_WRITTEN, TAG_UNDONE, UNTAGGED, Judged
from test_journal import db, finish, ident, journal, make_row, raw  # noqa: F401 (fixtures)


def classifying(j: Journal, path: str, identity: FileIdentity | None = None) -> int:
    return make_row(j, State.CLASSIFYING, path, identity).id


def test_a_version_3_journal_is_upgraded_to_tags_in_place_keeping_every_move(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    released = journal_mod.MIGRATIONS
    monkeypatch.setattr(journal_mod, "MIGRATIONS", released[:3])
    with Journal(db) as j:
        row = make_row(j, State.MOVED)
        j.record_tag_write(j.history()[0].id, '{"format": "id3"}', ident(size=120), "sha256:t")
        before = j.history()
        with pytest.raises(JournalError):  # version 3 knows no kind "tag"
            with j._write("try a tag move") as c:
                c.execute("UPDATE moves SET kind = 'tag'")
    monkeypatch.setattr(journal_mod, "MIGRATIONS", released)
    with Journal(db) as j:
        assert j.history() == before and before[0].tag_snapshot == '{"format": "id3"}'
        assert j.get(row.id).state is State.MOVED
        other = classifying(j, "/music/b.mp3", ident(ino=9))
        [move] = j.record_in_place([Judged(other, 0.7, {"jazz": 0.7})], genre="jazz", model_version="v1",
                                   reason="jazz 0.70", tag=True)
        assert move.kind == "tag"
    with raw(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == len(released)


def test_an_album_is_recorded_whole_with_its_tags_pending_and_is_one_history_entry(journal: Journal) -> None:
    ids = [classifying(journal, f"/music/Album/{i}.flac", ident(ino=10 + i)) for i in range(3)]
    moves = journal.record_in_place([Judged(i, 0.6, {"rock": 0.6}) for i in ids], genre="rock", model_version="v1",
                                    reason="rock 0.60 mean over 3 tracks", tag=True, album="/music/Album",
                                    album_confidence=0.6, album_scores={"rock": 0.6})
    assert [(m.source, m.destination, m.kind) for m in moves] == [
        (f"/music/Album/{i}.flac", f"/music/Album/{i}.flac", "tag") for i in range(3)]
    assert journal.pending_in_place("/music") == moves and journal.pending_in_place("/elsewhere") == []
    assert journal.pending_tags() == moves
    [entry] = journal.history_entries()
    assert entry.album is not None and entry.album.source == entry.album.destination == "/music/Album"
    assert all(journal.get(i).state is State.MOVED and journal.get(i).in_place for i in ids)
    with pytest.raises(TransitionError):  # a verdict is recorded once, while classifying
        journal.record_in_place([Judged(ids[0], 0.6, {})], genre="rock", model_version="v1", reason="x", tag=True)


def test_a_verdict_in_place_never_keeps_the_daemon_or_import_from_taking_the_file(journal: Journal) -> None:
    tagged = classifying(journal, "/music/a.mp3", ident(ino=1))
    journal.record_in_place([Judged(tagged, 0.9, {"jazz": 0.9})], genre="jazz", model_version="v1",
                            reason="jazz 0.90", tag=True)
    left = classifying(journal, "/music/b.mp3", ident(ino=2))
    journal.record_in_place([Judged(left, 0.1, {"jazz": 0.1})], genre=None, model_version="v1",
                            reason=UNTAGGED + "confidence 0.10", tag=False)
    assert journal.get(left).state is State.GONE and journal.get(left).in_place
    assert journal.counts()["moved"] == journal.counts()["gone"] == 0  # status counts the daemon's files
    for path, ino, old in (("/music/a.mp3", 1, tagged), ("/music/b.mp3", 2, left)):
        row, new = journal.observe(path, ident(ino=ino))  # the same file, unchanged
        assert new and row.id != old and row.state is State.SEEN  # new work for whoever sorts it


def test_a_tag_not_written_leaves_no_history_and_is_tried_again(journal: Journal) -> None:
    fid = classifying(journal, "/music/a.mp3", ident(ino=1))
    [move] = journal.record_in_place([Judged(fid, 0.9, {})], genre="jazz", model_version="v1", reason="r", tag=True)
    journal.unrecord_tag(move.id, "the file is read-only")
    assert journal.history() == [] and journal.pending_in_place("/music") == []
    row = journal.get(fid)
    assert row.state is State.GONE and row.reason == NOT_WRITTEN + "the file is read-only" and row.in_place


def test_undo_marks_the_moves_undone_and_the_files_left_alone(journal: Journal) -> None:
    ids = [classifying(journal, f"/music/A/{i}.flac", ident(ino=20 + i)) for i in range(2)]
    moves = journal.record_in_place([Judged(i, 0.6, {}) for i in ids], genre="rock", model_version="v1",
                                    reason="r", tag=True, album="/music/A")
    album = moves[0].album_id
    journal.mark_tags_undone([(m.id, ident(ino=30 + k)) for k, m in enumerate(moves)], album)
    assert all(journal.move(m.id).undone for m in moves) and journal.album(album).undone
    assert journal.history_entries(include_undone=False) == [] and journal.pending_tags() == []
    row = journal.get(ids[0])
    assert row.reason.startswith(TAG_UNDONE) and row.identity == ident(ino=30) and not row.held
    with pytest.raises(JournalError):
        journal.mark_tags_undone([(moves[0].id, ident(ino=40))])


def test_the_daemons_placement_of_a_file_follows_its_tag_write(journal: Journal) -> None:
    placed = make_row(journal, State.MOVED, "/inbox/a.mp3", ident(ino=5))  # the daemon put it in the library
    fid = classifying(journal, "/library/jazz/a.mp3", ident(ino=5))
    journal.record_in_place([Judged(fid, 0.9, {})], genre="jazz", model_version="v1", reason="r", tag=True)
    assert journal.follow_rewrite(fid, ident(ino=5), ident(ino=6, size=130), "sha256:new") == 1
    row = journal.get(placed.id)
    assert row.identity == ident(ino=6, size=130) and row.content_hash == "sha256:new"
    assert journal.get(fid).identity == ident(ino=5)  # the tag's own row is record_tag_write's
