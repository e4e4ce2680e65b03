"""Serving the page with uvicorn: in a thread of the daemon, or alone (``genre-daemon web``).

The listening socket is bound by the caller's thread before uvicorn starts, so a busy port or
a bad address is an error at once, naming the address, instead of a log line from a thread.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from genre_daemon.config import Settings
from genre_daemon.errors import GenreDaemonError
from genre_daemon.filing.daemon_status import read_status
from genre_daemon.filing.journal import Journal
from genre_daemon.web.app import create_app
from genre_daemon.web.data import StatusProvider, WebData
from genre_daemon.web.signin import CODE_LIFETIME, signin_link
from genre_daemon.web.tokens import WebTokenError, ensure_token, remove_endpoint, write_endpoint

log = logging.getLogger("genre_daemon.web")

__all__ = ["WebServer", "WebStartError", "start_in_thread", "serve", "bind"]

JournalFactory = Callable[[], Journal]


class WebStartError(GenreDaemonError):
    """The page cannot be served (address in use, not allowed, token file not writable)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; WebStartError naming the address and the fix."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WebStartError(f"web.listen {shown}: cannot resolve the address: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = (" (is the daemon already serving the page? web.enabled: true serves it from the daemon; "
                "or choose another web.listen port)" if exc.errno == 98 else "")
        raise WebStartError(f"web.listen {shown}: cannot listen: {exc.strerror}{hint}") from None
    sock.set_inheritable(False)
    return sock


class WebServer:
    """A running page server; :meth:`stop` ends it (idempotent)."""

    def __init__(self, settings: Settings, journal: Journal, *, status_provider: StatusProvider | None,
                 own_journal: bool = True) -> None:
        web = settings.web
        if not web.loopback:
            if not web.allow_remote:
                raise WebStartError(f"web.listen {web.listen} is not a loopback address; set web.allow_remote: "
                                    "true if other machines should reach the page")
            log.warning("web: serving the page on %s, which other machines can reach: the token is the only "
                        "protection and travels unencrypted; put a TLS proxy in front", web.listen)
        self.settings = settings
        self.token = ensure_token(settings.state_dir)
        self.data = WebData(settings, journal, status_provider)
        self._journal = journal if own_journal else None
        self.socket = bind(web.host, web.port)
        host, port = self.socket.getsockname()[:2]
        self.port = int(port)
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"
        app = create_app(self.data, self.token, loopback=web.loopback)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none", http="h11",
                                server_header=False, timeout_graceful_shutdown=2, timeout_keep_alive=5)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.first_link: str | None = None  # the one-time link minted at start (logged, printed)

    @property
    def started(self) -> bool:
        """uvicorn has started serving."""
        return bool(self._server.started)

    def link(self) -> str:
        """A fresh one-time sign-in link (``/signin/<code>``), never the token: the page swaps
        the code for a session cookie once, within the code's lifetime."""
        return signin_link(self.url, self.settings.state_dir)

    def start_thread(self, timeout: float = 10.0) -> WebServer:
        """Serve in a daemon thread; returns once it answers (WebStartError if it could not)."""
        ended = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._server.run(sockets=[self.socket])
            except BaseException as exc:  # SystemExit from uvicorn's start-up included
                failure.append(exc)
            finally:
                ended.set()

        self._thread = threading.Thread(target=run, name="web", daemon=True)
        self._thread.start()
        if not self._wait_started(ended, timeout) or failure:
            self.stop()
            raise WebStartError(f"web: the page server did not start on {self.settings.web.listen}"
                                + (f": {failure[0]!r}" if failure else ""))
        self._announce()
        return self

    def _wait_started(self, ended: threading.Event, timeout: float) -> bool:
        """Wait until uvicorn says it serves (it has no event to wait on: its flag is polled)."""
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if ended.wait(0.01) or time.monotonic() > deadline:
                return bool(self._server.started)
        return True

    def serve_forever(self, on_started: Callable[[], None] | None = None) -> None:
        """Serve until SIGINT or SIGTERM, then stop cleanly (exit status 0, not death by signal);
        ``on_started`` runs once the page answers."""
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start_thread()
            if on_started is not None:
                on_started()
            while not stop.wait(1.0):
                if self._thread is not None and not self._thread.is_alive():
                    raise WebStartError("web: the page server stopped by itself; see the log above")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _announce(self) -> None:
        try:
            write_endpoint(self.settings.state_dir, self.url)
        except OSError as exc:
            log.warning("web: cannot record the page's address in %s: %s", self.settings.state_dir, exc)
        try:
            self.first_link = self.link()
        except WebTokenError as exc:
            log.warning("web: review page on %s; no sign-in link: %s", self.url, exc)
            return
        log.info("web: review page on %s; sign in with %s (works once, for %d minutes; `genre-daemon status` "
                 "prints a new one; API clients: Bearer token in %s)", self.url, self.first_link, CODE_LIFETIME // 60,
                 Path(self.settings.state_dir) / "web-token")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close the socket and the journal this server opened."""
        if self._stopped:
            return
        self._stopped = True
        self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout)
        try:
            self.socket.close()
        except OSError:
            pass
        remove_endpoint(self.settings.state_dir)
        if self._journal is not None:
            self._journal.close()


def _default_journal(settings: Settings) -> Journal:
    # A write waits at most 10 s for the daemon's lock, then the click fails with a reason.
    return Journal(settings.journal_path, retry_for=10.0)


def start_in_thread(
    settings: Settings,
    journal_factory: JournalFactory | None = None,
    status_provider: StatusProvider | None = None,
    *,
    timeout: float = 10.0,
) -> WebServer:
    """Serve the page for ``settings`` in a background thread; returns the running server
    (``.url``, ``.link()`` for a one-time sign-in link, ``.stop()``). ``journal_factory`` opens the journal the page uses
    (default: its own connection to ``settings.journal_path``; the server closes it on stop);
    ``status_provider`` returns the daemon's live status dict (``Daemon.status``; default: read
    ``state_dir/daemon.json``, as ``genre-daemon status`` does)."""
    journal = journal_factory() if journal_factory is not None else _default_journal(settings)
    provider = status_provider if status_provider is not None else (lambda: read_status(settings))
    try:
        server = WebServer(settings, journal, status_provider=provider)
    except BaseException:
        journal.close()
        raise
    return server.start_thread(timeout)


def serve(settings: Settings) -> int:
    """``genre-daemon web``: serve the page in the foreground against the daemon's state files
    (the journal, ``daemon.json``, retrain progress, model versions) until Ctrl-C or SIGTERM."""
    journal = _default_journal(settings)
    try:
        server = WebServer(settings, journal, status_provider=lambda: read_status(settings))
    except BaseException:
        journal.close()
        raise

    def started() -> None:
        if server.first_link is None:
            print(f"genre-daemon: review page on {server.url} \N{EM DASH} no sign-in link (see the log)", flush=True)
            return
        print(f"genre-daemon: review page on {server.url} \N{EM DASH} open {server.first_link} (works once, for "
              f"{CODE_LIFETIME // 60} minutes; `genre-daemon status` prints a new one)", flush=True)

    server.serve_forever(started)
    return 0
