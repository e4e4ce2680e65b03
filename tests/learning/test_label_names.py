"""Labels read through ``genre_names``: a folder named by the user's name for a genre holds that
genre's labels, never a new genre (real files, a real journal; the scan of ``labels.py``)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from genre_daemon.config import Settings
from genre_daemon.filing.journal import FileIdentity, Journal
from genre_daemon.learning.labels import Label, scan_labels, trainable_genres
from test_labels import drop, make_settings, place, tone, user_move

KNOWN = ["blues", "classical", "disco", "hiphop", "jazz", "pop", "rock"]


def named(s: Settings, **names: str) -> Settings:
    return dataclasses.replace(s, genre_names=tuple(sorted(names.items())))


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(make_settings(tmp_path).journal_path)


def test_a_song_moved_into_the_users_name_for_a_genre_is_a_label_of_that_genre(tmp_path: Path,
                                                                              journal: Journal) -> None:
    s = named(make_settings(tmp_path), hiphop="Hip-Hop")
    placed = place(journal, s, drop(s, "song.wav"), "jazz")
    moved = user_move(placed, s.library / "Hip-Hop")
    added = tone(s.library / "Hip-Hop" / "mine.wav")
    labels = scan_labels(s, journal, known=KNOWN)
    assert labels == [Label(added, "hiphop", "added", FileIdentity.of(added)),
                      Label(moved, "hiphop", "correction", FileIdentity.of(moved), was="jazz")]
    genres, waiting = trainable_genres(labels, KNOWN, min_per_genre=1)
    assert genres == KNOWN and waiting == {}  # no new genre "Hip-Hop"


def test_a_song_the_daemon_filed_under_the_users_name_and_left_there_is_not_a_label(tmp_path: Path,
                                                                                     journal: Journal) -> None:
    s = named(make_settings(tmp_path), hiphop="Hip-Hop")
    placed = place(journal, s, drop(s, "song.wav"), "hiphop")
    moved = user_move(placed, s.library / "Hip-Hop")  # the daemon's folder by the user's name
    assert moved.parent == s.library / "Hip-Hop"
    assert scan_labels(s, journal, known=KNOWN) == []
    old = user_move(moved, s.library / "hiphop")  # a folder of the same genre from before the rename
    assert scan_labels(s, journal, known=KNOWN) == []
    assert old.exists()


def test_without_a_mapping_a_folder_alike_a_known_genre_is_that_genre_said_once(
        tmp_path: Path, journal: Journal, caplog: pytest.LogCaptureFixture) -> None:
    s = make_settings(tmp_path)
    a = tone(s.library / "Hip Hop" / "a.wav")
    b = tone(s.library / "Hip Hop" / "b.wav")
    with caplog.at_level(logging.WARNING, logger="genre_daemon.learning.labels"):
        labels = scan_labels(s, journal, known=KNOWN)
        scan_labels(s, journal, known=KNOWN)
    assert [(lab.path, lab.genre) for lab in labels] == [(a, "hiphop"), (b, "hiphop")]
    said = [r.getMessage() for r in caplog.records if "'Hip Hop'" in r.getMessage()]
    assert len(said) == 1 and "counts as genre 'hiphop'" in said[0]


def test_a_merged_name_teaches_the_merged_genre_of_that_name(tmp_path: Path, journal: Journal) -> None:
    s = named(make_settings(tmp_path), disco="Pop", pop="Pop")
    mine = tone(s.library / "Pop" / "mine.wav")
    placed = place(journal, s, drop(s, "disco.wav"), "disco")  # the daemon's disco in Pop/, left alone
    assert placed.parent.name == "disco"  # (place() files by the model's name; move it where the daemon would)
    user_move(placed, s.library / "Pop")
    assert [(lab.path, lab.genre, lab.kind) for lab in scan_labels(s, journal, known=KNOWN)] == [(mine, "pop", "added")]


def test_labelled_dirs_are_read_by_the_users_names_too(tmp_path: Path, journal: Journal) -> None:
    extra = tmp_path / "extra"
    s = named(make_settings(tmp_path, extra), classical="Classical")
    f = tone(extra / "Classical" / "c.wav")
    assert [(lab.path, lab.genre) for lab in scan_labels(s, journal, known=KNOWN)] == [(f, "classical")]
