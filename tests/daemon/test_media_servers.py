"""Media servers read the library as another user: the real daemon (and ``import``) started under
``umask 077``, the shipped user unit's ``UMask=0077``, makes every folder ``folder_mode`` (0755 by
default), leaves the files' modes alone, and writes the servers' ignore markers into a review
folder inside the library, never over the user's own; the review page still shows what is there."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from genre_daemon.config import load_settings
from genre_daemon.filing.journal import Journal
from genre_daemon.filing.media_servers import MARKERS
from genre_daemon.web.data import WebData
from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)

TEMPLATE = "{genre}/{artist|Unknown Artist}/{album|album_folder}/{filename}"
MARKER_NAMES = sorted(name for name, _, _ in MARKERS)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def folders_under(top: Path) -> list[Path]:
    """``top`` and every folder below it (never through a link)."""
    return [top, *(Path(d) / n for d, names, _ in os.walk(top) for n in names)]


def downloaded_album(staging: Path, name: str) -> Path:
    """An album as a downloader under umask 077 leaves it: its folder and disc folders 0700,
    one track 0600 and one 0640 (one tone, so both tracks agree on a genre)."""
    root = staging / name
    tone(root / "CD1" / "01.wav", freq=330)
    tone(root / "CD2" / "01.wav", freq=330)
    os.chmod(root / "CD1" / "01.wav", 0o600)
    os.chmod(root / "CD2" / "01.wav", 0o640)
    for folder in (root / "CD1", root / "CD2", root):
        os.chmod(folder, 0o700)
    return root


def assert_placed_with_modes(tree: Tree, want: int, album_name: str) -> None:
    """The loose song at <genre>/Unknown Artist/a.wav, the album at <genre>/Unknown Artist/<album>/CD1,
    CD2 (the template's folders); every folder the daemon made is ``want``; files keep theirs."""
    song = next(p for p in tree.placed() if p.name == "a.wav")
    assert song.relative_to(tree.library).parts[1:] == ("Unknown Artist", "a.wav")
    tracks = [p for p in tree.placed() if p.parent.name in ("CD1", "CD2")]
    assert len(tracks) == 2, tree.placed()
    album = tracks[0].parent.parent
    assert album.name == album_name and album.parent.name == "Unknown Artist"
    made = [p for p in folders_under(tree.library) if p != tree.review]
    assert {str(p): oct(mode(p)) for p in made} == {str(p): oct(want) for p in made}
    assert mode(song) == 0o644  # the test's tone, written under its own umask
    assert (mode(album / "CD1" / "01.wav"), mode(album / "CD2" / "01.wav")) == (0o600, 0o640)


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path, path_template=TEMPLATE)
    yield t
    t.reap()


def test_under_umask_077_every_folder_is_0755_and_review_is_marked_but_shown(tree: Tree, tmp_path: Path) -> None:
    """A song, an album with disc folders, a file that is not audio, and (after a reload raising
    min_confidence) one to review: the library, genre, artist, album and disc folders, review and
    quarantine are 0755; review (inside the library) holds the three markers, quarantine (in the
    inbox, outside it) none; the song in review is on the review page all the same."""
    tree.start(umask=0o077)
    wait_for(lambda: all((tree.review / n).exists() for n in MARKER_NAMES), 30, "the markers in review")
    staging = tmp_path / "staging"
    album = downloaded_album(staging, "Kind of Blue")
    tone(staging / "a.wav", freq=300)
    (staging / "text.mp3").write_text("not audio\n" * 100)
    for name in ("a.wav", "text.mp3"):
        os.rename(staging / name, tree.inbox / name)
    os.rename(album, tree.inbox / album.name)  # arrives whole, as a finished download's rename
    wait_for(lambda: len(tree.placed()) == 3 and len(list(tree.quarantine.glob("*.reason.txt"))) == 1,
             120, "the song and the album placed, the text quarantined")
    tree.settings["min_confidence"] = 1.0
    tree.write_config()
    assert tree.proc is not None
    tree.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in tree.log.read_text(errors="replace"), 30, "the reload")
    tone(tree.inbox / "b.wav", freq=800)
    wait_for(lambda: (tree.review / "b.wav").exists() and not (tree.inbox / "b.wav").exists(), 60, "b.wav in review")
    assert tree.stop() == 0

    assert_placed_with_modes(tree, 0o755, "Kind of Blue")
    assert mode(tree.review) == 0o755 and mode(tree.quarantine) == 0o755
    assert sorted(p.name for p in tree.review.iterdir() if p.name.startswith(".")) == MARKER_NAMES
    assert {mode(tree.review / n) for n in MARKER_NAMES} == {0o644}  # readable by the server's user
    assert not [p for p in tree.quarantine.iterdir() if p.name in MARKER_NAMES]
    s = load_settings(tree.config)
    with Journal(s.journal_path) as journal:
        shown = [item.name for item in WebData(s, journal).review_items()]
    assert shown == ["b.wav"]


def test_folder_mode_0750_and_the_users_own_marker_is_kept(tree: Tree, tmp_path: Path) -> None:
    """``folder_mode: "0750"``: every folder the daemon makes is 0750 under umask 077; a
    ``.plexignore`` the user already keeps in review is left byte for byte, the other two written."""
    tree.settings["folder_mode"] = "0750"
    tree.write_config()
    tree.review.mkdir(parents=True)
    os.chmod(tree.library, 0o750)  # made by the test here, as the daemon would make it
    mine = "# my own rules\nold/*\n"
    (tree.review / ".plexignore").write_text(mine)
    tree.start(umask=0o077)
    wait_for(lambda: (tree.review / ".ndignore").exists(), 30, "the markers in review")
    staging = tmp_path / "staging"
    album = downloaded_album(staging, "Blue Train")
    tone(staging / "a.wav", freq=300)
    os.rename(staging / "a.wav", tree.inbox / "a.wav")
    os.rename(album, tree.inbox / album.name)
    wait_for(lambda: len(tree.placed()) == 3, 120, "the song and the album placed")
    assert tree.stop() == 0
    assert_placed_with_modes(tree, 0o750, "Blue Train")
    assert (tree.review / ".plexignore").read_text() == mine
    assert (tree.review / ".ignore").read_bytes() == b"" and (tree.review / ".ndignore").read_bytes() == b""
    assert mode(tree.quarantine) == 0o750


def test_import_under_umask_077_makes_0755_folders_and_marks_review(tree: Tree, tmp_path: Path) -> None:
    """``genre-daemon import`` is the daemon's sibling: the same folders, the same modes."""
    collection = tmp_path / "collection"
    downloaded_album(collection, "Giant Steps")
    tone(collection / "a.wav", freq=300)
    done = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "import", str(collection), "--config",
                           str(tree.config), "--workers", "1"],
                          capture_output=True, text=True, timeout=300, umask=0o077)
    assert done.returncode == 0, done.stderr
    assert_placed_with_modes(tree, 0o755, "Giant Steps")
    assert mode(tree.review) == 0o755 and sorted(p.name for p in tree.review.iterdir()) == MARKER_NAMES
