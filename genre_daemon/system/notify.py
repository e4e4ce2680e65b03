"""sd_notify(3) for the service manager: ready, status, watchdog, reloading, stopping.

One small module in gunicorn's manner: a :class:`Notifier` that does nothing at all when
``NOTIFY_SOCKET`` is unset (a foreground run, launchd, tests), and :class:`WatchdogGate`, the pure
decision whether the main loop may send ``WATCHDOG=1``: only while every worker makes progress, so
a wedged worker stops the pings and systemd restarts the service.

The transport is a plain AF_UNIX datagram socket rather than ``systemd.daemon.notify``:
sd_notify reads ``NOTIFY_SOCKET`` from the live process environment, which would ignore the
environment this class is given (and tested with), and the protocol is one ``sendto`` per message.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger("genre_daemon.system.notify")

MAX_STATUS = 200  # systemctl status shows one line; keep STATUS= short


class Notifier:
    """Messages to systemd over ``$NOTIFY_SOCKET``; every method is a no-op when it is unset.

    ``environ`` is read once, at construction: the daemon builds one Notifier at start-up.
    """

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        raw = environ.get("NOTIFY_SOCKET", "")
        # "@name" is a socket in the abstract namespace; anything else must be an absolute path.
        self._address: str | None = None
        if raw.startswith("@"):
            self._address = "\0" + raw[1:]
        elif raw.startswith("/"):
            self._address = raw
        elif raw:
            log.debug("NOTIFY_SOCKET=%r is neither a path nor an abstract socket; not notifying", raw)
        self._interval = _watchdog_interval(environ)

    @property
    def enabled(self) -> bool:
        """True when there is a service manager to tell."""
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings that systemd asks for (half of ``WATCHDOG_USEC``),
        or None when no watchdog is set for this process."""
        return self._interval

    def ready(self, status: str | None = None) -> None:
        """Start-up (or a reload) has really finished: the model is loaded and the watcher runs."""
        self.send("READY=1", *([f"STATUS={_one_line(status)}"] if status is not None else []))

    def status(self, text: str) -> None:
        """A one-line status that ``systemctl status`` shows."""
        self.send(f"STATUS={_one_line(text)}")

    def reloading(self) -> None:
        """A reload (SIGHUP) begins; :meth:`ready` ends it. ``MONOTONIC_USEC`` is what
        ``Type=notify-reload`` (systemd >= 253) wants with it, and older managers ignore it."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Shutdown has begun."""
        self.send("STOPPING=1")

    def watchdog(self) -> None:
        """Tell systemd that the service is alive; call only while work makes progress."""
        self.send("WATCHDOG=1")

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments as one datagram. Never raises: a service manager that
        went away must not take the daemon with it. Returns True when the datagram was sent."""
        if self._address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            # Python sockets are close-on-exec already (PEP 446); SOCK_CLOEXEC says so explicitly.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(payload, self._address)
        except OSError as exc:
            log.debug("sd_notify %s to %r failed: %s", assignments[0], self._address, exc)
            return False
        return True


def _watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """``WATCHDOG_USEC`` / 2 in seconds; None when unset, malformed, zero, or when
    ``WATCHDOG_PID`` names another process (the watchdog is then not ours to feed)."""
    usec = environ.get("WATCHDOG_USEC", "")
    try:
        value = int(usec)
    except ValueError:
        if usec:
            log.debug("WATCHDOG_USEC=%r is not a number; no watchdog", usec)
        return None
    if value <= 0:
        return None
    pid = environ.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            log.debug("WATCHDOG_PID=%r is not a number; no watchdog", pid)
            return None
    return value / 2 / 1e6


def _one_line(text: str) -> str:
    """A status value must not contain a newline (it would start a new assignment)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_STATUS else flat[: MAX_STATUS - 1] + "…"


def format_status(queue_depth: int, last_file: str | None, model_version: str | None) -> str:
    """The ``STATUS=`` line: queue depth, last file, model version."""
    last = last_file or "none yet"
    return f"queue {queue_depth}; last file: {last}; model {model_version or 'unknown'}"


@dataclass
class WatchdogGate:
    """Decides whether the main loop may ping: only while work makes progress. Pure (injectable
    clock); thread-safe, since workers report and the main loop asks."""

    stall_after: float  # seconds a worker may hold one file before it counts as wedged (e.g. 120)
    clock: Callable[[], float] = time.monotonic
    _since: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stall_after > 0:
            raise ValueError(f"stall_after must be a positive number of seconds, not {self.stall_after!r}")

    def busy(self, worker: str) -> None:
        """``worker`` took a file: its clock starts."""
        with self._lock:
            self._since[worker] = self.clock()

    def idle(self, worker: str) -> None:
        """``worker`` finished its file (or waits for work): it cannot be wedged."""
        with self._lock:
            self._since.pop(worker, None)

    def stalled(self) -> list[str]:
        """Workers that have held one file longer than ``stall_after``, by name."""
        now = self.clock()
        with self._lock:
            return sorted(w for w, t in self._since.items() if now - t > self.stall_after)

    def healthy(self) -> bool:
        """False when any worker has been busy on one file longer than ``stall_after``."""
        return not self.stalled()
