"""duplicates: keep | skip | quarantine on the real daemon: a file whose content is already in the
library is placed anyway, left in the inbox, or quarantined naming the copy; logged each way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support import Tree, pytestmark, tone, wait_for  # noqa: F401  (pytestmark: needs the model)


def place_one(tree: Tree, name: str) -> tuple[Path, Path]:
    """Start the daemon and drop a tone as ``name``; returns the tone and where it was placed."""
    tree.start()
    song = tone(tree.root / "song.wav", freq=523.0)
    shutil.copy(song, tree.inbox / name)
    wait_for(lambda: len(tree.placed()) == 1 and not tree.in_inbox(), 60, "the first copy to be placed")
    return song, tree.placed()[0]


@pytest.mark.parametrize("policy", ["keep", "skip", "quarantine"])
def test_a_second_copy_of_a_placed_song_follows_the_duplicates_policy(tmp_path: Path, policy: str) -> None:
    tree = Tree(tmp_path, duplicates=policy)
    try:
        song, first = place_one(tree, "first.wav")
        shutil.copy(song, tree.inbox / "second.wav")
        if policy == "keep":
            wait_for(lambda: len(tree.placed()) == 2, 60, "the second copy to be placed too")
            said = "already in the library as"
        elif policy == "skip":
            wait_for(lambda: "(duplicates: skip)" in tree.log.read_text(), 60, "the skip to be logged")
            assert (tree.inbox / "second.wav").is_file() and len(tree.placed()) == 1
            said = "left in the inbox (duplicates: skip)"
        else:
            wait_for(lambda: (tree.quarantine / "second.wav").is_file(), 60, "the copy to be quarantined")
            # the reason file is written just after the move: wait for it rather than race it
            reason_file = tree.quarantine / "second.wav.reason.txt"
            wait_for(lambda: reason_file.is_file() and f"duplicate of {first}" in reason_file.read_text(), 30,
                     "the reason file to name the copy it duplicates")
            said = "duplicates: quarantine"
        wait_for(lambda: said in tree.log.read_text(), 30, "the policy to be logged")  # logged after the move
        assert first.is_file()
    finally:
        tree.reap()


def test_a_file_whose_tags_cannot_be_written_is_still_placed_with_the_reason_logged(tmp_path: Path) -> None:
    import soundfile as sf

    tree = Tree(tmp_path, write_tags=True)
    try:
        tree.start()
        wav = tone(tmp_path / "src.wav", freq=440.0)
        data, sr = sf.read(wav)
        sf.write(tmp_path / "song.au", data, sr, format="AU")  # Sun .au: no tag format mutagen can write
        shutil.copy(tmp_path / "song.au", tree.inbox / "song.au")
        wait_for(lambda: len(tree.placed()) == 1, 60, "the .au file to be placed")
        wait_for(lambda: "its genre tag was not written" in tree.log.read_text(), 30, "the reason to be logged")
        assert tree.placed()[0].read_bytes() == (tmp_path / "song.au").read_bytes()
    finally:
        tree.reap()


@pytest.mark.parametrize("policy", ["skip", "quarantine"])
def test_with_write_tags_the_same_file_dropped_again_is_still_a_duplicate(tmp_path: Path, policy: str) -> None:
    """Issue 19 A6: the journal kept only the tagged file's hash, so the same file dropped again
    (its bytes as they arrived, before the daemon's tag) was filed as new, ``a (2).wav``."""
    from genre_daemon.tags import current_genre

    tree = Tree(tmp_path, duplicates=policy, write_tags=True)
    try:
        song, first = place_one(tree, "a.wav")
        wait_for(lambda: current_genre(first) == first.parent.name, 30, "its genre tag to be written")
        assert first.read_bytes() != song.read_bytes()
        shutil.copy(song, tree.inbox / "a.wav")
        if policy == "skip":
            wait_for(lambda: "(duplicates: skip)" in tree.log.read_text(), 60, "the skip to be logged")
            assert (tree.inbox / "a.wav").read_bytes() == song.read_bytes()
        else:
            wait_for(lambda: (tree.quarantine / "a.wav").is_file(), 60, "the copy to be quarantined")
            assert f"duplicate of {first}" in (tree.quarantine / "a.wav.reason.txt").read_text()
        assert sorted(tree.library.rglob("*.wav")) == [first]  # no "a (2).wav"
    finally:
        tree.reap()
