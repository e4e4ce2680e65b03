"""The nudge, its pure part: when to send and what (``notify:`` in the config).

Nothing here does I/O or reads a clock; times come in as arguments. :class:`Window` keeps the
pace (at most one message per ``every`` seconds; what happens inside the window is coalesced into
the message sent when it ends), :func:`untold` says what in review and quarantine the user has
not been told about, :func:`body` and :func:`headers` make the message that ntfy, Gotify and a
Home Assistant webhook all take, and :func:`failure_kind` names a failed delivery so that each
kind is logged once. The thread and the POST are in :mod:`genre_daemon.daemon.nudge_sender`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

TITLE = "genre-daemon"
PRIORITY = 4  # Gotify 4-7: a notification with a sound; ntfy (JSON) 4: high


class Window:
    """At most one attempt per ``every`` seconds. :meth:`note` says something happened;
    :meth:`due` is when to look (now, or when the window of the last attempt ends); :meth:`take`
    starts an attempt; :meth:`give_back` keeps a failed one pending for the next window."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.last_attempt: float | None = None
        self.pending = False

    def note(self) -> None:
        """Something needs the user: say so at the next :meth:`due` time."""
        self.pending = True

    def due(self) -> float | None:
        """The earliest time to send what is pending (``-inf``: at once), or None: nothing is."""
        if not self.pending:
            return None
        if self.last_attempt is None:
            return float("-inf")
        return self.last_attempt + self.every

    def ready(self, now: float) -> bool:
        due = self.due()
        return due is not None and now >= due

    def take(self, now: float) -> float | None:
        """An attempt starts at ``now``: what is pending goes into it; later notes wait for the
        next window. Returns the previous attempt's time, for :meth:`drop`."""
        previous, self.last_attempt = self.last_attempt, now
        self.pending = False
        return previous

    def drop(self, previous: float | None) -> None:
        """Nothing was worth sending after all: the window goes back to where it was."""
        self.last_attempt = previous

    def give_back(self) -> None:
        """The attempt failed: it is pending again, sent when the window ends."""
        self.pending = True


@dataclass(frozen=True)
class Waiting:
    """What waits for the user: files in review and in quarantine, how many of each arrived
    after ``told_until`` (the newest journal time the last delivered message covered), and the
    newest such time now (what a delivered message covers)."""

    review: int
    quarantine: int
    new_review: int
    new_quarantine: int
    newest: float

    @property
    def news(self) -> bool:
        return self.new_review + self.new_quarantine > 0


def untold(rows: Iterable[tuple[str, float]], told_until: float) -> Waiting:
    """Count ``(state, updated)`` rows in ``review`` or ``quarantined``; those updated after
    ``told_until`` are new to the user."""
    review = quarantine = new_review = new_quarantine = 0
    newest = told_until
    for state, updated in rows:
        new = updated > told_until
        newest = max(newest, updated)
        if state == "review":
            review += 1
            new_review += new
        elif state == "quarantined":
            quarantine += 1
            new_quarantine += new
    return Waiting(review, quarantine, new_review, new_quarantine, newest)


def _songs(n: int) -> str:
    return f"{n} song{'' if n == 1 else 's'}"


def summary(w: Waiting) -> str:
    """One line a phone can show: ``3 songs wait in review (2 new), 1 in quarantine (1 new)``."""
    parts = []
    if w.review:
        verb = "waits" if w.review == 1 else "wait"
        parts.append(f"{_songs(w.review)} {verb} in review" + (f" ({w.new_review} new)" if w.new_review else ""))
    if w.quarantine:
        what = f"{w.quarantine} in quarantine" if w.review else f"{_songs(w.quarantine)} in quarantine"
        parts.append(what + (f" ({w.new_quarantine} new)" if w.new_quarantine else ""))
    return ", ".join(parts) if parts else "nothing waits"


def body(w: Waiting, page_url: str | None) -> dict[str, object]:
    """The JSON message: ``title``, ``message`` and ``priority`` as Gotify reads them (and ntfy's
    JSON publishing), the counts for a Home Assistant automation, ``url``/``click`` the review
    page (None when it is off). Never a token or a sign-in code: only the page's address."""
    return {
        "title": TITLE,
        "message": summary(w),
        "priority": PRIORITY,
        "review": w.review,
        "quarantined": w.quarantine,
        "new_review": w.new_review,
        "new_quarantined": w.new_quarantine,
        "url": page_url,
        "click": page_url,
    }


def headers(w: Waiting, page_url: str | None) -> dict[str, str]:
    """HTTP headers beside the JSON: ntfy reads ``Title``, ``Tags`` and ``Click`` from them
    (Gotify and Home Assistant ignore them)."""
    out = {"Content-Type": "application/json", "Title": TITLE,
           "Tags": "warning" if w.new_quarantine else "inbox_tray"}
    if page_url:
        out["Click"] = page_url
    return out


def shown_url(url: str) -> str:
    """``url`` fit for a log line: no ``user:password@`` and no query (a Gotify ``?token=``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def failure_kind(exc: BaseException) -> str:
    """A name for what went wrong, the same for the same trouble (logged once per kind):
    ``HTTP 500``, ``timed out``, ``connection refused``, or the error's own words."""
    import socket
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
