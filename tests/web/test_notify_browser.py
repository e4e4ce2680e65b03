"""The nudge, followed in a real browser (issue 23): the real daemon serves the page and sends
its notification to a real local listener; the link in that message, opened in Debian's chromium
after signing in through the one-time link `genre-daemon status` prints, shows the waiting song,
and one click files it. Skips, saying why, where chromium, Playwright or the real clips are absent."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import GTZAN_DIR
from listener import Listener
from support import Tree, pytestmark, wait_for  # noqa: F401  (pytestmark: needs the model)
from test_web_browser import ARGS, CHROMIUM, Shots, sync_api

pytestmark = [pytestmark, pytest.mark.skipif(not GTZAN_DIR.is_dir(), reason="../shared/data absent: no real clips")]


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


def test_the_notification_reaches_a_local_listener_and_its_link_leads_to_the_song_to_file(
        tmp_path: Path, listener: Listener) -> None:
    tree = Tree(tmp_path, min_confidence=1.0, notify={"url": listener.url, "every": 3600},
                web={"enabled": True, "listen": "127.0.0.1:0"})
    clip = sorted((GTZAN_DIR / "jazz").glob("*.flac"))[0]
    tree.start()
    try:
        shutil.copy(clip, tree.inbox / clip.name)
        wait_for(lambda: listener.delivered(), 120, "the notification at the local listener")
        body = listener.delivered()[0].json
        assert (body["review"], body["new_review"], body["quarantined"]) == (1, 1, 0), body
        assert body["message"] == "1 song waits in review (1 new)"
        page_url = body["url"]
        assert isinstance(page_url, str) and re.fullmatch(r"http://127\.0\.0\.1:\d+/", page_url), page_url
        status = subprocess.run([sys.executable, "-m", "genre_daemon.cli", "status", "--config", str(tree.config)],
                                capture_output=True, text=True, timeout=120)
        assert status.returncode == 0, status.stderr  # the daemon runs
        link = re.search(r"^web: (http://\S+/signin/\S+) ", status.stdout, re.MULTILINE)
        assert link, status.stdout
        shots = Shots(tmp_path / "screenshots")
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
                page.set_default_timeout(20_000)
                page.goto(link.group(1))  # signs in once
                page.goto(page_url)  # the notification's link
                card = page.locator("#review-list > li.song")
                sync_api.expect(card).to_have_count(1)
                sync_api.expect(card.first).to_contain_text(clip.name)
                shots.take(page, "from-the-notification")
                button = card.first.locator("form.pick button.genre").first
                genre = button.get_attribute("value")
                assert genre
                button.click()
                sync_api.expect(page.locator("#review-list > li.song")).to_have_count(0)
            finally:
                browser.close()
        wait_for(lambda: (tree.library / genre / clip.name).is_file(), 30, "the song in its genre folder")
        assert not list(tree.review.glob("*.flac"))
    finally:
        assert tree.stop() == 0, tree.log.read_text()[-2000:]
