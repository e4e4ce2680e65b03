"""The review page files what the one placement decision says (issue 21): a ``path_template``
and ``write_tags`` for a song filed from review, and albums as one unit: one review item, filed
whole by any of its tracks' ids, corrected whole, undone whole, each saying so.

The first tests run the real daemon (``genre-daemon run``, serving the page itself) on real FLAC
files carrying real tags; the rest use :class:`test_web.WebTree` (a real journal filled the way
the daemon fills it, the real server) for what the daemon cannot be made to do on cue. Tags are
checked with mutagen itself, not with the project's tag code.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mutagen.flac
import pytest

from conftest import write_tone
from genre_daemon.filing.journal import State
from genre_daemon.learning.labels import scan_labels
from test_web import Client, WebTree, tag_file

pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install starlette uvicorn)")

from genre_daemon.web import start_in_thread  # noqa: E402
from genre_daemon.web.data import RECORD_PREFIX  # noqa: E402
from genre_daemon.web.tokens import read_endpoint, read_token  # noqa: E402

TEMPLATE = "{genre}/{albumartist|artist|Unknown Artist}/{album|album_folder}/{filename}"
SONG_TAGS = {"artist": "Ann Artist", "album": "Loose Ends", "title": "A Song", "genre": "Rock"}
ALBUM_TAGS = {"artist": "The Band", "albumartist": "The Band", "album": "Live at Home", "genre": "Rock"}
TRACKS = ["01 Opening.flac", "02 Middle.flac", "03 Closing.flac"]
COVER = b"\xff\xd8\xff\xe0 not really a jpeg, but the album's own file all the same"


def genres(path: Path) -> list[str]:
    """The FLAC file's genre comments, read with mutagen."""
    return list(mutagen.flac.FLAC(path).get("genre", []))


def comments(path: Path) -> dict[str, list[str]]:
    """Every Vorbis comment but the genre."""
    return {k.lower(): v for k, v in (mutagen.flac.FLAC(path).tags or {}).as_dict().items() if k.lower() != "genre"}


def wait_for(cond: Any, what: str, timeout: float = 90.0, proc: subprocess.Popen[bytes] | None = None,
             log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the daemon exited while waiting for {what}: "
                                 f"{log.read_text()[-2000:] if log else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {log.read_text()[-2000:] if log else ''}")
        time.sleep(0.05)


def drop_album(inbox: Path, name: str = "Live at Home", *, freq: float = 330.0) -> Path:
    """An album folder of three tagged FLAC tracks and a cover, made aside and moved in whole."""
    staging = inbox.parent / "staging" / name
    for i, track in enumerate(TRACKS):
        write_tone(staging / track, 3.0, freq=freq + 110.0 * i)
        tag_file(staging / track, **ALBUM_TAGS, tracknumber=str(i + 1), title=Path(track).stem[3:])
    (staging / "cover.jpg").write_bytes(COVER)
    staging.rename(inbox / name)
    return inbox / name


class Daemon:
    """The real daemon on a WebTree's folders, serving the page itself (:meth:`start` gives a
    client of it)."""

    def __init__(self, tree: WebTree, log: Path) -> None:
        self.tree, self.log = tree, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Client:
        config = self.tree.write_config()
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "genre_daemon.cli", "run", "--config", str(config)],
                                         stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 90
        while read_endpoint(self.tree.state) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"the daemon cannot start here: {self.log.read_text()[-500:]}")
            time.sleep(0.05)
        endpoint = read_endpoint(self.tree.state)
        assert endpoint is not None
        port = int(str(endpoint["url"]).rsplit(":", 1)[1].strip("/"))
        return Client(port, read_token(self.tree.state) or "")

    def wait(self, cond: Any, what: str) -> Any:
        return wait_for(cond, what, proc=self.proc, log=self.log)

    def status(self) -> dict[str, Any]:
        return dict(json.loads((self.tree.state / "daemon.json").read_text()))

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


@contextmanager
def daemon_on(tmp_path: Path, **config: Any) -> Iterator[tuple[WebTree, Daemon, Client]]:
    """The real daemon on a fresh tree (``write_tags``, :data:`TEMPLATE`, ``config``) and a client
    of the page it serves."""
    from genre_daemon.resources import default_model_dir

    if not (default_model_dir() / "model.json").is_file():
        pytest.skip("no shipped model")
    tree = WebTree(tmp_path, settle_seconds=0.3, rescan_interval=2, folder_quiet_seconds=1.0,
                   model=str(default_model_dir()), write_tags=True, path_template=TEMPLATE, **config)
    tree.journal.close()  # the daemon's journal; the test reads the disk and the API
    daemon = Daemon(tree, tmp_path / "daemon.log")
    try:
        yield tree, daemon, daemon.start()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            code = daemon.stop()
            assert code == 0, daemon.log.read_text()[-2000:]


def review_album(tree: WebTree, daemon: Daemon, name: str = "Live at Home") -> Path:
    """Wait until the daemon has put the album ``name`` whole into review."""
    folder = tree.review / name
    daemon.wait(lambda: folder.is_dir() and len(list(folder.glob("*.flac"))) == len(TRACKS)
                and (folder / "cover.jpg").is_file() and not (tree.inbox / name).exists(), "the album in review")
    return folder


# --- the real daemon -----------------------------------------------------------------------------------


def test_a_loose_song_filed_from_review_lands_where_the_template_says_with_its_genre_tag(tmp_path: Path) -> None:
    with daemon_on(tmp_path, min_confidence=1.0) as (tree, daemon, c):
        staged = write_tone(tmp_path / "staging" / "song.flac", 3.0, freq=440.0)
        tag_file(staged, **SONG_TAGS)
        own = comments(staged)
        staged.rename(tree.inbox / "song.flac")
        daemon.wait(lambda: (tree.review / "song.flac").is_file() and not (tree.inbox / "song.flac").exists(),
                    "the song in review")
        items = c.get("/api/review").json()
        assert [(i["kind"], i["name"]) for i in items] == [("file", "song.flac")]
        r = c.post(f"/api/review/{items[0]['id']}", {"genre": "jazz"})
        assert r.status == 200, r.body
        done = r.json()
        placed = tree.library / "jazz" / "Ann Artist" / "Loose Ends" / "song.flac"
        assert done["destination"] == "jazz/Ann Artist/Loose Ends/song.flac" and done["tagged"] == 1, done
        assert placed.is_file() and not (tree.review / "song.flac").exists()
        assert genres(placed) == ["jazz"] and comments(placed) == own  # only the genre changed
        assert c.get(f"/api/files/{items[0]['id']}/audio").status == 200  # still found, tagged
        assert c.get("/api/review").json() == []
        # the daemon's own label scan counts it (its library watch, or the next rescan)
        daemon.wait(lambda: (daemon.status().get("new_labels") or 0) >= 1, "the daemon to count the label")


def test_an_album_in_review_is_one_item_and_any_tracks_id_files_it_whole_with_the_template_and_tags(
        tmp_path: Path) -> None:
    with daemon_on(tmp_path, min_confidence=1.0) as (tree, daemon, c):
        drop_album(tree.inbox)
        folder = review_album(tree, daemon)
        own = {t: comments(folder / t) for t in TRACKS}
        items = c.get("/api/review").json()
        assert len(items) == 1, items
        album = items[0]
        assert album["kind"] == "album" and album["name"] == "Live at Home" and isinstance(album["album"], int)
        assert [t["name"] for t in album["tracks"]] == TRACKS
        assert album["id"] == album["tracks"][0]["id"]  # the album is listed by its first track's id
        assert set(album["scores"]) and album["confidence"] < 1.0 and album["genre"] in album["scores"]
        assert all(t["audio"] == f"/api/files/{t['id']}/audio" for t in album["tracks"])
        assert c.get(album["tracks"][2]["audio"]).status == 200
        r = c.post(f"/api/review/{album['tracks'][1]['id']}", {"genre": "blues"})  # a track that is not the first
        assert r.status == 200, r.body
        done = r.json()
        there = tree.library / "blues" / "The Band" / "Live at Home"
        assert (done["kind"], done["album"], done["destination"], done["tracks"], done["files"], done["tagged"]) == \
            ("album", album["album"], "blues/The Band/Live at Home", 3, 4, 3), done
        assert sorted(p.name for p in there.iterdir()) == sorted([*TRACKS, "cover.jpg"])
        assert (there / "cover.jpg").read_bytes() == COVER
        for t in TRACKS:
            assert genres(there / t) == ["blues"], t
            assert comments(there / t) == own[t], t  # every other tag kept
        assert not folder.exists() and not (tree.library / "_review" / "Live at Home").exists()
        assert c.get("/api/review").json() == []
        again = c.post(f"/api/review/{album['id']}", {"genre": "jazz"})
        assert again.status == 409 and "already filed" in again.json()["error"]
        assert sorted(p.name for p in there.iterdir()) == sorted([*TRACKS, "cover.jpg"])  # nothing moved twice
        daemon.wait(lambda: (daemon.status().get("new_labels") or 0) >= 3, "the daemon to count three labels")


def test_correcting_a_track_of_a_placed_album_moves_the_whole_album_and_undo_restores_its_own_tags(
        tmp_path: Path) -> None:
    with daemon_on(tmp_path, min_confidence=0.0) as (tree, daemon, c):
        drop_album(tree.inbox)
        first = daemon.wait(lambda: next(iter(tree.library.glob(f"*/The Band/Live at Home/{TRACKS[0]}")), None),
                            "the daemon to place the album")
        placed_genre = first.relative_to(tree.library).parts[0]
        folder = first.parent
        daemon.wait(lambda: all(genres(folder / t) == [placed_genre] for t in TRACKS), "the daemon's genre tags")
        recent = c.get("/api/recent").json()
        assert len(recent) == 3 and len({i["album"] for i in recent}) == 1 and recent[0]["album_tracks"] == 3
        assert recent[0]["album_name"] == "Live at Home"
        move = next(i["move"] for i in recent if i["name"] == TRACKS[2])
        page = c.get("/recent").body.decode()
        # the album is one entry on the page (issue 23): one Move album, one Undo album
        assert page.count(">Move album</button>") == 1 and page.count(">Undo album</button>") == 1

        r = c.post(f"/api/moves/{move}/genre", {"genre": "chiptune"})
        assert r.status == 200, r.body
        there = tree.library / "chiptune" / "The Band" / "Live at Home"
        assert (r.json()["kind"], r.json()["from"], r.json()["destination"], r.json()["tracks"]) == \
            ("album", placed_genre, "chiptune/The Band/Live at Home", 3)
        assert sorted(p.name for p in there.iterdir()) == sorted([*TRACKS, "cover.jpg"])
        assert all(genres(there / t) == ["chiptune"] for t in TRACKS)
        assert not folder.exists()  # moved whole: nothing left behind, never torn
        now = {i["name"]: (i["now"], i["by_you"]) for i in c.get("/api/recent").json()}
        assert now == {t: ("chiptune", True) for t in TRACKS}

        r = c.post(f"/api/moves/{move}/undo")
        assert r.status == 200, r.body
        undone = r.json()
        assert undone["kind"] == "album" and undone["album"]["tracks"] == 3 and undone["restored"] == "Live at Home"
        assert undone["message"] == "the album 'Live at Home' (3 tracks) is back in the inbox"
        back = tree.inbox / "Live at Home"
        assert sorted(p.name for p in back.iterdir()) == sorted([*TRACKS, "cover.jpg"])
        assert all(genres(back / t) == ["Rock"] for t in TRACKS)  # the files' own genre, not the daemon's
        assert not (tree.library / "chiptune").exists()  # the folders the page made, emptied, went too
        assert {i["now"] for i in c.get("/api/recent").json()} == {"back in the inbox"}


def test_undo_of_a_track_of_an_album_filed_from_review_says_it_moved_the_album_and_the_tags_come_back(
        tmp_path: Path) -> None:
    with daemon_on(tmp_path, min_confidence=1.0) as (tree, daemon, c):
        drop_album(tree.inbox)
        review_album(tree, daemon)
        album = c.get("/api/review").json()[0]
        assert c.post(f"/api/review/{album['id']}", {"genre": "jazz"}).status == 200
        there = tree.library / "jazz" / "The Band" / "Live at Home"
        assert all(genres(there / t) == ["jazz"] for t in TRACKS)
        move = next(i["move"] for i in c.get("/api/recent").json() if i["id"] == album["tracks"][1]["id"])
        r = c.post(f"/api/moves/{move}/undo")
        assert r.status == 200, r.body
        undone = r.json()
        assert undone["kind"] == "album" and undone["album"]["name"] == "Live at Home"
        assert undone["message"] == "the album 'Live at Home' (3 tracks) is back in the inbox"
        assert "went back whole" in undone["note"]
        back = tree.inbox / "Live at Home"
        assert sorted(p.name for p in back.iterdir()) == sorted([*TRACKS, "cover.jpg"])
        assert all(genres(back / t) == ["Rock"] for t in TRACKS)
        assert not there.exists() and not (tree.library / "jazz").exists()
        assert (back / "cover.jpg").read_bytes() == COVER
        # the daemon leaves the album alone (held) and the page lists nothing
        assert daemon.stop() == 0
        assert sorted(p.name for p in back.iterdir()) == sorted([*TRACKS, "cover.jpg"])


# --- a journal filled the daemon's way, the real server ---------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[WebTree]:
    t = WebTree(tmp_path, write_tags=True, path_template=TEMPLATE)
    yield t
    t.close()


@pytest.fixture
def client(tree: WebTree) -> Iterator[Client]:
    srv = start_in_thread(tree.settings)
    yield Client.of(srv)
    srv.stop()


def test_albums_and_songs_share_the_review_list_newest_first_and_status_counts_songs(
        tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    album, ids = tree.album("Disc Set", ["CD1/01.flac", "CD1/02.flac", "CD2/01.flac"], tags=ALBUM_TAGS)
    b = tree.unsure("b.wav")
    items = client.get("/api/review").json()
    assert [(i["kind"], i["id"]) for i in items] == [("file", b), ("album", ids[0]), ("file", a)]
    assert [t["name"] for t in items[1]["tracks"]] == ["CD1/01.flac", "CD1/02.flac", "CD2/01.flac"]
    assert items[1]["album"] == album and items[1]["audio"] == f"/api/files/{ids[0]}/audio"
    assert {"id", "name", "genre", "confidence", "scores", "time", "model", "audio"} <= set(items[1])
    assert client.get("/api/status").json()["in_review"] == 5  # songs, the album's three included
    page = client.get("/").body.decode()
    assert f'id="song-{ids[0]}"' in page and f'id="track-{ids[2]}"' in page and 'id="review-count">3<' in page


def test_filing_an_album_keeps_its_disc_folders_and_a_clash_gets_a_number_never_a_merge(
        tree: WebTree, client: Client) -> None:
    _, ids = tree.album("Disc Set", ["CD1/01.flac", "CD2/01.flac"], tags=ALBUM_TAGS, others={"CD1/notes.txt": b"n"})
    taken = tree.library / "jazz" / "The Band" / "Live at Home"
    taken.mkdir(parents=True)
    (taken / "mine.flac").write_bytes(b"the user's own")
    r = client.post(f"/api/review/{ids[1]}", {"genre": "jazz"})
    assert r.status == 200, r.body
    assert r.json()["destination"] == "jazz/The Band/Live at Home (2)" and r.json()["renamed"] is True
    there = taken.parent / "Live at Home (2)"
    assert sorted(p.relative_to(there).as_posix() for p in there.rglob("*") if p.is_file()) == \
        ["CD1/01.flac", "CD1/notes.txt", "CD2/01.flac"]
    assert sorted(p.name for p in taken.iterdir()) == ["mine.flac"]  # never merged into
    assert genres(there / "CD2" / "01.flac") == ["jazz"] and (there / "CD1" / "notes.txt").read_bytes() == b"n"


def test_a_track_that_cannot_be_tagged_stays_filed_and_the_answer_says_why(tree: WebTree, client: Client) -> None:
    _, ids = tree.album("Mixed", ["01.flac", "02.au"], tags=None)
    r = client.post(f"/api/review/{ids[0]}", {"genre": "jazz"})
    assert r.status == 200, r.body
    done = r.json()
    assert done["tagged"] == 1 and [u["name"] for u in done["untagged"]] == ["02.au"]
    assert "could not be tagged" in done["message"]
    there = tree.library / "jazz" / "Unknown Artist" / "Mixed"
    assert (there / "02.au").is_file() and genres(there / "01.flac") == ["jazz"]


def test_a_song_corrected_twice_goes_back_to_the_inbox_with_its_own_tag(tree: WebTree, client: Client) -> None:
    fid = tree.arrive("song.flac", {"pop": 0.31, "jazz": 0.29, "rock": 0.29}, tags=SONG_TAGS)  # to review
    move = tree.move_of(fid)
    assert client.post(f"/api/review/{fid}", {"genre": "jazz"}).status == 200
    r = client.post(f"/api/moves/{move}/genre", {"genre": "blues"})
    assert r.status == 200 and r.json()["from"] == "jazz", r.body
    placed = tree.library / "blues" / "Ann Artist" / "Loose Ends" / "song.flac"
    assert genres(placed) == ["blues"] and not (tree.library / "jazz").exists()
    # the journal knows the tagged file: a correction out of review for the label scan
    labels = scan_labels(tree.settings, tree.journal)
    assert [(lab.path, lab.genre, lab.kind, lab.was) for lab in labels] == [(placed, "blues", "correction", "review")]
    record = json.loads(tree.journal.get_meta(f"{RECORD_PREFIX}{fid}") or "{}")
    assert record["tag"]["genre"] == ["jazz"] and record["tag"]["written"] == "blues"  # the tag this write replaced
    r = client.post(f"/api/moves/{move}/undo")
    assert r.status == 200 and r.json()["kind"] == "file", r.body
    assert r.json()["message"] == "'song.flac' is back in the inbox"
    assert genres(tree.inbox / "song.flac") == ["Rock"] and not (tree.library / "blues").exists()
    row = tree.journal.get(fid)
    assert row is not None and row.held and row.state is State.SEEN


def test_an_album_a_track_was_taken_out_of_by_hand_is_listed_and_filed_with_what_is_left(
        tree: WebTree, client: Client) -> None:
    _, ids = tree.album("Torn", ["01.flac", "02.flac", "03.flac"], tags=ALBUM_TAGS, others={"cover.jpg": COVER})
    (tree.review / "Torn" / "02.flac").rename(tree.root / "02.flac")  # the user took one out
    items = client.get("/api/review").json()
    assert [(i["kind"], [t["id"] for t in i["tracks"]]) for i in items] == [("album", [ids[0], ids[2]])]
    r = client.post(f"/api/review/{ids[2]}", {"genre": "jazz"})
    assert r.status == 200 and r.json()["tracks"] == 2 and r.json()["files"] == 3, r.body
    there = tree.library / "jazz" / "The Band" / "Live at Home"
    assert sorted(p.name for p in there.iterdir()) == ["01.flac", "03.flac", "cover.jpg"]
    assert (tree.root / "02.flac").is_file() and not (tree.review / "Torn").exists()
    moved_by_hand = client.post(f"/api/review/{ids[1]}", {"genre": "jazz"})
    assert moved_by_hand.status == 409 and "already filed" in moved_by_hand.json()["error"]


def test_undo_follows_an_album_moved_whole_by_hand_but_never_takes_a_lone_track_as_its_folder(
        tree: WebTree, client: Client) -> None:
    import shutil

    _, ids = tree.album("Live at Home", ["01.flac", "02.flac", "03.flac"], genre="rock", tags=ALBUM_TAGS)
    placed = tree.library / "rock" / "The Band" / "Live at Home"
    assert all(genres(placed / t) == ["rock"] for t in ("01.flac", "02.flac", "03.flac"))  # the daemon's tags
    moved = tree.library / "blues" / "Live at Home"
    moved.parent.mkdir()
    placed.rename(moved)  # by hand, whole
    r = client.post(f"/api/moves/{tree.move_of(ids[1])}/undo")
    assert r.status == 200 and r.json()["kind"] == "album", r.body
    back = tree.inbox / "Live at Home"
    assert sorted(p.name for p in back.iterdir()) == ["01.flac", "02.flac", "03.flac"] and not moved.exists()
    assert all(genres(back / t) == ["Rock"] for t in ("01.flac", "02.flac", "03.flac"))

    _, other = tree.album("Other", ["01.flac", "02.flac", "03.flac"], genre="rock",
                          tags={**ALBUM_TAGS, "album": "Other"})
    folder = tree.library / "rock" / "The Band" / "Other"
    alone = tree.library / "blues" / "Sub" / "01.flac"
    alone.parent.mkdir(parents=True)
    (folder / "01.flac").rename(alone)  # one track, corrected by hand; the rest deleted
    shutil.rmtree(folder)
    r = client.post(f"/api/moves/{tree.move_of(other[0])}/undo")
    assert r.status == 409 and "is gone" in r.json()["error"], r.body
    assert alone.is_file() and not (tree.inbox / "Other").exists()


# The page files a song with write_tags and is SIGKILLed right after the tagged copy took the file's
# place, before it noted the new file: the real WebData, by_hand and tag code, in a child process.
KILL_AFTER_TAG = r"""
import json, os, signal, sys
from genre_daemon.config import parse_settings
from genre_daemon.filer import by_hand
from genre_daemon.filing.journal import Journal
from genre_daemon.web.data import WebData

config, file_id = sys.argv[1], int(sys.argv[2])
settings = parse_settings(json.loads(open(config).read()))

class Killed:
    @staticmethod
    def of_or_none(path):  # by_hand looks at the tagged file first thing after the write
        os.kill(os.getpid(), signal.SIGKILL)

by_hand.FileIdentity = Killed
WebData(settings, Journal(settings.journal_path)).file_review(file_id, "jazz")
sys.exit(3)
"""


def test_a_stop_right_after_a_tag_write_is_finished_and_undo_still_restores_the_files_own_tag(
        tree: WebTree, client: Client) -> None:
    fid = tree.arrive("song.flac", {"pop": 0.31, "jazz": 0.29, "rock": 0.29}, tags=SONG_TAGS)
    child = subprocess.run([sys.executable, "-c", KILL_AFTER_TAG, str(tree.write_config()), str(fid)],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    placed = tree.library / "jazz" / "Ann Artist" / "Loose Ends" / "song.flac"
    assert genres(placed) == ["jazz"] and not (tree.review / "song.flac").exists()
    assert json.loads(tree.journal.get_meta(f"{RECORD_PREFIX}{fid}") or "{}")["tag_pending"] is True
    now = {i["id"]: (i["now"], i["by_you"]) for i in client.get("/api/recent").json()}
    assert now[fid] == ("jazz", True)
    r = client.post(f"/api/moves/{tree.move_of(fid)}/undo")
    assert r.status == 200, r.body
    assert genres(tree.inbox / "song.flac") == ["Rock"] and not (tree.library / "jazz").exists()
