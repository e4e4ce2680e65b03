"""The nudge, its I/O part: a background thread that POSTs the message of
:mod:`genre_daemon.daemon.nudge` to ``notify.url``.

The daemon tells it when the filer's review or quarantine counters move (:meth:`Nudger.watch`,
from its main loop) and hands it a new ``notify:`` section on a reload (:meth:`Nudger.configure`).
At start, and when a reload turns the nudge on, it looks once for files the user was not told
about: ``state_dir/notify.json`` keeps the newest journal time the last delivered message
covered, so files placed in review while the daemon was down (``import``) are told, and files
already told are not told again after a restart.

Filing never waits for it: the POST runs on its own thread with a short timeout, and the
daemon's stop does not wait for a POST in flight (the thread is a daemon thread). A failure is
logged once per kind (``connection refused``, ``HTTP 500``, ``timed out``) until a delivery
succeeds again, which is logged once as "delivered again".
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from genre_daemon.atomic import atomic_write
from genre_daemon.config import NotifySettings, Settings
from genre_daemon.daemon.nudge import Waiting, Window, body, failure_kind, headers, shown_url, untold
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing.fsutil import inside
from genre_daemon.filing.journal import Journal, State

__all__ = ["STATE_FILE", "TIMEOUT", "Nudger", "post", "waiting_rows"]

log = logging.getLogger("genre_daemon.daemon.service")  # the daemon's one logger

STATE_FILE = "notify.json"
TIMEOUT = 5.0  # seconds for one POST: a dead endpoint costs this thread this long, never filing


def waiting_rows(journal: Journal, settings: Settings) -> list[tuple[str, float]]:
    """``(state, updated)`` of each file in review or quarantine that is still there (as the
    review page counts them: a file the user filed or moved away since is not waiting)."""
    from genre_daemon.web.placing import is_file_of

    out = []
    folders = {State.REVIEW: settings.review_dir, State.QUARANTINED: settings.quarantine_dir}
    for row in journal.in_states(State.REVIEW, State.QUARANTINED):
        where = row.destination
        if where is not None and inside(where, folders[row.state]) and is_file_of(where, row):
            out.append((row.state.value, row.updated))
    return out


def post(url: str, payload: dict[str, object], extra: dict[str, str], timeout: float = TIMEOUT) -> None:
    """POST ``payload`` as JSON to ``url``; a ``user:password@`` in it is sent as Basic auth.
    Raises what urllib raises (HTTPError for a 4xx/5xx answer)."""
    parts = urlsplit(url)
    hdrs = dict(extra)
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        hdrs["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        netloc = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers=hdrs, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (http(s) only: config checks)
        answer.read(65536)


class Nudger:
    """The nudge's thread: waits for :class:`Window` to say "now", reads what waits, POSTs."""

    def __init__(self, settings: Settings, journal: Callable[[], Journal | None],
                 page_url: Callable[[], str | None]) -> None:
        self._settings = settings
        self._journal = journal
        self._page_url = page_url
        self._window = Window(settings.notify.every)
        self._cond = threading.Condition()
        self._stop = False
        self._seen = (0, 0)  # the filer's counters count from this process's start
        self._held: float | None = None  # the attempt whose window last held news back (logged once)
        self._failures: set[str] = set()
        self._thread: threading.Thread | None = None
        self._told_until = self._load()
        if settings.notify.url is not None:
            self._window.note()  # at start: anything in review or quarantine not told yet?

    @property
    def _state_file(self) -> Path:
        return self._settings.state_dir / STATE_FILE

    def _load(self) -> float:
        try:
            told = json.loads(self._state_file.read_text(encoding="utf-8"))["told_until"]
            return float(told)
        except (OSError, ValueError, KeyError, TypeError):
            return 0.0  # never told: everything waiting is news

    def _save(self, told_until: float) -> None:
        text = json.dumps({"told_until": told_until})
        try:
            atomic_write(self._state_file, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), mode=0o600)
        except OSError as exc:
            log.warning("notify: cannot write %s: %s (the next start may repeat the last message)",
                        self._state_file, exc.strerror or exc)

    # ----------------------------------------------------------------- what the daemon calls
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a POST in flight is not waited for beyond a moment."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(0.5)

    def watch(self, review: int, quarantined: int) -> None:
        """The filer's counters as they are now (called often): a change is something to tell."""
        now = (review, quarantined)
        if now != self._seen:
            self._seen = now
            with self._cond:
                self._window.note()
                self._cond.notify_all()

    def configure(self, settings: Settings) -> None:
        """A reload: the new ``notify:`` (and folders). Turned on, it looks for untold files."""
        with self._cond:
            old, self._settings = self._settings.notify, settings
            self._window.every = settings.notify.every
            if settings.notify.url is not None and old.url != settings.notify.url:
                self._failures.clear()
                self._window.note()
            self._cond.notify_all()

    # ----------------------------------------------------------------- the thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not (self._settings.notify.url is not None
                                              and self._window.ready(time.monotonic())):
                    due = self._window.due()
                    if (due is not None and self._settings.notify.url is not None and self._held != due
                            and not self._failures):  # a failing endpoint has said its piece
                        self._held = due
                        log.info("notify: news held until the window ends (at most one message every %g s)",
                                 self._window.every)
                    self._cond.wait(None if due is None or self._settings.notify.url is None
                                    else max(0.01, due - time.monotonic()))
                if self._stop:
                    return
                previous = self._window.take(time.monotonic())
                settings = self._settings
            try:
                self._attempt(settings, previous)
            except Exception:  # a bug must not end the nudges: say it, keep going
                if not self._stop:  # (at a stop, the journal may close under a read: not a bug)
                    log.exception("notify: internal error")

    def _attempt(self, settings: Settings, previous: float | None) -> None:
        url = settings.notify.url
        assert url is not None
        journal = self._journal()
        try:
            waiting = untold(waiting_rows(journal, settings), self._told_until) if journal is not None else None
        except GenreDaemonError as exc:
            self._failed(url, f"journal: {exc}")
            return
        if waiting is None or not waiting.news:
            with self._cond:
                self._window.drop(previous)  # nothing to say: the window did not move
            return
        self._deliver(url, waiting)

    def _deliver(self, url: str, waiting: Waiting) -> None:
        page = self._page_url()
        try:
            post(url, body(waiting, page), headers(waiting, page))
        except (OSError, ValueError) as exc:  # URLError, HTTPError, timeouts are OSErrors
            self._failed(url, failure_kind(exc))
            return
        self._told_until = waiting.newest
        self._save(waiting.newest)
        if self._failures:
            self._failures.clear()
            log.info("notify: delivered again to %s", shown_url(url))
        log.info("notify: told %s: %s", shown_url(url), body(waiting, None)["message"])

    def _failed(self, url: str, kind: str) -> None:
        with self._cond:
            self._window.give_back()
        if kind not in self._failures:
            self._failures.add(kind)
            log.warning("notify: cannot deliver to %s: %s; trying again every %g s (said once until "
                        "a delivery succeeds)", shown_url(url), kind, self._settings.notify.every)
