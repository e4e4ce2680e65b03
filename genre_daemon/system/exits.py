"""How a command of the command line ends, the same for every command: a usage error is one
line and exit status 2; a refusal or an OS error is one line naming the file and the reason;
a closed stdout (``genre-daemon status | head -1``) ends quietly with status 141.

141 is 128 + SIGPIPE, what a shell shows for a command a closed pipe ended (``yes | head -1``),
so ``set -o pipefail`` scripts see the same status as with any other command. Python ignores
SIGPIPE (a write gets EPIPE instead), and the default action would also kill the daemon when a
web client hangs up, so the signal is not restored: a closed stdout is caught and handled here.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
from collections.abc import Callable
from typing import NoReturn, TextIO

from genre_daemon.errors import GenreDaemonError

__all__ = ["CLOSED_PIPE", "Parser", "count", "finish"]

CLOSED_PIPE = 141
USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (``genre-daemon history: error: argument --limit:
    ...``) and exit status 2; the parsers of sub-commands are made of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def count(text: str) -> int:
    """A whole number >= 0 (``--limit``); anything else is a usage error naming the value."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return n


def finish(command: Callable[[], int]) -> int:
    """Run ``command`` and flush stdout; its exit status, or the one for how it failed: 2 for a
    refusal (:class:`GenreDaemonError`) or a missing file, 1 for another OS error (one line on
    stderr each), 141 for a closed stdout (nothing said), 130 for Ctrl-C."""
    try:
        code = int(command())
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError as exc:
        if _reader_gone(sys.stdout):
            return _closed_stdout()
        return _fail(f"{exc.filename or 'a pipe'}: {exc.strerror}", 1)
    except GenreDaemonError as exc:
        return _fail(str(exc), USAGE)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}", USAGE if isinstance(exc, FileNotFoundError) else 1)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, code: int) -> int:
    """Say why on one line of stderr (unless stderr is gone too); ``code``."""
    try:
        print(f"genre-daemon: error: {message}", file=sys.stderr, flush=True)
    except OSError:
        pass
    return code


def _reader_gone(stream: TextIO) -> bool:
    """``stream`` is a pipe or socket whose reader has closed it (poll says POLLERR or POLLHUP)."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def _closed_stdout() -> int:
    """Point stdout at /dev/null, so that the interpreter's last flush of what is left cannot
    fail again; 141."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return CLOSED_PIPE
