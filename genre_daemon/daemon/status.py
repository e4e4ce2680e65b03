"""The status file as the daemon writes it (the counters it reports are the filer's,
:class:`genre_daemon.filer.core.Counters`). Reading it back (and the
journal's files per state that ``status`` shows) lives in :mod:`genre_daemon.filing.daemon_status`,
low enough for the review page to import; it is re-exported here."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from genre_daemon.config import Settings
from genre_daemon.filing.daemon_status import STATUS_FILE, file_counts, read_status, status_path

__all__ = ["STATUS_FILE", "file_counts", "read_status", "status_path", "write_status"]

# The daemon's one logger (journald's LOGGER field), whichever of its modules speaks.
log = logging.getLogger("genre_daemon.daemon.service")


def write_status(settings: Settings, status: dict[str, Any]) -> None:
    """Replace the status file atomically (0o600); a failure is only logged (debug)."""
    path = status_path(settings)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(status, fh)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("cannot write %s: %s", path, exc)
