"""Folders the daemon makes are exactly ``folder_mode`` whatever the umask (a media server reads
the library as another user), files keep theirs; and the media servers' ignore markers in review.

Every test runs under ``umask 077``, the shipped user unit's ``UMask=0077``: ``mkdir(path, 0o755)``
alone gives 0700 there, which is what the daemon made before the mode was set explicitly."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from genre_daemon.filing import album_mover, mover
from genre_daemon.filing.fsutil import make_folder, make_folders, set_folder_mode
from genre_daemon.filing.media_servers import MARKERS, PLEXIGNORE, mark_ignored, marked_folders


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def umask077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def put(path: Path, data: bytes, file_mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, file_mode)
    return path


def album(root: Path) -> Path:
    """An album as a downloader under umask 077 leaves it: folders 0700, a disc folder each, one
    track 0600 and one 0640."""
    put(root / "CD1" / "01 One.flac", b"one" * 100, 0o600)
    put(root / "CD2" / "01 Two.flac", b"two" * 100, 0o640)
    for folder in (root / "CD1", root / "CD2", root):
        os.chmod(folder, 0o700)
    return root


@pytest.mark.parametrize("want", [0o755, 0o750], ids=["0755", "0750"])
def test_make_folders_gives_every_new_folder_the_mode_and_leaves_existing_ones(
        tmp_path: Path, umask077: None, want: int) -> None:
    os.chmod(tmp_path, 0o711)
    make_folders(tmp_path / "a" / "b" / "c", want)
    make_folder(tmp_path / "d", want)
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c", "d")] == [want] * 4
    assert mode(tmp_path) == 0o711  # it was there: the user's
    with pytest.raises(FileExistsError):
        make_folder(tmp_path / "d", want)  # a claim never reuses a folder


def test_set_folder_mode_never_follows_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    os.symlink(target, tmp_path / "link")
    with pytest.raises(OSError):
        set_folder_mode(tmp_path / "link", 0o755)
    assert mode(target) == 0o700


@pytest.mark.parametrize("want", [0o755, 0o750], ids=["0755", "0750"])
def test_a_moved_file_gets_readable_folders_and_keeps_its_own_mode(tmp_path: Path, umask077: None,
                                                                   want: int) -> None:
    """The genre folder and the path_template's artist/album folders below the library, and the
    quarantine folder, are ``want``; the files keep 0600 and 0644."""
    lib = tmp_path / "lib"
    a = put(tmp_path / "in" / "a.mp3", b"a", 0o600)
    b = put(tmp_path / "in" / "b.mp3", b"b", 0o644)
    mover.move(a, lib / "jazz" / "Miles Davis" / "Kind of Blue" / "a.mp3", root=lib, folder_mode=want)
    mover.move(b, tmp_path / "free" / "x" / "b.mp3", folder_mode=want)
    q = mover.quarantine(put(tmp_path / "in" / "c.mp3", b"c", 0o600), tmp_path / "q", "bad", folder_mode=want)
    made = ["lib", "lib/jazz", "lib/jazz/Miles Davis", "lib/jazz/Miles Davis/Kind of Blue", "free", "free/x", "q"]
    assert {p: oct(mode(tmp_path / p)) for p in made} == {p: oct(want) for p in made}
    assert mode(lib / "jazz" / "Miles Davis" / "Kind of Blue" / "a.mp3") == 0o600
    assert mode(tmp_path / "free" / "x" / "b.mp3") == 0o644 and mode(q) == 0o600


def test_the_default_is_0755_under_umask_077(tmp_path: Path, umask077: None) -> None:
    """Today's callers pass no mode: 0755, really (mkdir alone gave 0700 here)."""
    mover.move(put(tmp_path / "in" / "a.mp3", b"a"), tmp_path / "lib" / "rock" / "a.mp3", root=tmp_path / "lib")
    mover.makedirs(tmp_path / "made" / "by" / "makedirs")
    assert {mode(tmp_path / p) for p in ("lib", "lib/rock", "made", "made/by", "made/by/makedirs")} == {0o755}


@pytest.mark.parametrize("want", [0o755, 0o750], ids=["0755", "0750"])
@pytest.mark.parametrize("across", [False, True], ids=["renamed", "copied"])
def test_a_placed_album_and_its_disc_folders_get_the_mode_its_files_keep_theirs(
        tmp_path: Path, shm: Path, umask077: None, want: int, across: bool) -> None:
    """Renamed in (same filesystem: the inbox's own 0700 folders) or copied (another
    filesystem: folders made by the daemon), the album's folder and disc folders are ``want``,
    and so are the genre and artist folders made on the way; the tracks keep 0600 and 0640."""
    inbox = shm / "inbox" if across else tmp_path / "inbox"
    src = album(inbox / "Kind of Blue")
    lib = tmp_path / "lib"
    moved = album_mover.move_album(src, lib / "jazz" / "Miles Davis" / "Kind of Blue", root=lib,
                                   expect=album_mover.snapshot(src), inbox=inbox, folder_mode=want)
    assert moved.copied is across
    dest = moved.destination
    folders = [lib / "jazz", lib / "jazz" / "Miles Davis", dest, dest / "CD1", dest / "CD2"]
    assert {str(p): oct(mode(p)) for p in folders} == {str(p): oct(want) for p in folders}
    assert (mode(dest / "CD1" / "01 One.flac"), mode(dest / "CD2" / "01 Two.flac")) == (0o600, 0o640)
    assert not src.exists()


def test_a_kill_between_the_rename_and_the_modes_is_finished_by_settle_album(tmp_path: Path, umask077: None) -> None:
    """The album renamed in, then the process stops before the modes are set: the recovery's
    settle_album, given folder_mode, sets them."""
    inbox, lib = tmp_path / "inbox", tmp_path / "lib"
    src = album(inbox / "Blue Train")
    expect = album_mover.snapshot(src)

    class Killed(BaseException):
        pass

    def hook(step: str) -> None:
        if step == "renamed":
            raise Killed

    claimed: list[Path] = []
    with pytest.raises(Killed):
        album_mover.move_album(src, lib / "jazz" / "Blue Train", root=lib, expect=expect, hook=hook,
                               on_claimed=claimed.append)
    dest = claimed[0]
    assert mode(dest) == 0o700  # the inbox's folder, renamed in, not yet opened up
    assert album_mover.settle_album(src, dest, expect, expect.library_names(), 0o755) == "placed"
    assert {mode(p) for p in (dest, dest / "CD1", dest / "CD2")} == {0o755}


# --- the media servers' ignore markers --------------------------------------------------------


def test_markers_are_written_readable_with_what_each_server_reads(tmp_path: Path, umask077: None) -> None:
    review = tmp_path / "lib" / "_review"
    review.mkdir(parents=True)
    written = mark_ignored(review)
    assert sorted(p.name for p in written) == [".ignore", ".ndignore", ".plexignore"]
    for name, _, _ in MARKERS:
        assert mode(review / name) == 0o644  # the media server runs as another user
    # Jellyfin and Navidrome exclude the whole folder only for an EMPTY file (with content it is
    # a list of patterns); Plex reads patterns, every file here and in sub-folders.
    assert (review / ".ignore").read_bytes() == b"" and (review / ".ndignore").read_bytes() == b""
    lines = [ln for ln in (review / ".plexignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines == ["*", "*/*", "*/*/*", "*/*/*/*"]
    assert mark_ignored(review) == []  # already there: nothing written twice


def test_a_users_own_marker_is_never_overwritten_nor_followed(tmp_path: Path) -> None:
    review = tmp_path / "_review"
    review.mkdir()
    (review / ".plexignore").write_text("# mine\nold/*\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    os.symlink(outside, review / ".ignore")
    written = mark_ignored(review)
    assert [p.name for p in written] == [".ndignore"]
    assert (review / ".plexignore").read_text() == "# mine\nold/*\n"
    assert os.path.islink(review / ".ignore") and outside.read_text() == "keep"
    assert (review / ".plexignore").read_bytes() != PLEXIGNORE


def test_only_review_and_quarantine_inside_the_library_are_marked(tmp_path: Path) -> None:
    lib = tmp_path / "Library"
    assert marked_folders(lib, lib / "_review", tmp_path / "Inbox" / ".quarantine") == [lib / "_review"]
    assert marked_folders(lib, tmp_path / "review", tmp_path / "q") == []
    assert marked_folders(lib, lib / "_review", lib / "_quarantine") == [lib / "_review", lib / "_quarantine"]
    assert marked_folders(lib, lib, tmp_path / "q") == []  # never the library itself
