"""``genre-daemon tag DIR``: genre tags written where the files are, through the real command: an
album gets one genre and the loose files their own, in the user's names, nothing moved and nothing
but the genre changed (mutagen, ffprobe and the decoded audio read back); ``history`` lists the
tags and ``undo`` puts every old tag back exactly; a dry run changes nothing; a run killed with
SIGKILL goes on without classifying again what it tagged; files below ``min_confidence`` and
files with a genre of their own under ``tag_mode: fill`` are left as they are, listed."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_tone
from support import Tree, pytestmark, wait_for  # noqa: F401  (pytestmark: needs the model)
from tags.conftest import (  # noqa: F401  (sources: the session's encoded, tagged files)
    METADATA,
    ffprobe_tags,
    genre_values,
    pcm_digests,
    raw_tags,
    sources,
    without_genre,
)

from genre_daemon.resources import default_model_dir

GENRES = json.loads((default_model_dir() / "model.json").read_text())["genres"]
NAMES = {g: f"My {g.title()}" for g in GENRES}  # genre_names: every genre in the user's words


def files(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256), hidden ones included."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_tag(tree: Tree, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genre_daemon.cli", "tag", *args, "--config", str(tree.config),
                           "--workers", "1"], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tree(tmp_path: Path):
    t = Tree(tmp_path, genre_names=NAMES)
    yield t
    t.reap()


def artist_layout(sources, top: Path) -> dict[str, Path]:
    """A library laid out by artist: an album of three tracks (mp3 ID3v2.4, flac, ogg, each
    tagged Rock with artist, album, title...) and loose songs (m4a, opus, mp3 ID3v2.3)."""
    album = top / "Björk" / "Homogenic"
    album.mkdir(parents=True)
    long = sources.root / "long.wav"  # long enough to be classified; encoded once a session
    if not long.exists():
        write_tone(long, seconds=6.0, sr=44100, channels=2, freq=(330.0, 550.0))
    out = {kind: sources.copy(kind, album, f"{i + 1:02} {kind}{ext}", source=long)
           for i, (kind, ext) in enumerate((("mp3", ".mp3"), ("flac", ".flac"), ("ogg", ".ogg")))}
    for kind, ext in (("m4a", ".m4a"), ("opus", ".opus"), ("mp3-v23", ".mp3")):
        out[kind] = sources.copy(kind, top / "Björk", f"single {kind}{ext}", source=long)
    return out


def test_a_library_by_artist_is_tagged_in_place_and_undo_restores_every_tag(tree: Tree, sources) -> None:
    top = tree.library / "By Artist"  # a folder inside the library: the use case
    made = artist_layout(sources, top)
    before = {k: (raw_tags(p), ffprobe_tags(p), pcm_digests(p)[0]) for k, p in made.items()}
    layout = sorted(files(top))
    out = run_tag(tree, str(top))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "6 files tagged (1 albums), 0 left untagged" in out.stdout, out.stdout
    assert sorted(files(top)) == layout  # nothing moved, added or left behind
    album = {genre_values(made[k])[0] for k in ("mp3", "flac", "ogg")}
    assert len(album) == 1 and album <= set(NAMES.values())  # one genre for the album, in the user's name
    for kind, path in made.items():
        raw, probed, pcm = before[kind]
        [name] = genre_values(path)
        assert name in NAMES.values(), kind
        assert ffprobe_tags(path)["genre"] == name, kind
        assert without_genre(raw_tags(path)) == without_genre(raw), kind  # every other tag as it was
        assert without_genre(ffprobe_tags(path)) == without_genre(probed), kind
        assert pcm_digests(path)[0] == pcm, kind  # the audio untouched
    history = tree.history()
    assert len(history) == 6 and {m["kind"] for m in history} == {"tag"}
    assert all(m["source"] == m["destination"] for m in history)
    listed = tree.cli("history")
    assert listed.stdout.count("genre tag written in place") == 4  # the album is one entry
    undo = tree.cli("undo", "--last", "4")
    assert undo.returncode == 0, undo.stderr
    assert "the album Homogenic: the genre tag of 3 files put back (nothing moved)" in undo.stdout
    assert sorted(files(top)) == layout
    for kind, path in made.items():
        raw, probed, pcm = before[kind]
        assert genre_values(path) == [METADATA["genre"]], kind  # the genre's values as they were
        assert without_genre(raw_tags(path)) == without_genre(raw), kind  # every other frame as it was
        assert ffprobe_tags(path) == probed, kind  # genre included
        assert pcm_digests(path)[0] == pcm, kind
    again = run_tag(tree, str(top), "--dry-run")  # a tag you undid is left alone until the file changes
    assert again.stdout.count("stays (tag undone by the user") == 3, again.stdout
    assert f"{top / 'Björk' / 'Homogenic'}/ -> stays" in again.stdout


def test_a_dry_run_prints_what_it_would_write_and_changes_nothing(tree: Tree, sources) -> None:
    top = tree.root / "music"
    made = artist_layout(sources, top)
    before = files(top)
    out = run_tag(tree, str(top), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert f"{top / 'Björk' / 'Homogenic'}/ -> My " in out.stdout  # the album, once, with its one genre
    assert f"{made['m4a']} -> My " in out.stdout and "was Rock" in out.stdout
    assert "6 would be tagged" in out.stdout and "nothing was changed" in out.stdout
    assert files(top) == before
    assert not (tree.state / "journal.sqlite3").exists()


def test_a_killed_run_goes_on_without_classifying_again_what_it_tagged(tree: Tree, tmp_path: Path) -> None:
    top = tmp_path / "many"
    top.mkdir()
    n = 40
    for i in range(n):
        write_tone(top / f"{i:02}.flac", seconds=4.0, sr=22050, freq=150.0 + 40 * i)
    cmd = [sys.executable, "-m", "genre_daemon.cli", "tag", str(top), "--config", str(tree.config), "--workers", "1"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.log", "wb"))
    try:
        wait_for(lambda: (tree.state / "journal.sqlite3").exists() and len(tree.history()) >= 3, 120,
                 "the first run to tag three files")
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    done = len(tree.history())  # verdicts recorded at the kill (a write it cut short is finished next)
    assert 3 <= done < n
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{n - done} to classify, {done} judged by an earlier run" in second.stderr  # none classified twice
    assert all(genre_values(p) for p in top.glob("*.flac"))  # every file tagged, the cut-short ones too
    assert len(tree.history()) == n
    assert sorted(p.name for p in top.iterdir()) == [f"{i:02}.flac" for i in range(n)]  # no leftover copy


def test_below_min_confidence_and_under_fill_files_are_left_as_they_are_and_listed(tmp_path: Path, sources) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sure = Tree(tmp_path / "a", min_confidence=0.99)
    top = tmp_path / "music"
    album = top / "Mixed"
    album.mkdir(parents=True)
    write_tone(album / "01.flac", seconds=4.0, sr=22050, freq=220.0)
    write_tone(album / "02.flac", seconds=4.0, sr=22050, freq=1800.0)
    write_tone(top / "alone.flac", seconds=4.0, sr=22050, freq=600.0)
    before = files(top)
    out = run_tag(sure, str(top))
    assert out.returncode == 0, out.stderr
    assert f"{album}/ -> stays (left untagged: too mixed to decide" in out.stdout
    assert f"{top / 'alone.flac'} -> stays (left untagged: confidence " in out.stdout
    assert "0 files tagged (0 albums), 3 left untagged" in out.stdout
    assert files(top) == before and sure.history() == []
    again = run_tag(sure, str(top))  # judged once: the same model does not judge them again
    assert "0 to classify, 3 judged by an earlier run" in again.stderr

    fill = Tree(tmp_path / "b", tag_mode="fill", min_confidence=0.0)
    theirs = sources.copy("flac", top, "theirs.flac")  # genre Rock: kept, never classified
    out = run_tag(fill, str(top))
    assert out.returncode == 0, out.stderr
    assert f"{theirs} -> stays (kept its genre: Rock (tag_mode: fill))" in out.stdout
    assert genre_values(theirs) == ["Rock"] and genre_values(top / "alone.flac")
    assert "3 to classify" in out.stderr


def test_tag_refuses_the_inbox_review_quarantine_and_state_folders(tree: Tree, tmp_path: Path) -> None:
    for folder in (tree.inbox, tree.review, tree.quarantine, tree.state, tmp_path):
        folder.mkdir(parents=True, exist_ok=True)
        out = run_tag(tree, str(folder))
        assert out.returncode == 2, (folder, out.stdout, out.stderr)
        assert "genre-daemon: error:" in out.stderr and str(folder) in out.stderr
        assert ("it holds inbox" if folder == tmp_path else "or inside it") in out.stderr
