"""The daemon and ``import`` share one journal: each asks it only for the unfinished rows and
albums under its own folder (issue 19 I1), a byte range on the stored path that a sibling
folder sharing the name's prefix (``inbox2`` beside ``inbox``) never falls into."""

from __future__ import annotations

from pathlib import Path

from genre_daemon.filing.journal import FileIdentity, Journal


def test_unfinished_rows_and_albums_are_listed_per_folder(tmp_path: Path) -> None:
    inbox, sibling, coll = tmp_path / "inbox", tmp_path / "inbox2", tmp_path / "coll"
    with Journal(tmp_path / "state" / "journal.db") as j:
        ids: dict[Path, list[int]] = {}
        for n, folder in enumerate((inbox, sibling, coll)):
            ids[folder] = []
            for i, rel in enumerate(("a.flac", "Album/01.flac", "Album/02.flac")):
                row, _ = j.observe(folder / rel, FileIdentity(1, 100 * n + i, 1000 + i, 5), hasher=None)
                ids[folder].append(row.id)
            j.open_album(folder / "Album", ids[folder][1:], {"files": {}})
        for folder in (inbox, sibling, coll):
            assert [r.id for r in j.recoverable(under=folder)] == ids[folder]
            assert [a.source for a in j.active_albums(under=folder)] == [str(folder / "Album")]
        assert [r.id for r in j.recoverable(under=inbox / "Album")] == ids[inbox][1:]
        assert j.recoverable(under=inbox / "a.flac") == []  # under a folder, never the folder itself
        assert len(j.recoverable()) == 9 and len(j.active_albums()) == 3  # no folder: all of them
