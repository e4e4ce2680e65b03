"""The review page in a real browser: Debian's chromium driven by Playwright, against the real
server on a real journal and real audio files.

Every page looked at is saved as a screenshot under the test's tmp folder (the path is printed,
so a failing run shows where to look). Skips, saying why, where chromium or Playwright is absent.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_web import GENRES, WebTree

CHROMIUM = os.environ.get("GENRE_DAEMON_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytest.importorskip("uvicorn", reason="uvicorn is not installed")

from genre_daemon.filing.journal import State  # noqa: E402
from genre_daemon.web import start_in_thread  # noqa: E402
from genre_daemon.web.server import WebServer  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Shots:
    """Screenshots of every page looked at, numbered, in the test's tmp folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.n = 0
        folder.mkdir(parents=True, exist_ok=True)
        print(f"screenshots: {folder}")

    def take(self, page: Any, what: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{what}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[Any, Shots]]:
    shots = Shots(tmp_path / "screenshots")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page, shots
        except BaseException:
            shots.take(page, "failure")
            raise
        finally:
            context.close()


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[WebTree]:
    t = WebTree(tmp_path / "tree")
    yield t
    t.close()


@pytest.fixture
def server(tree: WebTree) -> Iterator[WebServer]:
    srv = start_in_thread(tree.settings)
    yield srv
    srv.stop()


def test_listen_file_with_a_click_see_it_move_and_undo_it_from_recent(
        tree: WebTree, server: WebServer, browser_page: tuple[Any, Shots]) -> None:
    page, shots = browser_page
    first = tree.unsure("first song.wav", "pop", "jazz", seconds=6.0)
    second = tree.unsure("second.wav", "disco", "hiphop", seconds=2.0)
    third = tree.unsure("third.wav", "metal", "rock", seconds=2.0)
    placed = tree.sure("placed.wav", "rock")
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/audio" in r.url else None)

    # a one-time sign-in link: swapped for a cookie, the browser is sent on to the page
    page.goto(server.link())
    assert "/signin/" not in page.url and page.url.rstrip("/") == server.url.rstrip("/")
    sync_api.expect(page.locator("li.song")).to_have_count(3)
    assert page.locator("#review-count").inner_text() == "3"
    shots.take(page, "review")

    # play the first song: its time advances; then seek into it (a range request)
    audio = page.locator(f"#song-{first} audio")
    audio.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.currentTime > 0.3", arg=audio.element_handle())
    audio.evaluate("a => a.pause()")
    page.evaluate("""a => new Promise(done => { a.addEventListener('seeked', done, {once: true}); a.currentTime = 4.5; })""",
                  audio.element_handle())
    state = audio.evaluate("a => ({t: a.currentTime, ready: a.readyState, d: a.duration})")
    assert state["t"] >= 4.4 and state["ready"] >= 2 and abs(state["d"] - 6.0) < 0.1, state
    assert 206 in statuses, statuses  # chromium asked for byte ranges and got them
    shots.take(page, "review-played")

    # one click on a genre: the song leaves the list and lands in the genre folder
    page.locator(f"#song-{first} form.pick button[value=jazz]").click()
    sync_api.expect(page.locator(f"#song-{first}")).to_have_count(0)
    sync_api.expect(page.locator("#flash")).to_contain_text("first song.wav filed into jazz")
    assert (tree.library / "jazz" / "first song.wav").is_file()
    assert not (tree.review / "first song.wav").exists()
    assert page.locator("#review-count").inner_text() == "2"

    # a typed new genre
    page.locator(f"#song-{second} form.typed input[name=genre]").fill("chiptune")
    page.locator(f"#song-{second} form.typed button").click()
    sync_api.expect(page.locator(f"#song-{second}")).to_have_count(0)
    assert (tree.library / "chiptune" / "second.wav").is_file()

    # a bad name: a clear error in the page, nothing moved
    page.locator(f"#song-{third} form.typed input[name=genre]").fill("../../etc")
    page.locator(f"#song-{third} form.typed button").click()
    sync_api.expect(page.locator(f"#song-{third} .error")).to_contain_text("not one safe folder name")
    assert (tree.review / "third.wav").is_file()
    shots.take(page, "review-error")

    # a reload shows only what is still waiting
    page.reload()
    sync_api.expect(page.locator("li.song")).to_have_count(1)

    # Recent: the filed song, then undo it
    page.click("text=Recent")
    row = page.locator(f"#move-{tree.move_of(first)}")
    sync_api.expect(row.locator(".now")).to_contain_text("jazz")
    sync_api.expect(row.locator(".now")).to_contain_text("by you")
    shots.take(page, "recent")
    row.locator("form.undo button").click()
    sync_api.expect(row.locator(".now")).to_have_text("back in the inbox")
    assert (tree.inbox / "first song.wav").is_file() and not (tree.library / "jazz" / "first song.wav").exists()
    held = tree.journal.get(first)
    assert held is not None and held.held and held.state is State.SEEN
    shots.take(page, "recent-undone")

    # "wrong genre" on the daemon's own placement
    prow = page.locator(f"#move-{tree.move_of(placed)}")
    prow.locator("form.correct input[name=genre]").fill("metal")
    prow.locator("form.correct button").click()
    sync_api.expect(prow.locator(".now")).to_contain_text("metal")
    assert (tree.library / "metal" / "placed.wav").is_file()

    # Status and Models pages render and keep working
    page.click("text=Status")
    sync_api.expect(page.locator("[data-key=in_review]")).to_have_text("1")
    sync_api.expect(page.locator("[data-key='counts.review']")).to_have_text("2")  # one was undone
    # the undone song waits in the inbox, held (left alone until it changes), not as a new arrival
    sync_api.expect(page.locator("[data-key='counts.held']")).to_have_text("1")
    sync_api.expect(page.locator("[data-key='counts.seen']")).to_have_text("0")
    shots.take(page, "status")
    page.click("text=Models")
    sync_api.expect(page.locator("h1")).to_have_text("Models")
    shots.take(page, "models")
    assert all(s in (200, 206) for s in statuses), statuses


def test_an_album_card_plays_its_tracks_and_one_click_files_the_whole_album(
        tree: WebTree, server: WebServer, browser_page: tuple[Any, Shots]) -> None:
    page, shots = browser_page
    names = ["01 Opening.flac", "02 Middle.flac", "03 Closing.flac"]
    _, ids = tree.album("Live at Home", names, others={"cover.jpg": b"a cover"})
    tree.unsure("loose.wav")
    page.goto(server.link())
    sync_api.expect(page.locator("li.song")).to_have_count(2)  # the album is one card
    card = page.locator(f"#song-{ids[0]}")
    sync_api.expect(card.locator("li.track")).to_have_count(3)
    sync_api.expect(card.locator(".what")).to_have_text("album, 3 tracks")
    assert page.locator("#review-count").inner_text() == "2"

    # each track has its own player: the third one plays
    audio = card.locator(f"#track-{ids[2]} audio")
    audio.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.currentTime > 0.2", arg=audio.element_handle())
    audio.evaluate("a => a.pause()")
    shots.take(page, "review-album")

    # one genre for the card files the whole album
    card.locator("form.typed input[name=genre]").fill("blues")
    card.locator("form.typed button").click()
    sync_api.expect(card).to_have_count(0)
    sync_api.expect(page.locator("#flash")).to_contain_text(
        "the album 'Live at Home' (3 tracks, 1 other file) filed into blues")
    there = tree.library / "blues" / "Live at Home"
    assert sorted(p.name for p in there.iterdir()) == sorted([*names, "cover.jpg"])
    assert not (tree.review / "Live at Home").exists()
    assert page.locator("#review-count").inner_text() == "1"
    shots.take(page, "review-album-filed")

    # Recent: the album is one entry with its three tracks, whose buttons act on the whole album;
    # undo brings it all back
    page.click("text=Recent")
    entry = page.locator("li.entry[data-album]")
    sync_api.expect(entry).to_have_count(1)
    sync_api.expect(entry.locator("li.track")).to_have_count(3)
    sync_api.expect(entry.locator("form.undo button")).to_have_text("Undo album")
    sync_api.expect(entry.locator("form.correct button")).to_have_text("Move album")
    entry.locator("form.undo button").click()
    sync_api.expect(page.locator("#flash")).to_contain_text("the album 'Live at Home' (3 tracks) is back in the inbox")
    sync_api.expect(page.locator("li.entry.undone[data-album]")).to_have_count(1)
    assert sorted(p.name for p in (tree.inbox / "Live at Home").iterdir()) == sorted([*names, "cover.jpg"])
    shots.take(page, "recent-album-undone")


def test_the_page_without_the_token_is_refused_and_a_model_rolls_back(
        tree: WebTree, server: WebServer, browser_page: tuple[Any, Shots]) -> None:
    import json

    from test_web import _version

    page, shots = browser_page
    response = page.goto(server.url)
    assert response is not None and response.status == 401
    assert "needs its token" in page.content()
    shots.take(page, "no-token")

    root = tree.state / "models"
    cm = {"accuracy": 0.8, "n": 10, "genres": list(GENRES[:4]),
          "confusion": [[2, 0, 0, 0], [0, 3, 0, 0], [1, 0, 1, 0], [0, 0, 1, 2]]}
    _version(root, "v0001", list(GENRES[:4]), {"validation": cm})
    _version(root, "v0002", list(GENRES[:5]), {"held_out_labels": 0.7, "held_out_old_genres": 0.9,
                                               "active_held_out_labels": 0.5, "active_held_out_old_genres": 0.92},
             n_labels=21)
    os.symlink("v0002", root / "current")
    page.goto(server.link())
    page.goto(server.url + "models")
    assert page.url.endswith("/models")
    img = page.locator("#model-v0001 img")
    sync_api.expect(img).to_be_visible()
    page.wait_for_function("i => i.complete && i.naturalWidth > 100", arg=img.element_handle())
    sync_api.expect(page.locator("#model-v0002 .badge")).to_have_text("active")
    shots.take(page, "models-two-versions")
    page.locator("form.rollback button").click()
    sync_api.expect(page.locator("#model-v0001 .badge")).to_have_text("active")
    assert os.readlink(root / "current") == "v0001"
    assert json.loads((root / "v0001" / "model.json").read_text())["version"] == "model-v0001"
    shots.take(page, "models-rolled-back")


class _Foreign:
    """Another web server on 127.0.0.1 (another port: same site, not the same origin) whose one
    page embeds the review page's audio and image and fetches its API with credentials."""

    def __init__(self, html: str) -> None:
        body = html.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class _Wire:
    """Requests and the statuses that came back, from chromium's DevTools network events: a
    refused subresource is also blocked by the browser (ORB), so the page never sees its status."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)
        self.urls: dict[str, str] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.status: dict[str, int] = {}
        self.cdp.on("Network.requestWillBeSent", lambda e: self.urls.__setitem__(e["requestId"], e["request"]["url"]))
        self.cdp.on("Network.requestWillBeSentExtraInfo", lambda e: self.headers.__setitem__(
            e["requestId"], {k.lower(): v for k, v in e["headers"].items()}))
        self.cdp.on("Network.responseReceivedExtraInfo", lambda e: self.status.__setitem__(e["requestId"], e["statusCode"]))
        self.cdp.send("Network.enable")

    def answers(self, urls: set[str], timeout: float = 15.0) -> dict[str, tuple[int, dict[str, str]]]:
        """``url -> (status, request headers)`` once every url in ``urls`` has been answered (each
        DevTools round trip delivers the events that arrived meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            done = {self.urls[r]: (self.status[r], self.headers.get(r, {})) for r in self.status if self.urls.get(r) in urls}
            if set(done) == urls:
                return done
            assert time.monotonic() < deadline, f"no answer to {urls - set(done)} in {timeout} s"
            self.cdp.send("Runtime.evaluate", {"expression": "0"})


def test_a_page_on_another_port_cannot_load_the_songs_images_or_api(
        tree: WebTree, server: WebServer, browser_page: tuple[Any, Shots]) -> None:
    from test_web import _version

    page, shots = browser_page
    song = tree.unsure("secret song.wav", seconds=2.0)
    _version(tree.state / "models", "v0001", ["jazz", "rock"],
             {"validation": {"accuracy": 0.75, "n": 4, "genres": ["jazz", "rock"], "confusion": [[2, 0], [1, 1]]}})
    own = server.url.rstrip("/")
    audio, image, api = f"{own}/api/files/{song}/audio", f"{own}/models/v0001/confusion.png", f"{own}/api/review"
    foreign = _Foreign(f"""<!doctype html><title>another port</title>
        <audio id=a preload=auto src="{audio}"></audio><img id=i src="{image}">
        <script>window.fetched = fetch("{api}", {{credentials: "include", mode: "no-cors"}})
                  .then(r => r.type, e => "failed: " + e);</script>""")
    try:
        page.goto(server.link())  # the user's session: the SameSite=Strict cookie is set
        sync_api.expect(page.locator("li.song")).to_have_count(1)
        wire = _Wire(page)  # what went over the wire, as chromium's network service saw it
        page.goto(foreign.url)
        assert page.evaluate("() => window.fetched") == "opaque"  # no-cors: the page cannot read it anyway
        page.wait_for_function("() => { const a = document.getElementById('a');"
                               " return a.error !== null || a.readyState >= 1; }")  # refused, or loaded
        page.wait_for_function("() => document.getElementById('i').complete")
        shots.take(page, "another-port")
        seen = wire.answers({audio, image, api})
        for url, (status, headers) in seen.items():
            assert headers.get("sec-fetch-site") == "same-site", (url, headers)
            assert "genre_daemon_session=" in headers.get("cookie", ""), (url, headers)  # the cookie went along
            assert status == 403, (url, status)
        assert page.evaluate("() => [document.getElementById('a').error.code, document.getElementById('i').naturalWidth]") \
            == [4, 0]  # MEDIA_ERR_SRC_NOT_SUPPORTED: no song; no image
        # the same song, image and API from the page itself still load
        page.goto(own + "/")
        ok = page.evaluate("""async ([a, i, j]) => [(await fetch(a, {headers: {Range: "bytes=0-3"}})).status,
                                                    (await fetch(i)).status, (await fetch(j)).status]""",
                           [audio, image, api])
        assert ok == [206, 200, 200], ok
    finally:
        foreign.close()


def test_a_sign_in_link_from_status_works_once_and_the_token_stays_out_of_the_history(
        tree: WebTree, server: WebServer, tmp_path: Path) -> None:
    """The link `genre-daemon status` prints signs the browser in and leads to the page; the
    same link opened again in a fresh browser is refused; Chromium's history holds no token."""
    song = tree.unsure("waiting.wav")
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "status", "--config", str(tree.write_config())],
                         capture_output=True, text=True, timeout=120)
    match = re.search(r"^web: (http://\S+/signin/\S+) ", out.stdout, re.MULTILINE)
    assert match, out.stdout + out.stderr
    link = match.group(1)
    shots = Shots(tmp_path / "screenshots")
    profile = tmp_path / "signin-profile"
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                       args=ARGS, viewport={"width": 1200, "height": 900})
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            response = page.goto(link)
            assert response is not None and response.status == 200
            assert page.url == server.url  # the code is not in the address bar
            sync_api.expect(page.locator(f"#song-{song}")).to_have_count(1)
            shots.take(page, "signed-in")
            page.reload()  # the session cookie, not the link, keeps the browser in
            sync_api.expect(page.locator(f"#song-{song}")).to_have_count(1)
        finally:
            context.close()  # writes the History database
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            fresh = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            again = fresh.goto(link)
            assert again is not None and again.status == 401
            assert "already used, has expired or is unknown" in fresh.content()
            assert "genre_daemon_session" not in {c["name"] for c in fresh.context.cookies()}
            shots.take(fresh, "signin-link-used")
        finally:
            browser.close()
    db = sqlite3.connect(f"file:{profile / 'Default' / 'History'}?mode=ro", uri=True)
    try:
        urls = [row[0] for row in db.execute("SELECT url FROM urls")]
    finally:
        db.close()
    assert server.url in urls or link in urls, urls  # the visit was recorded...
    assert server.token not in "\n".join(urls)  # ...and the long-lived token is nowhere in it
