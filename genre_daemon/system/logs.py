"""Logging set-up: structured journal entries under systemd, plain lines everywhere else.

systemd sets ``JOURNAL_STREAM=DEV:INO`` to the device and inode of the stream it connected to
stdout/stderr. When that matches our stderr, stderr *is* the journal: each record is then sent with
``systemd.journal.send`` (systemd-python) carrying ``FILE=``, ``GENRE=``, ``CONFIDENCE=`` fields
when it has them, and falls back to a ``<N>``-prefixed line on stderr (sd-daemon(3)), which journald
turns into the right priority, when systemd-python is missing or the journal socket cannot be
reached. Anywhere else (a terminal, launchd's log files, ``run`` in the foreground): lines on
stderr, each with its time and level, since nothing else stamps them. A progress bar (tqdm) on
the same stream is cleared for each line and drawn again below it, so log lines never break a
bar (:class:`LineHandler`).

Callers attach fields with ``log.info("...", extra=file_fields(path, genre, confidence))``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

FIELDS_ATTR = "journal_fields"  # the LogRecord attribute that file_fields() sets
IDENTIFIER = "genre-daemon"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
PLAIN_FORMAT = "%(message)s"  # the journal stamps its entries itself
TIMED_FORMAT = "%(asctime)s %(levelname)s %(message)s"  # everywhere else, verbose or not
JOURNAL_FORMAT = "%(levelname)s %(message)s"

# syslog priorities (sd-daemon(3) prefixes and the journal's PRIORITY= field)
LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG = 3, 4, 6, 7
LOG_CRIT = 2

JournalSender = Callable[[str, Mapping[str, Any]], None]


def file_fields(path: str, genre: str | None = None, confidence: float | None = None) -> dict[str, dict[str, str]]:
    """The ``extra=`` for a record about one file: journal fields FILE, GENRE, CONFIDENCE.

    Nested under one attribute so that no key can collide with a LogRecord attribute."""
    fields = {"FILE": os.fspath(path)}
    if genre is not None:
        fields["GENRE"] = genre
    if confidence is not None:
        fields["CONFIDENCE"] = f"{confidence:.3f}"
    return {FIELDS_ATTR: fields}


def syslog_priority(levelno: int) -> int:
    """A logging level as a syslog priority (levels in between round towards more severe)."""
    if levelno <= logging.DEBUG:
        return LOG_DEBUG
    if levelno <= logging.INFO:
        return LOG_INFO
    if levelno <= logging.WARNING:
        return LOG_WARNING
    if levelno <= logging.ERROR:
        return LOG_ERR
    return LOG_CRIT


def stream_is_journal(environ: Mapping[str, str], stream: TextIO) -> bool:
    """True when ``JOURNAL_STREAM`` names the device and inode of ``stream``."""
    value = environ.get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(stream.fileno())
        return (int(dev), int(ino)) == (st.st_dev, st.st_ino)
    except (OSError, ValueError, AttributeError):  # no fd (a StringIO), a closed stream, junk
        return False


class PriorityFormatter(logging.Formatter):
    """``<N>LEVEL message``, with the prefix on every line so a traceback keeps its priority."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def journal_entry(record: logging.LogRecord, message: str) -> dict[str, Any]:
    """The journal fields for one record (besides MESSAGE): pure, so it is tested directly."""
    entry: dict[str, Any] = {
        "PRIORITY": str(syslog_priority(record.levelno)),
        "SYSLOG_IDENTIFIER": IDENTIFIER,
        "LOGGER": record.name,
        "THREAD_NAME": record.threadName or "",
        "CODE_FILE": record.pathname,
        "CODE_LINE": record.lineno,
        "CODE_FUNC": record.funcName,
    }
    extra = getattr(record, FIELDS_ATTR, None)
    if isinstance(extra, Mapping):
        entry.update({k: str(v) for k, v in extra.items() if _valid_field(k)})
    return entry


def _valid_field(name: str) -> bool:
    """journald's rule: A-Z, 0-9 and _, not starting with _ or a digit (those are trusted)."""
    return bool(name) and not name[0].isdigit() and name[0] != "_" and all(
        c == "_" or ("A" <= c <= "Z") or ("0" <= c <= "9") for c in name)


class JournalFieldHandler(logging.Handler):
    """Sends each record to the journal with its fields; a record the journal refuses is written
    to ``fallback`` as a ``<N>`` line instead, so nothing is lost.

    systemd-python's own JournalHandler is not used: it sends every LogRecord attribute
    (``msg``, ``args``, ...) as a field, which journald drops as invalid names."""

    def __init__(self, sender: JournalSender, fallback: TextIO) -> None:
        super().__init__()
        self._sender = sender
        self._fallback = logging.StreamHandler(fallback)
        self._fallback.setFormatter(PriorityFormatter(JOURNAL_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self._sender(message, journal_entry(record, message))
        except OSError:
            self._fallback.handle(record)
        except Exception:  # noqa: BLE001 - logging's contract: a handler reports, never raises
            self.handleError(record)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Each record on lines of its own, even while a tqdm progress bar is drawn on the same
    terminal: the bars are cleared for the line and drawn again after it (tqdm's
    ``external_write_mode``, what ``tqdm.contrib.logging`` does around one bar, here for every
    bar of every command). Without tqdm imported no bar can be showing: a plain write."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm_module = sys.modules.get("tqdm")
        if tqdm_module is None:
            super().emit(record)
            return
        with tqdm_module.tqdm.external_write_mode(file=self.stream):
            super().emit(record)


def systemd_sender(journal_socket: str = JOURNAL_SOCKET) -> JournalSender | None:
    """``systemd.journal.send`` adapted to (message, fields); None without systemd-python, or
    when journald's socket is absent (libsystemd then drops entries without an error)."""
    if not os.path.exists(journal_socket):
        return None
    try:
        from systemd import journal  # type: ignore[import-not-found]
    except ImportError:
        return None

    def send(message: str, fields: Mapping[str, Any]) -> None:
        journal.send(message, **fields)

    return send


_installed: list[logging.Handler] = []


def setup_logging(verbose: bool = False, *, environ: Mapping[str, str] = os.environ,
                  stream: TextIO | None = None, journal_socket: str = JOURNAL_SOCKET) -> logging.Handler:
    """Configure the root logger once per process (calling again replaces what it installed).

    Returns the handler, so that a caller can tell which way logs go."""
    stream = sys.stderr if stream is None else stream
    root = logging.getLogger()
    for old in _installed:
        root.removeHandler(old)
    _installed.clear()
    handler: logging.Handler
    if stream_is_journal(environ, stream):
        sender = systemd_sender(journal_socket)
        if sender is not None:
            handler = JournalFieldHandler(sender, stream)
            handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
        else:
            handler = logging.StreamHandler(stream)
            handler.setFormatter(PriorityFormatter(JOURNAL_FORMAT))
    else:
        handler = LineHandler(stream)
        handler.setFormatter(logging.Formatter(TIMED_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    _installed.append(handler)
    return handler


class RepeatedProblem:
    """A problem that recurs on every retry (a full state disk: every tick, for every waiting
    file) is said once, then at most every ``interval`` seconds, with how many distinct items
    it hit meanwhile: a log that floods hides the one line that matters.

    ``note(item)`` returns None (stay quiet) or the number of distinct items hit since the last
    line (say it now); ``clear()`` ends the episode, so the next failure is said at once. Pure:
    the clock is injected."""

    def __init__(self, interval: float = 30.0, clock: Callable[[], float] | None = None) -> None:
        import time

        self.interval = interval
        self._clock = clock or time.monotonic
        self._last: float | None = None
        self._items: set[str] = set()

    def note(self, item: str) -> int | None:
        self._items.add(item)
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return None
        self._last = now
        count, self._items = len(self._items), set()
        return count

    def clear(self) -> bool:
        """End the episode; True when there was one (so the caller can say it is over)."""
        had = self._last is not None
        self._last, self._items = None, set()
        return had
