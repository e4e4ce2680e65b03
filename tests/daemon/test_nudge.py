"""The nudge's pure part (:mod:`genre_daemon.daemon.nudge`): the window, what is untold, the
message. Times are plain numbers handed in; nothing here waits."""

from __future__ import annotations

import json
import socket
import urllib.error

from genre_daemon.daemon.nudge import Waiting, Window, body, failure_kind, headers, shown_url, summary, untold


def test_the_first_news_goes_at_once_and_later_news_waits_for_the_window() -> None:
    w = Window(every=60)
    assert w.due() is None and not w.ready(0)
    w.note()
    assert w.ready(0)  # nothing sent yet: at once
    w.take(100)
    assert w.due() is None  # what was pending went into that attempt
    w.note()
    w.note()  # two events inside the window: one message when it ends
    assert w.due() == 160
    assert not w.ready(159.9)
    assert w.ready(160)
    w.take(160)
    assert w.due() is None


def test_a_failed_attempt_is_tried_again_when_its_window_ends() -> None:
    w = Window(every=10)
    w.note()
    w.take(5)
    w.give_back()
    assert not w.ready(14.9) and w.ready(15)


def test_a_look_with_nothing_to_say_does_not_move_the_window() -> None:
    w = Window(every=10)
    w.note()
    w.take(0)
    w.note()
    previous = w.take(10)
    w.drop(previous)  # the files were filed before the message went: nothing sent
    assert w.due() is None and w.last_attempt == 0
    w.note()
    assert w.ready(10)  # the next news goes at once: the last message was at 0


def test_a_shorter_every_after_a_reload_applies_to_the_window_running() -> None:
    w = Window(every=3600)
    w.note()
    w.take(0)
    w.note()
    assert not w.ready(5)
    w.every = 1
    assert w.ready(5)


def test_untold_counts_what_waits_and_what_is_new_since_the_last_message() -> None:
    rows = [("review", 1.0), ("review", 5.0), ("quarantined", 6.0), ("review", 7.0), ("moved", 9.0)]
    w = untold(rows, told_until=5.0)
    assert w == Waiting(review=3, quarantine=1, new_review=1, new_quarantine=1, newest=9.0)
    assert w.news
    assert not untold(rows, told_until=9.0).news
    assert untold([], told_until=3.0) == Waiting(0, 0, 0, 0, 3.0)  # never goes back in time


def test_the_summary_reads_like_a_sentence() -> None:
    assert summary(Waiting(3, 1, 2, 1, 0)) == "3 songs wait in review (2 new), 1 in quarantine (1 new)"
    assert summary(Waiting(1, 0, 1, 0, 0)) == "1 song waits in review (1 new)"
    assert summary(Waiting(0, 2, 0, 2, 0)) == "2 songs in quarantine (2 new)"
    assert summary(Waiting(4, 0, 0, 0, 0)) == "4 songs wait in review"


def test_one_body_for_gotify_ntfy_and_home_assistant() -> None:
    w = Waiting(3, 1, 2, 1, 0)
    page = "http://127.0.0.1:8765/"
    b = body(w, page)
    # Gotify: message required, title, an integer priority; Home Assistant: any JSON object.
    assert isinstance(b["message"], str) and b["message"]
    assert b["title"] == "genre-daemon" and isinstance(b["priority"], int)
    assert (b["review"], b["quarantined"], b["new_review"], b["new_quarantined"]) == (3, 1, 2, 1)
    assert b["url"] == page and b["click"] == page
    json.dumps(b)  # plain JSON
    h = headers(w, page)
    assert h["Content-Type"] == "application/json" and h["Title"] == "genre-daemon" and h["Click"] == page
    assert h["Tags"] == "warning"  # something went to quarantine
    off = body(Waiting(1, 0, 1, 0, 0), None)
    assert off["url"] is None and "Click" not in headers(Waiting(1, 0, 1, 0, 0), None)
    assert headers(Waiting(1, 0, 1, 0, 0), None)["Tags"] == "inbox_tray"
    for value in h.values():
        value.encode("latin-1")  # headers must be latin-1 for http.client


def test_a_url_in_the_log_shows_no_password_or_query() -> None:
    assert shown_url("https://bob:secret@gotify.example:8443/message?token=AbC") == "https://gotify.example:8443/message"
    assert shown_url("http://[::1]:80/hook") == "http://[::1]:80/hook"


def test_failures_of_one_kind_share_one_name() -> None:
    fp = None
    e500 = urllib.error.HTTPError("http://x/", 500, "Internal Server Error", {}, fp)  # type: ignore[arg-type]
    assert failure_kind(e500) == "HTTP 500"
    assert failure_kind(urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))) == "connection refused"
    assert failure_kind(urllib.error.URLError(socket.timeout("timed out"))) == "timed out"
    assert failure_kind(TimeoutError()) == "timed out"
    assert failure_kind(urllib.error.URLError(OSError(-2, "Name or service not known"))) == "Name or service not known"
