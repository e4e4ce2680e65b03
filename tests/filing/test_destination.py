"""genre_daemon.filing.destination: where a file goes, decided from values alone (nothing on disk
is read or made, except by ``unique_path``'s default ``exists``). Hostile genres and names stay
one component inside their folder."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from genre_daemon.filing.destination import destination, quarantine_destination, unique_path

LIB = Path("/music/library")
REVIEW = Path("/music/library/_review")
HOSTILE = [
    "..", "../../etc", "/abs", "/", "a/b", "a\\b", "", ".", "...", "\x00", "a\x00b", "\n",
    "rock\nroll", "\t", "é" * 150, "漢" * 100, "con", "CON", "nul.txt", "-rf", "--help",
    ".hidden", " ", "trailing. ", "\u202eevil", "\udcff",
]


def test_destination_is_the_genre_folder() -> None:
    got = destination(Path("/in/sub/a song.mp3"), "jazz", 0.9, library=LIB, review_dir=REVIEW,
                      min_confidence=0.4)
    assert got == LIB / "jazz" / "a song.mp3"



def test_destination_below_threshold_is_review() -> None:
    kw = dict(library=LIB, review_dir=REVIEW, min_confidence=0.4)
    assert destination(Path("/in/a.mp3"), "jazz", 0.39, **kw) == REVIEW / "a.mp3"
    assert destination(Path("/in/a.mp3"), "jazz", 0.4, **kw) == LIB / "jazz" / "a.mp3"



@pytest.mark.parametrize(("genre", "confidence"), [(None, 1.0), ("jazz", float("nan"))])
def test_destination_without_genre_or_confidence_is_review(genre: str | None,
                                                           confidence: float) -> None:
    got = destination(Path("/in/a.mp3"), genre, confidence, library=LIB, review_dir=REVIEW,
                      min_confidence=0.4)
    assert got == REVIEW / "a.mp3"



def test_destination_touches_nothing(tmp_path: Path) -> None:
    lib = tmp_path / "missing-library"
    destination(Path("/in/a.mp3"), "jazz", 0.9, library=lib, review_dir=lib / "r",
                min_confidence=0.4)
    assert not lib.exists()



def assert_one_component(name: str) -> None:
    assert name not in ("", ".", "..")
    assert not any(c in name for c in "/\\\x00\n\r\t")
    assert not name.startswith((".", "-", " ")) and not name.endswith((".", " "))
    assert len(name.encode("utf-8", "surrogateescape")) <= 255



@pytest.mark.parametrize("genre", HOSTILE)
def test_destination_hostile_genre_stays_one_folder_inside_library(genre: str) -> None:
    got = destination(Path("/in/a.mp3"), genre, 0.9, library=LIB, review_dir=REVIEW,
                      min_confidence=0.4)
    assert got.parent.parent == LIB and got.name == "a.mp3"
    assert os.path.normpath(got).startswith(str(LIB) + os.sep)
    assert_one_component(got.parent.name)



@pytest.mark.parametrize("name", HOSTILE)
def test_destination_hostile_file_name_stays_in_its_folder(name: str) -> None:
    source = Path("/in/sub", name) if name.strip("/") else Path("/in/sub/x")
    got = destination(source, "jazz", 0.9, library=LIB, review_dir=REVIEW, min_confidence=0.4)
    assert got.parent == LIB / "jazz"
    assert_one_component(got.name)



@pytest.mark.parametrize("name", [
    "é" * 125 + ".flac",  # 255 bytes: legal, kept whole (issue 10 D7)
    unicodedata.normalize("NFD", "Café Noël.flac"),  # NFD is legal: not turned into NFC
    unicodedata.normalize("NFC", "Café Noël.flac"),
    "x" * 249 + ".flac",
])
def test_a_name_that_is_already_safe_is_kept_exactly(name: str) -> None:
    got = destination(Path("/in", name), "jazz", 0.9, library=LIB, review_dir=REVIEW, min_confidence=0.4)
    assert got == LIB / "jazz" / name
    assert quarantine_destination(Path("/in", name), Path("/q")) == Path("/q", name)



def test_quarantine_destination_is_one_safe_name() -> None:
    assert quarantine_destination(Path("/in/x/..mp3"), Path("/q")) == Path("/q/mp3")
    assert quarantine_destination(Path("/in/bad song.ogg"), Path("/q")) == Path("/q/bad song.ogg")


# ---------------------------------------------------------------------------------------------
# unique_path(): pure.


def test_unique_path_numbers_and_keeps_the_extension() -> None:
    taken = {Path("/l/a.mp3"), Path("/l/a (2).mp3")}
    assert unique_path(Path("/l/b.mp3"), taken.__contains__) == Path("/l/b.mp3")
    assert unique_path(Path("/l/a.mp3"), taken.__contains__) == Path("/l/a (3).mp3")
    assert unique_path(Path("/l/noext"), {Path("/l/noext")}.__contains__) == Path("/l/noext (2)")



def test_unique_path_stays_within_255_bytes() -> None:
    long = Path("/l") / ("ü" * 125 + ".flac")  # 256 bytes: one more char would not fit
    got = unique_path(long, lambda p: p == long)
    assert len(got.name.encode("utf-8")) <= 255
    assert got.name.endswith(" (2).flac")



def test_unique_path_counts_dangling_symlinks_as_taken(tmp_path: Path) -> None:
    (tmp_path / "a.mp3").symlink_to(tmp_path / "nowhere")
    assert unique_path(tmp_path / "a.mp3") == tmp_path / "a (2).mp3"
