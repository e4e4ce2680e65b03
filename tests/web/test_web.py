"""The review page over real parts: a real SQLite journal filled the way the daemon fills it,
real audio files in real folders, the real uvicorn server on a loopback port, raw HTTP requests
(``http.client`` sends a path exactly as written, ``..`` and ``%2e`` included).

``WebTree`` is also used by ``tests/web/test_web_browser.py`` and ``benchmarks/bench_web.py``.
"""

from __future__ import annotations

import http.client
import inspect
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import write_tone
from genre_daemon.filing import album_mover, destination, mover, tagging
from genre_daemon.config import Settings, parse_settings
from genre_daemon.filer import decision
from genre_daemon.filing.albums import decide
from genre_daemon.filing.journal import FileIdentity, Journal, PlacedTrack, State, content_hash
from genre_daemon.tags import read_tags
from genre_daemon.learning.labels import scan_labels
from genre_daemon.system.units import Kind

starlette = pytest.importorskip("starlette", reason="starlette is not installed (pip install starlette uvicorn)")
pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install starlette uvicorn)")

from genre_daemon.web import start_in_thread  # noqa: E402
from genre_daemon.web.data import RECORD_PREFIX  # noqa: E402
from genre_daemon.web.server import WebServer  # noqa: E402
from genre_daemon.web.signin import mint_code  # noqa: E402
from genre_daemon.web.tokens import TOKEN_FILE, read_endpoint, read_token  # noqa: E402

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")


# --- a real tree, filled like the daemon fills it ------------------------------------------------


def tag_file(path: Path, **tags: str) -> Path:
    """Give the FLAC file ``path`` these Vorbis comments (artist, album, genre...) with mutagen."""
    import mutagen.flac

    audio = mutagen.flac.FLAC(path)
    for key, value in tags.items():
        audio[key] = value
    audio.save()
    return path



class WebTree:
    """Inbox, library, review, quarantine and state folders with a real journal; :meth:`arrive`
    records and moves a real audio file exactly as the daemon's worker does."""

    def __init__(self, root: Path, **overrides: Any) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.library = root / "library"
        self.review = self.library / "_review"
        self.state = root / "state"
        web = {"enabled": True, "listen": "127.0.0.1:0", **overrides.pop("web", {})}
        self.config_data: dict[str, Any] = {
            "inbox": str(self.inbox), "library": str(self.library), "review_dir": str(self.review),
            "quarantine_dir": str(self.inbox / ".quarantine"), "state_dir": str(self.state),
            "min_confidence": 0.4, "web": web, **overrides,
        }
        self.settings: Settings = parse_settings(self.config_data)
        for folder in (self.inbox, self.library, self.review):
            folder.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.settings.journal_path)
        self._n = 0

    def write_config(self) -> Path:
        path = self.root / "config.yaml"
        path.write_text(json.dumps(self.config_data))  # JSON is YAML
        return path

    def arrive(self, name: str, scores: dict[str, float], *, seconds: float = 1.0, freq: float | None = None,
               sr: int = 22050, model: str = "test-model-1", tags: dict[str, str] | None = None,
               reason: str | None = None) -> int:
        """A file dropped into the inbox, classified with ``scores`` and placed (review when the
        top score is below min_confidence); returns its journal file id. ``tags``: a FLAC's own
        tags (Vorbis comments); ``reason``: why it went to review, as the evidence says it."""
        self._n += 1
        src = write_tone(self.inbox / name, seconds, sr=sr, freq=freq or 220.0 + 37.0 * self._n)
        if tags is not None:
            tag_file(src, **tags)
        j = self.journal
        row, new = j.observe(src, FileIdentity.of(src))
        assert new
        j.set_state(row.id, State.CLASSIFYING, via=[State.SETTLING, State.QUEUED])
        genre, confidence = max(scores.items(), key=lambda kv: kv[1])
        dest = destination.destination(src, genre, confidence, library=self.library, review_dir=self.review,
                                 min_confidence=self.settings.min_confidence)
        to_review = dest.parent == self.review
        state = State.REVIEW if to_review else State.MOVED
        j.begin_move(row.id, str(dest), state=state, genre=genre, confidence=confidence, scores=scores,
                     model_version=model, reason=reason)
        result = mover.move(src, dest, "rename", root=self.review if to_review else self.library,
                            expect=mover.signature(os.lstat(src)))
        assert result.destination is not None
        j.finish(row.id, state, source=str(src), destination=str(result.destination), genre=genre,
                 confidence=confidence, scores=scores, model_version=model, reason=reason,
                 content_hash=content_hash(result.destination))
        return row.id

    def unsure(self, name: str, top: str = "pop", second: str = "jazz", **kw: Any) -> int:
        """A song that goes to review (top score 0.31)."""
        rest = [g for g in GENRES if g not in (top, second)]
        scores = {top: 0.31, second: 0.27, **{g: round(0.42 / len(rest), 4) for g in rest}}
        return self.arrive(name, scores, **kw)

    def sure(self, name: str, genre: str = "rock", **kw: Any) -> int:
        """A song placed straight into ``genre`` (0.9)."""
        rest = [g for g in GENRES if g != genre]
        return self.arrive(name, {genre: 0.9, **{g: round(0.1 / len(rest), 4) for g in rest}}, **kw)

    def album(self, folder: str, names: list[str], *, genre: str | None = None, others: dict[str, bytes] | None = None,
              tags: dict[str, str] | None = None, model: str = "test-model-1") -> tuple[int, list[int]]:
        """An album folder of real audio (``names``; FLAC carrying ``tags``, with ``others``
        beside them) dropped into the inbox and filed whole exactly as the daemon files one: to
        review (its tracks unsure), or into ``genre`` (sure; tagged with write_tags). Returns
        the album id and its tracks' file ids, in name order."""
        src = self.inbox / folder
        for i, name in enumerate(names):
            self._n += 1
            write_tone(src / name, 1.0, freq=220.0 + 37.0 * self._n)
            if tags is not None:
                tag_file(src / name, **{**tags, "tracknumber": str(i + 1), "title": Path(name).stem})
        for name, data in (others or {}).items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(data)
        j = self.journal
        ids = []
        for path in sorted(src / n for n in names):
            row, new = j.observe(path, FileIdentity.of(path))
            assert new
            ids.append(row.id)
        expect = album_mover.snapshot(src)
        album = j.open_album(src, ids, expect.to_json())
        j.start_album(album.id)
        top = genre or "pop"
        rest = [g for g in GENRES if g != top]
        sure = 0.9 if genre else 0.31
        scores = {top: sure, **{g: round((1 - sure) / len(rest), 4) for g in rest}}
        for fid in ids:
            j.set_tags(fid, dict(read_tags(Path(j.get(fid).path)).to_json()))  # type: ignore[union-attr]
            j.record_track_prediction(fid, genre=top, confidence=sure, scores=scores, model_version=model)
        verdict = decide([scores] * len(ids), self.settings.min_confidence)
        state = "review" if verdict.to_review else "moved"
        rows = [j.get(fid) for fid in ids]
        placement = decision.for_album(self.settings, folder, verdict.genre, [r.tags or {} for r in rows if r],
                                       to_review=verdict.to_review, why=verdict.why)
        names_there = expect.library_names()

        def claimed(where: Path) -> None:
            j.begin_album_move(album.id, where, state=state, genre=verdict.genre, confidence=verdict.confidence,
                               scores=verdict.scores, model_version=model,
                               reason=verdict.why if verdict.to_review else None)

        moved = album_mover.move_album(src, placement.path, root=placement.root, expect=expect, inbox=self.inbox,
                                       on_claimed=claimed, names=names_there)
        placed = []
        for fid in ids:
            rel = Path(j.get(fid).path).relative_to(src).as_posix()  # type: ignore[union-attr]
            where = album_mover.placed_path(moved.destination, rel, names_there)
            placed.append(PlacedTrack(fid, str(where), sure, scores, content_hash(where)))
        j.finish_album(album.id, placed, destination=moved.destination, tag=self.settings.write_tags)
        if state == "moved" and self.settings.write_tags:
            for move in j.album_moves(album.id):
                assert tagging.tag_placed(j, move, Path(move.destination), top, content_hash) is None
        return album.id, ids

    def move_of(self, file_id: int) -> int:
        return next(m.id for m in self.journal.history() if m.file_id == file_id)

    def audio_files(self) -> dict[str, str]:
        """Every audio file under the tree (relative path -> content hash)."""
        return {str(p.relative_to(self.root)): content_hash(p) for p in sorted(self.root.rglob("*.wav"))
                if p.is_file() and not p.is_symlink()}

    def close(self) -> None:
        self.journal.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Raw HTTP/1.1 to the server: the path is sent exactly as given."""

    def __init__(self, port: int, token: str, state_dir: Path | None = None) -> None:
        self.port = port
        self.token = token
        self.state_dir = state_dir  # where sign-in codes are minted (see :meth:`session`)

    @classmethod
    def of(cls, server: WebServer) -> Client:
        return cls(server.port, server.token, server.settings.state_dir)

    def request(self, method: str, path: str, *, auth: bool = True, json_body: Any = None,
                body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
        h = dict(headers or {})
        if auth:
            h.setdefault("Authorization", f"Bearer {self.token}")
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h.setdefault("Content-Type", "application/json")
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.putrequest(method, path, skip_host="Host" in h, skip_accept_encoding=True)
            for k, v in h.items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, data: Any = None, **kw: Any) -> Reply:
        return self.request("POST", path, json_body={} if data is None else data, **kw)

    def session(self) -> tuple[str, str]:
        """Sign in as a browser does: a one-time ``/signin/<code>`` link (minted as ``genre-daemon
        status`` mints it) -> cookie; returns (cookie header, csrf token)."""
        assert self.state_dir is not None, "a Client made with Client.of(server) can sign in"
        r = self.get(f"/signin/{mint_code(self.state_dir)}", auth=False)
        assert r.status == 303 and r.headers["location"] == "/", r
        cookie = r.headers["set-cookie"].split(";")[0]
        page = self.get("/", auth=False, headers={"Cookie": cookie})
        assert page.status == 200
        csrf = re.search(rb'name="csrf-token" content="([0-9a-f]+)"', page.body)
        assert csrf, page.body[:500]
        return cookie, csrf.group(1).decode()


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[WebTree]:
    t = WebTree(tmp_path)
    yield t
    t.close()


@pytest.fixture
def server(tree: WebTree) -> Iterator[WebServer]:
    srv = start_in_thread(tree.settings)
    yield srv
    srv.stop()


@pytest.fixture
def client(server: WebServer) -> Client:
    return Client.of(server)


# --- review ------------------------------------------------------------------------------------


def test_review_lists_the_waiting_songs_with_their_scores_by_id(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav", "pop", "jazz")
    b = tree.unsure("b.wav", "disco", "hiphop")
    tree.sure("c.wav", "rock")
    r = client.get("/api/review")
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    items = r.json()
    assert [i["id"] for i in items] == [b, a]  # newest first; the placed song is not waiting
    first = items[1]
    assert {"id", "name", "genre", "confidence", "scores"} <= set(first)
    assert first["name"] == "a.wav" and first["genre"] == "pop" and first["confidence"] == pytest.approx(0.31)
    assert first["scores"]["jazz"] == pytest.approx(0.27) and len(first["scores"]) == len(GENRES)
    assert str(tree.root) not in r.body.decode()  # ids, never paths
    assert client.get("/api/review?offset=1&limit=1").json() == [items[1]]


def test_filing_a_song_moves_it_into_the_genre_folder_and_the_label_scan_counts_it(
        tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    keep = tree.unsure("b.wav")
    before = content_hash(tree.review / "a.wav")
    r = client.post(f"/api/review/{a}", {"genre": "jazz"})
    assert r.status == 200, r.body
    assert r.json() == {"id": a, "name": "a.wav", "genre": "jazz", "from": "review", "destination": "jazz/a.wav",
                        "renamed": False}
    assert not (tree.review / "a.wav").exists()
    assert content_hash(tree.library / "jazz" / "a.wav") == before
    assert [i["id"] for i in client.get("/api/review").json()] == [keep]
    labels = scan_labels(tree.settings, tree.journal)
    assert [(lab.path.name, lab.genre, lab.kind, lab.was) for lab in labels] == [("a.wav", "jazz", "correction", "review")]
    note = json.loads(tree.journal.get_meta(f"{RECORD_PREFIX}{a}") or "{}")
    assert note["genre"] == "jazz" and note["path"] == str(tree.library / "jazz" / "a.wav")


def test_a_typed_new_genre_makes_its_folder(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    r = client.post(f"/api/review/{a}", {"genre": "Chiptune ünd Brass"})
    assert r.status == 200, r.body
    assert (tree.library / "Chiptune ünd Brass" / "a.wav").is_file()


def test_a_second_click_is_refused_and_nothing_moves_twice(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    assert client.post(f"/api/review/{a}", {"genre": "jazz"}).status == 200
    files = tree.audio_files()
    again = client.post(f"/api/review/{a}", {"genre": "blues"})
    assert again.status == 409
    assert "already filed into 'jazz'" in again.json()["error"]
    assert tree.audio_files() == files


def test_simultaneous_clicks_file_a_song_exactly_once(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    replies: list[Reply] = []
    lock = threading.Lock()
    go = threading.Barrier(6)

    def click(genre: str) -> None:
        go.wait()
        r = client.post(f"/api/review/{a}", {"genre": genre})
        with lock:
            replies.append(r)

    threads = [threading.Thread(target=click, args=(g,)) for g in ("jazz", "blues", "rock", "pop", "metal", "disco")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(r.status for r in replies) == [200, 409, 409, 409, 409, 409]
    placed = [p for p in tree.library.rglob("a*.wav")]
    assert len(placed) == 1 and placed[0].parent.name == next(r.json()["genre"] for r in replies if r.status == 200)


@pytest.mark.parametrize("genre, status, says", [
    ("", 422, "empty"),
    ("..", 422, "not one safe folder name"),
    ("a/b", 422, "not one safe folder name"),
    ("../../etc", 422, "not one safe folder name"),
    (".hidden", 422, "not one safe folder name"),
    ("-rf", 422, "not one safe folder name"),
    ("nul\x00byte", 422, "not one safe folder name"),
    ("trailing. ", 422, "not one safe folder name"),
    ("x" * 300, 422, "not one safe folder name"),
    (5, 422, "as text"),
    (None, 422, "as text"),
    ("_review", 422, "review folder"),
    ("Rock", 409, "differ only by case"),
])
def test_a_genre_that_is_not_one_safe_new_folder_is_refused_with_a_reason(
        tree: WebTree, client: Client, genre: object, status: int, says: str) -> None:
    tree.sure("placed.wav", "rock")  # library/rock exists
    a = tree.unsure("a.wav")
    files = tree.audio_files()
    r = client.post(f"/api/review/{a}", {"genre": genre})
    assert r.status == status, r.body
    assert says in r.json()["error"]
    assert tree.audio_files() == files
    assert [i["id"] for i in client.get("/api/review").json()] == [a]


def test_an_unknown_id_a_placed_song_and_a_vanished_file_are_clear_errors(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    placed = tree.sure("b.wav", "rock")
    r = client.post("/api/review/99999", {"genre": "jazz"})
    assert r.status == 404 and "no song with id 99999" in r.json()["error"]
    r = client.post(f"/api/review/{placed}", {"genre": "jazz"})
    assert r.status == 409 and "not waiting for review" in r.json()["error"]
    (tree.review / "a.wav").unlink()
    r = client.post(f"/api/review/{a}", {"genre": "jazz"})
    assert r.status == 410 and "no longer in the review folder" in r.json()["error"]
    assert not (tree.library / "jazz").exists()
    assert client.get("/api/review").json() == []
    assert client.get(f"/api/files/{a}/audio").status == 404


def test_a_name_taken_in_the_genre_folder_is_renamed_never_clobbered(tree: WebTree, client: Client) -> None:
    other = write_tone(tree.library / "jazz" / "a.wav", 0.5, freq=990.0)
    theirs = content_hash(other)
    a = tree.unsure("a.wav")
    mine = content_hash(tree.review / "a.wav")
    r = client.post(f"/api/review/{a}", {"genre": "jazz"})
    assert r.status == 200 and r.json()["name"] == "a (2).wav" and r.json()["renamed"] is True
    assert content_hash(other) == theirs
    assert content_hash(tree.library / "jazz" / "a (2).wav") == mine


def test_a_plain_form_post_without_javascript_files_the_song_and_redirects(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    cookie, csrf = client.session()
    body = f"csrf={csrf}&genre=jazz".encode()
    r = client.request("POST", f"/api/review/{a}", auth=False, body=body, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{client.port}"})
    assert r.status == 303 and r.headers["location"] == "/"
    assert (tree.library / "jazz" / "a.wav").is_file()
    again = client.request("POST", f"/api/review/{a}", auth=False, body=body, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert again.status == 409 and b"already filed" in again.body and b"<html" in again.body


# --- audio ---------------------------------------------------------------------------------------


def test_audio_streams_the_file_with_range_requests(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav", seconds=2.0)
    data = (tree.review / "a.wav").read_bytes()
    full = client.get(f"/api/files/{a}/audio")
    assert full.status == 200 and full.body == data
    assert full.headers["content-type"] == "audio/wav" and full.headers["accept-ranges"] == "bytes"
    part = client.get(f"/api/files/{a}/audio", headers={"Range": "bytes=1000-1999"})
    assert part.status == 206 and part.body == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = client.get(f"/api/files/{a}/audio", headers={"Range": "bytes=-100"})
    assert tail.status == 206 and tail.body == data[-100:]
    beyond = client.get(f"/api/files/{a}/audio", headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status == 416
    # still playable after it was filed: the page follows it into its genre folder
    assert client.post(f"/api/review/{a}", {"genre": "jazz"}).status == 200
    assert client.get(f"/api/files/{a}/audio", headers={"Range": "bytes=0-9"}).body == data[:10]


def test_audio_never_follows_a_symlink_put_in_place_of_the_file(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    secret = tree.root / "secret.txt"
    secret.write_text("root:x:0:0:do not serve me\n")
    where = tree.review / "a.wav"
    where.unlink()
    where.symlink_to(secret)
    r = client.get(f"/api/files/{a}/audio")
    assert r.status == 404 and b"do not serve me" not in r.body
    assert client.post(f"/api/review/{a}", {"genre": "jazz"}).status == 410
    assert where.is_symlink() and secret.read_text().startswith("root:")


# --- recent: correct and undo ----------------------------------------------------------------------


def test_recent_shows_placements_and_corrects_a_wrong_genre_as_a_label(tree: WebTree, client: Client) -> None:
    b = tree.sure("b.wav", "rock")
    a = tree.unsure("a.wav")
    recent = client.get("/api/recent").json()
    assert [(i["id"], i["kind"], i["genre"], i["now"]) for i in recent] == [(a, "review", "pop", "review"),
                                                                           (b, "genre", "rock", "rock")]
    move = tree.move_of(b)
    r = client.post(f"/api/moves/{move}/genre", {"genre": "metal"})
    assert r.status == 200, r.body
    assert r.json()["from"] == "rock" and r.json()["destination"] == "metal/b.wav"
    assert (tree.library / "metal" / "b.wav").is_file() and not (tree.library / "rock" / "b.wav").exists()
    labels = scan_labels(tree.settings, tree.journal)
    assert [(lab.path.name, lab.genre, lab.kind, lab.was) for lab in labels] == [("b.wav", "metal", "correction", "rock")]
    now = {i["id"]: (i["now"], i["by_you"]) for i in client.get("/api/recent").json()}
    assert now[b] == ("metal", True)
    same = client.post(f"/api/moves/{move}/genre", {"genre": "metal"})
    assert same.status == 409 and "already in 'metal'" in same.json()["error"]
    assert client.post("/api/moves/4242/genre", {"genre": "jazz"}).status == 404


def test_undo_from_recent_puts_the_file_back_in_the_inbox_held(tree: WebTree, client: Client) -> None:
    b = tree.sure("b.wav", "rock")
    data = content_hash(tree.library / "rock" / "b.wav")
    move = tree.move_of(b)
    r = client.post(f"/api/moves/{move}/undo")
    assert r.status == 200, r.body
    assert r.json()["restored"] == "b.wav"
    assert content_hash(tree.inbox / "b.wav") == data and not (tree.library / "rock" / "b.wav").exists()
    row = tree.journal.get(b)
    assert row is not None and row.held and row.state is State.SEEN
    assert tree.journal.move(move).undone  # type: ignore[union-attr]
    again = client.post(f"/api/moves/{move}/undo")
    assert again.status == 409 and "already undone" in again.json()["error"]
    assert client.post(f"/api/moves/{move}/genre", {"genre": "jazz"}).status == 409
    assert [i["now"] for i in client.get("/api/recent").json()] == ["back in the inbox"]


def test_undo_of_a_song_filed_from_review_follows_it_into_its_genre_folder(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    assert client.post(f"/api/review/{a}", {"genre": "jazz"}).status == 200
    r = client.post(f"/api/moves/{tree.move_of(a)}/undo")
    assert r.status == 200, r.body
    assert (tree.inbox / "a.wav").is_file() and not (tree.library / "jazz" / "a.wav").exists()
    assert tree.journal.get_meta(f"{RECORD_PREFIX}{a}") is None


def test_undo_of_a_file_deleted_by_hand_is_refused_with_the_reason(tree: WebTree, client: Client) -> None:
    b = tree.sure("b.wav", "rock")
    (tree.library / "rock" / "b.wav").unlink()
    r = client.post(f"/api/moves/{tree.move_of(b)}/undo")
    assert r.status == 409 and "is gone" in r.json()["error"] and "nothing moved" in r.json()["error"]


# --- status and models -------------------------------------------------------------------------------


def test_status_reports_counts_queue_model_retrain_progress_and_the_last_gate(tree: WebTree, client: Client) -> None:
    from genre_daemon.learning.retrain import write_progress

    tree.unsure("a.wav")
    tree.sure("b.wav")
    # the files a running daemon and its trainer write
    (tree.state / "daemon.json").write_text(json.dumps({
        "pid": os.getpid(), "started": time.time() - 65, "queue_depth": 3, "waiting": 4,
        "model_version": "m-42", "new_labels": 7, "retraining": False, "last_file": "x.mp3"}))
    write_progress(tree.settings, state="done", started=time.time() - 100, finished=time.time(), promoted=False,
                   reason="refused: not better on the held-out labels (candidate 0.500, active 0.600; needs more than 0.600)",
                   candidate={"labels": 0.5, "old_genres": 0.9}, active={"labels": 0.6, "old_genres": 0.92})
    srv = start_in_thread(tree.settings, status_provider=lambda: json.loads((tree.state / "daemon.json").read_text()))
    try:
        s = Client.of(srv).get("/api/status").json()
    finally:
        srv.stop()
    assert s["running"] and s["pid"] == os.getpid() and s["queue_depth"] == 3 and s["model_version"] == "m-42"
    assert s["counts"]["review"] == 1 and s["counts"]["moved"] == 1 and s["in_review"] == 1 and s["new_labels"] == 7
    assert s["last_gate"]["promoted"] is False and s["last_gate"]["candidate"]["labels"] == 0.5
    assert "candidate 0.500, active 0.600" in s["gate_text"]
    write_progress(tree.settings, state="running", started=time.time(), step="training on 40 clips", done=3, total=20)
    s = client.get("/api/status").json()  # the standalone server (daemon.json, retrain.json)
    assert s["retrain_text"] == "running: training on 40 clips 3/20" and s["last_gate"] is None
    page = client.get("/status")
    assert page.status == 200 and b"training on 40 clips 3/20" in page.body and b"m-42" in page.body


def test_status_shows_the_command_lines_counts_with_held_and_what_was_left_alone(
        tree: WebTree, client: Client) -> None:
    """Issue 19: the page counted a file you undid as ``seen`` (waiting to be classified) while
    ``genre-daemon status`` counts it as ``held``, and it did not show the files the daemon left
    alone in the inbox. Both now read one :func:`genre_daemon.filing.daemon_status.file_counts`
    and ``daemon.json``: the page and the command line show the same numbers."""
    tree.sure("a.wav", "rock")
    tree.unsure("c.wav")
    undone = tree.sure("b.wav", "jazz")
    assert client.post(f"/api/moves/{tree.move_of(undone)}/undo").status == 200
    (tree.state / "daemon.json").write_text(json.dumps({
        "pid": os.getpid(), "started": time.time() - 5, "queue_depth": 0, "model_version": "m-1", "left_alone": 2}))
    s = client.get("/api/status").json()
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "status", "--json", "--config",
                          str(tree.write_config())], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    assert s["counts"] == cli["counts"]
    assert (s["counts"]["held"], s["counts"]["seen"], s["counts"]["moved"], s["counts"]["review"]) == (1, 0, 1, 1)
    assert s["left_alone"] == cli["left_alone"] == 2
    page = client.get("/status").body.decode()
    assert '<th>held</th><td data-key="counts.held">1</td>' in page
    assert re.search(r'left alone in the inbox</dt><dd data-key="left_alone">2<', page)


def _version(store_root: Path, name: str, genres: list[str], metrics: dict[str, Any], n_labels: int = 0) -> Path:
    """A model version directory as the store keeps one (model.json, weights, version.json)."""
    import numpy as np
    from safetensors.numpy import save_file

    from genre_daemon.learning.versions import META_FILE, MODEL_FORMAT, SIDECAR, WEIGHTS_FILE

    d = store_root / name
    d.mkdir(parents=True)
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(d / WEIGHTS_FILE))
    (d / META_FILE).write_text(json.dumps({"format_version": MODEL_FORMAT, "version": f"model-{name}", "genres": genres,
                                           "created": "2026-01-01T00:00:00Z", "metrics": metrics}))
    (d / SIDECAR).write_text(json.dumps({"n_labels": n_labels, "metrics": {}}))
    return d


def test_models_lists_versions_draws_the_confusion_matrix_and_rolls_back(tree: WebTree, client: Client) -> None:
    from genre_daemon.learning.versions import ModelStore

    root = tree.state / "models"
    cm = {"accuracy": 0.75, "n": 8, "genres": ["jazz", "rock"], "confusion": [[3, 1], [1, 3]]}
    _version(root, "v0001", ["jazz", "rock"], {"validation": cm})
    _version(root, "v0002", ["jazz", "metal", "rock"], {"held_out_labels": 0.8, "held_out_old_genres": 0.9,
                                                        "active_held_out_labels": 0.6,
                                                        "active_held_out_old_genres": 0.92}, n_labels=24)
    os.symlink("v0002", root / "current")
    m = client.get("/api/models").json()
    assert [(v["name"], v["active"], v["accuracy"]) for v in m["versions"]] == [("v0001", False, 0.75), ("v0002", True, 0.8)]
    assert m["can_rollback"] and m["versions"][0]["has_confusion"] and not m["versions"][1]["has_confusion"]
    png = client.get("/models/v0001/confusion.png")
    assert png.status == 200 and png.headers["content-type"] == "image/png" and png.body[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/models/v0002/confusion.png").status == 404
    page = client.get("/models")
    assert page.status == 200 and b"/models/v0001/confusion.png" in page.body and b"80%" in page.body
    r = client.post("/api/models/rollback")
    assert r.status == 200 and r.json()["active"] == "v0001"
    assert ModelStore(root).active().name == "v0001"  # type: ignore[union-attr]
    again = client.post("/api/models/rollback")
    assert again.status == 409 and "oldest version" in again.json()["error"]


def test_models_tab_names_the_music_each_accuracy_was_measured_on(tree: WebTree, client: Client) -> None:
    """Issue 20: a bare validation accuracy read as how good the model is. A model carrying
    held-out figures shows those, each naming its test music; one without shows its validation
    figure labelled as a same-artists split."""
    from genre_daemon.learning.heldout import VALIDATION, entry

    root = tree.state / "models"
    validation = {"validation": {"accuracy": 0.9231, "n": 26}}
    _version(root, "v0001", ["jazz", "rock"], validation)
    _version(root, "v0002", ["jazz", "rock"], {**validation, "held_out": [
        entry("emotify-dev, 60 songs of another collection", 60, 0.45, {"rock": 0.5}, False, "bench_round3.py"),
        entry("GTZAN artist-filtered test part", 19, 0.8947, {"jazz": 0.9}, False, "bench_round3.py")]})
    os.symlink("v0002", root / "current")
    old, new = client.get("/api/models").json()["versions"]
    assert new["accuracy"] == 0.45 and [(f["test_music"], f["n"], f["could_have_heard_artists"]) for f in new["figures"]] \
        == [("emotify-dev, 60 songs of another collection", 60, False), ("GTZAN artist-filtered test part", 19, False)]
    assert old["accuracy"] == 0.9231 and [(f["test_music"], f["n"], f["could_have_heard_artists"]) for f in old["figures"]] \
        == [(VALIDATION, 26, True)]
    page = client.get("/models").body.decode()
    shown = {name: page.split(f'id="model-{name}"')[1].split("</section>")[0] for name in ("v0001", "v0002")}
    assert ("<strong>45%</strong> on emotify-dev, 60 songs of another collection (n=60, artists not heard in training)"
            in shown["v0002"]) and "<strong>89%</strong> on GTZAN artist-filtered test part (n=19" in shown["v0002"]
    assert "92%" not in shown["v0002"], "the same-artists validation figure is not shown beside held-out ones"
    assert "<strong>92%</strong> on validation split (same artists) (n=26, artists heard in training)" in shown["v0001"]


# --- access ----------------------------------------------------------------------------------------

ROUTES = [("GET", "/"), ("GET", "/recent"), ("GET", "/status"), ("GET", "/models"), ("GET", "/assets/app.js"),
          ("GET", "/assets/app.css"), ("GET", "/api/review"), ("POST", "/api/review/1"), ("GET", "/api/files/1/audio"),
          ("GET", "/api/status"), ("GET", "/api/recent"), ("POST", "/api/moves/1/genre"), ("POST", "/api/moves/1/undo"),
          ("GET", "/api/models"), ("POST", "/api/models/rollback"), ("GET", "/models/v0001/confusion.png"),
          ("GET", "/no/such/page"), ("GET", "/api/files/../../etc/passwd/audio")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_every_route_needs_the_token(tree: WebTree, client: Client, method: str, path: str) -> None:
    a = tree.unsure("a.wav")
    files = tree.audio_files()
    body = {"genre": "jazz"}
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token-wrong-token"},
                    {"Cookie": "genre_daemon_session=forged.0123abcd"}, {"Authorization": f"Basic {client.token}"}):
        r = client.request(method, path.replace("/1/", f"/{a}/"), auth=False, headers=headers,
                           json_body=body if method == "POST" else None)
        assert r.status == 401, (headers, r)
    for token in ("nope", client.token):  # the token is never taken from a URL, not even the right one
        r = client.get(path + ("&" if "?" in path else "?") + f"token={token}", auth=False)
        assert r.status == 401 and "set-cookie" not in r.headers
    assert tree.audio_files() == files


def test_a_sign_in_link_becomes_a_strict_httponly_cookie_and_redirects_to_the_page(client: Client) -> None:
    assert client.state_dir is not None
    r = client.get(f"/signin/{mint_code(client.state_dir)}", auth=False)
    assert r.status == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.token not in cookie
    page = client.get("/recent?limit=5", auth=False, headers={"Cookie": cookie.split(";")[0]})
    assert page.status == 200 and b"Recent placements" in page.body
    assert page.headers["referrer-policy"] == "no-referrer" and "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_the_token_file_is_private_kept_across_restarts_and_replaced_when_exposed(tree: WebTree) -> None:
    first = start_in_thread(tree.settings)
    first.stop()
    path = tree.state / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert len(token) >= 40 and read_token(tree.state) == token
    second = start_in_thread(tree.settings)
    try:
        assert second.token == token
        assert read_endpoint(tree.state) == {"url": second.url, "pid": os.getpid()}
    finally:
        second.stop()
    assert read_endpoint(tree.state) is None
    path.chmod(0o644)  # readable by others: it may have been seen
    third = start_in_thread(tree.settings)
    third.stop()
    assert third.token != token and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_stolen_cookie_cannot_post_from_another_origin(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    cookie, csrf = client.session()
    files = tree.audio_files()
    own = f"http://127.0.0.1:{client.port}"
    refused = [
        ({"Origin": "http://evil.example", "X-CSRF-Token": csrf}, "cross-origin"),
        ({"Origin": "null", "X-CSRF-Token": csrf}, "cross-origin"),
        ({"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": csrf}, "another site"),
        ({"Sec-Fetch-Site": "same-site", "Origin": own, "X-CSRF-Token": csrf}, "another site"),
        ({"Origin": own}, "CSRF token"),  # the cookie alone is not enough
        ({"Origin": own, "X-CSRF-Token": "0" * 64}, "CSRF token"),
    ]
    for headers, says in refused:
        r = client.request("POST", f"/api/review/{a}", auth=False, json_body={"genre": "jazz"},
                           headers={"Cookie": cookie, **headers})
        assert r.status == 403 and says in r.json()["error"], (headers, r)
    form = client.request("POST", f"/api/review/{a}", auth=False, body=b"genre=jazz",
                          headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 403  # a cross-site form cannot know the CSRF token
    plain = client.request("POST", f"/api/review/{a}", auth=False, body=b'{"genre": "jazz"}',
                           headers={"Cookie": cookie, "Content-Type": "text/plain", "X-CSRF-Token": csrf})
    assert plain.status == 415
    assert tree.audio_files() == files
    ok = client.request("POST", f"/api/review/{a}", auth=False, json_body={"genre": "jazz"},
                        headers={"Cookie": cookie, "Origin": own, "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": csrf})
    assert ok.status == 200, ok.body


def test_a_form_that_is_not_utf8_is_refused_and_makes_no_folder(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    cookie, csrf = client.session()
    files, folders = tree.audio_files(), sorted(tree.library.iterdir())
    own = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{client.port}"}
    for body, says in ((f"csrf={csrf}&genre=%ff".encode(), "form field 'genre' is not valid UTF-8"),
                       (f"csrf={csrf}&genre=jazz%c3".encode(), "form field 'genre' is not valid UTF-8"),
                       (f"csrf={csrf}&genre=".encode() + b"\xff", "form is not valid UTF-8")):
        r = client.request("POST", f"/api/review/{a}", auth=False, body=body, headers=own)
        assert r.status == 400 and r.headers["content-type"] == "application/json", (body, r)
        assert says in r.json()["error"], (body, r)
    assert sorted(tree.library.iterdir()) == folders and tree.audio_files() == files
    assert [i["id"] for i in client.get("/api/review").json()] == [a]
    ok = client.request("POST", f"/api/review/{a}", auth=False, body=f"csrf={csrf}&genre=%C3%BCber".encode(), headers=own)
    assert ok.status == 303 and (tree.library / "über" / "a.wav").is_file()  # real UTF-8 escapes still work


@pytest.mark.parametrize("path", ["/models/v0009/confusion.png", "/models/nothing", "/assets/nothing.js",
                                  "/assets/app.js/x", "/no/such/page"])
def test_not_found_outside_the_four_pages_is_a_json_error(client: Client, path: str) -> None:
    r = client.get(path)
    assert r.status == 404 and r.headers["content-type"] == "application/json", r
    assert r.json()["error"]


def test_a_page_on_another_site_or_port_gets_nothing_even_with_the_cookie(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    _version(tree.state / "models", "v0001", ["jazz", "rock"],
             {"validation": {"accuracy": 0.75, "n": 4, "genres": ["jazz", "rock"], "confusion": [[2, 0], [1, 1]]}})
    cookie, csrf = client.session()
    reads = ["/", "/recent", f"/api/files/{a}/audio", "/api/review", "/api/status", "/assets/app.js",
             "/models/v0001/confusion.png"]
    for path in reads:
        for foreign in ({"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Origin": "http://127.0.0.1:1"}, {"Sec-Fetch-Site": "same-site", "Origin": "null"}):
            r = client.get(path, auth=False, headers={"Cookie": cookie, "Range": "bytes=0-99", **foreign})
            assert r.status == 403 and b"RIFF" not in r.body and b"\x89PNG" not in r.body, (path, foreign, r)
            assert b"refused" in r.body, (path, foreign, r)
        for own in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
            assert client.get(path, auth=False, headers={"Cookie": cookie, **own}).status == 200, (path, own)
    # an API client with its token and no Fetch Metadata headers: reads, listens and files
    assert client.get(f"/api/files/{a}/audio", headers={"Range": "bytes=0-3"}).body == b"RIFF"
    r = client.post(f"/api/review/{a}", {"genre": "jazz"})
    assert r.status == 200 and (tree.library / "jazz" / "a.wav").is_file()
    # a typed URL or bookmark ("none") may read, never change anything
    b = tree.unsure("b.wav")
    r = client.request("POST", f"/api/review/{b}", auth=False, json_body={"genre": "jazz"},
                       headers={"Cookie": cookie, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "none"})
    assert r.status == 403 and (tree.review / "b.wav").is_file()


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/files/../../etc/passwd/audio"),
    ("GET", "/api/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd/audio"),
    ("GET", "/api/files/%2E%2E/%2E%2E/etc/passwd/audio"),
    ("GET", "/api/files/..%2f..%2f..%2fetc%2fpasswd/audio"),
    ("GET", "/api/files/%252e%252e%252fetc%252fpasswd/audio"),
    ("GET", "/api/files/%2Fetc%2Fpasswd/audio"),
    ("GET", "/api/files//etc/passwd/audio"),
    ("GET", "/api/files/1/../../../../etc/passwd"),
    ("GET", "/api/files/1%2f..%2f..%2fetc%2fpasswd/audio"),
    ("GET", "/api/files/-1/audio"),
    ("GET", "/api/files/1.0/audio"),
    ("GET", "/api/files/0x1/audio"),
    ("GET", "/api/files/99999999999999999999999999/audio"),
    ("GET", "/api/files/1/audio/../../../etc/passwd"),
    ("GET", "/assets/../../../../etc/passwd"),
    ("GET", "/assets/%2e%2e/%2e%2e/etc/passwd"),
    ("GET", "/models/..%2f..%2f..%2fetc%2fpasswd/confusion.png"),
    ("GET", "/models/../confusion.png"),
    ("GET", "/../../../../etc/passwd"),
    ("POST", "/api/review/..%2f1"),
    ("POST", "/api/review/1/../2"),
    ("POST", "/api/moves/%2e%2e/undo"),
])
def test_paths_and_traversal_in_urls_get_404(tree: WebTree, client: Client, method: str, path: str) -> None:
    tree.unsure("a.wav")
    files = tree.audio_files()
    r = client.request(method, path, json_body={"genre": "jazz"} if method == "POST" else None)
    assert r.status == 404, (path, r)
    assert b"root:" not in r.body and b"RIFF" not in r.body
    assert tree.audio_files() == files


def test_a_foreign_host_name_is_refused_on_a_loopback_listener(client: Client) -> None:
    r = client.get("/api/review", headers={"Host": "rebound.evil.example:8765"})
    assert r.status == 421
    assert client.get("/api/review", headers={"Host": f"localhost:{client.port}"}).status == 200


def test_state_changes_need_post(tree: WebTree, client: Client) -> None:
    a = tree.unsure("a.wav")
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert client.request(method, f"/api/review/{a}").status == 405
    assert client.request("POST", "/api/review").status == 405
    assert (tree.review / "a.wav").is_file()


def test_a_non_loopback_address_must_be_asked_for(tree: WebTree, caplog: pytest.LogCaptureFixture) -> None:
    from genre_daemon.errors import ConfigError

    with pytest.raises(ConfigError, match="web.listen: 0.0.0.0:0 is not a loopback address.*allow_remote"):
        parse_settings({**tree.config_data, "web": {"listen": "0.0.0.0:0"}})
    allowed = parse_settings({**tree.config_data, "web": {"listen": "0.0.0.0:0", "allow_remote": True}})
    with caplog.at_level("WARNING", logger="genre_daemon.web"):
        srv = start_in_thread(allowed)
    try:
        assert any("other machines can reach" in r.getMessage() for r in caplog.records)
        assert Client.of(srv).get("/api/status").status == 200  # no Host restriction when remote is allowed
    finally:
        srv.stop()


def test_a_port_in_use_is_one_clear_error(tree: WebTree, server: WebServer) -> None:
    from genre_daemon.web import WebStartError

    busy = parse_settings({**tree.config_data, "web": {"listen": f"127.0.0.1:{server.port}"}})
    with pytest.raises(WebStartError, match=rf"web.listen 127.0.0.1:{server.port}: cannot listen: Address already in use"):
        start_in_thread(busy)


# --- pages -------------------------------------------------------------------------------------------


def test_pages_escape_hostile_names_and_paginate_a_long_review(tree: WebTree, client: Client) -> None:
    hostile = "<img src=x onerror=alert(1)>&amp;\".wav"
    tree.unsure(hostile)
    for i in range(55):
        tree.unsure(f"s{i:02d}.wav", seconds=0.2)
    page = client.get("/")
    assert page.status == 200 and page.body.count(b'class="song"') == 50 and b"page 1 of 2" in page.body
    second = client.get("/?page=2")  # newest first: the hostile name, the oldest, is on the last page
    assert second.body.count(b'class="song"') == 6 and b"<img src=x" not in second.body
    assert b"&lt;img src=x onerror=alert(1)&gt;&amp;amp;&#34;.wav" in second.body
    assert client.get("/?page=nope").status == 200


# --- the daemon's side: config, units, status --------------------------------------------------------


def test_web_settings_defaults_and_the_example_file() -> None:
    from genre_daemon.config import WebSettings, load_settings

    assert parse_settings({}).web == WebSettings(enabled=False, listen="127.0.0.1:8765", allow_remote=False)
    example = load_settings(Path(__file__).resolve().parents[2] / "config.example.yaml")
    assert example.web == WebSettings()
    assert parse_settings({"web": {"enabled": True, "listen": "[::1]:9000"}}).web.port == 9000


ANALYZE = shutil.which("systemd-analyze") or ""


def _unit(kind: Kind, tmp_path: Path, **web: Any) -> str:
    from genre_daemon.system.units import find_executable, render

    root = Path("/srv/music")
    s = parse_settings({"inbox": str(root / "inbox"), "library": str(root / "library"),
                        "review_dir": str(root / "library" / "_review"), "quarantine_dir": str(root / "inbox" / ".q"),
                        "state_dir": str(root / "state"), **({"web": web} if web else {})})
    return render(kind, exe=find_executable(), config=Path("/etc/genre-daemon/config.yaml"), settings=s,
                  home=tmp_path)


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def test_units_stay_closed_with_web_off_and_open_only_the_listener_with_it_on(tmp_path: Path) -> None:
    off = _unit("system", tmp_path)
    assert _unit("system", tmp_path, enabled=False, listen="127.0.0.1:9999") == off
    d = _directives(off)
    assert d["PrivateNetwork"] == ["yes"] and d["RestrictAddressFamilies"] == ["AF_UNIX"] and "IPAddressAllow" not in d
    on = _directives(_unit("system", tmp_path, enabled=True))
    assert on["PrivateNetwork"] == ["no"] and on["RestrictAddressFamilies"] == ["AF_UNIX AF_INET"]
    assert on["IPAddressDeny"] == ["any"] and on["IPAddressAllow"] == ["localhost"]
    assert on["SocketBindAllow"] == ["tcp:8765"] and on["SocketBindDeny"] == ["any"]
    opened = ("PrivateNetwork", "RestrictAddressFamilies", "IPAddressAllow", "SocketBindAllow", "SocketBindDeny")
    assert {k: v for k, v in on.items() if k not in opened} == {k: v for k, v in d.items() if k not in opened}
    v6 = _directives(_unit("system", tmp_path, enabled=True, listen="[::1]:0"))
    assert v6["RestrictAddressFamilies"] == ["AF_UNIX AF_INET6"] and "SocketBindAllow" not in v6
    remote = _directives(_unit("system", tmp_path, enabled=True, listen="0.0.0.0:8765", allow_remote=True))
    assert remote["IPAddressAllow"] == ["any"]
    user = _directives(_unit("user", tmp_path, enabled=True))
    assert user["RestrictAddressFamilies"] == ["AF_UNIX AF_INET"] and "PrivateNetwork" not in user


@pytest.mark.skipif(not ANALYZE, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("web", [{}, {"enabled": True}, {"enabled": True, "listen": "0.0.0.0:8765", "allow_remote": True}])
def test_units_with_the_web_listener_verify_and_stay_below_exposure_2(tmp_path: Path, web: dict[str, Any]) -> None:
    unit = tmp_path / "genre-daemon.service"
    unit.write_text(_unit("system", tmp_path, **web))
    verify = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    sec = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)], capture_output=True, text=True, timeout=60)
    level = float(re.search(r"Overall exposure level for \S+: (\d+\.\d)", sec.stdout).group(1))  # type: ignore[union-attr]
    assert level <= (0.3 if not web else 2.0), sec.stdout


def test_status_prints_a_one_time_sign_in_link_never_the_token(tree: WebTree, server: WebServer) -> None:
    config = tree.write_config()
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "status", "--config", str(config)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stderr  # the page alone: no daemon runs for this config
    assert server.token not in out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("web: "))
    assert re.fullmatch(re.escape(f"web: {server.url}signin/") + r"[A-Za-z0-9_-]{22} \(one-time sign-in link, "
                        r"valid 10 minutes\)", line), line


def test_genre_daemon_web_serves_the_page_alone_and_stops_on_sigterm(tree: WebTree) -> None:
    a = tree.unsure("a.wav")
    config = tree.write_config()
    proc = subprocess.Popen([sys.executable, "-m", "genre_daemon.cli", "web", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"open (http://127\.0\.0\.1:(\d+)(/signin/\S+))", line)
        assert match, line + proc.stderr.read()  # type: ignore[union-attr]
        port, token = int(match.group(2)), read_token(tree.state) or ""
        assert token not in line
        c = Client(port, token)
        assert c.get(match.group(3), auth=False).status == 303  # the printed link signs in once
        assert c.get(match.group(3), auth=False).status == 401
        assert c.get("/api/review").json()[0]["id"] == a
        assert c.post(f"/api/review/{a}", {"genre": "jazz"}).status == 200
        assert (tree.library / "jazz" / "a.wav").is_file()
        assert c.get("/status").status == 200 and c.get("/models").status == 200
        maps = Path(f"/proc/{proc.pid}/maps")
        if maps.exists():  # serving the page alone never loads the classifier
            assert "libtorch" not in maps.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    assert code == 0
    assert read_endpoint(tree.state) is None


# --- end to end with the real daemon ------------------------------------------------------------------


def test_the_real_daemon_sends_unsure_songs_to_review_and_the_page_files_them(tmp_path: Path) -> None:
    """The daemon (min_confidence 1.0: everything to review) with `genre-daemon web` beside it."""
    from genre_daemon.daemon import service
    from genre_daemon.resources import default_model_dir

    if not (default_model_dir() / "model.json").is_file():
        pytest.skip("no shipped model")
    tree = WebTree(tmp_path, min_confidence=1.0, settle_seconds=0.3, rescan_interval=2,
                   model=str(default_model_dir()))
    tree.journal.close()
    wired = "start_in_thread" in inspect.getsource(service)  # the daemon serves the page itself
    config = tree.write_config()
    log = open(tmp_path / "daemon.log", "wb")
    daemon = subprocess.Popen([sys.executable, "-m", "genre_daemon.cli", "run", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=log)
    web: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 90
        while not (tree.state / "daemon.json").exists():
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"the daemon cannot start here: {(tmp_path / 'daemon.log').read_text()[-500:]}")
            time.sleep(0.1)
        write_tone(tree.inbox / "one.wav", 3.0, freq=330.0)
        write_tone(tree.inbox / "two.wav", 3.0, freq=880.0)
        while len(list(tree.review.glob("*.wav"))) < 2:
            assert daemon.poll() is None and time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()[-2000:]
            time.sleep(0.1)
        if wired:
            while read_endpoint(tree.state) is None:
                assert time.monotonic() < deadline, "the daemon did not start the page"
                time.sleep(0.1)
            endpoint = read_endpoint(tree.state)
            port = int(str(endpoint["url"]).rsplit(":", 1)[1].strip("/"))  # type: ignore[index]
        else:
            web = subprocess.Popen([sys.executable, "-m", "genre_daemon.cli", "web", "--config", str(config)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            line = web.stdout.readline()  # type: ignore[union-attr]
            port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", line).group(1))  # type: ignore[union-attr]
        c = Client(port, read_token(tree.state) or "")
        items = c.get("/api/review").json()
        assert sorted(i["name"] for i in items) == ["one.wav", "two.wav"]
        assert all(set(i["scores"]) and i["confidence"] < 1.0 for i in items)
        status = c.get("/api/status").json()
        assert status["running"] and status["counts"]["review"] == 2 and status["model_version"]
        first = items[0]
        r = c.post(f"/api/review/{first['id']}", {"genre": "chiptune"})
        assert r.status == 200, r.body
        assert (tree.library / "chiptune" / first["name"]).is_file()
        # the daemon's own label scan counts it (its library watch, or the next rescan)
        while (json.loads((tree.state / "daemon.json").read_text()).get("new_labels") or 0) < 1:
            assert daemon.poll() is None and time.monotonic() < deadline, "the daemon did not count the label"
            time.sleep(0.1)
        assert [i["name"] for i in c.get("/api/review").json()] == [items[1]["name"]]
    finally:
        if web is not None:
            web.send_signal(signal.SIGTERM)
            web.wait(15)
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(20)
        log.close()
    assert code == 0, (tmp_path / "daemon.log").read_text()[-2000:]  # the page stops with the daemon
