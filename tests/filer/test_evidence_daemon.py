"""The evidence beside the sound on the real daemon, with real tagged FLAC files: a genre tag the
sound does not strongly disagree with files the song there, one it strongly disagrees with sends
it to review naming both; an artist the library knows pulls its next song towards its genre, a
correction teaches the artist at once (retraining off), and with ``use_artist_genre: false``
nothing leans."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mutagen.flac import FLAC

from conftest import write_tone
from genre_daemon.filer import evidence
from support import Tree, pytestmark, wait_for  # noqa: F401  (pytestmark: needs the model)

FREQ = 3000.0  # a tone the shipped model hears as unsure between several genres
SURE_FREQ = 220.0  # a tone it hears as two genres and almost nothing else


def song(path: Path, freq: float = FREQ, **tags: str) -> Path:
    """A real FLAC of a test tone with these tags (same audio, so the same scores)."""
    write_tone(path, seconds=4.0, sr=22050, freq=freq)
    f = FLAC(path)
    for k, v in tags.items():
        f[k] = v
    f.save()
    return path


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> dict[float, dict[str, float]]:
    """What the shipped model says of each test tone, asked of the real ``classify``."""
    folder = tmp_path_factory.mktemp("sound")
    paths = [song(folder / f"{freq:.0f}.flac", freq) for freq in (FREQ, SURE_FREQ)]
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "classify", "--json", *map(str, paths)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return {float(Path(d["path"]).stem): d["scores"] for d in map(json.loads, out.stdout.splitlines())}


@pytest.fixture
def scores(sounds: dict[float, dict[str, float]]) -> dict[str, float]:
    return sounds[FREQ]


def ranked(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda g: (-scores[g], g))


def status(tree: Tree) -> dict[str, object]:
    out = tree.cli("status", "--json")
    return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else {}


def placed_as(tree: Tree, name: str) -> Path | None:
    return next((p for p in tree.placed() if p.name == name), None)


def test_a_tag_the_sound_agrees_with_files_the_song_there_and_a_strongly_disagreeing_one_goes_to_review(
        tmp_path: Path, sounds: dict[float, dict[str, float]]) -> None:
    scores, sure = sounds[FREQ], sounds[SURE_FREQ]
    top, *others = ranked(scores)
    vouched = next(g for g in others if scores[g] >= evidence.TAG_RATIO * scores[top])  # not the sound's first
    sure_top, *sure_others = ranked(sure)
    clash = sure_others[-1]
    assert sure[clash] < evidence.TAG_RATIO * sure[sure_top], sure
    tree = Tree(tmp_path, use_existing_genre=True, min_confidence=0.4)
    try:
        tree.start()
        song(tree.inbox / "agrees.flac", artist="A", genre=vouched.title())
        song(tree.inbox / "clashes.flac", SURE_FREQ, artist="B", genre=clash.upper())
        wait_for(lambda: len(tree.placed()) == 2 and not tree.in_inbox(), 120, "both songs to be filed")
        assert placed_as(tree, "agrees.flac") == tree.library / vouched / "agrees.flac"
        assert placed_as(tree, "clashes.flac") == tree.review / "clashes.flac"
        reason = next(str(h["reason"]) for h in tree.history() if str(h["destination"]).endswith("clashes.flac"))
        assert clash in reason and sure_top in reason and f"{sure[sure_top]:.2f}" in reason
    finally:
        tree.reap()


def _known_songs_needed(scores: dict[str, float], genre: str) -> int:
    """The fewest songs of an artist in ``genre`` that pull the test tone there."""
    n = next((n for n in range(1, 9) if evidence.weigh(scores, artist={genre: n}).genre == genre), None)
    assert n is not None, f"the tone sounds too sure for any artist to pull it to {genre}: {scores}"
    return n


@pytest.mark.parametrize("lean", [True, False], ids=["use_artist_genre", "off"])
def test_an_artist_known_in_the_library_pulls_the_next_song_and_a_correction_teaches_it_at_once(
        tmp_path: Path, scores: dict[str, float], lean: bool) -> None:
    top, first, second, *_ = ranked(scores)
    n = max(_known_songs_needed(scores, first), _known_songs_needed(scores, second) - 1)
    tree = Tree(tmp_path, use_artist_genre=lean, min_confidence=0.0, retrain={"enabled": False})
    (tree.library / first).mkdir(parents=True)
    for i in range(n):  # the user's own songs of the artist
        song(tree.library / first / f"old{i}.flac", artist="The Test Band", title=f"old {i}")
    try:
        tree.start()
        wait_for(lambda: status(tree).get("new_labels") == n, 60, "the label scan to see the user's songs")
        song(tree.inbox / "new.flac", artist="test band", title="new")
        wait_for(lambda: placed_as(tree, "new.flac"), 120, "the new song to be filed")
        assert placed_as(tree, "new.flac") == tree.library / (first if lean else top) / "new.flac"
        if not lean:
            return
        # The user says the band is `second`: every song of theirs goes there (one the daemon placed:
        # a correction). No retrain runs; the next song leans there at once.
        (tree.library / second).mkdir()
        for p in sorted((tree.library / first).iterdir()):
            shutil.move(p, tree.library / second / p.name)
        wait_for(lambda: status(tree).get("new_labels") == n + 1, 60, "the label scan to see the correction")
        song(tree.inbox / "next.flac", artist="The Test Band", title="next")
        wait_for(lambda: placed_as(tree, "next.flac"), 120, "the next song to be filed")
        assert placed_as(tree, "next.flac") == tree.library / second / "next.flac"
        assert not (tree.state / "models").exists() or not any((tree.state / "models").glob("v*"))  # no retrain
    finally:
        tree.reap()
