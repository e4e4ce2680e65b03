"""genre_daemon.learning.labels on real files in tmp_path and a real journal: the daemon's moves are
recorded the way ``Daemon._place`` records them (observe -> queued -> classifying -> begin_move ->
mover.move -> finish), then files are moved on disk as a user would, and the scan must tell the
daemon's own guesses from what the user taught it."""

from __future__ import annotations

import logging
import os
import shutil
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_tone

from genre_daemon.filing import destination, mover
from genre_daemon.config import RetrainSettings, Settings
from genre_daemon.filing.journal import FileIdentity, Journal, State, content_hash
from genre_daemon.learning.labels import (
    HashCache,
    Label,
    genre_counts,
    genre_name,
    new_labels,
    scan_labels,
    trainable_genres,
)

MIN_CONFIDENCE = 0.4
_freq = iter(range(200, 100_000, 7))


def make_settings(tmp_path: Path, *labelled: Path) -> Settings:
    s = Settings(
        inbox=tmp_path / "inbox",
        library=tmp_path / "library",
        review_dir=tmp_path / "library" / "_review",
        quarantine_dir=tmp_path / "inbox" / ".quarantine",
        state_dir=tmp_path / "state",
        min_confidence=MIN_CONFIDENCE,
        retrain=RetrainSettings(labelled_dirs=tuple(labelled)),
    )
    for folder in (s.inbox, s.library, s.review_dir, s.quarantine_dir, s.state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def journal(settings: Settings) -> Iterator[Journal]:
    j = Journal(settings.journal_path)
    yield j
    j.close()


def tone(path: Path) -> Path:
    """A short real audio file (wav unless the name says flac/ogg) with content unique to this
    test run."""
    known = path.suffix.lower() in {".wav", ".flac", ".ogg"}
    return write_tone(path, seconds=0.05, freq=float(next(_freq)), format=None if known else "WAV")


def drop(settings: Settings, name: str) -> Path:
    return tone(settings.inbox / name)


def place(journal: Journal, s: Settings, src: Path, genre: str, confidence: float = 0.9,
          *, record_hash: bool = False) -> Path:
    """Do what Daemon.process/_place do for one classified file; returns where it went."""
    row, new = journal.observe(src, FileIdentity.of(src), hasher=content_hash)
    assert new
    journal.set_state(row.id, State.QUEUED, via=[State.SETTLING])
    journal.set_state(row.id, State.CLASSIFYING)
    dest = destination.destination(src, genre, confidence, library=s.library, review_dir=s.review_dir,
                             min_confidence=s.min_confidence)
    to_review = dest.parent == s.review_dir
    state = State.REVIEW if to_review else State.MOVED
    scores = {genre: confidence}
    journal.begin_move(row.id, str(dest), state=state, genre=genre, confidence=confidence,
                       scores=scores, model_version="test-1")
    digest = content_hash(src) if record_hash else None
    result = mover.move(src, dest, s.on_conflict, root=s.review_dir if to_review else s.library)
    assert result.destination is not None
    journal.finish(row.id, state, source=str(src), destination=str(result.destination), genre=genre,
                   confidence=confidence, scores=scores, model_version="test-1", content_hash=digest)
    return result.destination


def user_move(src: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    os.rename(src, dest)
    return dest


def by_path(labels: list[Label]) -> dict[Path, Label]:
    return {label.path: label for label in labels}


# --- what is and is not a label ---------------------------------------------------------------


def test_placed_and_left_alone_is_not_a_label(settings: Settings, journal: Journal) -> None:
    a = place(journal, settings, drop(settings, "a.wav"), "jazz")
    b = place(journal, settings, drop(settings, "b.wav"), "blues")
    assert a.parent == settings.library / "jazz" and a.exists() and b.exists()
    assert scan_labels(settings, journal) == []


def test_moved_from_one_genre_to_another_is_a_correction(settings: Settings, journal: Journal) -> None:
    placed = place(journal, settings, drop(settings, "song.wav"), "jazz")
    place(journal, settings, drop(settings, "other.wav"), "jazz")  # left alone
    moved = user_move(placed, settings.library / "blues")
    labels = scan_labels(settings, journal)
    assert labels == [Label(moved, "blues", "correction", FileIdentity.of(moved), was="jazz")]


def test_review_to_genre_is_a_correction_from_review(settings: Settings, journal: Journal) -> None:
    unsure = place(journal, settings, drop(settings, "unsure.wav"), "rock", confidence=0.2)
    assert unsure.parent == settings.review_dir
    assert scan_labels(settings, journal) == []  # review is not a genre folder
    moved = user_move(unsure, settings.library / "metal")
    [label] = scan_labels(settings, journal)
    assert (label.path, label.genre, label.kind, label.was) == (moved, "metal", "correction", "review")


def test_file_the_user_put_in_a_genre_folder_is_added(settings: Settings, journal: Journal) -> None:
    place(journal, settings, drop(settings, "daemon.wav"), "jazz")
    mine = tone(settings.library / "jazz" / "mine.wav")
    deep = tone(settings.library / "synthwave" / "Artist" / "Album" / "01.flac")
    labels = by_path(scan_labels(settings, journal))
    assert set(labels) == {mine, deep}
    assert labels[mine] == Label(mine, "jazz", "added", FileIdentity.of(mine), was=None)
    assert (labels[deep].genre, labels[deep].kind) == ("synthwave", "added")


def test_correction_made_while_the_daemon_was_stopped_counts(settings: Settings) -> None:
    journal = Journal(settings.journal_path)
    placed = place(journal, settings, drop(settings, "x.wav"), "country")
    journal.close()
    moved = user_move(placed, settings.library / "folk")  # the daemon is not running
    journal = Journal(settings.journal_path)
    try:
        [label] = scan_labels(settings, journal)
    finally:
        journal.close()
    assert (label.path, label.kind, label.was, label.genre) == (moved, "correction", "country", "folk")


def test_moved_within_its_genre_or_edited_in_place_is_not_a_label(settings: Settings, journal: Journal) -> None:
    a = place(journal, settings, drop(settings, "a.wav"), "jazz")
    b = place(journal, settings, drop(settings, "b.wav"), "jazz")
    user_move(a, settings.library / "jazz" / "Miles Davis" / "Kind of Blue")
    with open(b, "ab") as f:  # a tag editor rewrote it: new size and mtime, same place
        f.write(b"\0" * 128)
    assert scan_labels(settings, journal) == []


def test_a_file_in_the_library_root_belongs_to_no_genre(settings: Settings, journal: Journal) -> None:
    tone(settings.library / "loose.wav")
    assert scan_labels(settings, journal) == []


def test_undone_move_then_filed_by_hand_is_added(settings: Settings, journal: Journal) -> None:
    src = drop(settings, "u.wav")
    placed = place(journal, settings, src, "pop")
    [move] = journal.history()
    os.rename(placed, src)
    journal.mark_undone(move.id, src, FileIdentity.of(src), content_hash=content_hash(src))
    filed = user_move(src, settings.library / "pop")
    [label] = scan_labels(settings, journal)
    assert (label.path, label.kind, label.genre) == (filed, "added", "pop")


def test_quarantined_file_filed_by_hand_is_added(settings: Settings, journal: Journal) -> None:
    src = drop(settings, "broken.wav")
    row, _ = journal.observe(src, FileIdentity.of(src))
    journal.set_state(row.id, State.QUEUED, via=[State.SETTLING])
    journal.set_state(row.id, State.CLASSIFYING)
    final = mover.quarantine(src, settings.quarantine_dir, "test reason")
    journal.finish(row.id, State.QUARANTINED, source=str(src), destination=str(final), genre=None,
                   confidence=None, scores={}, model_version=None, reason="test reason")
    filed = user_move(final, settings.library / "noise")
    [label] = scan_labels(settings, journal)
    assert (label.path, label.kind, label.genre) == (filed, "added", "noise")


# --- copies: a new inode --------------------------------------------------------------------


def test_cross_device_style_copy_is_recognised_by_content_hash(settings: Settings, journal: Journal) -> None:
    placed = place(journal, settings, drop(settings, "c.wav"), "jazz", record_hash=True)
    (settings.library / "blues").mkdir()
    copy = settings.library / "blues" / "c.wav"
    shutil.copy2(placed, copy)  # what mv across file systems does: new inode, same bytes and mtime
    placed.unlink()
    assert FileIdentity.of(copy).ino != journal.placements()[0].identity.ino
    calls: list[Path] = []

    def hasher(path: Path) -> str:
        calls.append(path)
        return content_hash(path)

    [label] = scan_labels(settings, journal, hasher=hasher)
    assert (label.path, label.kind, label.was) == (copy, "correction", "jazz")
    assert calls == [copy]  # hashed only because size and mtime matched a placement


def test_same_size_and_mtime_but_other_content_is_added(settings: Settings, journal: Journal) -> None:
    placed = place(journal, settings, drop(settings, "d.wav"), "jazz", record_hash=True)
    st = os.stat(placed)
    impostor = settings.library / "blues" / "d.wav"
    impostor.parent.mkdir()
    data = bytearray(placed.read_bytes())
    data[-1] ^= 0xFF
    impostor.write_bytes(bytes(data))
    os.utime(impostor, ns=(st.st_atime_ns, st.st_mtime_ns))
    placed.unlink()
    [label] = scan_labels(settings, journal)
    assert (label.path, label.kind, label.was) == (impostor, "added", None)


def test_copy_without_a_recorded_hash_matches_a_single_departed_placement(
    settings: Settings, journal: Journal
) -> None:
    placed = place(journal, settings, drop(settings, "e.wav"), "jazz")  # no hash recorded
    (settings.library / "soul").mkdir()
    copy = settings.library / "soul" / "e.wav"
    shutil.copy2(placed, copy)
    placed.unlink()

    def no_hashing(path: Path) -> str:
        raise AssertionError("nothing to compare a hash with")

    [label] = scan_labels(settings, journal, hasher=no_hashing)
    assert (label.kind, label.was) == ("correction", "jazz")


def test_hard_link_counts_once(settings: Settings, journal: Journal) -> None:
    mine = tone(settings.library / "ambient" / "a.wav")
    os.link(mine, settings.library / "ambient" / "b.wav")
    assert len(scan_labels(settings, journal)) == 1


# --- labelled_dirs ----------------------------------------------------------------------------


def test_labelled_dirs_give_labelled_dir_labels(tmp_path: Path) -> None:
    examples, more = tmp_path / "examples", tmp_path / "more"
    settings = make_settings(tmp_path, examples, more)
    a = tone(examples / "k-pop" / "a.wav")
    b = tone(examples / "k-pop" / "disc 1" / "b.ogg")
    c = tone(more / "jazz" / "c.flac")
    tone(examples / "loose.wav")  # no genre folder
    with Journal(settings.journal_path) as journal:
        labels = scan_labels(settings, journal)
    assert [(lab.path, lab.genre, lab.kind, lab.was) for lab in labels] == [
        (c, "jazz", "labelled_dir", None),
        (a, "k-pop", "labelled_dir", None),
        (b, "k-pop", "labelled_dir", None),
    ]


def test_labelled_dir_inside_the_library_is_not_a_genre(tmp_path: Path) -> None:
    inside = tmp_path / "library" / "_examples"
    settings = make_settings(tmp_path, inside)
    a = tone(inside / "tango" / "a.wav")
    with Journal(settings.journal_path) as journal:
        [label] = scan_labels(settings, journal)
    assert (label.path, label.genre, label.kind) == (a, "tango", "labelled_dir")


def test_the_library_as_a_labelled_dir_does_not_make_daemon_guesses_labels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, tmp_path / "library")
    with Journal(settings.journal_path) as journal:
        place(journal, settings, drop(settings, "g.wav"), "jazz")
        with caplog.at_level(logging.WARNING, logger="genre_daemon.learning.labels"):
            assert scan_labels(settings, journal) == []
    assert "is the library itself" in caplog.text


# --- what is never looked at ------------------------------------------------------------------


def test_symlinks_are_ignored_and_never_followed(tmp_path: Path, settings: Settings, journal: Journal) -> None:
    outside = tmp_path / "outside"
    secret = tone(outside / "secret.wav")
    tone(outside / "nested" / "deep.wav")
    (settings.library / "jazz").mkdir()
    (settings.library / "jazz" / "link.wav").symlink_to(secret)
    (settings.library / "jazz" / "linked-dir").symlink_to(outside, target_is_directory=True)
    (settings.library / "linked-genre").symlink_to(outside, target_is_directory=True)
    (settings.library / "jazz" / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    real = tone(settings.library / "jazz" / "real.wav")
    labels = scan_labels(settings, journal)
    assert [lab.path for lab in labels] == [real]


def test_hidden_partial_non_audio_and_review_files_are_ignored(settings: Settings, journal: Journal) -> None:
    jazz = settings.library / "jazz"
    tone(jazz / ".hidden.wav")
    tone(jazz / ".cache" / "x.wav")
    tone(jazz / f".x.wav{mover.PARTIAL_MARKER}abc.tmp")
    tone(jazz / f"y{mover.PARTIAL_MARKER}abc.wav")
    tone(jazz / "download.mp3.part")
    (jazz / "cover.jpg").write_bytes(b"\xff\xd8")
    (jazz / "noext").write_bytes(b"x")
    tone(settings.review_dir / "unsure.wav")
    tone(settings.library / ".stversions" / "z.wav")
    os.mkfifo(jazz / "pipe.wav")
    kept = tone(jazz / "LOUD.WAV")
    assert [lab.path for lab in scan_labels(settings, journal)] == [kept]


def test_titles_that_begin_with_dots_are_labels_and_hidden_temporary_names_are_not(
    settings: Settings, journal: Journal
) -> None:
    """Issue 19: the inbox files ``...Ready for It`` and ``...And Justice for All/`` as the titles
    they are, but the label scan skipped every name with a leading dot, so the same file put in a
    genre folder by hand taught nothing. One rule for both (``filing.hidden.is_hidden``): titles
    count, the temporary names downloaders, rsync and macOS write (one leading dot) do not."""
    pop, metal = settings.library / "pop", settings.library / "metal"
    titles = [
        tone(pop / "...Ready for It.flac"),
        tone(pop / ". Intro.wav"),
        tone(metal / "...And Justice for All" / "01 - Blackened.wav"),
    ]
    tone(pop / "._...Ready for It.flac")  # macOS's resource fork beside it
    tone(pop / ".Ready for It.flac")  # a one-dot temporary name
    tone(pop / "....Ready for It.flac.Xa81kq")  # rsync's temporary of the title
    tone(metal / ".stash" / "02.wav")
    labels = by_path(scan_labels(settings, journal))
    assert sorted(labels) == sorted(titles)
    assert [(labels[p].genre, labels[p].kind) for p in titles] == [("pop", "added")] * 2 + [("metal", "added")]


def test_bad_genre_folder_names_are_skipped_with_a_warning(
    settings: Settings, journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    tone(settings.library / "-rf" / "a.wav")
    tone(settings.library / "trailing." / "b.wav")
    good = tone(settings.library / "ok" / "c.wav")
    with caplog.at_level(logging.WARNING, logger="genre_daemon.learning.labels"):
        labels = scan_labels(settings, journal)
        assert [lab.path for lab in labels] == [good]
        warnings = caplog.text
        caplog.clear()
        scan_labels(settings, journal)
    assert "-rf" in warnings and "trailing." in warnings and "not a usable genre name" in warnings
    assert caplog.text == ""  # once per folder, not at every rescan


def test_decomposed_folder_name_is_the_composed_genre(settings: Settings, journal: Journal) -> None:
    nfd = unicodedata.normalize("NFD", "Électro")
    tone(settings.library / nfd / "a.wav")
    [label] = scan_labels(settings, journal)
    assert label.genre == unicodedata.normalize("NFC", "Électro")
    assert genre_name("a/b") is None and genre_name("con") is None and genre_name("hip hop") == "hip hop"


def test_a_vanished_library_gives_no_labels(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with Journal(settings.journal_path) as journal:
        shutil.rmtree(settings.library)
        assert scan_labels(settings, journal) == []


# --- counting ---------------------------------------------------------------------------------


def _labels(**per_genre: int) -> list[Label]:
    ident = FileIdentity(0, 0, 0, 0)
    return [Label(Path(f"/l/{g}/{i}.wav"), g, "added", ident) for g, n in per_genre.items() for i in range(n)]


def test_genre_counts() -> None:
    assert genre_counts(_labels(rock=2, blues=3)) == {"blues": 3, "rock": 2}
    assert list(genre_counts(_labels(rock=1, blues=1))) == ["blues", "rock"]
    assert genre_counts([]) == {}


@pytest.mark.parametrize(
    ("counts", "minimum", "genres", "waiting"),
    [
        ({"jazz": 3, "synthwave": 9}, 10, ["blues", "jazz"], {"synthwave": 9}),
        ({"jazz": 3, "synthwave": 10}, 10, ["blues", "jazz", "synthwave"], {}),
        ({"synthwave": 10, "tango": 1, "afro": 12}, 10, ["afro", "blues", "jazz", "synthwave"], {"tango": 1}),
        ({}, 1, ["blues", "jazz"], {}),
        ({"tango": 1}, 1, ["blues", "jazz", "tango"], {}),
    ],
)
def test_trainable_genres(counts: dict[str, int], minimum: int, genres: list[str], waiting: dict[str, int]) -> None:
    assert trainable_genres(_labels(**counts), ["jazz", "blues"], minimum) == (genres, waiting)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_trainable_genres_refuses_a_bad_minimum(bad: object) -> None:
    with pytest.raises(ValueError, match="min_per_genre"):
        trainable_genres([], ["jazz"], bad)  # type: ignore[arg-type]


def test_new_labels_by_content_hash(settings: Settings, journal: Journal) -> None:
    used = tone(settings.library / "jazz" / "used.wav")
    fresh = tone(settings.library / "jazz" / "fresh.wav")
    used_hashes = {content_hash(used)}
    (settings.library / "blues").mkdir()
    renamed = settings.library / "blues" / "renamed.wav"
    shutil.copy2(used, renamed)  # same content elsewhere: already trained on
    labels = scan_labels(settings, journal)
    assert len(labels) == 3
    assert [lab.path for lab in new_labels(labels, used_hashes)] == [fresh]
    assert new_labels(labels, set()) == labels
    fresh.unlink()  # vanished since the scan: not counted, no error
    assert new_labels(labels, used_hashes) == []


def test_hash_cache_hashes_an_unchanged_file_once(tmp_path: Path) -> None:
    calls: list[Path] = []

    def hasher(path: Path) -> str:
        calls.append(path)
        return content_hash(path)

    cache = HashCache(hasher)
    a = tone(tmp_path / "a.wav")
    first = cache(a)
    assert cache(a) == first == content_hash(a) and len(calls) == 1
    b = tmp_path / "b.wav"
    os.rename(a, b)  # same identity under a new name: no new read
    assert cache(b) == first and len(calls) == 1
    with open(b, "ab") as f:
        f.write(b"more")
    assert cache(b) == content_hash(b) != first and len(calls) == 2


# --- the journal query it relies on -----------------------------------------------------------


def test_journal_placements_are_live_genre_and_review_moves(settings: Settings, journal: Journal) -> None:
    src = drop(settings, "p.wav")
    identity = FileIdentity.of(src)
    dest = place(journal, settings, src, "jazz", record_hash=True)
    review = place(journal, settings, drop(settings, "r.wav"), "jazz", confidence=0.1)
    undone_src = drop(settings, "q.wav")
    undone = place(journal, settings, undone_src, "rock")
    undo_move = journal.history(1)[0]
    os.rename(undone, undone_src)
    journal.mark_undone(undo_move.id, undone_src, FileIdentity.of(undone_src))
    placements = journal.placements()
    assert [(p.kind, p.destination) for p in placements] == [("genre", str(dest)), ("review", str(review))]
    assert placements[0].identity == identity and placements[0].genre == "jazz"
    assert placements[0].content_hash == content_hash(dest)
    assert journal.placements(kinds=()) == []
