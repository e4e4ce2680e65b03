"""write_tags on the real daemon: the genre tag equals the genre folder for mp3, flac, ogg, opus
and m4a, every other tag and the audio unchanged (read back with mutagen and with ffprobe), and
undo puts the old genre tag back."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_tone
from support import Tree, pytestmark, wait_for  # noqa: F401  (pytestmark: needs the model)
from tags.conftest import FFMPEG_KINDS, ffprobe_tags, genre_values, pcm_digests, raw_tags, without_genre


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path, write_tags=True, min_confidence=0.0)
    yield t
    t.reap()


def test_the_daemon_writes_the_genre_of_the_folder_into_each_format_and_undo_restores_it(
        tree: Tree, sources, tmp_path: Path) -> None:
    long_tone = write_tone(tmp_path / "long.wav", seconds=6.0, sr=44100, channels=2, freq=(330.0, 550.0))
    staged = {}
    for kind in FFMPEG_KINDS:
        src = sources.path(kind, source=long_tone)
        staged[kind] = (src, raw_tags(src), ffprobe_tags(src), pcm_digests(src)[0])
    tree.start()
    for kind, (src, *_rest) in staged.items():
        (tree.inbox / f"{kind}{src.suffix}").write_bytes(src.read_bytes())
    wait_for(lambda: len(tree.placed()) == len(staged) and not tree.in_inbox(), 120, "every file to be placed")
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
