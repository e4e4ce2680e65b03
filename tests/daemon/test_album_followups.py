"""Issue 19 follow-ups on the real daemon: albums never torn, nothing ever nowhere.

Each test runs ``genre-daemon run`` as a subprocess on its own tree (``Tree`` from
tests/support.py) with real audio files: an album whose track names begin with dots is filed whole
under the names a loose file would get, and undo gives it its own back; a restart after a
container's albums were filed keeps the songs beside them loose; a move a kill interrupted after
a clash renamed it keeps its genre under a ``path_template``; undoing a quarantined album or file
takes its reason file with it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT
from support import Tree, files_under, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)
from test_names_and_leftovers import logged, quarantine_a_duplicate_album, tree  # noqa: F401  (tree: the fixture)


def tones(folder: Path, names: list[str]) -> dict[str, bytes]:
    """A tone (each its own pitch) at each name under ``folder``; name -> bytes."""
    out = {}
    for i, name in enumerate(names):
        out[name] = tone(folder / name, freq=220.0 + 110 * i).read_bytes()
    return out


def stop_and_undo(t: Tree) -> None:
    """Stop the daemon, then ``undo`` its newest entry."""
    assert t.stop() == 0
    out = t.cli("undo")
    assert out.returncode == 0, out.stderr


def child(script: str, *args: object) -> None:
    """Run ``script`` (the real journal and mover, step by step) in a child that SIGKILLs itself."""
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


# ---------------------------------------------------------------------------------------------
# 1. An album whose tracks begin with dots.


def test_an_album_with_tracks_that_begin_with_dots_is_filed_whole_and_undo_gives_it_its_names_back(
        tree: Tree) -> None:
    """``...And Justice for All/...Blackened.flac`` failed the album's safe-names check (a
    hidden name in the library is invisible to media servers and to the label scan), so the
    album was torn: its tracks filed one by one, its cover left in the inbox. It goes whole now,
    each name as a loose file's would be (the leading dots dropped), ``.DS_Store`` kept hidden."""
    staging = tree.root / "staging"
    album = staging / "...And Justice for All"
    sounds = tones(album, ["...Blackened.flac", "02 ...And Justice for All.flac", "..Eye of the Beholder.wav"])
    sounds |= tones(album / "..Bonus", ["...Blackened (demo).flac"])
    (album / "cover.jpg").write_bytes(b"\xff\xd8 a cover")
    (album / ".DS_Store").write_bytes(b"Bud1 finder")
    tree.start()
    os.rename(album, tree.inbox / album.name)
    # The album's folder is renamed in first and its names made safe after; the log line ends that.
    wait_for(lambda: "album ...And Justice for All -> " in logged(tree) and len(tree.placed()) == 4
             and not files_under(tree.inbox), 120, "the album filed and its names made safe")
    (folder,) = {p.parent for p in tree.placed() if p.parent.name != "Bonus"}
    assert folder.name == "And Justice for All"
    assert {p.relative_to(folder).as_posix() for p in files_under(folder)} == {
        "Blackened.flac", "02 ...And Justice for All.flac", "Eye of the Beholder.wav",
        "Bonus/Blackened (demo).flac", "cover.jpg", ".DS_Store"}
    assert (folder / "Blackened.flac").read_bytes() == sounds["...Blackened.flac"]
    log = logged(tree)
    assert "filed one by one" not in log
    assert "album ...And Justice for All -> " in log
    assert "made safe there: '...Blackened.flac' as 'Blackened.flac'" in log
    destinations = {Path(str(h["destination"])) for h in tree.history()}
    assert destinations == set(tree.placed())  # the journal knows each track by its name there
    stop_and_undo(tree)
    back = tree.inbox / album.name
    assert {p.relative_to(back).as_posix() for p in files_under(back)} == {
        "...Blackened.flac", "02 ...And Justice for All.flac", "..Eye of the Beholder.wav",
        "..Bonus/...Blackened (demo).flac", "cover.jpg", ".DS_Store"}
    assert (back / "..Bonus" / "...Blackened (demo).flac").read_bytes() == sounds["...Blackened (demo).flac"]
    assert not folder.exists()


# A kill right after the album's folder was renamed into the library, before its names were made
# library names: the child does what the daemon does, with the real journal and album mover.
KILL_AFTER_RENAME = r"""
import os, signal, sys
from pathlib import Path
from genre_daemon.daemon.albums import album_snapshot_json
from genre_daemon.filing import album_mover
from genre_daemon.filing.journal import FileIdentity, Journal, State
db, album, dest = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
j = Journal(db)
ids = []
for track in sorted(album.glob("*.wav")):
    row, _ = j.observe(track, FileIdentity.of(track))
    ids.append(row.id)
snap = album_mover.snapshot(album)
a = j.open_album(album, ids, album_snapshot_json(snap))
j.start_album(a.id)
def kill(step):
    if step == "renamed":
        os.kill(os.getpid(), signal.SIGKILL)
album_mover.move_album(album, dest, root=dest.parent.parent, expect=snap, hook=kill, names=snap.library_names(),
                       on_claimed=lambda claimed: j.begin_album_move(a.id, claimed, state="moved", genre="jazz",
                           confidence=0.9, scores={"jazz": 0.9}, model_version="test"))
"""


def test_a_kill_before_an_albums_names_were_made_safe_is_finished_at_the_next_start(tree: Tree) -> None:
    album = tree.inbox / "..Dots"
    tones(album, ["...One.wav", "Two.wav"])
    dest = tree.library / "jazz" / "Dots"
    tree.state.mkdir(parents=True, exist_ok=True)
    child(KILL_AFTER_RENAME, tree.state / "journal.sqlite3", album, dest)
    assert (dest / "...One.wav").is_file() and not album.exists()  # hidden in the library for now
    tree.start()
    wait_for(lambda: len(tree.history()) == 2, 60, "the album recorded")
    assert sorted(p.name for p in dest.iterdir()) == ["One.wav", "Two.wav"]
    assert {Path(str(h["destination"])) for h in tree.history()} == {dest / "One.wav", dest / "Two.wav"}
    assert tree.stop() == 0


# ---------------------------------------------------------------------------------------------
# 2. A container's loose songs after a restart.


# The daemon's state when it stops after filing a container's albums and before its loose songs:
# both songs judged loose (queued on their own, as the daemon's intake records them), the albums
# gone from the inbox.
JUDGED_LOOSE = r"""
import os, signal, sys
from pathlib import Path
from genre_daemon.filing.journal import FileIdentity, Journal, State
j = Journal(Path(sys.argv[1]))
for song in sys.argv[2:]:
    row, _ = j.observe(Path(song), FileIdentity.of(song))
    j.set_state(row.id, State.QUEUED, via=[State.SETTLING])
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_restart_after_a_containers_albums_were_filed_keeps_its_songs_loose(tree: Tree) -> None:
    """``Downloads/{bob, rap, Bach/, Metallica/}``: the daemon stopped once both albums were
    filed and the two songs were queued as loose files. At the next start the songs were grouped
    again from the disk, where they are now alone in ``Downloads/``: an album called Downloads."""
    downloads = tree.inbox / "Downloads"
    songs = [downloads / "bob.wav", downloads / "rap.wav"]
    tones(downloads, [s.name for s in songs])
    tree.state.mkdir(parents=True, exist_ok=True)
    child(JUDGED_LOOSE, tree.state / "journal.sqlite3", *songs)
    tree.start()
    wait_for(lambda: len(tree.placed()) == 2 and not files_under(tree.inbox), 60, "both songs filed")
    assert {p.name for p in tree.placed()} == {"bob.wav", "rap.wav"}
    assert {p.parent.parent for p in tree.placed()} == {tree.library}  # <genre>/bob.wav, no Downloads/
    assert "album Downloads" not in logged(tree)
    assert tree.stop() == 0


# ---------------------------------------------------------------------------------------------
# 3. A move a kill interrupted after a clash renamed it, under a path_template.


KILL_AFTER_MOVE = r"""
import os, signal, sys
from pathlib import Path
from genre_daemon.filing import mover
from genre_daemon.filing.journal import FileIdentity, Journal, State
db, src, dest = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
j = Journal(db)
row, _ = j.observe(src, FileIdentity.of(src))
j.set_state(row.id, State.CLASSIFYING, via=[State.SETTLING, State.QUEUED])
j.begin_move(row.id, dest, state=State.MOVED, genre="jazz", confidence=0.9, scores={"jazz": 0.9, "rock": 0.1},
             model_version="test")
mover.move(src, dest, "rename", root=Path(sys.argv[4]), expect=mover.signature(src.stat()))
os.kill(os.getpid(), signal.SIGKILL)  # placed as 'song (2).wav', not yet recorded
"""


def test_a_move_renamed_on_a_clash_and_finished_after_a_kill_keeps_its_genre_under_a_path_template(
        tree: Tree) -> None:
    """The recovery recorded the destination's folder name as the genre: under
    ``{genre}/{artist}/{album}/{title}`` that is the album's folder, so history said 'Unknown
    Album' for a song filed as jazz, and retraining took the album's name for a genre."""
    tree.settings["path_template"] = "{genre}/{artist}/{album}/{filename}"
    tree.write_config()
    song = tree.inbox / "song.wav"
    tone(song)
    dest = tree.library / "jazz" / "Unknown Artist" / "Unknown Album" / "song.wav"
    tone(dest, freq=880)  # someone else's song at the address: the move picks 'song (2).wav'
    tree.state.mkdir(parents=True, exist_ok=True)
    child(KILL_AFTER_MOVE, tree.state / "journal.sqlite3", song, dest, tree.library)
    assert dest.with_name("song (2).wav").is_file() and not song.exists()
    tree.start()
    wait_for(lambda: tree.history(), 60, "the move recorded")
    (entry,) = tree.history()
    assert entry["destination"] == str(dest.with_name("song (2).wav"))
    assert entry["genre"] == "jazz" and entry["confidence"] == pytest.approx(0.9)
    assert tree.stop() == 0


# ---------------------------------------------------------------------------------------------
# 4. Undo of what was quarantined.


def test_undoing_a_quarantined_album_takes_its_reason_file_with_it(tree: Tree) -> None:
    """``<album>.reason.txt`` stayed in quarantine, beside nothing, once the album went back."""
    quarantine_a_duplicate_album(tree)
    wait_for((tree.quarantine / "Again.reason.txt").is_file, 10, "the album's reason file")
    stop_and_undo(tree)
    assert sorted(p.name for p in (tree.inbox / "Again").iterdir()) == ["01 - track.wav", "02 - track.wav"]
    assert sorted(p.name for p in tree.quarantine.iterdir()) == []


def test_undoing_a_quarantined_file_with_a_long_name_takes_its_cut_reason_file_with_it(tree: Tree) -> None:
    """The reason file's name is cut to fit 255 bytes; undo looked for the uncut name, which the
    kernel refuses (ENAMETOOLONG): the file went back, but undo failed before recording it."""
    name = "x" * 247 + ".wav"  # 251 bytes: with '.reason.txt' 262, cut to 255
    bad = tree.inbox / name
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVE not audio at all")
    tree.start()
    wait_for(lambda: tree.quarantined() and not tree.in_inbox(), 60, "the file quarantined")
    stop_and_undo(tree)
    assert bad.is_file() and list(tree.quarantine.iterdir()) == []
    with sqlite3.connect(f"file:{tree.state / 'journal.sqlite3'}?mode=ro", uri=True) as c:
        assert c.execute("SELECT undone FROM moves").fetchall() == [(1,)]
