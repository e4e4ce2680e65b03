"""``genre_names`` on the real daemon: a placed file lands in the user's folder name and its genre
tag (``write_tags``) says the user's name (mutagen and ffprobe read it back); ``history`` says the
name; a rename by SIGHUP files the next songs under the new name and moves nothing already filed."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from conftest import GTZAN_DIR, write_tone
from support import Tree, pytestmark, wait_for  # noqa: F401  (pytestmark: needs the model)
from tags.conftest import ffprobe_tags, genre_values

GENRES = ["blues", "classical", "country", "disco", "electronic", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]
NAMES = {g: g.title() for g in GENRES} | {"hiphop": "Hip-Hop", "disco": "Pop", "pop": "Pop"}


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path, write_tags=True, tag_mode="fill", genre_names=NAMES)
    yield t
    t.reap()


def test_a_placed_file_lands_in_the_users_folder_and_its_tag_says_the_users_name(tree: Tree, tmp_path: Path) -> None:
    songs = [write_tone(tmp_path / "src" / "tone.flac", seconds=4.0, sr=44100)]
    clip = GTZAN_DIR / "hiphop" / "hiphop.00002.flac"  # the shipped model hears it as hiphop (1.00)
    hiphop = [clip] if clip.is_file() else []
    for clip in hiphop:
        songs.append(Path(shutil.copyfile(clip, tmp_path / "src" / clip.name)))  # not its read-only mode
    tree.start()
    for song in songs:
        shutil.copy(song, tree.inbox / song.name)
    wait_for(lambda: len(tree.placed()) == len(songs) and not tree.in_inbox(), 120, "every song to be placed")
    wait_for(lambda: all(genre_values(p) for p in tree.placed()), 30, "every genre tag to be written")
    history = {Path(m["destination"]).name: m for m in tree.history()}
    for path in tree.placed():
        m = history[path.name]
        name = NAMES[str(m["genre"])]
        assert path.relative_to(tree.library).parts[0] == name  # the user's folder, never the model's genre
        assert genre_values(path) == [name] and ffprobe_tags(path)["genre"] == name
        assert m["name"] == name
    lines = tree.cli("history").stdout
    assert all(f"{NAMES[str(m['genre'])]} " in lines for m in history.values())
    log = tree.log.read_text()
    assert all(f"-> {NAMES[str(m['genre'])]} " in log for m in history.values())
    if hiphop:  # a real hip-hop clip: filed as the user calls the genre
        assert any(p.parent.name == "Hip-Hop" for p in tree.placed()), [str(p) for p in tree.placed()]
    assert tree.stop() == 0


def test_a_rename_on_a_running_library_files_the_next_songs_by_the_new_name_and_moves_nothing(
        tree: Tree, tmp_path: Path) -> None:
    tree.start()
    write_tone(tree.inbox / "first.flac", seconds=4.0, sr=44100, freq=330.0)
    [first] = wait_for(tree.placed, 60, "the first song")  # type: ignore[misc]
    tree.settings["genre_names"] = {g: f"{g.title()} Music" for g in GENRES}
    tree.write_config()
    assert tree.proc is not None
    tree.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in tree.log.read_text(), 30, "the reload")
    write_tone(tree.inbox / "second.flac", seconds=4.0, sr=44100, freq=331.0)
    wait_for(lambda: len(tree.placed()) == 2 and all(genre_values(p) for p in tree.placed()), 60, "the second song")
    second = next(p for p in tree.placed() if p.name == "second.flac")
    genre = next(m["genre"] for m in tree.history() if m["destination"] == str(second))
    assert second.parent.name == f"{str(genre).title()} Music"
    assert first.is_file()  # filed under the old name, left there
    assert genre_values(second) == [f"{str(genre).title()} Music"]
    assert tree.stop() == 0
