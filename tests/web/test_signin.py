"""One-time sign-in links over real parts: the real ``genre-daemon web`` and ``genre-daemon
status`` processes, the real uvicorn server on a loopback port, the code files on the real
filesystem. No sleeping: expiry is tested with codes and cookies stamped in the past."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install starlette uvicorn)")

from test_web import Client, WebTree, server, tree  # noqa: E402, F401  (fixtures)
from genre_daemon.web import start_in_thread  # noqa: E402
from genre_daemon.web.app import COOKIE, COOKIE_MAX_AGE  # noqa: E402
from genre_daemon.web.server import WebServer  # noqa: E402
from genre_daemon.web.signin import (  # noqa: E402
    CODE_LIFETIME, MAX_OUTSTANDING, SIGNIN_DIR, consume_code, mint_code,
)
from genre_daemon.web.tokens import TOKEN_FILE, new_session, read_token  # noqa: E402

LINK = re.compile(r"http://127\.0\.0\.1:(\d+)(/signin/[A-Za-z0-9_-]{22})")


class WebProcess:
    """``genre-daemon web`` as a subprocess: its port, the link it printed, and (once stopped)
    everything it wrote to stdout and stderr."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "genre_daemon.cli", "web", "--config", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.first = self.proc.stdout.readline()  # type: ignore[union-attr]
        match = LINK.search(self.first)
        if match is None:
            self.stop()
            raise AssertionError(f"no sign-in link in {self.first!r}: {self.output}")
        self.port, self.link_path = int(match.group(1)), match.group(2)
        self.output = ""

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        self.output = self.first + out + err
        return self.proc.returncode


def hashed(code: str) -> str:
    """The name of a code's file: its SHA-256, never the code."""
    return hashlib.sha256(code.encode()).hexdigest()


def status(config: Path, *extra: str) -> str:
    """The stdout of a real ``genre-daemon status`` process (another process than the server)."""
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "status", "--config", str(config), *extra],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stderr  # the page alone: no daemon runs for this config
    return out.stdout + out.stderr


def signs_in(c: Client, path: str) -> str | None:
    """The session cookie a GET of the sign-in ``path`` sets (None when refused, 401)."""
    r = c.get(path, auth=False)
    if r.status == 401:
        assert "run `genre-daemon status` for a new one" in r.body.decode(), r
        assert r.headers["content-type"].startswith("text/plain") and "set-cookie" not in r.headers
        return None
    assert r.status == 303 and r.headers["location"] == "/", r
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=strict" in r.headers["set-cookie"]
    return r.headers["set-cookie"].split(";")[0]


def test_a_status_link_works_once_and_the_token_is_in_no_output(tree: WebTree) -> None:
    """A code minted by ``status`` is used up by the separate ``web`` process: once."""
    a = tree.unsure("a.wav")
    config = tree.write_config()
    web = WebProcess(config)
    try:
        token = read_token(tree.state) or ""
        assert len(token) >= 40
        c = Client(web.port, token)
        text = status(config)
        assert token not in text
        link = LINK.search(text)
        assert link is not None and int(link.group(1)) == web.port, text
        cookie = signs_in(c, link.group(2))
        assert cookie is not None and token not in cookie
        page = c.get("/", auth=False, headers={"Cookie": cookie})
        assert page.status == 200 and f'id="song-{a}"'.encode() in page.body
        assert signs_in(c, link.group(2)) is None  # the second use of the same link
        as_json = status(config, "--json")
        assert token not in as_json
        fields = json.loads(as_json)
        assert fields["web_url"] == f"http://127.0.0.1:{web.port}/" and fields["web_signin_error"] is None
        json_link = LINK.fullmatch(fields["web_signin"])
        assert json_link is not None and json_link.group(2) != link.group(2)
        assert signs_in(c, json_link.group(2)) is not None
        assert signs_in(c, web.link_path) is not None  # the link the server printed at start, once
        assert signs_in(c, web.link_path) is None
    finally:
        code = web.stop()
    assert code == 0
    assert "sign in with http://127.0.0.1:" in web.output and token not in web.output  # the log, stdout and stderr


def test_an_expired_an_unknown_or_a_malformed_code_is_refused_and_expired_ones_are_swept(
        tree: WebTree, server: WebServer) -> None:
    c = Client.of(server)
    fresh = mint_code(tree.state)
    old = mint_code(tree.state, now=time.time() - CODE_LIFETIME - 1)
    folder = tree.state / SIGNIN_DIR
    assert {hashed(fresh), hashed(old)} <= set(os.listdir(folder))  # stamped 10 minutes and a second ago
    assert signs_in(c, f"/signin/{old}") is None
    assert hashed(old) not in os.listdir(folder)  # swept
    assert signs_in(c, f"/signin/{'A' * 22}") is None  # well formed, never minted
    for bad in ("", "short", fresh + "x", "..%2f..%2fweb-token", hashed(fresh)):
        assert signs_in(c, f"/signin/{bad}") is None, bad
    assert signs_in(c, f"/signin/{fresh}") is not None
    assert hashed(fresh) not in os.listdir(folder)
    # the lifetime is a parameter: a code one second old is dead for a lifetime of 0.5 s
    now = time.time()
    quick = mint_code(tree.state, now=now)
    assert consume_code(tree.state, quick, now=now + 1.0, lifetime=0.5) is False
    assert consume_code(tree.state, quick, now=now) is False  # and it is gone, not left for later


def test_a_head_request_or_a_post_uses_no_code(tree: WebTree, server: WebServer) -> None:
    """A link preview (HEAD) or a form posting to the link leaves the code for the user."""
    c = Client.of(server)
    code = mint_code(tree.state)
    assert c.request("HEAD", f"/signin/{code}", auth=False).status == 405
    assert c.post(f"/signin/{code}", auth=False).status == 405
    assert signs_in(c, f"/signin/{code}") is not None


def test_a_code_that_cannot_be_used_up_is_a_clear_500_naming_its_folder(tree: WebTree, server: WebServer) -> None:
    """Something in the code's place that unlink cannot remove (here a folder; a read-only
    folder does the same for a user other than root): said, and the code lets no one in."""
    code = "B" * 22
    (tree.state / SIGNIN_DIR).mkdir(mode=0o700, exist_ok=True)
    (tree.state / SIGNIN_DIR / hashed(code)).mkdir()
    r = Client.of(server).get(f"/signin/{code}", auth=False)
    assert r.status == 500
    text = r.body.decode()
    assert "cannot use a sign-in code in" in text and str(tree.state / SIGNIN_DIR) in text, text
    assert "set-cookie" not in {k.lower() for k in r.headers}


def test_codes_are_stored_by_hash_only_privately_and_bounded(tree: WebTree) -> None:
    tree.state.mkdir(parents=True, exist_ok=True)
    codes = [mint_code(tree.state) for _ in range(MAX_OUTSTANDING + 5)]
    folder = tree.state / SIGNIN_DIR
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = sorted(os.listdir(folder))
    assert len(names) == MAX_OUTSTANDING
    for name in names:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
        assert all(code not in name and code not in (folder / name).read_text() for code in codes)
    assert sum(consume_code(tree.state, code) for code in codes) == MAX_OUTSTANDING  # the oldest 5 dropped


def test_two_servers_racing_for_one_code_let_exactly_one_request_in(tree: WebTree, server: WebServer) -> None:
    """Eight requests for the same code at once, half to `genre-daemon web` (another process),
    half to the in-process server, both on one state folder: exactly one gets a session."""
    other = WebProcess(tree.write_config())
    try:
        clients = [Client(other.port, server.token), Client.of(server)]
        for _ in range(5):
            code = mint_code(tree.state)
            start = threading.Barrier(8)
            won: list[str | None] = [None] * 8

            def use(i: int) -> None:
                start.wait()
                won[i] = signs_in(clients[i % 2], f"/signin/{code}")

            threads = [threading.Thread(target=use, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert sum(w is not None for w in won) == 1, won
    finally:
        assert other.stop() == 0


def test_a_session_cookie_past_its_age_or_with_a_forged_age_is_refused(tree: WebTree) -> None:
    first = start_in_thread(tree.settings)
    try:
        c = Client.of(first)
        token = first.token
        now = time.time()
        young = new_session(token, now=now - COOKIE_MAX_AGE + 120)
        old = new_session(token, now=now - COOKIE_MAX_AGE - 1)
        nonce, issued, mac = old.split(".")
        forged = f"{nonce}.{int(now)}.{mac}"  # the old cookie claiming to be new
        before = f"{nonce}.{mac}"  # a cookie of the old format, without an issue time
        assert c.get("/api/status", auth=False, headers={"Cookie": f"{COOKIE}={young}"}).status == 200
        for cookie in (old, forged, before):
            r = c.get("/api/status", auth=False, headers={"Cookie": f"{COOKIE}={cookie}"})
            assert r.status == 401, cookie
        session = signs_in(c, f"/signin/{mint_code(tree.state)}")
        assert session is not None and c.get("/", auth=False, headers={"Cookie": session}).status == 200
    finally:
        first.stop()
    (tree.state / TOKEN_FILE).unlink()  # a new token: every session ends
    second = start_in_thread(tree.settings)
    try:
        assert second.token != token
        assert Client.of(second).get("/", auth=False, headers={"Cookie": session}).status == 401
    finally:
        second.stop()


def test_status_says_when_no_link_can_be_made_and_prints_no_code(tree: WebTree) -> None:
    config = tree.write_config()
    text = status(config)  # web.enabled, but nothing serves the page
    assert "web: not serving now" in text and "/signin/" not in text
    fields = json.loads(status(config, "--json"))
    assert fields["web_signin"] is None and fields["web_signin_error"] == "the page is not being served now"
    assert not (tree.state / SIGNIN_DIR).exists() or os.listdir(tree.state / SIGNIN_DIR) == []
    srv = start_in_thread(tree.settings)
    try:
        token_file = tree.state / TOKEN_FILE
        if os.geteuid() == 0:
            os.chown(token_file, 65534, 65534)  # the daemon's own user, not the caller
        else:
            token_file.chmod(0o640)  # not private: not trusted either
        minted = set(os.listdir(tree.state / SIGNIN_DIR))
        text = status(config)
        assert f"web: {srv.url} (cannot make a sign-in link: its token {token_file} is not readable by you" in text
        assert "/signin/" not in text and set(os.listdir(tree.state / SIGNIN_DIR)) == minted
        fields = json.loads(status(config, "--json"))
        assert fields["web_signin"] is None and "is not readable by you" in fields["web_signin_error"]
    finally:
        srv.stop()
