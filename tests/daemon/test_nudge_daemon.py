"""The nudge (``notify:``, issue 23) end to end: the real daemon as a subprocess files real clips
to review (``min_confidence: 1.0``) and broken files to quarantine, and a real HTTP listener on
127.0.0.1 (http.server in a thread) takes the POSTs. Every wait is on a condition."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import GTZAN_DIR
from listener import Listener
from support import Tree, pytestmark, wait_for  # noqa: F401  (pytestmark: needs the model)

pytestmark = [pytestmark, pytest.mark.skipif(not GTZAN_DIR.is_dir(), reason="../shared/data absent: no real clips")]


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def make_tree(tmp_path: Path, url: str, every: float, **more: object) -> Tree:
    return Tree(tmp_path, min_confidence=1.0, notify={"url": url, "every": every}, **more)


@pytest.fixture
def reap() -> Iterator[list[Tree]]:
    trees: list[Tree] = []
    yield trees
    for t in trees:
        t.reap()


def clip(n: int) -> Path:
    return sorted((GTZAN_DIR / "jazz").glob("*.flac"))[n]


def drop(tree: Tree, n: int, name: str | None = None) -> None:
    shutil.copy(clip(n), tree.inbox / (name or clip(n).name))


def broken(tree: Tree, name: str = "not-audio.mp3") -> None:
    (tree.inbox / name).write_text("this is not audio\n" * 100)


def log_lines(tree: Tree, needle: str) -> list[str]:
    return [line for line in tree.log.read_text(errors="replace").splitlines() if needle in line]


def status_counts(tree: Tree) -> tuple[int, int] | None:
    try:
        s = json.loads((tree.state / "daemon.json").read_text())
    except (OSError, ValueError):
        return None
    return s["review"], s["quarantined"]


def test_a_song_in_review_reaches_the_listener_as_one_json_message(tmp_path: Path, listener: Listener,
                                                                     reap: list[Tree]) -> None:
    tree = make_tree(tmp_path, listener.url, 3600, web={"enabled": True, "listen": "127.0.0.1:0"})
    reap.append(tree)
    tree.start()
    drop(tree, 0)
    wait_for(lambda: listener.posts, 90, "the nudge for a song in review")
    wait_for(lambda: len(tree.placed()) == 1, 30, "the song in review")
    post = listener.posts[0]
    assert post.path == "/hook"
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Title"] == "genre-daemon"
    b = post.json
    assert (b["review"], b["quarantined"], b["new_review"], b["new_quarantined"]) == (1, 0, 1, 0)
    assert b["message"] == "1 song waits in review (1 new)" and b["title"] == "genre-daemon"
    assert isinstance(b["url"], str) and b["url"].startswith("http://127.0.0.1:") and b["url"].endswith("/")
    assert post.headers["Click"] == b["url"]
    token = (tree.state / "web-token").read_text().strip()
    assert token and token not in post.raw.decode() and all(token not in v for v in post.headers.values())
    assert tree.stop() == 0
    assert len(listener.posts) == 1  # one song, one message
    assert not log_lines(tree, "Traceback")


def test_news_inside_the_window_is_one_message_when_it_ends_and_a_restart_tells_only_what_is_new(
        tmp_path: Path, listener: Listener, reap: list[Tree]) -> None:
    tree = make_tree(tmp_path, listener.url, 3600)
    reap.append(tree)
    tree.start()
    drop(tree, 0)
    wait_for(lambda: listener.posts, 90, "the first nudge, sent at once")
    assert listener.posts[0].json["new_review"] == 1
    drop(tree, 1)
    broken(tree)
    # Both filed and counted by the daemon, and its nudge holding the news for the window's end.
    wait_for(lambda: status_counts(tree) == (2, 1), 90, "a second song in review and a file in quarantine")
    wait_for(lambda: log_lines(tree, "notify: news held until the window ends"), 30, "the news held back")
    assert len(listener.posts) == 1  # every: 3600, and only 1 message so far
    # A reload with a short every ends the window: the held news goes as one message.
    tree.settings["notify"] = {"url": listener.url, "every": 1.5}
    tree.write_config()
    assert tree.proc is not None
    tree.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: len(listener.posts) >= 2, 30, "the held news after the reload")
    b = listener.posts[1].json
    assert (b["review"], b["quarantined"], b["new_review"], b["new_quarantined"]) == (2, 1, 1, 1)
    assert b["message"] == "2 songs wait in review (1 new), 1 in quarantine (1 new)"
    # A later song, in the next window: its own message, when the window allows.
    drop(tree, 2)
    wait_for(lambda: len(listener.posts) >= 3, 90, "the nudge for a later song")
    b = listener.posts[2].json
    assert (b["review"], b["new_review"], b["quarantined"], b["new_quarantined"]) == (3, 1, 1, 0)
    assert tree.stop() == 0
    assert len(listener.posts) == 3

    # While the daemon is down, `import` puts a song in review; the next start tells that one
    # only: the three told before are not told again.
    elsewhere = tmp_path / "collection"
    elsewhere.mkdir()
    shutil.copy(clip(3), elsewhere / clip(3).name)
    out = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "import", str(elsewhere), "--config",
                          str(tree.config), "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    tree.start()
    wait_for(lambda: len(listener.posts) >= 4, 60, "the nudge at start for the imported song")
    b = listener.posts[3].json
    assert (b["review"], b["new_review"], b["quarantined"], b["new_quarantined"]) == (4, 1, 1, 0)
    assert tree.stop() == 0
    assert len(listener.posts) == 4
    assert not log_lines(tree, "Traceback")


def test_a_dead_endpoint_is_logged_once_and_filing_goes_on(tmp_path: Path, reap: list[Tree]) -> None:
    closed = Listener()
    port = closed.port
    closed.close()  # nothing listens there now: connection refused
    tree = make_tree(tmp_path, f"http://127.0.0.1:{port}/hook", 0.2)
    reap.append(tree)
    tree.start()
    drop(tree, 0)
    broken(tree)
    wait_for(lambda: len(tree.placed()) == 1 and len(tree.quarantined()) == 1, 90, "filing despite the dead URL")
    wait_for(lambda: log_lines(tree, "notify: cannot deliver"), 30, "the failure, logged")
    drop(tree, 1)  # more news while the endpoint stays dead: more failed attempts
    wait_for(lambda: len(tree.placed()) == 2, 90, "a second song filed")
    # The endpoint comes back on the same port: the news is delivered, said once.
    back = Listener(port)
    try:
        wait_for(lambda: back.posts, 30, "the delivery once the endpoint is back")
        b = back.posts[0].json
        assert (b["review"], b["quarantined"], b["new_review"], b["new_quarantined"]) == (2, 1, 2, 1)
        wait_for(lambda: log_lines(tree, "notify: delivered again"), 30, "the recovery, logged")
        assert tree.stop() == 0
    finally:
        back.close()
    failures = log_lines(tree, "notify: cannot deliver")
    assert len(failures) == 1 and "connection refused" in failures[0], failures
    assert len(log_lines(tree, "notify: delivered again")) == 1
    assert not log_lines(tree, "Traceback")


def test_an_error_answer_is_logged_once_until_a_delivery_succeeds(tmp_path: Path, reap: list[Tree]) -> None:
    flaky = Listener(statuses=(500, 500, 500, 200))
    try:
        tree = make_tree(tmp_path, flaky.url, 0.2)
        reap.append(tree)
        tree.start()
        drop(tree, 0)
        wait_for(lambda: flaky.delivered(), 90, "a delivery after three 500 answers")
        wait_for(lambda: len(tree.placed()) == 1, 30, "the song in review")
        assert [p.status for p in flaky.posts] == [500, 500, 500, 200]
        assert all(p.json["new_review"] == 1 for p in flaky.posts)  # the same news, tried again
        wait_for(lambda: log_lines(tree, "notify: delivered again"), 30, "the recovery, logged")
        assert tree.stop() == 0
    finally:
        flaky.close()
    failures = log_lines(tree, "notify: cannot deliver")
    assert len(failures) == 1 and "HTTP 500" in failures[0], failures
    assert not log_lines(tree, "Traceback")
