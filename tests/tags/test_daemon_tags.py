"""write_tags on the real daemon: the genre tag equals the genre folder for mp3, flac, ogg, opus
and m4a, every other tag and the audio unchanged (read back with mutagen and with ffprobe), and
undo puts the old genre tag back."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import Tree, pytestmark, wait_for  # noqa: F401  (pytestmark: needs the model)
from tags.conftest import drop_every_format, ffprobe_tags, genre_values, killed_child_placed, pcm_digests
from tags.conftest import raw_tags, without_genre


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path, write_tags=True, min_confidence=0.0)
    yield t
    t.reap()


def test_the_daemon_writes_the_genre_of_the_folder_into_each_format_and_undo_restores_it(
        tree: Tree, sources, tmp_path: Path) -> None:
    staged = drop_every_format(tree, sources, tmp_path)
    placed = {p.stem: p for p in tree.placed()}
    for kind, (src, raw, probed, pcm) in staged.items():
        path = placed[kind]
        genre = path.parent.name
        assert genre_values(path) == [genre], kind
        assert ffprobe_tags(path)["genre"] == genre, kind
        assert without_genre(raw_tags(path)) == without_genre(raw), kind  # every other tag kept
        assert without_genre(ffprobe_tags(path)) == without_genre(probed), kind
        assert pcm_digests(path)[0] == pcm, kind  # the audio untouched
    out = tree.cli("undo", "--last", str(len(staged)))
    assert out.returncode == 0, out.stderr
    for kind, (src, raw, probed, pcm) in staged.items():
        back = tree.inbox / f"{kind}{src.suffix}"
        assert genre_values(back) == ["Rock"], kind  # the genre ffmpeg wrote, restored
        assert without_genre(raw_tags(back)) == without_genre(raw), kind  # and nothing else changed


# A kill between placing a file and writing its genre tag. The child does what the daemon does,
# step by step with the real journal, mover and tagging code, and SIGKILLs itself at ``stage``.
KILL_CHILD = r"""
import os, signal, sys
from pathlib import Path
from genre_daemon.filing import mover, tagging
from genre_daemon.filing.journal import FileIdentity, Journal, State
db, src, dest, stage = sys.argv[1:5]
src, dest = Path(src), Path(dest)
j = Journal(Path(db))
row, _ = j.observe(src, FileIdentity.of(src))
j.set_state(row.id, State.CLASSIFYING, via=[State.SETTLING, State.QUEUED])
outcome = dict(genre="jazz", confidence=0.9, scores={"jazz": 0.9}, model_version="test")
j.begin_move(row.id, dest, state=State.MOVED, **outcome)
mover.move(src, dest, "rename", root=dest.parent.parent, expect=mover.signature(src.stat()))
if stage == "moved":  # placed, not yet recorded
    os.kill(os.getpid(), signal.SIGKILL)
move = j.finish(row.id, State.MOVED, source=src, destination=dest, tag=True, **outcome)
if stage == "placed":  # placed and recorded, the tag not written
    os.kill(os.getpid(), signal.SIGKILL)
# "tagged": the hash of the tagged file is taken after the write and before it is recorded
tagging.tag_placed(j, move, dest, "jazz", lambda path: os.kill(os.getpid(), signal.SIGKILL))
sys.exit(3)
"""


@pytest.mark.parametrize("stage", ["moved", "placed", "tagged"])
def test_a_kill_between_placing_and_tagging_is_finished_at_the_next_start_and_undo_restores_the_tag(
        tree: Tree, tagged, stage: str) -> None:
    """Issue 19: a kill between placing a file and writing its tag left it placed without the
    tag. The next start writes it; after a kill right after the write, undo still puts back the
    file's own genre (kept in the journal before the write), not the daemon's."""
    import sqlite3

    from genre_daemon.tags import current_genre

    src = tagged("mp3")  # genre Rock
    raw = raw_tags(src)
    inbox_file, dest = killed_child_placed(tree, src, KILL_CHILD, stage)
    db = tree.state / "journal.sqlite3"
    assert dest.is_file() and not inbox_file.exists()
    assert current_genre(dest) == ("jazz" if stage == "tagged" else "Rock")

    def pending() -> list[tuple[int, str | None]]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as c:
            return c.execute("SELECT tag_pending, tag_snapshot FROM moves").fetchall()

    tree.start()
    wait_for(lambda: pending() and pending()[0][0] == 0, 60, "the pending tag to be finished")
    assert current_genre(dest) == "jazz" and genre_values(dest) == ["jazz"]
    assert without_genre(raw_tags(dest)) == without_genre(raw)
    assert f"{dest}: its genre tag, interrupted by a stop, taken up after a restart" in tree.log.read_text()
    assert tree.stop() == 0
    out = tree.cli("undo", "--last", "1")
    assert out.returncode == 0, out.stderr
    assert genre_values(inbox_file) == ["Rock"]  # the file's own genre, not the daemon's
    assert without_genre(raw_tags(inbox_file)) == without_genre(raw)
