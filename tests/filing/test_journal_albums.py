"""The journal's albums: a folder filed whole, recorded so a crash is finished and undo is whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from genre_daemon.filing.journal import FileIdentity, Journal, JournalError, PlacedTrack, State, TransitionError


@pytest.fixture
def journal(tmp_path: Path):
    with Journal(tmp_path / "state" / "journal.db") as j:
        yield j


def tracks(j: Journal, tmp_path: Path, n: int = 3) -> list[int]:
    ids = []
    for i in range(n):
        p = tmp_path / "inbox" / "Album" / f"{i:02}.flac"
        row, _ = j.observe(p, FileIdentity(1, 100 + i, 1000 + i, 5), hasher=None)
        ids.append(row.id)
    return ids


def test_an_album_is_opened_started_and_placed_with_a_move_row_per_track(journal: Journal, tmp_path: Path) -> None:
    ids = tracks(journal, tmp_path)
    album = journal.open_album(tmp_path / "inbox" / "Album", ids, {"files": {}})
    assert album.state == "queued" and [t.album_id for t in journal.album_tracks(album.id)] == [album.id] * 3
    assert journal.open_album(tmp_path / "inbox" / "Album", ids, {}) == album  # a rescan offers it again
    journal.start_album(album.id)
    assert {t.state for t in journal.album_tracks(album.id)} == {State.CLASSIFYING}
    dest = tmp_path / "lib" / "jazz" / "Album"
    journal.begin_album_move(album.id, dest, state="moved", genre="jazz", confidence=0.8,
                             scores={"jazz": 0.8, "rock": 0.2}, model_version="m1")
    assert journal.active_albums()[0].state == "moving"
    moves = journal.finish_album(album.id, [PlacedTrack(fid, str(dest / f"{i:02}.flac"), 0.7, {"jazz": 0.7},
                                                        content_hash=f"sha256:{i:064x}")
                                            for i, fid in enumerate(ids)])
    assert [m.album_id for m in moves] == [album.id] * 3 and {m.genre for m in moves} == {"jazz"}
    assert {t.state for t in journal.album_tracks(album.id)} == {State.MOVED}
    assert journal.album(album.id).state == "moved" and journal.active_albums() == []
    assert [m.id for m in journal.album_moves(album.id)] == [m.id for m in moves]
    assert journal.find_placed_hash(f"sha256:{1:064x}") == str(dest / "01.flac")
    assert journal.find_placed_hash("sha256:" + "f" * 64) is None


def test_an_album_sent_to_review_places_its_tracks_in_review(journal: Journal, tmp_path: Path) -> None:
    ids = tracks(journal, tmp_path, 2)
    album = journal.open_album(tmp_path / "inbox" / "Album", ids, {})
    journal.start_album(album.id)
    journal.begin_album_move(album.id, tmp_path / "rev" / "Album", state="review", genre="jazz", confidence=0.3,
                             scores={}, model_version="m1", reason="too mixed")
    journal.finish_album(album.id, [PlacedTrack(fid, str(tmp_path / "rev" / "Album" / f"{fid}"), 0.3, {})
                                    for fid in ids])
    assert {m.kind for m in journal.album_moves(album.id)} == {"review"}


def test_a_requeued_album_refunds_the_interrupted_attempt(journal: Journal, tmp_path: Path) -> None:
    ids = tracks(journal, tmp_path, 2)
    album = journal.open_album(tmp_path / "inbox" / "Album", ids, {})
    assert journal.start_album(album.id).attempts == 1
    again = journal.requeue_album(album.id, "a stop interrupted its move", refund=True)
    assert again.state == "queued" and again.attempts == 0
    assert {(t.state, t.attempts) for t in journal.album_tracks(album.id)} == {(State.QUEUED, 0)}
    journal.start_album(album.id)
    assert journal.requeue_album(album.id, "stopped while classifying", refund=False).attempts == 1


def test_only_the_track_being_classified_when_a_stop_comes_carries_the_attempt(journal: Journal,
                                                                              tmp_path: Path) -> None:
    ids = tracks(journal, tmp_path, 3)
    album = journal.open_album(tmp_path / "inbox" / "Album", ids, {"files": {"00.flac": [1], "01.flac": [2]}})
    journal.start_album(album.id)
    assert journal.begin_track(ids[0]) == 1
    journal.end_track(ids[0])  # classified: not an interrupted attempt
    assert journal.begin_track(ids[1]) == 1  # ... and the daemon stops here
    journal.requeue_album(album.id, "a stop interrupted its classification", refund=True)
    assert [journal.get(i).attempts for i in ids] == [0, 1, 0]
    journal.drop_from_snapshot(album.id, "01.flac")
    assert journal.album(album.id).snapshot == {"files": {"00.flac": [1]}}


def test_a_dissolved_album_gives_its_tracks_back_unlinked(journal: Journal, tmp_path: Path) -> None:
    ids = tracks(journal, tmp_path, 2)
    album = journal.open_album(tmp_path / "inbox" / "Album", ids, {})
    journal.start_album(album.id)
    journal.dissolve_album(album.id, "kept stopping the daemon")
    assert journal.album(album.id).state == "gone"
    assert {(journal.get(i).state, journal.get(i).album_id) for i in ids} == {(State.SEEN, None)}
    assert journal.active_album(tmp_path / "inbox" / "Album") is None


def test_finishing_an_album_is_all_or_nothing(journal: Journal, tmp_path: Path) -> None:
    ids = tracks(journal, tmp_path, 2)
    album = journal.open_album(tmp_path / "inbox" / "Album", ids, {})
    journal.start_album(album.id)
    journal.begin_album_move(album.id, tmp_path / "lib" / "x", state="moved", genre="x", confidence=0.9,
                             scores={}, model_version=None)
    journal.set_state(ids[1], State.GONE, reason="vanished")
    with pytest.raises(TransitionError):
        journal.finish_album(album.id, [PlacedTrack(fid, str(tmp_path / "lib" / "x" / str(fid)), 0.9, {})
                                        for fid in ids])
    assert journal.get(ids[0]).state == State.CLASSIFYING and journal.album(album.id).state == "moving"
    assert journal.history() == []


def test_only_waiting_tracks_join_an_album_and_states_are_checked(journal: Journal, tmp_path: Path) -> None:
    ids = tracks(journal, tmp_path, 2)
    journal.set_state(ids[0], State.GONE)
    with pytest.raises(TransitionError, match="only a waiting track joins an album"):
        journal.open_album(tmp_path / "inbox" / "Album", ids, {})
    album = journal.open_album(tmp_path / "inbox" / "Album", ids[1:], {})
    with pytest.raises(JournalError, match="is queued, not classifying"):
        journal.begin_album_move(album.id, tmp_path / "x", state="moved", genre=None, confidence=None,
                                 scores={}, model_version=None)


def test_tags_and_tag_snapshots_are_kept(journal: Journal, tmp_path: Path) -> None:
    ids = tracks(journal, tmp_path, 2)
    journal.set_tags(ids[0], {"artist": "Miles Davis", "track": 3})
    assert journal.get(ids[0]).tags == {"artist": "Miles Davis", "track": 3}
    album = journal.open_album(tmp_path / "inbox" / "Album", ids, {})
    journal.start_album(album.id)
    journal.begin_album_move(album.id, tmp_path / "lib", state="moved", genre="jazz", confidence=0.9,
                             scores={}, model_version=None)
    moves = journal.finish_album(album.id, [PlacedTrack(fid, str(tmp_path / "lib" / str(fid)), 0.9, {})
                                            for fid in ids])
    journal.record_tag_write(moves[0].id, '{"kind": "id3", "values": []}', FileIdentity(1, 999, 2000, 7), "sha256:x")
    assert journal.move(moves[0].id).tag_snapshot == '{"kind": "id3", "values": []}'
    retagged = journal.get(ids[0])
    assert (retagged.identity, retagged.content_hash) == (FileIdentity(1, 999, 2000, 7), "sha256:x")
